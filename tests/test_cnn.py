"""sgnoise.cnn: hand-derived gradients against finite differences and PyTorch autograd,
per-example gradients, the minibatch axis, validation."""

from __future__ import annotations

import pickle
import re
import threading

import numpy as np
import pytest
from _helpers import finite_difference_grads
from numpy.lib.stride_tricks import sliding_window_view

import sgnoise.cnn as cnn_module
from sgnoise.cnn import CNN, _band, _fold_strips, _patches, _strips, _toeplitz, group_width
from sgnoise.mlp import activate
from sgnoise.model import Model, make_model
from sgnoise.noise import noise_pass
from sgnoise.per_example import per_example_gradients


def _small(activation="relu", bias=True, seed=1, **kwargs) -> CNN:
    """A 9x8x2 image -> conv 2x2 (3) -> pool (odd width: a column dropped) -> conv 2x2 (4)
    -> pool -> dense 5 -> 3 classes, float64, biases nonzero."""
    settings = {"channels": (3, 4), "kernel": 2, "dense": (5,), "n_classes": 3}
    model = CNN((9, 8, 2), activation, bias=bias, init="he", seed=seed,
                **{"dtype": np.float64, **settings, **kwargs})  # fmt: skip
    rng = np.random.default_rng(seed)
    for p in model.params:
        if p.ndim == 1:
            p[:] = rng.normal(0, 0.3, p.shape)
    return model


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dense", [(5,), (5, 4)])  # two: a dense layer's error into another's
def test_gradients_match_finite_differences_to_1e_6_in_norm(activation, bias, dense):
    model = _small(activation, bias, dense=dense)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((4, model.n_inputs)), rng.integers(0, 3, 4)
    _, grads = model.loss_and_grads(x, y)
    for name, g, fd in zip(model.params, grads, finite_difference_grads(model, x, y), strict=True):
        assert np.linalg.norm(g - fd) <= 1e-6 * np.linalg.norm(fd), name.shape


@pytest.mark.parametrize("values", [1, 4, 10**6])
def test_gradients_match_finite_differences_for_every_strip_width(values, monkeypatch):
    # conv1's 8x9 output in strips of 1 (im2col), 3 or 9 columns, conv2's 2x2 in 1 or 2
    monkeypatch.setattr(cnn_module, "GROUP_VALUES", values)
    model = CNN((10, 11, 2), "tanh", channels=(3, 4), kernel=3, dense=(5,), n_classes=3,
                bias=True, init="he", dtype=np.float64, seed=1)  # fmt: skip
    for p in model.params[1::2]:  # the biases
        p[:] = np.random.default_rng(9).normal(0, 0.3, p.shape)
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((3, model.n_inputs)), rng.integers(0, 3, 3)
    _, grads = model.loss_and_grads(x, y)
    for p, g, fd in zip(model.params, grads, finite_difference_grads(model, x, y), strict=True):
        assert np.linalg.norm(g - fd) <= 1e-6 * np.linalg.norm(fd), p.shape


def test_both_networks_are_a_model_and_make_model_builds_both():
    cnn = make_model("cnn", (28, 28, 1), 10, "relu", hidden=(120,), channels=(6, 16), kernel=5)
    mlp = make_model("mlp", (28, 28, 1), 10, "relu", hidden=(100,))
    assert isinstance(cnn, Model) and isinstance(mlp, Model)
    assert cnn.layer_names == ["conv1", "conv2", "dense1", "output"]
    assert [p.shape for p in cnn.params] == [(25, 6), (150, 16), (256, 120), (120, 10)]
    assert cnn.n_inputs == mlp.n_inputs == 784
    with pytest.raises(ValueError, match="model must be one of mlp, cnn, got 'rnn'"):
        make_model("rnn", (28, 28, 1), 10, "relu", hidden=(100,))


