"""sgnoise.noise: minibatch gradients, noise, the in-flight recorder, minibatch iteration."""

from __future__ import annotations

import pickle
import tracemalloc

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import sgnoise.noise as noise_module
from sgnoise import threads
from sgnoise.data import load
from sgnoise.mlp import MLP
from sgnoise.noise import (
    InFlightNoise,
    full_gradient,
    gradient_noise,
    iterate_minibatches,
    minibatch_gradients,
    n_minibatches,
    noise_pass,
    shuffled_minibatches,
)

CONFIGS = [("sigmoid", True, (12, 8, 6, 4)), ("relu", False, (12, 8, 4)), ("tanh", True, (12, 4))]


@pytest.fixture(params=CONFIGS, ids=lambda c: f"{c[0]}-bias{c[1]}-{len(c[2]) - 2}hidden")
def setup(request):
    activation, bias, sizes = request.param
    rng = np.random.default_rng(0)
    model = MLP(sizes, activation, bias=bias, init_scale=0.5, dtype=np.float64, seed=1)
    return model, rng.standard_normal((60, 12)), rng.integers(0, 4, 60)


def flat(model: MLP, grads: list[np.ndarray], layer: str) -> np.ndarray:
    return np.concatenate([grads[j].ravel() for j in model.layer_params(layer)])


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_batched_minibatch_gradients_equal_a_loop_of_single_calls(setup, monkeypatch):
    model, x, y = setup
    monkeypatch.setattr(noise_module, "CHUNK_ELEMENTS", 2 * 10 * sum(model.sizes))  # 2 per chunk
    batched = minibatch_gradients(model, x, y, 10)
    for k in range(6):
        _, g = model.loss_and_grads(x[10 * k : 10 * k + 10], y[10 * k : 10 * k + 10])
        for layer in model.layer_names:
            assert rel_err(batched[layer][k], flat(model, g, layer)) <= 1e-10


@pytest.mark.parametrize("workers", [1, 3])
def test_noise_pass_on_worker_threads_equals_one_thread_to_the_bit(monkeypatch, workers):
    rng = np.random.default_rng(2)
    model = MLP((64, 48, 10), seed=3)  # float32, as in the study
    x, y = rng.random((2000, 64), dtype=np.float32), rng.integers(0, 10, 2000)
    monkeypatch.setattr(threads, "WORKERS", 0)
    with threadpool_limits(1, user_api="blas"):
        alone = noise_pass(model, x, y, 50)
    monkeypatch.setattr(threads, "WORKERS", workers)  # chunks on threads, buffers per thread
    monkeypatch.setattr(threads, "_POOL", [])
    together = noise_pass(model, x, y, 50)
    assert np.array_equal(together.matrix, alone.matrix)
    assert (together.loss, together.accuracy) == (alone.loss, alone.accuracy)
    assert all(np.array_equal(a, b) for a, b in zip(together.gradient, alone.gradient, strict=True))


def test_a_model_pickles_without_its_buffers(setup):
    model, x, y = setup
    model.loss_and_grads(x, y)
    again = pickle.loads(pickle.dumps(model))
    assert again._workspaces == {} and all(
        np.array_equal(a, b) for a, b in zip(again.params, model.params, strict=True)
    )
    assert again.loss_and_grads(x, y)[0] == model.loss_and_grads(x, y)[0]


def test_minibatch_gradients_times_batch_share_sum_to_the_full_gradient(setup):
    model, x, y = setup
    whole = model.loss_and_grads(x, y)[1]  # one pass over all 60 rows
    for layer, g in minibatch_gradients(model, x, y, 15).items():  # 4 minibatches, share 15/60
        assert rel_err((g * (15 / 60)).sum(axis=0), flat(model, whole, layer)) <= 1e-10


def test_full_gradient_in_uneven_chunks_is_exact(setup):
    model, x, y = setup
    whole = model.loss_and_grads(x, y)[1]
    for a, b in zip(full_gradient(model, x, y, batch_size=7), whole, strict=True):  # 8x7 + 4
        assert rel_err(a, b) <= 1e-12


def test_noise_has_mean_zero_and_one_row_per_complete_minibatch(setup):
    model, x, y = setup
    noise = gradient_noise(model, x, y, 7)  # 60 // 7 = 8 minibatches, 4 examples dropped
    sizes, per_bias = model.sizes, int(model.bias)
    expected = {
        f"layer{i + 1}": (8, sizes[i] * sizes[i + 1] + per_bias * sizes[i + 1])
        for i in range(len(sizes) - 1)
    }
    assert {k: v.shape for k, v in noise.items()} == expected
    raw = minibatch_gradients(model, x[:56], y[:56], 7)
    for layer, u in noise.items():
        assert np.abs(u.mean(axis=0)).max() <= 1e-12 * np.abs(raw[layer]).max()
        assert rel_err(u, raw[layer] - raw[layer].mean(axis=0)) <= 1e-12


