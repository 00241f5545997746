"""sgnoise.mlp: hand-derived gradients against finite differences, learning, validation."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import FD_STEP, finite_difference_grads

import sgnoise.mlp as mlp_module
from sgnoise.data import load
from sgnoise.mlp import LOSSES, MLP, activate, all_finite, backprop_activation
from sgnoise.noise import iterate_minibatches
from sgnoise.optim import SGD


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("hidden", [(), (6,), (6, 5), (6, 5, 4)])
def test_gradients_match_finite_differences_to_1e_6(activation, bias, hidden, loss):
    rng = np.random.default_rng(len(hidden))
    model = MLP(
        (7, *hidden, 3), activation, bias=bias, init_scale=0.5, dtype=np.float64, seed=3, loss=loss
    )
    if bias:  # nonzero biases, so that their effect on the forward pass is checked too
        for b in model.params[1::2]:
            b[:] = rng.normal(0, 0.3, b.shape)
    x, y = rng.standard_normal((9, 7)), rng.integers(0, 3, 9)
    if activation == "relu":  # kink-safe point: no pre-activation within far more than a step of 0
        h, per = x, 2 if bias else 1
        for i in range(len(hidden)):
            z = h @ model.params[per * i] + (model.params[per * i + 1] if bias else 0)
            assert np.abs(z).min() > 1e3 * FD_STEP * np.abs(h).max()
            h = np.maximum(z, 0)
    _, grads = model.loss_and_grads(x, y)
    for g, fd in zip(grads, finite_difference_grads(model, x, y), strict=True):
        assert np.abs(g - fd).max() <= 1e-6 * np.abs(fd).max()


def test_loss_is_log_n_classes_at_zero_weights_and_stable_for_huge_logits():
    model = MLP((4, 3, 5), dtype=np.float64)
    for p in model.params:
        p[:] = 0
    x, y = np.ones((2, 4)), np.array([0, 4])
    assert model.loss(x, y) == pytest.approx(np.log(5), rel=1e-15)
    model.params[0][:] = 1.0  # hidden = (4, 4, 4)
    model.params[1][:] = 1e4 * np.arange(15).reshape(3, 5)  # logits 4e4 * (15, 18, 21, 24, 27)
    loss, grads = model.loss_and_grads(x, y)
    # -log softmax: class 0 is 4e4 * (27 - 15) = 4.8e5 (+ e^-1.2e5); class 4 is ~e^-1.2e5.
    assert loss == pytest.approx(4.8e5 / 2, rel=1e-12)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_mse_is_half_the_squared_error_against_one_hot_targets_averaged_over_rows():
    rng = np.random.default_rng(0)
    model = MLP((4, 5, 3), "tanh", loss="mse", dtype=np.float64, seed=1)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    z = np.tanh(x @ model.params[0]) @ model.params[1]
    residual = z - np.eye(3)[y]
    loss, grads = model.loss_and_grads(x, y)
    assert loss == pytest.approx(0.5 * np.sum(residual**2) / 6, rel=1e-14)
    np.testing.assert_allclose(grads[1], np.tanh(x @ model.params[0]).T @ residual / 6, rtol=1e-12)
    hits = np.zeros((), np.int64)
    model.batched_loss_and_grads(x, y, hits=hits)
    assert int(hits) == np.sum(z.argmax(axis=1) == y)


@pytest.mark.parametrize(("init", "std"), [("he", 2.0), ("lecun", 1.0)])
def test_scale_aware_inits_draw_weights_of_variance_proportional_to_one_over_fan_in(init, std):
    model = MLP((2000, 500, 10), init=init, seed=0)
    for w in model.params:
        assert np.std(w) == pytest.approx(np.sqrt(std / w.shape[0]), rel=0.02)
    assert np.std(MLP((2000, 500, 10), init="paper", seed=0).params[0]) == pytest.approx(
        0.1, rel=0.01
    )


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_gradients_match_torch_autograd(activation, loss):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    model = MLP((7, 6, 5, 3), activation, bias=True, init_scale=0.5, dtype=np.float64, seed=3,
                loss=loss)  # fmt: skip
    for b in model.params[1::2]:
        b[:] = rng.normal(0, 0.3, b.shape)
    x, y = rng.standard_normal((9, 7)), rng.integers(0, 3, 9)
    loss_value, grads = model.loss_and_grads(x, y)
    params = [torch.tensor(p, requires_grad=True) for p in model.params]
    h = torch.tensor(x)
    phi = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[activation]
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i < len(params) - 2:
            h = phi(h)
    target = torch.tensor(y)
    if loss == "mse":
        onehot = torch.nn.functional.one_hot(target, 3).double()
        expected = 0.5 * ((h - onehot) ** 2).sum(dim=1).mean()
    else:
        expected = torch.nn.functional.cross_entropy(h, target)
    expected.backward()
    assert loss_value == pytest.approx(expected.item(), rel=1e-12)
    for g, p in zip(grads, params, strict=True):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_relu_passes_a_minus_inf_pre_activation_on_as_a_nan_loss():
    # max(z, 0) would turn it into a silent 0 and a finite loss: a diverged run would go unnoticed.
    model = MLP((2, 2, 2), "relu", dtype=np.float64)
    model.params[0][:] = [[-np.inf, 1.0], [0.0, 1.0]]  # z_1 = (-inf, 2) for x = (1, 1)
    with np.errstate(invalid="ignore"):
        assert np.isnan(model.loss(np.ones((1, 2)), np.array([0])))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relus_kept_slope_gives_the_bits_of_reading_it_off_h(dtype):
    # The backward pass multiplies delta by the slope 1[z > 0] that activate kept instead of
    # recomputing 1[h > 0] from h = relu(z) (the code before): the same bits for every pair
    # of z (zeros of both signs, ties, subnormals, infinities, NaN) and delta (the same).
    tiny = np.finfo(dtype).smallest_subnormal
    values = np.array([0.0, -0.0, 1.5, 1.5, -1.5, tiny, -tiny, np.inf, -np.inf, np.nan], dtype)
    z, delta = (a.ravel() for a in np.meshgrid(values, values))
    h, slope = z.copy(), np.empty_like(z)
    with np.errstate(invalid="ignore"):
        activate(h, "relu", slope)
        kept = backprop_activation(delta.copy(), None, "relu", slope)
        recomputed = delta * (h > 0).astype(dtype)
    assert kept.tobytes() == recomputed.tobytes()


def test_small_integer_labels_give_the_same_loss_and_gradients_as_int64():
    # 300 rows: y * n_rows does not fit in uint8, the flat index of z_y must not overflow.
    rng = np.random.default_rng(0)
    model = MLP((4, 5, 3), dtype=np.float64)
    x, y = rng.random((300, 4)), rng.integers(0, 3, 300)
    loss, grads = model.loss_and_grads(x, y)
    for labels in (y.astype(np.uint8), y.astype(np.int16)):
        small_loss, small_grads = model.loss_and_grads(x, labels)
        assert small_loss == loss
        assert all(np.array_equal(a, b) for a, b in zip(grads, small_grads, strict=True))


@pytest.mark.parametrize("pieces", [False, True])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite_finds_a_nan_or_inf_in_any_block_and_any_layout(bad, pieces, monkeypatch):
    monkeypatch.setattr(mlp_module, "FINITE_BLOCK", 7)  # several blocks, the last one partial
    if pieces:  # large arrays: pieces on the worker threads
        monkeypatch.setattr(mlp_module, "PARALLEL_ELEMENTS", 7)
    a = np.full((5, 9), 3e38, np.float32)  # finite, though its sum overflows
    assert all_finite(a) and all_finite(a.T) and all_finite(a[:, ::2]) and all_finite(a[:0])
    for position in [(0, 0), (3, 4), (4, 8)]:
        b = a.copy()
        b[position] = bad
        assert not all_finite(b) and not all_finite(b.T) and not all_finite(np.asfortranarray(b))
    b = a.copy()
    b[4, 7] = bad
    assert all_finite(b[:, ::2]) and not all_finite(b[:, 1::2])
    assert all_finite(np.float32(1.0)) and not all_finite(np.array(bad))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_the_tap_gives_each_rows_own_gradient_and_their_mean_the_full_one(activation):
    rng = np.random.default_rng(1)
    model = MLP((7, 6, 5, 3), activation, bias=True, init_scale=0.5, dtype=np.float64, seed=2)
    x, y = rng.standard_normal((9, 7)), rng.integers(0, 3, 9)
    tapped = {}
    model.batched_loss_and_grads(x, y, tap=lambda i, h, d: tapped.update({i: (h.copy(), d.copy())}))
    assert [tapped[i][0].shape for i in range(3)] == [(9, 1, 7), (9, 1, 6), (9, 1, 5)]
    assert [tapped[i][1].shape for i in range(3)] == [(9, 1, 6), (9, 1, 5), (9, 1, 3)]
    for i in range(9):
        _, own = model.loss_and_grads(x[i : i + 1], y[i : i + 1])
        for layer, (h, d) in tapped.items():  # delta of the mean loss: 9 times each row's own
            np.testing.assert_allclose(9 * np.outer(h[i, 0], d[i, 0]), own[2 * layer], rtol=1e-12)
            np.testing.assert_allclose(9 * d[i, 0], own[2 * layer + 1], rtol=1e-12, atol=1e-15)


def test_predict_is_the_argmax_of_the_logits():
    model = MLP((3, 3, 3), "relu", dtype=np.float64)
    model.params[0][:] = np.eye(3)
    model.params[1][:] = np.eye(3)
    x = np.array([[0.1, 0.5, 0.2], [3.0, 1.0, 2.0], [0.0, 0.0, 9.0], [0.2, 0.3, 0.1]])
    assert model.predict(x).tolist() == [1, 0, 2, 1] and model.predict(x).dtype == np.int64
    assert model.accuracy(x, np.array([1, 0, 0, 0])) == 0.5


def test_float32_model_computes_in_float32_close_to_float64():
    rng = np.random.default_rng(0)
    x, y = rng.random((50, 20)), rng.integers(0, 4, 50)
    m32 = MLP((20, 16, 4), "tanh", bias=True, seed=5)
    m64 = MLP((20, 16, 4), "tanh", bias=True, seed=5, dtype=np.float64)
    loss32, g32 = m32.loss_and_grads(x, y)
    loss64, g64 = m64.loss_and_grads(x, y)
    assert all(g.dtype == np.float32 for g in g32 + m32.params)
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    for a, b in zip(g32, g64, strict=True):
        assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()


def test_reused_buffers_never_leak_between_calls_or_into_returned_arrays(monkeypatch):
    rng = np.random.default_rng(0)
    model = MLP((12, 8, 6, 4), "sigmoid", bias=True, dtype=np.float64, seed=2)
    x, y = rng.standard_normal((3, 10, 12)), rng.integers(0, 4, (3, 10))
    fresh = [model.copy().loss_and_grads(x[k], y[k]) for k in range(3)]  # new buffers each
    kept = [model.loss_and_grads(x[k], y[k]) for k in range(3)]  # one model, buffers reused
    for (loss_a, ga), (loss_b, gb) in zip(fresh, kept, strict=True):
        assert loss_a == loss_b
        assert all(np.array_equal(a, b) for a, b in zip(ga, gb, strict=True))
    monkeypatch.setattr(mlp_module, "WORKSPACE_ELEMENTS", 10)  # nothing fits: allocate per call
    uncached = MLP((12, 8, 6, 4), "sigmoid", bias=True, dtype=np.float64, seed=2)
    assert uncached.loss_and_grads(x[0], y[0])[0] == fresh[0][0]
    assert uncached._workspaces == {}


def test_batched_hits_count_the_rows_predict_gets_right():
    d = load("mnist10k")
    model = MLP(seed=1)
    x, y = d.x_train[:2000].reshape(4, 500, 784), d.y_train[:2000].reshape(4, 500)
    hits = np.zeros(4, np.int64)
    model.batched_loss_and_grads(x, y, hits=hits)
    expected = [np.sum(model.predict(x[k]) == y[k]) for k in range(4)]
    assert hits.tolist() == expected and 0 < min(expected) and max(expected) < 500


def test_copy_is_independent_and_same_seed_gives_same_weights():
    a, b, c = MLP(seed=4), MLP(seed=4), MLP(seed=5)
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params, strict=True))
    assert not np.array_equal(a.params[0], c.params[0])
    d = a.copy()
    d.params[0][0, 0] += 1
    assert d.params[0][0, 0] != a.params[0][0, 0] and d.sizes == a.sizes


def test_same_seed_gives_bit_identical_training():
    d = load("mnist10k")

    def train(seed):
        model, opt, rng = MLP(seed=seed), SGD(0.1), np.random.default_rng(seed)
        for idx in iterate_minibatches(2000, 500, rng):
            opt.step(model.params, model.loss_and_grads(d.x_train[idx], d.y_train[idx])[1])
        return model.params

    a, b, c = train(0), train(0), train(1)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_relu_mlp_learns_mnist10k_to_90_percent_in_10_epochs():
    # 8,000 train examples, batch 500: 10 epochs are only 160 SGD steps. With He init this
    # run ends at 90.2% (1804/2000); the original N(0, 0.1^2) init reaches ~88.5-88.9%.
    d = load("mnist10k")
    model, opt, rng = MLP(init="he", seed=0), SGD(0.1), np.random.default_rng(0)
    best = 0.0
    for _ in range(10):
        for idx in iterate_minibatches(len(d.x_train), 500, rng):
            opt.step(model.params, model.loss_and_grads(d.x_train[idx], d.y_train[idx])[1])
        best = max(best, model.accuracy(d.x_test, d.y_test))
    assert best >= 0.90


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activation": "softsign"}, r"activation must be one of \('relu'.* got 'softsign'"),
        ({"init": "xavier"}, r"init must be one of \('paper'.* got 'xavier'"),
        ({"loss": "hinge"}, r"loss must be one of \('cross_entropy', 'mse'\), got 'hinge'"),
        ({"sizes": (784,)}, r"sizes must list >= 2 positive integer .* got \(784,\)"),
        ({"sizes": (784, 0, 10)}, r"sizes must .* got \(784, 0, 10\)"),
        ({"sizes": (784, 2.5, 10)}, r"sizes must .* got \(784, 2.5, 10\)"),
        ({"init_scale": -1.0}, "init_scale must be a finite number > 0, got -1.0"),
        ({"init_scale": float("nan")}, "init_scale must be a finite number > 0, got nan"),
        ({"dtype": np.int32}, "dtype must be float32 or float64, got int32"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kwargs)


def test_bad_inputs_are_named():
    model = MLP((4, 3, 2))
    x, y = np.zeros((5, 4)), np.zeros(5, int)
    with pytest.raises(ValueError, match=r"x must have shape \(n >= 1, 4\), got \(5, 3\)"):
        model.loss_and_grads(np.zeros((5, 3)), y)
    with pytest.raises(ValueError, match=r"x must have shape \(n >= 1, 4\), got \(4,\)"):
        model.predict(np.zeros(4))
    with pytest.raises(ValueError, match=r"x must have shape \(n >= 1, 4\), got \(0, 4\)"):
        model.loss(np.zeros((0, 4)), np.zeros(0, int))
    with pytest.raises(ValueError, match="x must hold real numbers, got dtype <U1"):
        model.predict(np.full((2, 4), "a"))
    with pytest.raises(ValueError, match=r"y must be in \[0, 2\), got values in \[0, 7\]"):
        model.loss_and_grads(x, np.array([0, 0, 7, 0, 0]))
    with pytest.raises(ValueError, match=r"y must be in \[0, 2\), got values in \[-1, 0\]"):
        model.accuracy(x, np.array([0, -1, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"y must have shape \(5,\), got \(3,\)"):
        model.loss_and_grads(x, y[:3])
    with pytest.raises(ValueError, match="y must hold integer class labels, got dtype float64"):
        model.loss_and_grads(x, y.astype(float))
    bad = x.copy()
    bad[1, 2], bad[3, 0] = np.nan, -np.inf
    with pytest.raises(ValueError, match="x must be finite, got 2 NaN/inf values"):
        model.loss_and_grads(bad, y)
    with pytest.raises(ValueError, match=r"layer must be one of \['layer1', 'layer2'\], got 'x'"):
        model.layer_params("x")
    huge = np.full((5, 4), np.finfo(np.float32).max, np.float32)  # finite, but the sum overflows
    assert model.predict(huge).shape == (5,)