@pytest.mark.parametrize("values", [1, 48])  # strips of 1 column (G = o) or whole rows
def test_minibatch_axis_gives_each_minibatchs_gradient_and_the_tap_its_rows(values, monkeypatch):
    monkeypatch.setattr(cnn_module, "GROUP_VALUES", values)
    model = _small("tanh")
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((3, 5, model.n_inputs)), rng.integers(0, 3, (3, 5))
    tapped = {}
    losses, grads = model.batched_loss_and_grads(
        x, y, tap=lambda i, h, d: tapped.update({i: (h.copy(), d.copy())})
    )
    for k in range(3):
        loss, own = model.loss_and_grads(x[k], y[k])
        assert losses[k] == pytest.approx(loss, rel=1e-13)
        for g, o in zip(grads, own, strict=True):
            np.testing.assert_allclose(g[k], o, rtol=1e-12, atol=1e-15)
    # conv1: 8x7 output pixels of 2x2x2 patches; dense layers: one position
    assert tapped[0][0].shape == (3, 5, 56, 8) and tapped[0][1].shape == (3, 5, 56, 3)
    assert tapped[3][0].shape == (3, 5, 1, 5)
    for layer, (h, d) in tapped.items():  # b * sum over pixels of outer(patch, delta)
        w = np.einsum("kbpi,kbpo->kbio", h, d).sum(axis=1)
        np.testing.assert_allclose(w, grads[2 * layer], rtol=1e-12, atol=1e-15)


def test_per_example_gradients_are_each_examples_own_and_average_to_the_full_one():
    model = _small("relu")
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((12, model.n_inputs)), rng.integers(0, 3, 12)
    pe = per_example_gradients(model, x, y, coords_per_layer=10, seed=0)
    assert list(pe.layers) == ["conv1", "conv2", "dense1", "output"]
    _, full = model.loss_and_grads(x, y)
    at = [(j, i) for j, i in zip(pe.param, pe.index, strict=True)]
    np.testing.assert_allclose(pe.matrix.mean(axis=0), [full[j].ravel()[i] for j, i in at],
                               rtol=1e-10, atol=1e-14)  # fmt: skip
    for e in (0, 7, 11):
        _, own = model.loss_and_grads(x[e : e + 1], y[e : e + 1])
        np.testing.assert_allclose(pe.matrix[e], [own[j].ravel()[i] for j, i in at],
                                   rtol=1e-10, atol=1e-14)  # fmt: skip


def test_noise_pass_of_the_conv_net_has_a_block_per_layer_and_zero_mean():
    model = _small("sigmoid", bias=False)
    rng = np.random.default_rng(5)
    x, y = rng.random((40, model.n_inputs)), rng.integers(0, 3, 40)
    measured = noise_pass(model, x, y, 8)
    assert {k: v.shape for k, v in measured.noise.items()} == {
        "conv1": (5, 24),
        "conv2": (5, 48),
        "dense1": (5, 20),
        "output": (5, 15),
    }
    np.testing.assert_allclose(measured.matrix.mean(axis=0), 0, atol=1e-15)
    _, full = model.loss_and_grads(x, y)
    for g, f in zip(measured.gradient, full, strict=True):
        np.testing.assert_allclose(g, f, rtol=1e-12, atol=1e-15)


def test_ties_in_a_pooling_window_send_the_gradient_to_the_first_maximum_only():
    # All 16 pixels equal: every window ties, and a pooled value is sigmoid(w) for one pixel's
    # worth of w; routing its gradient to all four tied pixels would give 4x the derivative.
    model = CNN((4, 4, 1), "sigmoid", channels=(1,), kernel=1, dense=(), n_classes=2,
                dtype=np.float64)  # fmt: skip
    assert model.layer_names == ["conv1", "output"]
    x, y = np.ones((1, 16)), np.array([1])
    _, grads = model.loss_and_grads(x, y)
    for g, fd in zip(grads, finite_difference_grads(model, x, y), strict=True):
        np.testing.assert_allclose(g, fd, rtol=1e-7)