@pytest.mark.parametrize("n", [60, 56])  # 56 = 8 x 7: nothing dropped; 60: 4 rows dropped
def test_noise_pass_gives_loss_accuracy_and_full_gradient_of_all_rows(setup, n):
    model, x, y = setup
    x, y = x[:n], y[:n]
    measured = noise_pass(model, x, y, 7)
    assert measured.loss == pytest.approx(model.loss(x, y), rel=1e-12)
    assert measured.accuracy == model.accuracy(x, y)
    assert 0 < measured.accuracy < 1  # both kinds of rows occur, so hits are really counted
    for a, b in zip(measured.gradient, model.loss_and_grads(x, y)[1], strict=True):
        assert a.shape == b.shape and rel_err(a, b) <= 1e-12


def test_pooled_matrix_is_the_layers_side_by_side_and_they_are_views_of_it(setup):
    model, x, y = setup
    measured = noise_pass(model, x, y, 10)
    assert np.array_equal(measured.matrix, np.concatenate(list(measured.noise.values()), axis=1))
    assert all(np.shares_memory(u, measured.matrix) for u in measured.noise.values())
    columns = measured.columns
    assert list(columns) == list(measured.noise)
    for layer, cols in columns.items():
        assert np.array_equal(measured.matrix[:, cols], measured.noise[layer])
    assert columns[model.layer_names[-1]].stop == measured.matrix.shape[1]


def test_layers_in_any_order_with_a_reference_give_the_same_noise_and_gradient(setup):
    model, x, y = setup
    reference = full_gradient(model, x[:30], y[:30])
    everything = noise_pass(model, x, y, 10, reference=reference)
    names = model.layer_names[::-1][:2]  # reversed order, and the first layer left out if > 2
    some = noise_pass(model, x, y, 10, reference=reference, layers=names)
    assert list(some.noise) == names
    for name in names:
        assert np.array_equal(some.noise[name], everything.noise[name])
    for j, g in enumerate(some.gradient):
        wanted = any(j in model.layer_params(name) for name in names)
        assert (g is None) != wanted
        assert g is None or np.array_equal(g, everything.gradient[j])


def test_noise_rows_put_weights_row_major_then_biases():
    model = MLP((3, 2), bias=True, dtype=np.float64)
    x, y = np.eye(3), np.array([0, 1, 1])
    g = minibatch_gradients(model, x, y, 1)["layer1"]
    for k in range(3):
        _, (dw, db) = model.loss_and_grads(x[k : k + 1], y[k : k + 1])
        assert np.array_equal(g[k], np.r_[dw[0], dw[1], dw[2], db])


def test_reference_option_subtracts_the_given_train_gradient(setup):
    model, x, y = setup
    train_full = full_gradient(model, x[:30], y[:30])
    noise = gradient_noise(model, x[30:], y[30:], 10, reference=train_full)
    raw = minibatch_gradients(model, x[30:], y[30:], 10)
    for layer in model.layer_names:
        assert rel_err(noise[layer], raw[layer] - flat(model, train_full, layer)) <= 1e-12
        # the mean is no longer zero: it is the generalisation gap (test - train gradient)
        gap = raw[layer].mean(axis=0) - flat(model, train_full, layer)
        assert rel_err(noise[layer].mean(axis=0), gap) <= 1e-10 and np.abs(gap).max() > 1e-3


def test_layers_option_computes_only_the_named_layer_with_the_same_numbers(setup):
    model, x, y = setup
    everything = gradient_noise(model, x, y, 10)
    for layer in model.layer_names:
        only = gradient_noise(model, x, y, 10, layers=[layer])
        assert list(only) == [layer] and np.array_equal(only[layer], everything[layer])


def test_in_flight_recorder_subtracts_the_epoch_start_gradient_of_the_last_layer(setup):
    model, x, y = setup
    last = model.layer_names[-1]
    ref = flat(model, full_gradient(model, x, y), last)
    rec = InFlightNoise()
    rec.start(model, x, y)
    expected = []
    for idx in iterate_minibatches(60, 20, np.random.default_rng(0)):
        _, g = model.loss_and_grads(x[idx], y[idx])
        rec.add(g)
        expected.append(flat(model, g, last) - ref)
        for p, gp in zip(model.params, g, strict=True):  # the weights move during the epoch
            p -= 0.5 * gp
    n_last = sum(model.params[j].size for j in model.layer_params(last))
    assert rec.result().shape == (3, n_last)
    assert np.array_equal(rec.result(), np.stack(expected))
    assert not np.allclose(expected[0], expected[-1])


def test_minibatch_iteration_is_seeded_drops_the_rest_and_covers_each_index_once():
    batches = list(iterate_minibatches(23, 5, np.random.default_rng(0)))
    assert len(batches) == 4 == n_minibatches(23, 5)
    assert all(len(b) == 5 for b in batches)
    assert len(np.unique(np.concatenate(batches))) == 20
    again = list(iterate_minibatches(23, 5, 0))  # an int seed is the same generator
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    other = np.concatenate(list(iterate_minibatches(23, 5, 1)))
    assert not np.array_equal(np.concatenate(batches), other)


