"""sgnoise.optim: the first two steps of each optimiser against arithmetic done by hand."""

from __future__ import annotations

import numpy as np
import pytest

import sgnoise.optim as optim_module
from sgnoise.optim import OPTIMIZERS, SGD, AdaDelta, Adam, Momentum, make_optimizer

# The problem: f(a, b) = a^2 + 3 b^2 from theta_0 = (1, -0.5); gradient g = (2a, 6b),
# so g_1 = (2, -3). Expected values below were worked out step by step, as written.


def steps(opt, n: int = 2) -> list[np.ndarray]:
    """theta_1, ..., theta_n."""
    theta = np.array([1.0, -0.5])
    trace = []
    for _ in range(n):
        opt.step([theta], [np.array([2 * theta[0], 6 * theta[1]])])
        trace.append(theta.copy())
    return trace


def test_sgd_first_two_steps_match_hand_arithmetic():
    t1, t2 = steps(make_optimizer("sgd", 0.1))
    # theta_1 = (1 - 0.1*2, -0.5 + 0.1*3) = (0.8, -0.2);  g_2 = (1.6, -1.2)
    # theta_2 = (0.8 - 0.16, -0.2 + 0.12) = (0.64, -0.08)
    assert t1 == pytest.approx([0.8, -0.2], rel=1e-12)
    assert t2 == pytest.approx([0.64, -0.08], rel=1e-12)


def test_sgd_updates_large_parameters_in_pieces_to_the_same_bits(monkeypatch):
    rng = np.random.default_rng(4)
    shapes = [(300, 7), (7,), (5, 3)]
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    whole = [p.copy() for p in params]
    assert SGD(0.3).step(whole, grads)
    monkeypatch.setattr(optim_module, "PARALLEL_ELEMENTS", 100)  # (300, 7): pieces of 14 rows
    assert len(optim_module._row_pieces(params[0])) == 22
    assert SGD(0.3).step(params, grads)
    assert all(np.array_equal(a, b) for a, b in zip(params, whole, strict=True))
    # A NaN in any one piece is reported, and every other piece is still updated.
    grads[0][150, 3] = np.nan
    before = params[0].copy()
    with np.errstate(invalid="ignore"):
        assert not SGD(0.3).step(params, grads)
    assert np.isnan(params[0][150, 3])
    np.testing.assert_array_equal(params[0][-14:], before[-14:] - np.float32(0.3) * grads[0][-14:])


def test_momentum_first_two_steps_match_hand_arithmetic():
    t1, t2 = steps(Momentum(0.1, momentum=0.9))
    # v_1 = -0.1 g_1 = (-0.2, 0.3);  theta_1 = (0.8, -0.2);  g_2 = (1.6, -1.2)
    # v_2 = 0.9 v_1 - 0.1 g_2 = (-0.18 - 0.16, 0.27 + 0.12) = (-0.34, 0.39)
    # theta_2 = (0.8 - 0.34, -0.2 + 0.39) = (0.46, 0.19)
    assert t1 == pytest.approx([0.8, -0.2], rel=1e-12)
    assert t2 == pytest.approx([0.46, 0.19], rel=1e-12)


def test_adam_first_two_steps_match_hand_arithmetic():
    t1, t2 = steps(Adam(0.1, beta1=0.9, beta2=0.999, eps=1e-8))
    # step 1: m = 0.1 g_1, s = 0.001 g_1^2 -> m^ = g_1, s^ = g_1^2: each coordinate moves
    # by 0.1 * |g| / (|g| + 1e-8) ~ 0.1 against the sign of g -> theta_1 = (0.9, -0.4)
    assert t1 == pytest.approx([0.9, -0.4], rel=1e-9)
    # step 2: g_2 = (1.8, -2.4)
    # m_2 = 0.9 * (0.2, -0.3) + 0.1 * (1.8, -2.4) = (0.36, -0.51)
    # s_2 = 0.999 * (0.004, 0.009) + 0.001 * (3.24, 5.76) = (0.007236, 0.014751)
    # m^ = m_2 / (1 - 0.9^2 = 0.19) = (1.8947368421, -2.6842105263)
    # s^ = s_2 / (1 - 0.999^2 = 0.001999) = (3.6198099050, 7.3791895948)
    # sqrt(s^) = (1.9025798025, 2.7164663802)
    # update = 0.1 m^ / (sqrt(s^) + 1e-8) = (0.0995877718, -0.0988125800)
    # theta_2 = (0.9 - 0.0995877718, -0.4 + 0.0988125800)
    assert t2 == pytest.approx([0.8004122282, -0.3011874200], rel=1e-9)


