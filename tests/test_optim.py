"""sgnoise.optim: the first two steps of each optimiser, computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from sgnoise.optim import OPTIMIZERS, AdaDelta, Adam, Momentum, make_optimizer


def two_steps(opt):
    """Minimise f(a, b) = a^2 + 3 b^2 from (1, 1): gradient (2a, 6b)."""
    theta = np.array([1.0, 1.0])
    trace = []
    for _ in range(2):
        opt.step([theta], [np.array([2 * theta[0], 6 * theta[1]])])
        trace.append(theta.copy())
    return trace


def test_sgd_two_steps():
    s1, s2 = two_steps(make_optimizer("sgd", 0.1))
    # a: 1 - 0.1*2 = 0.8, then 0.8 - 0.1*1.6 = 0.64;  b: 1 - 0.6 = 0.4, then 0.4 - 0.24 = 0.16
    assert s1 == pytest.approx([0.8, 0.4]) and s2 == pytest.approx([0.64, 0.16])


def test_momentum_two_steps():
    s1, s2 = two_steps(Momentum(0.1, momentum=0.9))
    # v1 = -0.1 g1 = (-0.2, -0.6): theta1 = (0.8, 0.4)
    # g2 = (1.6, 2.4); v2 = 0.9 v1 - 0.1 g2 = (-0.18-0.16, -0.54-0.24) = (-0.34, -0.78)
    assert s1 == pytest.approx([0.8, 0.4]) and s2 == pytest.approx([0.46, -0.38])


def test_adam_two_steps():
    s1, s2 = two_steps(Adam(0.1, eps=0.0 + 1e-12))
    # step 1: m_hat = g, s_hat = g^2 -> each coordinate moves by lr * sign(g) = 0.1
    assert s1 == pytest.approx([0.9, 0.9])
    # step 2: g2 = (1.8, 5.4); m = 0.9*0.1*g1 + 0.1*g2, s = 0.999*0.001*g1^2 + 0.001*g2^2
    g1, g2 = np.array([2.0, 6.0]), np.array([1.8, 5.4])
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    s = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    expected = np.array([0.9, 0.9]) - 0.1 * (m / (1 - 0.81)) / np.sqrt(s / (1 - 0.999**2))
    assert s2 == pytest.approx(expected)


def test_adadelta_two_steps():
    s1, s2 = two_steps(AdaDelta(1.0, rho=0.5, eps=1e-2))
    # step 1, a: E[g2] = 0.5*4 = 2; dx = -sqrt(0.01)/sqrt(2.01)*2; E[dx2] = 0.5 dx^2
    dx_a = -np.sqrt(0.01) / np.sqrt(2.01) * 2
    dx_b = -np.sqrt(0.01) / np.sqrt(0.5 * 36 + 0.01) * 6
    assert s1 == pytest.approx([1 + dx_a, 1 + dx_b])
    a1, b1 = 1 + dx_a, 1 + dx_b
    g2a, g2b = 2 * a1, 6 * b1
    dx2a = -np.sqrt(0.5 * dx_a**2 + 0.01) / np.sqrt(0.5 * 2 + 0.5 * g2a**2 + 0.01) * g2a
    dx2b = -np.sqrt(0.5 * dx_b**2 + 0.01) / np.sqrt(0.5 * 18 + 0.5 * g2b**2 + 0.01) * g2b
    assert s2 == pytest.approx([a1 + dx2a, b1 + dx2b])


def test_every_optimiser_decreases_a_quadratic():
    for name in OPTIMIZERS:
        lr = 1.0 if name == "adadelta" else 0.05
        theta = np.array([1.0, 1.0])
        opt = make_optimizer(name, lr)
        for _ in range(200):
            opt.step([theta], [np.array([2 * theta[0], 6 * theta[1]])])
        assert theta[0] ** 2 + 3 * theta[1] ** 2 < 0.5, name


def test_bad_optimiser_arguments_are_named():
    with pytest.raises(ValueError, match="optimizer must be one of .* got 'rmsprop'"):
        make_optimizer("rmsprop", 0.1)
    for lr in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match=f"lr must be > 0, got {lr}"):
            make_optimizer("sgd", lr)
    with pytest.raises(ValueError, match="momentum must be in \\[0, 1\\), got 1.5"):
        Momentum(0.1, momentum=1.5)
