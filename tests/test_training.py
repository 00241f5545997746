"""sgnoise.training: one run's records, checkpoints, divergence and failure, from a RunConfig."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sgnoise.data import prepare
from sgnoise.results import FROZEN, IN_FLIGHT, PER_EXAMPLE, RESAMPLED
from sgnoise.run_config import RUN_KEYS, RunConfig
from sgnoise.training import HISTOGRAM_SAMPLES, failed_result, train_and_measure

#: A tiny run: 784-8-10 on 1,200 images, 12 minibatches of 100 an epoch.
TINY = RunConfig(
    activation="relu", optimizer="sgd", lr=0.1, batch_size=100, epochs=2, seed=3, hidden=(8,)
)


def tiny_with(**changes) -> RunConfig:
    return dataclasses.replace(TINY, **changes)


@pytest.fixture(scope="module", autouse=True)
def _few_reps(few_reps):
    """Calibration curves of 4 matrices per alpha (tests/conftest.py): fast tests."""


@pytest.fixture(scope="module")
def data():
    return prepare("mnist10k", None, 1200, 100)


@pytest.fixture(scope="module")
def tiny(data):
    return train_and_measure(data, TINY)


def test_a_run_measures_every_epoch_each_split_and_layer_and_names_itself(tiny):
    frozen = [r for r in tiny["records"] if r["mode"] == FROZEN]
    assert {(r["epoch"], r["iteration"]) for r in frozen} == {(0.0, 0), (1.0, 12), (2.0, 24)}
    assert len(frozen) == 3 * 2 * 3  # checkpoints x splits x (layer1, layer2, all)
    assert {(r["split"], r["layer"]) for r in frozen} == {
        (split, layer) for split in ("train", "test") for layer in ("layer1", "layer2", "all")
    }
    assert all(r[k] == getattr(TINY, k) for r in tiny["records"] for k in RUN_KEYS)
    assert all(np.isfinite(r["alpha"]) and r["diverged"] is False for r in frozen)
    run = tiny["run"]
    assert not run["diverged"] and run["reason"] == ""
    assert run["noise_sample"]["key"] == "relu_h8_lr0.1_b100_seed3_layer2" == f"{TINY.key}_layer2"
    assert run["noise_sample"]["epoch"] == 2.0
    assert 0 < tiny["noise_sample"].size <= HISTOGRAM_SAMPLES


def test_the_loss_falls_and_runs_differing_only_in_lr_start_from_the_same_weights(data, tiny):
    def first(out):
        return {(r["split"], r["layer"]): r for r in out["records"] if r["iteration"] == 0}

    slower = first(train_and_measure(data, tiny_with(lr=0.01, epochs=1)))
    columns = ("alpha", "alpha_lo", "alpha_hi", "alpha_std", "loss", "train_acc", "test_acc")
    for key, row in first(tiny).items():
        assert [slower[key][c] for c in columns] == [row[c] for c in columns]
    train_all = [r for r in tiny["records"] if (r["split"], r["layer"]) == ("train", "all")]
    assert train_all[-1]["loss"] < train_all[0]["loss"]


def test_checkpoint_every_k_iterations_and_the_in_flight_rows(data):
    out = train_and_measure(data, tiny_with(checkpoint_every=5, in_flight=True))
    iterations = sorted({r["iteration"] for r in out["records"] if r["mode"] == FROZEN})
    assert iterations == [0, 5, 10, 15, 20, 24]  # and the last one
    in_flight = [r for r in out["records"] if r["mode"] == IN_FLIGHT]
    assert [r["epoch"] for r in in_flight] == [1.0, 2.0]
    assert all(r["layer"] == "layer2" and np.isfinite(r["alpha_shuffled"]) for r in in_flight)


def test_the_per_coordinate_measurement_runs_at_the_ends_only(data):
    config = tiny_with(epochs=4, coordinates=10, resampled=50, detail="ends")
    out = train_and_measure(data, config)
    detailed = {r["epoch"] for r in out["records"] if r["mode"] in (RESAMPLED, PER_EXAMPLE)}
    assert detailed == {0.0, 2.0, 4.0}


def test_a_diverging_run_stops_at_once_and_says_where(data):
    calls = []
    out = train_and_measure(data, tiny_with(lr=1e36), progress=calls.append)
    run = out["run"]
    at = run["diverged_iteration"]
    assert run["diverged"] and at <= 2 and run["diverged_epoch"] == at / 12
    assert "NaN/inf" in run["reason"] and "lr=1e+36" in run["reason"]
    assert {r["iteration"] for r in out["records"]} == {0}  # nothing non-finite measured
    assert all(r["diverged"] and r["diverged_iteration"] == at for r in out["records"])
    assert calls == [{"epoch": 1, "loss": calls[0]["loss"], "alpha": calls[0]["alpha"],
                      "diverged": True}]  # fmt: skip


def test_a_failed_run_keeps_its_name_the_error_and_the_traceback():
    try:
        raise MemoryError("simulated")
    except MemoryError as err:
        out = failed_result(TINY, err)
    assert out["records"] == [] and out["noise_sample"].size == 0
    run = out["run"]
    assert {k: run[k] for k in (*RUN_KEYS, "hidden")} == TINY.meta() and run["hidden"] == "8"
    assert run["failed"] and run["reason"] == "MemoryError: simulated"
    assert "Traceback" in run["traceback"]


def test_a_run_config_is_frozen_and_holds_its_hidden_widths_as_a_tuple():
    config = dataclasses.replace(TINY, hidden=[16, 8])
    assert config.hidden == (16, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 0.2
