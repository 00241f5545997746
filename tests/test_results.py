"""Run folders, provenance, strict JSON and CSV (sgnoise.results)."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gc
import json
import math
import multiprocessing
import re
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from sgnoise import results

CONFIG = {"study": "lr", "dataset": "mnist10k", "seeds": (0, 1), "lr_step": 0.01}


def _records():
    base = {"study": "lr", "dataset": "mnist10k", "activation": "relu", "optimizer": "sgd"}
    return [
        {**base, "lr": 0.1, "seed": 0, "epoch": 0.0, "split": "train", "layer": "all",
         "alpha": np.float32(1.25), "n_samples": np.int64(1000), "diverged": False},
        {**base, "lr": 5.0, "seed": 0, "epoch": 1.5, "split": "test", "layer": "layer2",
         "alpha": float("nan"), "alpha_hi": float("inf"), "loss": -float("inf"),
         "diverged": True, "diverged_iteration": 7, "alpha_shuffled": 1.9},
    ]  # fmt: skip


RUNS = [{"activation": "relu", "lr": 5.0, "seed": 0, "diverged": True, "diverged_iteration": 7}]


def test_default_run_folders_are_new_each_time_even_within_one_second(tmp_path, monkeypatch):
    # Freeze the clock: on a busy machine three calls can straddle a second boundary.
    frozen = dt.datetime(2026, 12, 6, 3, 0, 0)
    clock = type("Frozen", (), {"now": staticmethod(lambda: frozen)})
    monkeypatch.setattr(results, "dt", type("Dt", (), {"datetime": clock}))
    folders = [results.new_run_dir(tmp_path / "MNIST_lr") for _ in range(3)]
    assert len(set(folders)) == 3 and all(f.is_dir() for f in folders)
    assert re.fullmatch(r"run-\d{8}-\d{6}", folders[0].name)
    assert {f.name.removeprefix(folders[0].name) for f in folders} <= {"", "-2", "-3", "-4"}


def test_named_run_folder_is_refused_if_it_exists_unless_overwrite(tmp_path):
    folder = results.new_run_dir(tmp_path, "mine")
    results.save_results(folder, CONFIG, _records(), RUNS)
    (folder / "old_plot.png").write_bytes(b"png")
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="mine already exists.*--overwrite"):
        results.new_run_dir(tmp_path, "mine")
    assert (folder / "results.json").is_file()  # untouched by the refusal
    again = results.new_run_dir(tmp_path, "mine", overwrite=True)
    assert again == folder
    # sgnoise's own outputs are cleared (no stale plot survives); the user's file stays
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def _claim(root, names, start, out):
    """In a child process: wait for the start, make every named (or generated) run folder,
    report what it got: the folder, or the one-line refusal."""
    got = []
    start.wait()
    for name in names:
        try:
            got.append(str(results.new_run_dir(root, name)))
        except FileExistsError as err:
            got.append(f"refused: {err}")
    out.put(got)


@pytest.mark.parametrize("generated", [False, True], ids=["given-names", "generated-names"])
def test_two_jobs_making_run_folders_at_once_never_get_the_same_folder(tmp_path, generated):
    # as a job array started with one --run-name: the check and the mkdir are one step
    context = multiprocessing.get_context("fork")
    start, out = context.Barrier(2), context.Queue()
    names = [None] * 40 if generated else [f"r{i}" for i in range(100)]
    jobs = [context.Process(target=_claim, args=(tmp_path, names, start, out)) for _ in "ab"]
    for job in jobs:
        job.start()
    one, other = out.get(timeout=60), out.get(timeout=60)
    for job in jobs:
        job.join(timeout=60)
    made = [f for f in one + other if not f.startswith("refused")]
    assert len(made) == len(set(made)) == (80 if generated else 100)
    refusals = [f for f in one + other if f.startswith("refused")]
    assert len(refusals) == (0 if generated else 100)
    assert all("already exists (made by an earlier run, or by another job" in r for r in refusals)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../up", " ", " lead", "trail "])
def test_run_name_must_be_a_plain_folder_name(tmp_path, name):
    with pytest.raises(ValueError, match="plain folder name"):
        results.new_run_dir(tmp_path, name)


def _strict_json(text):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_json_is_strict_nan_and_inf_become_null_and_come_back_as_nan(tmp_path):
    path = results.save_results(tmp_path, CONFIG, _records(), RUNS)
    doc = _strict_json(path.read_text())
    assert list(doc) == ["config", "provenance", "records", "runs"]
    row = doc["records"][1]
    assert row["alpha"] is None and row["alpha_hi"] is None and row["loss"] is None
    assert doc["config"]["seeds"] == [0, 1] and doc["runs"] == RUNS
    loaded = results.load_results(tmp_path)
    first, second = loaded["records"]
    assert first["alpha"] == pytest.approx(1.25) and first["n_samples"] == 1000
    assert math.isnan(second["alpha"]) and math.isnan(second["alpha_hi"])
    assert second["diverged"] is True and second["diverged_iteration"] == 7
    assert not list(tmp_path.glob("*.tmp"))


def test_every_record_has_every_column_in_json_and_csv(tmp_path):
    results.save_results(tmp_path, CONFIG, _records(), RUNS)
    doc = _strict_json((tmp_path / "results.json").read_text())
    columns = [*results.RECORD_COLUMNS, "alpha_shuffled"]
    assert all(list(r) == columns for r in doc["records"])
    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == columns and len(rows) == 1 + len(doc["records"])
    for line, record in zip(rows[1:], doc["records"], strict=True):
        for cell, value in zip(line, record.values(), strict=True):
            assert cell == ("" if value is None else str(value))


def test_record_table_columns_include_every_summarise_noise_key():
    from sgnoise.tail_index import summarise_noise

    keys = summarise_noise(np.random.default_rng(0).standard_normal((20, 50)))
    assert set(keys) == set(results.ALPHA_COLUMNS)
    assert set(results.ALPHA_COLUMNS) <= set(results.RECORD_COLUMNS)


def test_provenance_names_versions_platform_command_and_times(tmp_path):
    import datetime as dt

    import numpy
    import scipy

    started = dt.datetime(2026, 1, 2, 3, 4, 5).astimezone()
    prov = results.provenance(started)
    for key in ("sgnoise", "python", "matplotlib", "joblib", "tqdm", "platform", "command",
                "blas", "cpu_count", "git_commit", "git_dirty"):  # fmt: skip
        assert key in prov
    assert prov["numpy"] == numpy.__version__ and prov["scipy"] == scipy.__version__
    assert prov["started"].startswith("2026-01-02T03:04:05")
    assert prov["finished"] > prov["started"]


def test_provenance_git_commit_is_the_checkout_head():
    root = Path(results.__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
        )
    except OSError:
        pytest.skip("git is not installed")
    if head.returncode != 0 or not (root / ".git").exists():
        pytest.skip("sgnoise does not run from a git checkout")
    prov = results.provenance()
    assert prov["git_commit"] == head.stdout.strip()
    assert isinstance(prov["git_dirty"], bool)


def test_provenance_records_the_git_state_the_run_started_from(monkeypatch):
    """A commit landing while a run runs: the commit it started from is its git_commit, and
    the state at the end is kept beside it (only when it differs)."""
    now = {"git_commit": "b" * 40, "git_dirty": False}
    monkeypatch.setattr(results, "git_state", lambda: dict(now))
    start = {"git_commit": "a" * 40, "git_dirty": False}
    prov = results.provenance(git=start)
    assert prov["git_commit"] == "a" * 40 and prov["git_at_finish"] == now
    assert "git_at_finish" not in results.provenance(git=now)
    assert results.provenance()["git_commit"] == "b" * 40


def test_provenance_without_git_says_unknown_instead_of_failing(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    prov = results.provenance()
    assert prov["git_commit"] is None and prov["git_dirty"] is None


def test_load_results_names_the_missing_or_foreign_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="results.json not found"):
        results.load_results(tmp_path)
    (tmp_path / "results.json").write_text('{"records": []}')
    with pytest.raises(ValueError, match=r"not an sgnoise results file.*config"):
        results.load_results(tmp_path)
    # a file given as the folder (findings.py, replot.py on .../results.csv): was the bare
    # "[Errno 20] Not a directory: '.../results.csv/results.json'"
    (tmp_path / "results.csv").write_text("study,mode\n")
    with pytest.raises(FileNotFoundError, match=r"results.csv/results.json not found: is .*"
                       r"results.csv a run folder\?"):  # fmt: skip
        results.load_results(tmp_path / "results.csv")


def test_noise_samples_round_trip_flattened(tmp_path):
    noise = np.arange(12, dtype=np.float32).reshape(3, 4)
    results.save_noise_samples(tmp_path, {"relu_layer2": noise})
    back = results.load_noise_samples(tmp_path)
    np.testing.assert_array_equal(back["relu_layer2"], noise.ravel())
    assert results.load_noise_samples(tmp_path / "nothing") == {}


def test_no_committed_results_file_holds_a_path_of_the_machine_that_made_it():
    root = Path(__file__).resolve().parents[1]
    found = sorted(root.glob("*_*/reference/results.json"))
    assert len(found) >= 5

    def strings(value):
        if isinstance(value, dict):
            yield from (s for v in value.values() for s in strings(v))
        elif isinstance(value, list):
            yield from (s for v in value for s in strings(v))
        elif isinstance(value, str):
            yield value

    for path in found:
        doc = json.loads(path.read_text())
        absolute = [s for s in strings({k: doc[k] for k in ("config", "provenance")})
                    if s.startswith(("/", "~")) or ":\\\\" in s]  # fmt: skip
        assert not absolute, (path, absolute)


def test_every_reader_of_a_damaged_npz_closes_its_file(tmp_path):
    """np.load(path) leaves the file open when the archive is damaged; the ResourceWarning
    of that file, at a later garbage collection, failed whichever test ran then."""
    from sgnoise import analyse, calibration, data

    path = tmp_path / results.NOISE_SAMPLES
    path.write_bytes(b"PK\x03\x04" + b"not a zip archive" * 10)  # a zip's magic, then junk
    readers = {
        "load_noise_samples": lambda: results.load_noise_samples(tmp_path),
        "analyse names": lambda: analyse._names(path),
        "analyse member": lambda: analyse._npz_member(path, None),
        "calibration cache": lambda: calibration._cached(path, {}),
        "keras npz": lambda: data._load_npz(path, None),
    }
    for name, read in readers.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            with contextlib.suppress(Exception):
                read()
            gc.collect()
        unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
        assert not unclosed, f"{name} left {path.name} open: {unclosed[0].message}"