def test_adadelta_first_three_steps_match_hand_arithmetic():
    # three steps: the decay of E[dx^2] first acts at step 3 (E[dx^2]_0 = 0)
    t1, t2, t3 = steps(AdaDelta(1.0, rho=0.5, eps=1e-2), 3)
    # step 1: E[g^2]_1 = 0.5 g_1^2 = (2, 4.5); E[dx^2]_0 = 0
    # dx_1 = -sqrt(0 + 0.01) / sqrt(E[g^2]_1 + 0.01) * g_1
    #      = (-0.1 / sqrt(2.01) * 2, 0.1 / sqrt(4.51) * 3) = (-0.1410691232, 0.1412644828)
    # E[dx^2]_1 = 0.5 dx_1^2 = (0.0099502488, 0.0099778271)
    # theta_1 = (1 - 0.1410691232, -0.5 + 0.1412644828) = (0.8589308768, -0.3587355172)
    assert t1 == pytest.approx([0.8589308768, -0.3587355172], rel=1e-9)
    # step 2: g_2 = (1.7178617537, -2.1524131032)
    # E[g^2]_2 = 0.5 (2, 4.5) + 0.5 g_2^2 = (2.4755245023, 4.5664410834)
    # dx_2 = -sqrt(E[dx^2]_1 + 0.01) / sqrt(E[g^2]_2 + 0.01) * g_2 = (-0.1539052178, 0.1422118591)
    # E[dx^2]_2 = 0.5 E[dx^2]_1 + 0.5 dx_2^2 = (0.0168185324, 0.0151010200)
    # theta_2 = theta_1 + dx_2
    assert t2 == pytest.approx([0.7050256590, -0.2165236581], rel=1e-9)
    # step 3: g_3 = (1.4100513180, -1.2991419485)
    # E[g^2]_3 = 0.5 E[g^2]_2 + 0.5 g_3^2 = (2.2318846109, 3.1271054428)
    # dx_3 = -sqrt(E[dx^2]_2 + 0.01) / sqrt(E[g^2]_3 + 0.01) * g_3 = (-0.1542218097, 0.1162084564)
    assert t3 == pytest.approx([0.5508038493, -0.1003152017], rel=1e-9)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimiser_decreases_a_quadratic_in_place(name):
    theta = np.array([1.0, -0.5])
    alias = theta
    opt = make_optimizer(name, 1.0 if name == "adadelta" else 0.05)
    for _ in range(200):
        opt.step([theta], [np.array([2 * theta[0], 6 * theta[1]])])
    assert alias is theta and theta[0] ** 2 + 3 * theta[1] ** 2 < 0.1 * 1.75


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_parameters_stay_float32(name):
    theta = np.ones(3, np.float32)
    make_optimizer(name, 0.1).step([theta], [np.full(3, 0.5, np.float32)])
    assert theta.dtype == np.float32 and np.all(theta < 1)


@pytest.mark.parametrize("name", ["sgd", "momentum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_update_is_in_place_and_equal_for_contiguous_strided_and_mixed_dtype_arrays(name, dtype):
    # A constant gradient g, two steps: SGD moves theta by -0.2 g; momentum by
    # v_1 + v_2 = -0.1 g + (0.9 * -0.1 g - 0.1 g) = -0.29 g.
    rng = np.random.default_rng(0)
    theta0, g = rng.standard_normal((2, 6, 4)).astype(dtype)
    expected = theta0 - {"sgd": 0.2, "momentum": 0.29}[name] * g
    contiguous, strided, mixed = theta0.copy(), theta0.copy(order="F")[:, ::2], theta0.copy()
    other = np.float64 if dtype == np.float32 else np.float32
    cases = [(contiguous, g), (strided, g[:, ::2]), (mixed, g.astype(other))]
    for theta, grad in cases:
        alias = theta
        opt = make_optimizer(name, 0.1)
        for _ in range(2):
            opt.step([theta], [grad])
        assert alias is theta and theta.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-14
    assert np.allclose(contiguous, expected, rtol=tol, atol=tol)
    assert np.allclose(strided, expected[:, ::2], rtol=tol, atol=tol)
    assert np.allclose(mixed, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_nan_or_inf_gradient_makes_the_updated_weight_nan_or_inf(name, bad):
    # So a training loop can check the weights after the step instead of the gradients
    # before it: step returns whether they are finite (the study and bench_epoch read it).
    theta = np.ones(3, np.float32)
    opt = make_optimizer(name, 0.1)
    assert opt.step([theta], [np.full(3, 0.5, np.float32)])  # finite: reported as such
    with np.errstate(invalid="ignore", over="ignore"):
        assert not opt.step([theta], [np.array([0.5, bad, 0.5], np.float32)])  # reported
    assert not np.isfinite(theta[1]) and np.isfinite(theta[[0, 2]]).all()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_step_leaves_the_gradients_unchanged(name):
    # The study records each step's gradients for the in-flight estimate after the step.
    rng = np.random.default_rng(1)
    theta, g = rng.standard_normal((2, 5, 3)).astype(np.float32)
    before = g.copy()
    opt = make_optimizer(name, 0.1)
    for _ in range(3):
        opt.step([theta], [g])
    np.testing.assert_array_equal(g, before)


def test_bad_optimiser_arguments_are_named():
    with pytest.raises(ValueError, match=r"optimizer must be one of \('sgd', .*got 'rmsprop'"):
        make_optimizer("rmsprop", 0.1)
    for lr in (0.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"lr must be a finite number > 0, got {lr}"):
            make_optimizer("sgd", lr)
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got -1"):
        Adam(-1)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\), got 1.5"):
        Momentum(0.1, momentum=1.5)
    with pytest.raises(ValueError, match=r"beta2 must be in \[0, 1\), got 1"):
        Adam(beta2=1)
    with pytest.raises(ValueError, match=r"rho must be in \[0, 1\), got -0.1"):
        AdaDelta(rho=-0.1)
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0, got 0"):
        AdaDelta(eps=0)
    with pytest.raises(ValueError, match="lr must be"):
        SGD(0)
