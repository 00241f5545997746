"""sgnoise.noise: minibatch gradients, noise, the in-flight recorder."""

from __future__ import annotations

import numpy as np
import pytest

from sgnoise.mlp import MLP
from sgnoise.noise import (
    InFlightNoise,
    full_gradient,
    gradient_noise,
    iterate_minibatches,
    minibatch_gradients,
    n_minibatches,
)


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    model = MLP((12, 8, 6, 4), "sigmoid", bias=True, init_scale=0.5, dtype=np.float64, seed=1)
    return model, rng.standard_normal((60, 12)), rng.integers(0, 4, 60)


def flat(model, grads, layer):
    return np.concatenate([grads[j].ravel() for j in model.layer_params(layer)])


def test_batched_minibatch_gradients_equal_a_loop_of_single_calls(setup):
    model, x, y = setup
    batched = minibatch_gradients(model, x, y, 10)
    for k in range(6):
        _, g = model.loss_and_grads(x[10 * k : 10 * k + 10], y[10 * k : 10 * k + 10])
        for layer in model.layer_names:
            ref = flat(model, g, layer)
            assert np.abs(batched[layer][k] - ref).max() <= 1e-10 * np.abs(ref).max()


def test_minibatch_gradients_average_to_the_full_gradient(setup):
    model, x, y = setup
    full = full_gradient(model, x, y)
    for layer, g in minibatch_gradients(model, x, y, 15).items():
        ref = flat(model, full, layer)
        assert np.abs(g.mean(axis=0) - ref).max() <= 1e-10 * np.abs(ref).max()


def test_noise_has_mean_zero_and_one_row_per_minibatch(setup):
    model, x, y = setup
    noise = gradient_noise(model, x, y, 7)  # 60 // 7 = 8 minibatches, 4 examples dropped
    assert {k: v.shape for k, v in noise.items()} == {
        "layer1": (8, 12 * 8 + 8),
        "layer2": (8, 8 * 6 + 6),
        "layer3": (8, 6 * 4 + 4),
    }
    for g in noise.values():
        assert np.abs(g.mean(axis=0)).max() <= 1e-12


def test_reference_option_subtracts_the_given_gradient(setup):
    model, x, y = setup
    train_full = full_gradient(model, x[:30], y[:30])
    noise = gradient_noise(model, x[30:], y[30:], 10, reference=train_full)
    raw = minibatch_gradients(model, x[30:], y[30:], 10)
    for layer in model.layer_names:
        assert np.allclose(noise[layer], raw[layer] - flat(model, train_full, layer), atol=1e-14)
        assert np.abs(noise[layer].mean(axis=0)).max() > 1e-6  # the generalisation gap shows


def test_layers_option_and_chunking_give_the_same_numbers(setup, monkeypatch):
    model, x, y = setup
    everything = gradient_noise(model, x, y, 10)
    import sgnoise.noise as noise_module

    monkeypatch.setattr(noise_module, "CHUNK_ELEMENTS", 1)  # one minibatch per chunk
    only = gradient_noise(model, x, y, 10, layers=["layer2"])
    assert list(only) == ["layer2"]
    assert np.allclose(only["layer2"], everything["layer2"], atol=1e-14)


def test_in_flight_recorder_subtracts_the_epoch_start_gradient(setup):
    model, x, y = setup
    rec = InFlightNoise(model)
    rec.start(x, y)
    ref = flat(model, full_gradient(model, x, y), "layer3")
    steps = []
    for idx in iterate_minibatches(60, 20, np.random.default_rng(0)):
        _, g = model.loss_and_grads(x[idx], y[idx])
        rec.add(g)
        steps.append(flat(model, g, "layer3") - ref)
        model.params[-2] -= 0.1 * g[-2]
    assert np.allclose(rec.result(), np.stack(steps))


def test_minibatch_iteration_drops_the_incomplete_batch_and_covers_each_index_once():
    batches = list(iterate_minibatches(23, 5, np.random.default_rng(0)))
    assert len(batches) == 4 == n_minibatches(23, 5)
    seen = np.concatenate(batches)
    assert len(np.unique(seen)) == 20


def test_bad_noise_arguments_are_named(setup):
    model, x, y = setup
    with pytest.raises(ValueError, match="batch_size must be in \\[1, n_examples=60\\], got 0"):
        gradient_noise(model, x, y, 0)
    with pytest.raises(ValueError, match="layer must be one of .* got 'layer9'"):
        gradient_noise(model, x, y, 10, layers=["layer9"])
    with pytest.raises(RuntimeError, match="call start"):
        InFlightNoise(model).add([])
