"""The table of studies: each row's runs, grids, plots and output folders.

(That the shipped drivers declare exactly their row's defaults is checked in
tests/test_settings.py.)
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from sgnoise import plots, settings
from sgnoise.data import DATASETS, IMAGE_SHAPES, Dataset
from sgnoise.results import RECORD_COLUMNS
from sgnoise.run_config import RunConfig
from sgnoise.studies import STUDIES, lr_grid

ROOT = Path(__file__).resolve().parent.parent


def key(run) -> tuple:
    """What tells a run from the others: (activation, learning rate, batch size, seed)."""
    return run.activation, run.lr, run.batch_size, run.seed


@pytest.mark.parametrize("name", STUDIES)
def test_each_row_is_named_by_its_key_and_its_defaults_make_valid_settings(name):
    study = STUDIES[name]
    assert study.name == name
    s = settings.make(name)
    assert dict(s) == {n.lower(): v for n, v in study.defaults.items()}


@pytest.mark.parametrize("name", STUDIES)
def test_each_row_sweeps_a_record_column_and_names_a_plot_function(name):
    study = STUDIES[name]
    run = RunConfig(activation="relu", optimizer="sgd", lr=0.1, batch_size=1, epochs=1, seed=0,
                    hidden=(1,))  # fmt: skip
    # every record has the RECORD_COLUMNS and its run's meta() (the network: hidden)
    assert study.sweeps == "epoch" or study.sweeps in {*RECORD_COLUMNS, *run.meta()}
    assert callable(getattr(plots, study.plots))


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("activation", {"activations": ("relu", "tanh", "sigmoid"), "seeds": (3, 1)}),
        ("lr", {"lr_start": 0.01, "lr_stop": 0.05, "lr_step": 0.02, "seeds": (0, 1)}),
        ("batch", {"batch_sizes": (32, 96), "reference_batch": 32, "seeds": (7,)}),
    ],
)
def test_runs_are_every_activation_grid_point_and_seed_in_that_order(name, changes):
    study = STUDIES[name]
    s = settings.make(name, **changes)
    runs = study.runs(s)
    expected = [
        (a, lr, b, seed)
        for a, (lr, b), seed in itertools.product(s.activations, study.grid(s), s.seeds)
    ]
    assert [key(r) for r in runs] == expected
    assert len(set(expected)) == len(expected)
    for run in runs:
        assert run.epochs == s.epochs and run.optimizer == s.optimizer
        assert run.hidden == tuple(s.hidden) and run.coordinates == s.coordinates
    assert study.batch_sizes(s) == sorted({b for _, _, b, _ in expected})


def test_the_activation_study_runs_one_rate_at_one_batch_size():
    s = settings.make("activation", lr=0.05, batch_size=250)
    assert STUDIES["activation"].grid(s) == [(0.05, 250)]


def test_the_lr_study_grid_is_start_to_stop_by_step_at_the_batch_size():
    s = settings.make("lr")
    expected = [0.001, 0.011, 0.021, 0.031, 0.041, 0.051, 0.061, 0.071, 0.081, 0.091, 0.1]
    assert STUDIES["lr"].grid(s) == [(lr, 500) for lr in expected]
    assert len(STUDIES["lr"].runs(s)) == 2 * 11 * 3  # MNIST_lr/README.md: 66 runs


def test_the_batch_study_grid_is_every_b_at_a_fixed_rate_then_at_a_fixed_ratio():
    s = settings.make("batch")
    fixed_lr = [(0.1, 64), (0.1, 128), (0.1, 256), (0.1, 512)]
    fixed_ratio = [(0.05, 64), (0.2, 256), (0.4, 512)]  # b = 128 is already run, at 0.1
    assert STUDIES["batch"].grid(s) == fixed_lr + fixed_ratio
    for lr, b in fixed_ratio:
        assert lr / b == pytest.approx(s.lr / s.reference_batch, rel=1e-12)


def test_rates_that_collapse_to_one_name_are_refused_with_the_fix():
    s = settings.make("lr", lr_start=0.1, lr_stop=0.1000000000001, lr_step=1e-14)
    with pytest.raises(ValueError, match="widen the learning-rate step"):
        STUDIES["lr"].runs(s)


@pytest.mark.parametrize(
    ("study", "changes", "fits", "fix"),
    [  # 784-128x80-10 and 784-2048x50-10 refused, 784-128x40-10 and 784-2048x40-10 allowed
        ("size", {"depths": (1, 80)}, {"depths": (1, 40)}, "(--depths, --depth-width, --widths)"),
        ("activation", {"hidden": (2048,) * 50}, {"hidden": (2048,) * 40}, "(--hidden)"),
    ],
)
def test_a_network_whose_run_name_no_file_can_hold_is_refused_before_training(
    study, changes, fits, fix
):
    # it trained, then could not be saved (runs/<key>.json: 'File name too long', exit 1)
    s = settings.make(study, changes)
    with pytest.raises(ValueError, match="names its run with") as err:
        STUDIES[study].runs(s)
    assert fix in str(err.value) and "\n" not in str(err.value)
    assert len(str(err.value)) < 400  # one line, not the network's 80 widths
    assert all(len(c.key) <= 237 for c in STUDIES[study].runs(settings.make(study, fits)))


def test_the_histogram_shows_per_activation_the_first_seed_s_largest_rate_that_did_not_diverge():
    study = STUDIES["lr"]
    runs = study.runs(settings.make("lr", lr_start=0.01, lr_stop=0.03, lr_step=0.01, seeds=(1, 0)))
    diverged = [r.lr == 0.03 and r.activation == "relu" for r in runs]
    shown = [key(runs[i]) for i in study.histogram_runs(runs, diverged)]
    assert shown == [("relu", 0.02, 500, 1), ("sigmoid", 0.03, 500, 1)]
    every_relu_diverged = [r.activation == "relu" for r in runs]
    shown = [key(runs[i]) for i in study.histogram_runs(runs, every_relu_diverged)]
    assert shown == [("sigmoid", 0.03, 500, 1)]


def _display_name(dataset: str) -> str:
    x = np.zeros((1, int(np.prod(IMAGE_SHAPES[dataset]))), np.float32)
    y = np.zeros(1, np.int64)
    return Dataset(dataset, x, y, x, y, source="test").display_name


def test_output_folders_are_named_dataset_then_study():
    assert {d: _display_name(d) for d in DATASETS} == {
        "mnist10k": "MNIST",
        "mnist": "MNIST",
        "fashion_mnist": "FashionMNIST",
        "cifar10": "CIFAR10",
    }
    committed = sorted(p.parent.parent for p in ROOT.glob("*_*/reference/results.json"))
    assert len(committed) >= len(STUDIES)
    for folder in committed:
        config = json.loads((folder / "reference" / "results.json").read_text())["config"]
        assert folder.name == f"{_display_name(config['dataset'])}_{config['study']}"
    assert {f.name.split("_", 1)[1] for f in committed} == set(STUDIES)


def test_lr_grid_includes_both_ends_and_has_no_float_noise():
    # 0.001, 0.006, ..., 0.096 on the grid, then the stop 0.1 off the grid
    expected = [(1 + 5 * i) / 1000 for i in range(20)] + [0.1]
    assert lr_grid(0.001, 0.1, 0.005) == expected
    assert lr_grid(0.1, 0.3, 0.1) == [0.1, 0.2, 0.3]  # not 0.30000000000000004
    assert lr_grid(0.001, 0.1, 0.011)[-2:] == [0.089, 0.1]
    assert lr_grid(0.05, 0.05, 0.01) == [0.05]
    assert lr_grid(0.05, 1e36, 1e36) == [0.05, 1e36]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.0, 0.1, 0.01), "--lr-start must be > 0, got 0.0"),
        ((0.1, 0.01, 0.01), "--lr-start must be <= --lr-stop"),
        ((0.01, 0.1, -0.01), "--lr-step must be > 0, got -0.01"),
        ((0.01, float("inf"), 0.01), "--lr-stop must be > 0, got inf"),
    ],
)
def test_lr_grid_rejects_bad_bounds(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        lr_grid(*args)