def _routed_by_loop(h: np.ndarray, d_a: np.ndarray, activation: str) -> np.ndarray:
    """The pooling's delta by a loop over windows and their positions: d_a times [the first
    maximum, row-major], times phi'(h) there in the network's order (a zero keeps d_a's sign,
    a last odd row or column gets +0); a window with a NaN: ReLU's phi'(NaN) = 0 at all four
    positions, NaN at all four for sigmoid and tanh (a diverged run)."""
    want = np.zeros(h.shape, h.dtype)
    for e, y, x, c in np.ndindex(d_a.shape):
        window = h[e, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2, c].ravel()
        first = int(np.argmax(window))
        for i, value in enumerate(window):
            d = d_a[e, y, x, c] * (i == first)
            if np.isnan(window).any():
                d, value = d_a[e, y, x, c] * 0, window.max()
            routed = {"relu": d * (value > 0), "sigmoid": d * value * (1 - value),
                      "tanh": d * (1 - value**2)}  # fmt: skip
            want[e, 2 * y + i // 2, 2 * x + i % 2, c] = routed[activation]
    return want


def _assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_array_equal(got, want)
    signed = ~np.isnan(want)
    np.testing.assert_array_equal(np.signbit(got[signed]), np.signbit(want[signed]))  # of 0 too


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("inputs", ["binary", "saturated"])
@pytest.mark.parametrize("lead", [(7,), (2, 4)])
@pytest.mark.parametrize("chunk", [cnn_module.POOL_CHUNK, 48])
def test_pooling_routes_each_window_to_its_first_maximum_in_every_tie_pattern(
    activation, inputs, lead, chunk, monkeypatch
):
    # binary: 0/1 images and all-ones kernels, z counts ones, so windows tie in every pattern
    # (within a row, across rows, all four, at 0); saturated: float32 sigmoid's 0s and 1s and
    # tanh's -1s and 1s tie. conv1's odd width and conv2's odd height drop a column and a row.
    # d_a has zeros of both signs. Reference: a loop over windows and positions. chunk 48:
    # the pooling's blocks of examples are conv1's 1 and conv2's 3 (7 = 3 + 3 + 1, 8 = 3 + 3
    # + 2: a last, smaller block), against one block of all examples.
    monkeypatch.setattr(cnn_module, "POOL_CHUNK", chunk)
    rng = np.random.default_rng(3)
    if inputs == "binary":
        model = _small(activation, bias=False)
        model.params[0][:] = 1
        model.params[1][:] = 1
        x = rng.integers(0, 2, (*lead, model.n_inputs)).astype(np.float64)
    else:
        model = _small(activation, bias=False, dtype=np.float32)
        model.params[0] *= 40
        model.params[1] *= 40
        x = rng.integers(-1, 2, (*lead, model.n_inputs)).astype(np.float32)
    space = {}
    blocks, _ = model._forward(x, space, slopes=True)
    ties = windows = 0
    for layer, (*_, h, a) in enumerate(blocks):
        h = _activated(model, h)
        d_a = rng.standard_normal(a.shape).astype(a.dtype)
        d_a.ravel()[::3] = 0
        d_a.ravel()[1::5] = -0.0
        p_h, p_w = a.shape[1:3]
        corners = [h[:, u : 2 * p_h : 2, v : 2 * p_w : 2] for u in (0, 1) for v in (0, 1)]
        np.testing.assert_array_equal(a, np.max(corners, axis=0))  # the forward's maximum
        ties, windows = (
            ties + sum(np.sum(corner == a) for corner in corners) - a.size,
            windows + a.size,
        )
        want = _routed_by_loop(h, d_a, activation)  # before _unpool, free to overwrite h
        _assert_same_bits(_pooled_delta(model, d_a, h, a, space, layer), want)
    assert ties > windows // 8


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_a_nan_in_a_pooling_window_routes_relus_zero_or_a_nan_to_its_four_positions(activation):
    # phi'(a) at the routed position is read off the window's maximum, NaN here: as documented
    # in CNN._unpool, the window's delta is a zero of d_a's sign for ReLU, NaN otherwise.
    model = _small(activation, bias=False)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, model.n_inputs))
    x[1, 5] = np.nan
    space = {}
    blocks, _ = model._forward(x, space, slopes=True)
    for layer, (*_, h, a) in enumerate(blocks):
        h = _activated(model, h)
        d_a = rng.standard_normal(a.shape)
        assert np.isnan(a).any() and not np.isnan(a).all()
        want = _routed_by_loop(h, d_a, activation)  # before _unpool, free to overwrite h
        _assert_same_bits(_pooled_delta(model, d_a, h, a, space, layer), want)


def _pooled_delta(model: CNN, d_a, h, a, space: dict, layer: int) -> np.ndarray:
    """delta_l as the backward pass makes it of d loss / d a_l (d_a): times phi'(a_l) on the
    pooled map (Network._backprop: ReLU's slope kept by the forward pass in ``s{layer}``),
    then routed (CNN._unpool)."""

    def product(out):
        out[...] = d_a
        return out

    q = model._backprop(product, a, model._buffer(space, f"s{layer}", a.shape))
    return model._unpool(q, h, space, layer)


