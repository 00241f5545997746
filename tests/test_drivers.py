"""End to end through the real drivers' command line, on mnist10k with tiny settings."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--seeds", "0", "--subset", "2000", "--batch-size", "250"]


def run(script, *args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_epoch_driver_writes_results_plots_and_never_overwrites(tmp_path):
    first = run("test_epoch_alpha_relu.py", *TINY, "--run-name", "r1", "--in-flight", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "MNIST_activation" / "r1"
    for name in ("results.json", "results.csv", "alpha_vs_epoch.png", "noise_samples.npz"):
        assert (folder / name).stat().st_size > 0
    doc = json.loads((folder / "results.json").read_text())
    assert doc["config"]["seeds"] == [0] and doc["provenance"]["numpy"]
    frozen = [r for r in doc["records"] if r["mode"] == "frozen"]
    assert {r["epoch"] for r in frozen} == {0.0, 1.0}
    for r in frozen:
        if r["split"] == "train" and r["layer"] == "all":
            assert 0 < r["alpha"] < 2 and math.isfinite(r["alpha_surrogate"])
    assert any(r["mode"] == "in_flight_row_major" for r in doc["records"])
    again = run("test_epoch_alpha_relu.py", *TINY, "--run-name", "r1", cwd=tmp_path)
    assert again.returncode != 0 and "already exists" in again.stderr


def test_lr_driver_records_a_huge_learning_rate_as_diverged(tmp_path):
    out = run(
        "test_lr_alpha.py",
        *TINY,
        "--activations",
        "relu",
        "--lr-start",
        "0.05",
        "--lr-stop",
        "1e36",
        "--lr-step",
        "1e36",
        "--workers",
        "1",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    (folder,) = (tmp_path / "MNIST_lr").iterdir()
    doc = json.loads((folder / "results.json").read_text())
    diverged = {r["lr"]: r["diverged"] for r in doc["runs"]}
    assert diverged == {0.05: False, 1e36: True}
    assert (folder / "alpha_vs_lr.png").stat().st_size > 0
    assert all(r["alpha"] is None or r["alpha"] > 0 for r in doc["records"])
    assert "diverged: relu lr=1e+36" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr-step", "-0.1"], "--lr-step must be > 0, got -0.1"),
        (["--lr-start", "0.5", "--lr-stop", "0.1"], "--lr-start must be <= --lr-stop"),
        (["--dataset", "cifar"], "--dataset must be one of mnist10k, mnist, fashion_mnist"),
        (["--optimizer", "rmsprop"], "--optimizer must be one of"),
        (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    ],
)
def test_bad_settings_give_clear_errors(tmp_path, args, message):
    out = run("test_lr_alpha.py", *args, cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr


def test_help_explains_every_constant(tmp_path):
    out = run("test_lr_alpha.py", "--help", cwd=tmp_path)
    for flag in (
        "--dataset",
        "--lr-start",
        "--lr-stop",
        "--lr-step",
        "--epochs",
        "--seeds",
        "--optimizer",
        "--workers",
        "--batch-size",
        "--overwrite",
    ):
        assert flag in out.stdout


def test_lr_grid_includes_both_ends_without_float_noise():
    from sgnoise.cli import lr_grid

    grid = lr_grid(0.001, 0.1, 0.005)
    assert grid[0] == 0.001 and grid[-1] == 0.1 and grid[3] == 0.016
    assert lr_grid(0.001, 0.1, 0.011)[-1] == 0.1