def test_shuffled_minibatches_are_the_indexed_minibatches_of_the_same_seed():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((23, 3)).astype(np.float32), rng.integers(0, 4, 23)
    indexed = list(iterate_minibatches(23, 5, 7))
    gathered = [(xb.copy(), yb.copy()) for xb, yb in shuffled_minibatches(x, y, 5, 7)]
    assert len(gathered) == len(indexed) == 4
    for idx, (xb, yb) in zip(indexed, gathered, strict=True):
        assert np.array_equal(xb, x[idx]) and np.array_equal(yb, y[idx])
        assert xb.dtype == x.dtype and yb.dtype == y.dtype


def test_bad_noise_arguments_are_named():
    model = MLP((12, 8, 4), dtype=np.float64)
    x, y = np.zeros((60, 12)), np.zeros(60, int)
    with pytest.raises(
        ValueError, match=r"batch_size must be an integer in \[1, n_examples=60\], got 0$"
    ):
        gradient_noise(model, x, y, 0)
    with pytest.raises(ValueError, match=r"batch_size must be .* got 61"):
        gradient_noise(model, x, y, 61)
    with pytest.raises(ValueError, match=r"batch_size must be .* got 2.5"):
        n_minibatches(60, 2.5)
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1, got 0"):
        full_gradient(model, x, y, batch_size=0)
    with pytest.raises(
        ValueError, match=r"layer must be one of \['layer1', 'layer2'\], got 'layer9'"
    ):
        gradient_noise(model, x, y, 10, layers=["layer9"])
    with pytest.raises(ValueError, match="layers must be a sequence of layer names, got 'layer1'"):
        gradient_noise(model, x, y, 10, layers="layer1")
    with pytest.raises(ValueError, match=r"layers must name at least one of .* got \[\]"):
        gradient_noise(model, x, y, 10, layers=[])
    with pytest.raises(ValueError, match=r"reference must be arrays aligned with model.params"):
        gradient_noise(model, x, y, 10, reference=[np.zeros((12, 8))])
    with pytest.raises(ValueError, match=r"x must have shape \(n >= 1, 12\), got \(60, 11\)"):
        gradient_noise(model, x[:, :11], y, 10)
    with pytest.raises(ValueError, match=r"y must be in \[0, 4\), got values in \[0, 4\]"):
        gradient_noise(model, x, np.r_[y[:-1], 4], 10)
    with pytest.raises(RuntimeError, match=r"call start\(model, x, y\)"):
        InFlightNoise().add([])
    with pytest.raises(RuntimeError, match="no steps were recorded"):
        rec = InFlightNoise()
        rec.start(model, x, y)
        rec.result()


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_noise_pass_of_a_float64_model_does_not_depend_on_the_thread_count(monkeypatch, workers):
    """No block of a single column (numpy would sum it pairwise): the mean, the full
    gradient and the noise are those of the whole matrix, whatever the threads."""
    rng = np.random.default_rng(3)
    model = MLP((5, 2), seed=0, dtype=np.float64)  # 10 + 2 columns: a lone block was possible
    x, y = rng.standard_normal((40, 5)), rng.integers(0, 2, 40)
    monkeypatch.setattr(threads, "WORKERS", 0)
    expected = noise_pass(model, x, y, 4)
    monkeypatch.setattr(threads, "WORKERS", workers)
    got = noise_pass(model, x, y, 4)
    np.testing.assert_array_equal(got.matrix, expected.matrix)
    for a, b in zip(got.gradient, expected.gradient, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_the_noise_pass_of_a_2048_wide_layer_holds_the_noise_and_a_bounded_rest(monkeypatch):
    # Beyond its (K, n_params) result, a pass holds a few vectors of n_params (mean, full
    # gradient) and chunks of at most CHUNK_ELEMENTS activations per thread, whatever K.
    monkeypatch.setattr(noise_module, "CHUNK_ELEMENTS", 2**20)
    d = load("mnist10k")
    model = MLP((784, 2048, 10), init="he", seed=0)
    n_params = sum(p.size for p in model.params)
    bound = 8 * 4 * n_params + 4 * (threads.WORKERS + 1) * 4 * noise_module.CHUNK_ELEMENTS
    extra = []
    for rows in (2000, 4000):  # K = 16 and 32 minibatches of 125
        tracemalloc.start()
        try:
            matrix = noise_pass(model, d.x_train[:rows], d.y_train[:rows], 125).matrix
            extra.append(tracemalloc.get_traced_memory()[1] - matrix.nbytes)
        finally:
            tracemalloc.stop()
        del matrix
    assert max(extra) <= bound, (extra, bound)
    assert extra[1] - extra[0] <= 4 * 4 * noise_module.CHUNK_ELEMENTS, extra  # not with K