@pytest.mark.parametrize(
    ("kept", "zeroed"),
    [("e0", ["conv1", "conv2", "dense1"]), ("s1", ["conv1", "conv2"]), ("s0", ["conv1"])],
)
def test_relus_backward_multiplies_by_the_slopes_the_forward_pass_kept(kept, zeroed, monkeypatch):
    # phi' of a hidden dense layer (e{i}) and of a pooled map (s{l}) is the slope 1[z > 0]
    # the forward pass kept, not recomputed from h: with one kept slope zeroed after the
    # forward pass, the layers below get zero gradients and the others the same bits.
    model = _small("relu")
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((2, 5, model.n_inputs)), rng.integers(0, 3, (2, 5))
    _, want = model.batched_loss_and_grads(x, y)
    want = [g.copy() for g in want]
    forward = model._forward

    def forward_then_zero(x, space, slopes=False):
        out = forward(x, space, slopes)
        space[kept][...] = 0
        return out

    monkeypatch.setattr(model, "_forward", forward_then_zero)
    _, got = model.batched_loss_and_grads(x, y)
    for j, (g, w) in enumerate(zip(got, want, strict=True)):
        if model.layer_names[j // 2] in zeroed:
            assert not g.any() and w.any()
        else:
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize(
    "settings",
    [
        {"image_shape": (9, 8, 2), "channels": (3, 4), "kernel": 2, "dense": (5,)},
        {"image_shape": (30, 30, 1), "channels": (3, 4, 5), "kernel": 3, "dense": (7, 6)},
        {"image_shape": (10, 10, 1), "channels": (100, 2), "kernel": 1, "dense": (3,)},
    ],
)
def test_the_workspace_grows_by_at_most_the_estimate_per_example(activation, settings):
    # activations_per_example (cnn.workspace_values, what model.footprint gives the memory
    # check) bounds the buffers a backward pass with a tap adds per example (ReLU's kept
    # slopes included): the growth from 8 to 16 examples (the pooling's blocks and the
    # banded kernels do not grow with them)
    model = CNN(activation=activation, n_classes=3, **settings)
    rng = np.random.default_rng(0)

    def held(n: int) -> float:
        x, y = rng.random((n, model.n_inputs), np.float32), rng.integers(0, 3, n)
        model._workspaces.clear()
        model.batched_loss_and_grads(x, y, tap=lambda i, h, d: None)
        (space,) = model._workspaces.values()
        return sum(a.nbytes for a in space.values()) / model.dtype.itemsize

    assert (held(16) - held(8)) / 8 <= model.activations_per_example


def _activated(model: CNN, h: np.ndarray) -> np.ndarray:
    """phi(z) of a conv block's map as the forward pass keeps it: ReLU's nets keep z (their
    ReLU runs on the pooled map), the others phi(z)."""
    return activate(h.copy(), "relu") if model.relu_after_pooling else h


def _taps(a: np.ndarray, k: int):
    """(i, j, the view of a's (N, o_h, o_w, C) inputs of kernel tap (i, j)) for every tap."""
    o_h, o_w = a.shape[1] - k + 1, a.shape[2] - k + 1
    return [(i, j, a[:, i : i + o_h, j : j + o_w]) for i in range(k) for j in range(k)]


def _groups(o: int) -> list[int]:
    return [g for g in range(1, o + 1) if o % g == 0]


@pytest.mark.parametrize(
    ("h", "w", "c_in", "k", "c_out", "o_g"),
    [
        (h, w, c_in, k, c_out, o_g)
        for h, w, c_in, k, c_out in [
            (7, 5, 3, 3, 2), (6, 6, 1, 1, 4), (4, 6, 2, 4, 3), (5, 5, 2, 5, 1), (9, 8, 1, 2, 3),
            (9, 10, 2, 3, 2),
        ]
        for o_g in _groups(w - k + 1)
    ],
)  # fmt: skip
def test_the_strips_and_banded_kernel_give_the_convolution_and_both_its_gradients(
    h, w, c_in, k, c_out, o_g
):
    # against direct loops over the k^2 kernel taps, in float64: odd and unequal sizes,
    # C_in > 1, k = 1 and k = the input's height (one output row) or its whole size, every
    # strip width o_g from 1 (im2col) to o (whole rows)
    rng = np.random.default_rng(h * w * k)
    n, o_h, o_w = 3, h - k + 1, w - k + 1
    a = rng.standard_normal((n, h, w, c_in))
    kernel = rng.standard_normal((k * k * c_in, c_out))
    taps = kernel.reshape(k, k, c_in, c_out)
    rows = _strips(a, np.empty((n, o_h, o_w // o_g, k, (o_g + k - 1) * c_in)))
    # zeroed off the band
    band = _toeplitz(kernel, np.full((k, o_g + k - 1, c_in, o_g, c_out), np.nan))
    flat_band = band.reshape(-1, o_g * c_out)
    flat_rows = rows.reshape(-1, len(flat_band))
    z = (flat_rows @ flat_band).reshape(n, o_h, o_w, c_out)
    want = sum(view @ taps[i, j] for i, j, view in _taps(a, k))
    np.testing.assert_allclose(z, want, rtol=1e-12, atol=1e-12)
    delta = rng.standard_normal((n, o_h, o_w, c_out))
    # dW: the band of R^T delta summed over output columns x; the tap's patches copy exactly
    d_t = (flat_rows.T @ delta.reshape(-1, o_g * c_out)).reshape(band.shape)
    d_w = _band(d_t).sum(axis=-2).reshape(kernel.shape)
    want = np.stack([np.einsum("nyxc,nyxd->cd", view, delta) for _, _, view in _taps(a, k)])
    np.testing.assert_allclose(d_w, want.reshape(kernel.shape), rtol=1e-12, atol=1e-12)
    patches = np.empty((n, o_h, o_w, k, k, c_in))
    _patches(a, patches)
    windows = sliding_window_view(a, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
    np.testing.assert_array_equal(patches, windows)
    # d a: delta T^T folded back strip by strip, against the taps' scattered products
    d_rows = (delta.reshape(-1, o_g * c_out) @ flat_band.T).reshape(rows.shape)
    d_a = _fold_strips(d_rows, np.full(a.shape, np.nan))
    want = np.zeros(a.shape)
    for i, j, _ in _taps(want, k):
        want[:, i : i + o_h, j : j + o_w] += delta @ taps[i, j].T
    np.testing.assert_allclose(d_a, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("o", "c_out", "o_g"), [(24, 6, 8), (8, 16, 4), (7, 6, 7), (5, 100, 1), (12, 4, 12)]
)
def test_a_strip_has_the_fewest_columns_that_give_48_output_values(o, c_out, o_g):
    assert group_width(o, c_out) == o_g


def test_a_strided_input_gives_the_numbers_of_its_contiguous_copy():
    model = _small("relu")
    rng = np.random.default_rng(7)
    wide = rng.standard_normal((2, 4, 2 * model.n_inputs))
    x, y = wide[..., ::2], rng.integers(0, 3, (2, 4))
    tapped = []
    losses, grads = model.batched_loss_and_grads(
        x, y, tap=lambda i, h, d: tapped.append(h.copy()) if i == 0 else None
    )
    copy_losses, copy_grads = model.batched_loss_and_grads(np.ascontiguousarray(x), y)
    np.testing.assert_array_equal(losses, copy_losses)
    for g, c in zip(grads, copy_grads, strict=True):
        np.testing.assert_array_equal(g, c)
    image = x.reshape(2, 4, 9, 8, 2)
    np.testing.assert_array_equal(tapped[0][:, :, 0, :4], image[:, :, 0, :2].reshape(2, 4, 4))


def test_a_workspace_gains_a_buffer_only_under_the_lock_its_trimming_holds():
    # _workspace sums every thread's workspace (dicts) under the lock; a noise-pass thread
    # adding its first buffers meanwhile made it raise "dictionary changed size during
    # iteration" (seen with two threads, one making new shapes, one trimming)
    model = _small("relu")
    space = model._workspace((3,))
    added = threading.Event()
    adder = threading.Thread(target=lambda: (model._buffer(space, "new", (2,)), added.set()))
    with model._workspaces_lock:
        adder.start()
        assert not added.wait(0.2) and "new" not in space
    adder.join()
    assert space["new"].shape == (2,)


def test_float32_is_the_default_and_close_to_float64():
    rng = np.random.default_rng(6)
    x, y = rng.random((20, 784)), rng.integers(0, 10, 20)
    m32, m64 = CNN(seed=3), CNN(seed=3, dtype=np.float64)
    (l32, g32), (l64, g64) = m32.loss_and_grads(x, y), m64.loss_and_grads(x, y)
    assert all(g.dtype == np.float32 for g in g32 + m32.params)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for a, b in zip(g32, g64, strict=True):
        assert np.linalg.norm(a - b) <= 1e-4 * np.linalg.norm(b)


def test_copy_and_pickle_keep_the_weights_and_same_seed_same_init():
    a, b, c = CNN(seed=4), CNN(seed=4), CNN(seed=5)
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params, strict=True))
    assert not np.array_equal(a.params[0], c.params[0])
    x, y = np.random.default_rng(0).random((3, 784)), np.array([1, 2, 3])
    a.loss_and_grads(x, y)  # buffers made
    for d in (a.copy(), pickle.loads(pickle.dumps(a))):
        assert d.loss_and_grads(x, y)[0] == a.loss_and_grads(x, y)[0]
        d.params[0][0, 0] += 1
        assert d.params[0][0, 0] != a.params[0][0, 0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kernel": 29}, r"--kernel 29 is larger than conv1's 28x28 input .* use --kernel 9 or"),
        ({"kernel": 11}, r"--kernel 11 is larger than conv2's 9x9 input"),
        ({"channels": (6, 0)}, r"--channels must list .* each >= 1, got \[6, 0\]"),
        ({"channels": ()}, r"--channels must list .* got \[\]"),
        ({"kernel": 0}, r"--kernel must be an integer >= 1, got 0"),
        (
            {"image_shape": (5, 5, 1), "channels": (2,)},
            r"conv1's 1x1 output leaves no pixels after 2x2 pooling",
        ),
        ({"channels": (2, 2, 2, 2)}, r"--kernel 5 is larger than conv3's 4x4 input"),
        ({"dense": (0,)}, r"--hidden \(the dense widths\) must be integers >= 1, got \[0\]"),
        ({"activation": "softsign"}, r"activation must be one of"),
    ],
)
def test_bad_geometry_is_one_message_naming_the_setting(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CNN(**kwargs)


@pytest.mark.parametrize(
    ("image", "channels", "kernel"),
    [((28, 28, 1), (6, 16), 29), ((28, 28, 1), (6, 16), 12), ((28, 28, 1), (6, 16), 28),
     ((28, 28, 1), (6, 16, 32), 5), ((32, 32, 3), (6, 16, 32), 5), ((13, 40, 3), (4, 4), 7),
     ((28, 28, 1), (2, 2, 2, 2), 5)],
)  # fmt: skip
def test_the_kernel_a_geometry_error_suggests_is_the_largest_that_fits(image, channels, kernel):
    # the advice was min(H, W) of the failing layer: a kernel that failed again
    with pytest.raises(ValueError, match=r"use --kernel (\d+)") as error:
        cnn_module.conv_geometry(image, channels, kernel)
    largest = int(re.search(r"use --kernel (\d+)", str(error.value)).group(1))
    cnn_module.conv_geometry(image, channels, largest)
    with pytest.raises(ValueError):
        cnn_module.conv_geometry(image, channels, largest + 1)


def test_too_many_conv_layers_for_any_kernel_say_how_many_fit():
    with pytest.raises(ValueError, match=r"use fewer --channels \(a 28x28 image holds 4 conv"):
        cnn_module.conv_geometry((28, 28, 1), (2,) * 5, 1)
    cnn_module.conv_geometry((28, 28, 1), (2,) * 4, 1)


def test_bad_inputs_are_named():
    model = CNN((6, 6, 1), channels=(2,), kernel=3, dense=(4,), n_classes=3)
    with pytest.raises(ValueError, match=r"x must have shape \(n >= 1, 36\), got \(2, 35\)"):
        model.loss_and_grads(np.zeros((2, 35)), np.zeros(2, int))
    with pytest.raises(ValueError, match=r"y must be in \[0, 3\), got values in \[0, 5\]"):
        model.loss_and_grads(np.zeros((2, 36)), np.array([0, 5]))


# -- PyTorch autograd as the oracle (skipped without torch) ------------------------------
def _torch_twin(model: CNN):
    """The same network in PyTorch (NCHW), from model's weights: conv weights (C_out, C_in,
    k, k) from rows (i k + j) C_in + c; the dense layer's inputs from channels-last order."""
    torch = pytest.importorskip("torch")
    k, per = model.kernel, 2 if model.bias else 1
    n_conv = len(model.geometry)
    weights = []
    for layer in range(len(model.layer_names)):
        w = model.params[per * layer]
        if layer < n_conv:
            c_in = model.geometry[layer][2]
            t = w.reshape(k, k, c_in, w.shape[1]).transpose(3, 2, 0, 1)
        else:
            t = w.T
            if layer == n_conv:  # torch flattens (C, H, W); our rows are (H, W, C)
                _, _, _, _, _, c, p_h, p_w = model.geometry[-1]
                t = t.reshape(-1, p_h, p_w, c).transpose(0, 3, 1, 2).reshape(t.shape[0], -1)
        weights.append(torch.tensor(np.ascontiguousarray(t), requires_grad=True))
    biases = [torch.tensor(model.params[per * i + 1], requires_grad=True) if model.bias
              else None for i in range(len(model.layer_names))]  # fmt: skip
    act = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[model.activation]

    def forward(x):
        a = torch.tensor(x).reshape(-1, *model.image_shape).permute(0, 3, 1, 2)
        for layer in range(n_conv):
            a = torch.nn.functional.max_pool2d(
                act(torch.nn.functional.conv2d(a, weights[layer], biases[layer])), 2
            )
        a = a.flatten(1)
        for layer in range(n_conv, len(weights)):
            a = torch.nn.functional.linear(a, weights[layer], biases[layer])
            if layer < len(weights) - 1:
                a = act(a)
        return a

    def to_ours(layer: int, grad):
        g = grad.numpy()
        if layer < n_conv:
            return g.transpose(2, 3, 1, 0).reshape(-1, g.shape[0])
        if layer == n_conv:
            _, _, _, _, _, c, p_h, p_w = model.geometry[-1]
            g = g.reshape(-1, c, p_h, p_w).transpose(0, 2, 3, 1).reshape(g.shape[0], -1)
        return g.T

    params = [p for pair in zip(weights, biases, strict=True) for p in pair if p is not None]
    return torch, forward, params, to_ours


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("values", [1, 9, 48])  # conv1's strips of 1, 3 or 9 columns
def test_minibatch_and_per_example_gradients_match_pytorch_autograd(
    activation, values, monkeypatch
):
    monkeypatch.setattr(cnn_module, "GROUP_VALUES", values)
    model = CNN((12, 11, 2), activation, channels=(3, 4), kernel=3, dense=(6,), n_classes=4,
                bias=True, init="he", dtype=np.float64, seed=7)  # fmt: skip
    for p in model.params[1::2]:
        p[:] = np.random.default_rng(8).normal(0, 0.3, p.shape)
    torch, forward, params, to_ours = _torch_twin(model)
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((10, model.n_inputs)), rng.integers(0, 4, 10)
    loss = torch.nn.functional.cross_entropy(forward(x), torch.tensor(y))
    loss.backward()
    ours_loss, ours = model.loss_and_grads(x, y)
    assert ours_loss == pytest.approx(loss.item(), rel=1e-12)
    per = 2
    for j, (g, p) in enumerate(zip(ours, params, strict=True)):
        want = to_ours(j // per, p.grad) if j % per == 0 else p.grad.numpy()
        np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-14)
    pe = per_example_gradients(model, x, y, coords_per_layer=15, seed=1)
    for e in (0, 4, 9):
        for p in params:
            p.grad = None
        torch.nn.functional.cross_entropy(
            forward(x[e : e + 1]), torch.tensor(y[e : e + 1])
        ).backward()
        own = [to_ours(j // per, p.grad) if j % per == 0 else p.grad.numpy()
               for j, p in enumerate(params)]  # fmt: skip
        want = [own[j].ravel()[i] for j, i in zip(pe.param, pe.index, strict=True)]
        np.testing.assert_allclose(pe.matrix[e], want, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    ("image", "channels", "kernel", "activation"),
    [
        ((32, 32, 3), (6, 16), 5, "relu"),  # CIFAR-10's images, LeNet-5's convolutions
        ((8, 7, 2), (3, 4), 1, "tanh"),  # kernel 1
        ((6, 9, 1), (3,), 5, "sigmoid"),  # the kernel as tall as the image: one output row pair
        ((30, 30, 1), (3, 4, 5), 3, "relu"),  # three conv layers
        ((13, 20, 2), (48, 1), 3, "tanh"),  # strips of 1 column (48 channels), whole rows (1)
    ],
)
def test_geometries_the_drivers_allow_match_pytorch_autograd(image, channels, kernel, activation):
    # found holding by a probe (float64, biases on): every gradient within 4e-15 of autograd,
    # the minibatch axis within 1e-16 of a loop over the minibatches
    model = CNN(image, activation, channels=channels, kernel=kernel, dense=(7,), n_classes=5,
                bias=True, init="he", dtype=np.float64, seed=3)  # fmt: skip
    rng = np.random.default_rng(4)
    for p in model.params[1::2]:
        p[:] = rng.normal(0, 0.3, p.shape)
    torch, forward, params, to_ours = _torch_twin(model)
    x, y = rng.standard_normal((3, 4, model.n_inputs)), rng.integers(0, 5, (3, 4))
    torch.nn.functional.cross_entropy(forward(x[0]), torch.tensor(y[0])).backward()
    _, ours = model.loss_and_grads(x[0], y[0])
    for j, (g, p) in enumerate(zip(ours, params, strict=True)):
        want = to_ours(j // 2, p.grad) if j % 2 == 0 else p.grad.numpy()
        np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-13)
    losses, batched = model.batched_loss_and_grads(x, y)
    for b in range(3):
        loss, each = model.loss_and_grads(x[b], y[b])
        assert losses[b] == pytest.approx(loss, rel=1e-14)
        for g, e in zip(batched, each, strict=True):  # sums in another order: rounding apart
            np.testing.assert_allclose(g[b], e, rtol=1e-12, atol=1e-15)


def test_a_conv_net_run_gives_every_kind_of_row_for_every_layer(few_reps):
    from sgnoise.data import load, subset  # noqa: PLC0415
    from sgnoise.run_config import RunConfig  # noqa: PLC0415
    from sgnoise.training import train_and_measure  # noqa: PLC0415

    config = RunConfig(
        activation="relu", optimizer="sgd", lr=0.1, batch_size=100, epochs=1, seed=0,
        hidden=(20,), model="cnn", channels=(2, 3), kernel=5, checkpoint_every=-1,
        coordinates=12, resampled=8, detail="every", batch_scan=True,
    )  # fmt: skip
    out = train_and_measure(subset(load("mnist10k"), 1200), config)
    layers = ["conv1", "conv2", "dense1", "output", "all"]
    for mode in ("frozen", "resampled", "per_example", "batch_scan"):
        got = {r["layer"] for r in out["records"] if r["mode"] == mode}
        assert got == set(layers), mode
    assert all(r["status"] == "ok" for r in out["records"] if r["mode"] == "frozen")


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_both_networks_train_on_32x32_colour_images_as_cifar10_has(model):
    from sgnoise.data import Dataset  # noqa: PLC0415
    from sgnoise.run_config import RunConfig  # noqa: PLC0415
    from sgnoise.training import train_and_measure  # noqa: PLC0415

    rng = np.random.default_rng(0)
    x_train, x_test = rng.random((300, 3072), np.float32), rng.random((150, 3072), np.float32)
    y_train, y_test = rng.integers(0, 10, 300), rng.integers(0, 10, 150)
    data = Dataset("cifar10", x_train, y_train, x_test, y_test, "random")
    config = RunConfig(activation="tanh", optimizer="sgd", lr=0.05, batch_size=50, epochs=1,
                       seed=0, hidden=(16,), model=model, channels=(4, 8))  # fmt: skip
    out = train_and_measure(data, config)
    first = [p.shape for p in make_model(model, (32, 32, 3), 10, "tanh", hidden=(16,),
                                         channels=(4, 8)).params][0]  # fmt: skip
    assert first == ((3072, 16) if model == "mlp" else (75, 4))  # 5x5 patches of 3 channels
    assert {r["layer"] for r in out["records"]} >= {"all", "output" if model == "cnn" else "layer2"}
    assert not out["run"]["diverged"]


def test_cnn_plateau_image_share_is_zero_for_one_image_and_positive_for_many(monkeypatch):
    """bench/cnn_plateau.py reads every layer's output from the forward pass's blocks (it
    broke when the blocks grew from 3 to 5 entries with the strip lowering): one value per
    conv block, dense layer and the logits, 0 when every image is the same, in (0, 1] else."""
    import importlib.util  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    bench = Path(__file__).resolve().parents[1] / "bench"
    monkeypatch.syspath_prepend(str(bench))
    spec = importlib.util.spec_from_file_location("cnn_plateau", bench / "cnn_plateau.py")
    plateau = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plateau)
    model = _small()
    x = np.random.default_rng(3).standard_normal((6, model.n_inputs))
    shares = plateau.image_share(model, x)
    assert len(shares) == 4 and all(0 < s <= 1 for s in shares)
    same = np.repeat(x[:1], 6, axis=0)
    assert plateau.image_share(model, same) == pytest.approx([0] * 4, abs=1e-12)
