"""End to end through the real drivers' command line, on mnist10k with tiny settings."""

from __future__ import annotations

import ast
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sgnoise.data import DATASETS
from sgnoise.mlp import INITS, LOSSES
from sgnoise.optim import OPTIMIZERS
from sgnoise.results import RECORD_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
# 4,000 training images in 16 minibatches of 250; 1,000 test images in 4; the per-coordinate
# measurement on 20 coordinates a layer from 100 resampled minibatches.
TINY = ["--epochs", "1", "--seeds", "0", "--subset", "4000", "--batch-size", "250",
        "--coordinates", "20", "--resampled", "100"]  # fmt: skip


def run(script, *args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, str(ROOT / script) if "/" not in str(script) else str(script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def strict_json(path):
    def refuse(token):
        raise AssertionError(f"{path} holds the non-standard JSON token {token}")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def epoch_run(tmp_path_factory):
    """One tiny run of the epoch driver: relu and sigmoid, checkpoints every half epoch."""
    cwd = tmp_path_factory.mktemp("epoch")
    args = [*TINY, "--checkpoint-every", "8", "--in-flight", "--workers", "1"]
    out = run("test_epoch_alpha_relu.py", *args, "--run-name", "r1", "--out-root", "out", cwd=cwd)
    assert out.returncode == 0, out.stderr
    return cwd, cwd / "out" / "MNIST_activation" / "r1", out


@pytest.mark.slow
def test_epoch_driver_writes_results_and_plots_into_the_dataset_folder(epoch_run):
    cwd, folder, out = epoch_run
    for name in ("results.json", "results.csv", "noise_samples.npz", "alpha_vs_epoch.png",
                 "alpha_by_layer.png", "training.png", "alpha_in_flight.png",
                 "noise_histogram.png"):  # fmt: skip
        assert (folder / name).stat().st_size > 0, name
        printed = (
            name.endswith((".json", ".csv", ".npz"))
            or f"plot:    {folder.relative_to(cwd)}/{name}" in out.stdout
        )
        assert printed, name
    assert "epochs" in out.stderr and "alpha=" in out.stderr  # the progress bar and its postfix


@pytest.mark.slow
def test_epoch_results_hold_config_provenance_and_every_checkpoint(epoch_run):
    _, folder, _ = epoch_run
    doc = strict_json(folder / "results.json")
    config, prov = doc["config"], doc["provenance"]
    assert config["seeds"] == [0] and config["study"] == "activation"
    assert config["n_train"] == 4000 and config["sizes"] == [784, 100, 10]
    assert prov["numpy"] and prov["command"].startswith("test_epoch_alpha_relu.py")
    frozen = [r for r in doc["records"] if r["mode"] == "frozen"]
    # iteration 0, then every 8 iterations = half an epoch
    assert {(r["iteration"], r["epoch"]) for r in frozen} == {(0, 0.0), (8, 0.5), (16, 1.0)}
    keys = {(r["activation"], r["split"], r["layer"]) for r in frozen}
    assert keys == {(a, s, la) for a in ("relu", "sigmoid") for s in ("train", "test")
                    for la in ("layer1", "layer2", "all")}  # fmt: skip
    for r in frozen:
        if r["layer"] == "all":  # the pooled, paper-compatible estimate
            assert 0 < r["alpha"] <= 2 and math.isfinite(r["alpha_surrogate"])
            assert r["alpha_lo"] < r["alpha"] < r["alpha_hi"]
        assert 0 <= r["test_acc"] <= 1 and r["loss"] > 0 and r["diverged"] is False
    inflight = [r for r in doc["records"] if r["mode"] == "in_flight_row_major"]
    assert [(r["activation"], r["layer"], r["epoch"]) for r in inflight] == [
        ("relu", "layer2", 1.0),
        ("sigmoid", "layer2", 1.0),
    ]


@pytest.mark.slow
def test_csv_is_the_records_table_of_the_json(epoch_run):
    _, folder, _ = epoch_run
    doc = strict_json(folder / "results.json")
    with open(folder / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[: len(RECORD_COLUMNS)] == list(RECORD_COLUMNS)
    assert len(rows) == len(doc["records"])
    for row, record in zip(rows, doc["records"], strict=True):
        assert row["layer"] == record["layer"] and row["split"] == record["split"]
        if record["alpha"] is not None:
            assert float(row["alpha"]) == record["alpha"]


@pytest.mark.slow
def test_a_rerun_never_overwrites(epoch_run):
    cwd, folder, _ = epoch_run
    before = (folder / "results.json").read_bytes()
    again = run("test_epoch_alpha_relu.py", *TINY, "--run-name", "r1", "--out-root", "out",
                cwd=cwd)  # fmt: skip
    assert again.returncode == 1 and "r1 already exists" in again.stderr
    assert "--overwrite" in again.stderr
    assert (folder / "results.json").read_bytes() == before


@pytest.mark.slow
def test_replot_redraws_the_pngs_from_saved_results_alone(epoch_run):
    cwd, folder, _ = epoch_run
    copy = cwd / "copy"
    shutil.copytree(folder, copy)
    for png in copy.glob("*.png"):
        png.unlink()
    out = run("replot.py", str(copy), cwd=cwd)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in copy.glob("*.png")) == sorted(
        p.name for p in folder.glob("*.png")
    )


@pytest.mark.slow
def test_lr_driver_records_a_huge_learning_rate_as_diverged_and_goes_on(tmp_path):
    args = ["--activations", "relu", "--lr-start", "0.05", "--lr-stop", "1e36",
            "--lr-step", "1e36", "--workers", "1"]  # fmt: skip
    out = run("test_lr_alpha.py", *TINY, *args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (folder,) = (tmp_path / "MNIST_lr").iterdir()
    doc = strict_json(folder / "results.json")
    runs = {r["lr"]: r for r in doc["runs"]}
    assert runs[0.05]["diverged"] is False
    assert runs[1e36]["diverged"] is True and runs[1e36]["diverged_iteration"] >= 1
    assert "diverged: relu lr=1e+36" in out.stdout
    # the stable run was measured to the end; no NaN reached the estimator
    assert {r["epoch"] for r in doc["records"] if r["lr"] == 0.05} == {0.0, 1.0}
    assert all(r["diverged"] == (r["lr"] == 1e36) for r in doc["records"])
    # every learning rate starts from the same initialisation: identical iteration-0 numbers
    start = {}
    for r in doc["records"]:
        if r["iteration"] == 0 and r["mode"] == "frozen":
            start.setdefault((r["split"], r["layer"]), set()).add((r["alpha"], r["loss"]))
    assert all(len(values) == 1 for values in start.values())
    for name in ("alpha_vs_lr.png", "training_vs_lr.png", "noise_histogram.png"):
        assert (folder / name).stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--lr-step", "-0.1"], 2, "--lr-step must be > 0, got -0.1"),
        (["--lr-start", "0.5", "--lr-stop", "0.1"], 2, "--lr-start must be <= --lr-stop"),
        (["--dataset", "cifar"], 2, "--dataset must be one of mnist10k, mnist, fashion_mnist"),
        (["--optimizer", "rmsprop"], 2, "--optimizer must be one of"),
        (["--epochs", "0"], 2, "--epochs must be >= 1, got 0"),
        (
            ["--subset", "2000", "--batch-size", "250"],
            2,
            "--batch-size must be at most 1/3 of the test",
        ),
        (["--dataset", "mnist", "--data-dir", "no_such_dir"], 1, "no_such_dir"),
        (["--model", "cnn", "--kernel", "29"], 2, "--kernel 29 is larger than conv1's 28x28"),
        (["--model", "cnn", "--channels", "6", "0"], 2, "--channels must be >= 1, got 0"),
        (["--model", "cnn", "--kernel", "12"], 2, "--kernel 12 is larger than conv2's 8x8"),
        (["--model", "rnn"], 2, "--model must be one of mlp, cnn"),
    ],
)
def test_bad_settings_give_clear_errors_before_any_training(tmp_path, args, status, message):
    out = run("test_lr_alpha.py", *args, cwd=tmp_path)
    assert out.returncode == status and message in out.stderr
    assert not (tmp_path / "MNIST_lr").exists() or not any((tmp_path / "MNIST_lr").iterdir())


def test_a_bad_constant_in_a_driver_is_named_in_the_error(tmp_path):
    source = (ROOT / "test_lr_alpha.py").read_text()
    edited = source.replace("EPOCHS = 5", "EPOCHS = 0")
    assert edited != source
    script = tmp_path / "my_lr_driver.py"
    script.write_text(edited)
    out = run(script, cwd=tmp_path)
    assert out.returncode == 2
    assert (
        "--epochs must be >= 1, got 0 (from the constant EPOCHS in my_lr_driver.py)" in out.stderr
    )


@pytest.mark.parametrize("script", ["test_epoch_alpha_relu.py", "test_lr_alpha.py"])
def test_help_explains_every_constant_of_the_driver(tmp_path, script):
    tree = ast.parse((ROOT / script).read_text())
    names = [
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        for t in (target.elts if isinstance(target, ast.Tuple) else [target])
        if t.id.isupper()
    ]
    assert {"DATASET", "ACTIVATIONS", "EPOCHS", "BATCH_SIZE", "SEEDS", "OPTIMIZER"} <= set(names)
    out = run(script, "--help", cwd=tmp_path)
    assert out.returncode == 0
    for name in names:
        assert "--" + name.lower().replace("_", "-") in out.stdout, name
    assert "(default:" in out.stdout


@pytest.mark.slow
def test_batch_driver_trains_each_b_at_a_fixed_rate_and_a_fixed_ratio_from_one_init(tmp_path):
    args = ["--batch-sizes", "100", "250", "--reference-batch", "100", "--subset", "3000",
            "--epochs", "1", "--seeds", "0", "--activations", "relu", "--workers", "2",
            "--coordinates", "0"]  # fmt: skip
    out = run("test_batch_alpha.py", *args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (folder,) = (tmp_path / "MNIST_batch").iterdir()
    doc = strict_json(folder / "results.json")
    # (0.1, 100) is made by both rules and run once; 0.25 = 0.1 * 250 / 100 keeps eta/b
    assert sorted((r["lr"], r["batch_size"]) for r in doc["runs"]) == [
        (0.1, 100), (0.1, 250), (0.25, 250)
    ]  # fmt: skip
    assert doc["config"]["study"] == "batch" and "batch_size" not in doc["config"]
    start = {}
    for r in doc["records"]:  # one initialisation: iteration 0 is the same network...
        if r["iteration"] == 0 and r["batch_size"] == 250 and r["mode"] == "frozen":  # same b
            start.setdefault((r["split"], r["layer"]), set()).add((r["alpha"], r["loss"]))
    assert all(len(values) == 1 for values in start.values())
    for rule in ("fixed_lr", "fixed_ratio"):
        for name in (f"alpha_vs_batch_{rule}.png", f"training_vs_batch_{rule}.png"):
            assert (folder / name).stat().st_size > 0
    assert "b 250" in out.stdout


@pytest.mark.slow
def test_size_driver_sweeps_width_and_depth_and_draws_both_arms(tmp_path):
    args = ["--widths", "16", "64", "--depths", "1", "3", "--depth-width", "16", "--subset",
            "3000", "--batch-size", "250", "--epochs", "1", "--seeds", "0", "--activations",
            "relu", "--workers", "2", "--coordinates", "20", "--resampled", "100"]  # fmt: skip
    out = run("test_size_alpha.py", *args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (folder,) = (tmp_path / "MNIST_size").iterdir()
    doc = strict_json(folder / "results.json")
    # 784-16-10 is in both arms and run once
    assert [r["hidden"] for r in doc["runs"]] == ["16", "64", "16-16-16"]
    assert doc["config"]["networks"] == [[784, 16, 10], [784, 64, 10], [784, 16, 16, 16, 10]]
    assert doc["config"]["init"] == "he" and "sizes" not in doc["config"]
    layers = {r["hidden"]: {r["layer"] for r in doc["records"]} for r in doc["runs"]}
    assert layers["16-16-16"] == {"layer1", "layer2", "layer3", "layer4", "all"}
    for x in ("width", "depth"):
        for name in (f"alpha_vs_{x}", f"alpha_by_layer_vs_{x}", f"training_vs_{x}",
                     f"per_coordinate_vs_{x}"):  # fmt: skip
            assert (folder / f"{name}.png").stat().st_size > 0, name
    assert "net 16-16-16" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--widths", "0"], "--widths must be >= 1, got 0 (from the command line)"),
        (["--widths", "-5", "32"], "--widths must be >= 1, got -5"),
        (["--depths", "0", "1"], "--depths must be >= 1, got 0"),
        (["--depth-width", "0"], "--depth-width must be >= 1, got 0"),
        (["--hidden", "100"], "--hidden is not a setting of the size study"),
        (["--depths", "1", "80"], "names its run with 345 characters, more than the 237"),
    ],
)
def test_size_driver_refuses_an_empty_network_in_one_line(tmp_path, args, message):
    out = run("test_size_alpha.py", *args, cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_size_driver_refuses_a_network_too_large_for_memory_before_training(tmp_path):
    # 784-500000-10: 397 million parameters, 16 noise rows of them: far beyond 24 GiB
    args = ["--widths", "500000", "--depths", "1", "--epochs", "1", "--seeds", "0"]
    out = run("test_size_alpha.py", *args, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "784-500000-10" in out.stderr and "GiB of memory" in out.stderr
    assert "GiB available: use smaller widths" in out.stderr
    assert not (tmp_path / "MNIST_size").exists()


@pytest.mark.parametrize("script", ["test_epoch_alpha_relu.py", "test_lr_alpha.py",
                                    "test_batch_alpha.py", "test_size_alpha.py"])  # fmt: skip
def test_a_driver_s_constants_name_every_choice_they_accept_in_their_comment(script):
    # INIT's comments named paper, he, lecun but not glorot; the size driver's DATASET not cifar10
    comments = {
        line.split("=", 1)[0].strip(): line.split("#", 1)[1]
        for line in (ROOT / script).read_text().splitlines()
        if line[:1].isupper() and "#" in line
    }
    for name, choices in (("DATASET", DATASETS), ("OPTIMIZER", OPTIMIZERS), ("INIT", INITS),
                          ("LOSS", LOSSES)):  # fmt: skip
        # each as a word: 'he' is in 'the', 'mnist' in 'mnist10k'
        named = set(re.findall(r"\w+", comments[name]))
        assert set(choices) <= named, (name, comments[name])
