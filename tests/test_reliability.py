"""Nothing lost: bad inputs and faults, each with the message the user sees and what is kept.

Every test states the fault, asserts the one-line message (what, which file, what to do)
and that the runs already computed are still there. The table of docs/reliability.md
lists them.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _helpers import child_pids, pid_alive

from sgnoise import plots, results, settings, sweep
from sgnoise.results import COMPLETE, DEGENERATE, FAILED, INTERRUPTED

ROOT = Path(__file__).resolve().parents[1]
REAL_OPEN = open
#: 3,000 training images in 12 minibatches of 250, 750 test images in 3, the per-coordinate
#: measurement on 20 coordinates a layer from 100 resampled minibatches: a run takes ~0.5 s.
TINY = {"subset": 3000, "batch_size": 250, "epochs": 1, "seeds": (0,), "workers": 1,
        "coordinates": 20, "resampled": 100}  # fmt: skip


def lr_settings(tmp_path: Path, **values) -> settings.Settings:
    """Two runs (relu at lr 0.05 and 0.1) of the learning-rate study, saved under tmp_path."""
    base = {**TINY, "activations": ("relu",), "lr_start": 0.05, "lr_stop": 0.1,
            "lr_step": 0.05, "out_root": str(tmp_path), "run_name": "r"}  # fmt: skip
    return settings.make("lr", {**base, **values})


def folder_of(tmp_path: Path) -> Path:
    return tmp_path / "MNIST_lr" / "r"


def records_without_time(folder: Path) -> list[dict]:
    doc = results.load_results(folder)
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in doc["records"]]


def assert_same_records(one: Path, other: Path) -> None:
    """Every record equal, NaN included, but the elapsed time."""
    np.testing.assert_equal(records_without_time(one), records_without_time(other))


@pytest.fixture
def no_plots():
    """Sweeps that draw no PNGs, for the tests that check none: a tiny sweep's plots cost
    more than its runs (they are tested in test_plots.py and test_drivers.py). Its own
    patch: a test's ``monkeypatch.undo()`` keeps it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "draw_study", lambda study, results, folder, pool=None: [])
        yield


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def interrupt_after(n: int, monkeypatch) -> None:
    """Make the sweep receive SIGTERM after its n-th run finished (as a scheduler would)."""
    real = sweep.execute

    def execute(*args, **kwargs):
        for i, item in enumerate(real(*args, **kwargs)):
            if i == n:
                raise sweep.Interrupted(signal.SIGTERM)
            yield item

    monkeypatch.setattr(sweep, "execute", execute)


# --- runs that fail: the sweep goes on -------------------------------------------------------


@pytest.mark.slow
def test_degenerate_noise_mid_sweep_is_recorded_with_its_reason_and_the_sweep_goes_on(tmp_path):
    # lr 1e4 kills every ReLU: the noise is exactly zero, which no stable law describes
    s = lr_settings(tmp_path, lr_start=0.05, lr_stop=1e4, lr_step=1e4)
    folder = sweep.run(s, echo=lambda _: None)
    doc = results.load_results(folder)
    bad = [r for r in doc["records"] if r["lr"] == 1e4 and r["status"] == DEGENERATE]
    good = [r for r in doc["records"] if r["lr"] == 0.05 and r["mode"] == "frozen"]
    assert bad and all(np.isnan(r["alpha"]) for r in bad)
    assert "all 78400 coordinates are constant across minibatches" in bad[0]["reason"]
    assert all(r["status"] == "ok" and np.isfinite(r["alpha"]) for r in good)
    assert (folder / "alpha_vs_lr.png").stat().st_size > 0
    assert results.read_status(folder)["state"] == COMPLETE


def test_noise_the_estimator_refuses_is_recorded_with_the_estimator_s_message(
    tmp_path, capsys, no_plots
):
    # lr 30 at batch 200 (the case): the ReLU noise of the test split is mostly
    # exact zeros after one epoch; the estimator raises, the run and the sweep go on
    s = settings.make("activation", {**TINY, "batch_size": 200, "subset": 4000, "lr": 30.0,
                      "activations": ("relu", "sigmoid"), "out_root": str(tmp_path)})  # fmt: skip
    folder = sweep.run(s, echo=lambda _: None)
    bad = [r for r in results.load_results(folder)["records"] if r["status"] == DEGENERATE]
    assert bad and {r["activation"] for r in bad} == {"relu"}
    assert any("the data look discrete" in r["reason"] for r in bad)
    assert "degenerate noise: relu lr=30 b=200 seed=0" in capsys.readouterr().out
    assert results.read_status(folder)["state"] == COMPLETE


def test_divergence_in_one_of_several_runs_keeps_the_others(tmp_path, no_plots):
    s = lr_settings(tmp_path, lr_start=0.05, lr_stop=1e36, lr_step=1e36)
    folder = sweep.run(s, echo=lambda _: None)
    runs = {r["lr"]: r for r in results.load_results(folder)["runs"]}
    assert runs[1e36]["diverged"] and "NaN/inf" in runs[1e36]["reason"]
    assert not runs[0.05]["diverged"]
    epochs = {r["epoch"] for r in results.load_results(folder)["records"] if r["lr"] == 0.05}
    assert epochs == {0.0, 1.0}


def test_a_run_that_raises_is_recorded_as_failed_the_rest_kept_and_resume_reruns_it(
    tmp_path, monkeypatch, capsys, no_plots
):
    real = sweep.train_and_measure

    def flaky(data, config, **kwargs):
        if config.lr == 0.1:
            raise MemoryError("simulated: out of memory in one run")
        return real(data, config, **kwargs)

    monkeypatch.setattr(sweep, "train_and_measure", flaky)
    with pytest.raises(sweep.SweepError, match=r"1 of 2 runs failed \(relu_h100_lr0.1_b250_seed0"):
        sweep.run(lr_settings(tmp_path), echo=lambda _: None)
    folder = folder_of(tmp_path)
    runs = {r["lr"]: r for r in results.load_results(folder)["runs"]}  # nothing lost
    assert runs[0.1]["failed"] and "MemoryError: simulated" in runs[0.1]["reason"]
    assert "Traceback" in runs[0.1]["traceback"]
    assert {r["lr"] for r in results.load_results(folder)["records"]} == {0.05}
    assert "failed:   relu lr=0.1 b=250 seed=0: MemoryError" in capsys.readouterr().err
    assert results.read_status(folder)["state"] == FAILED
    monkeypatch.undo()  # the cause fixed: --resume reruns the failed run only
    sweep.run(settings.make("lr", {"resume": str(folder)}), echo=lambda _: None)
    assert {r["lr"] for r in results.load_results(folder)["records"]} == {0.05, 0.1}
    assert results.read_status(folder)["state"] == COMPLETE


def test_a_resume_of_a_folder_from_another_version_is_refused(tmp_path, monkeypatch, capsys):
    interrupt_after(1, monkeypatch)
    with pytest.raises(sweep.Interrupted):
        sweep.run(lr_settings(tmp_path), echo=lambda _: None)
    path = folder_of(tmp_path) / "status.json"
    status = json.loads(path.read_text())
    del status["settings"]["coordinates"]  # as a folder from before that setting existed
    path.write_text(json.dumps(status))
    line = resume_error(tmp_path, folder_of(tmp_path), capsys)
    assert "was written by another version of sgnoise (settings coordinates differ)" in line


def test_runs_whose_rates_agree_to_12_digits_are_a_bad_setting_refused_before_anything_is_made(
    tmp_path,
):
    s = lr_settings(tmp_path, lr_start=0.1, lr_stop=0.1000000000001, lr_step=1e-14)
    with pytest.raises(sweep.BadSetting, match="runs must differ"):  # exit 2, as bad settings
        sweep.run(s, echo=lambda _: None)
    assert not (tmp_path / "MNIST_lr").exists()


# --- interruptions and resume --------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_mid_sweep_keeps_finished_runs_marks_the_folder_and_resume_completes_it(
    tmp_path, monkeypatch, no_plots
):
    s = lr_settings(tmp_path, lr_stop=0.15)  # three runs
    interrupt_after(1, monkeypatch)
    messages = []
    with pytest.raises(sweep.Interrupted):
        sweep.run(s, echo=messages.append)
    folder = folder_of(tmp_path)
    state = results.read_status(folder)
    assert state["state"] == INTERRUPTED and state["done"] == 1 and len(state["missing"]) == 2
    assert "stopped by SIGTERM" in state["message"]
    assert f"finish with: --resume {folder}" in messages[-1]
    assert len(list((folder / "runs").glob("*.json"))) == 1
    assert not (folder / "results.json").exists()
    monkeypatch.undo()
    resumed = sweep.run(settings.make("lr", {"resume": str(folder)}), echo=messages.append)
    assert resumed == folder and "1 of 3 runs already in" in " ".join(messages)
    assert results.read_status(folder)["state"] == COMPLETE and not (folder / "runs").exists()
    whole = sweep.run(s.replace(run_name="whole"), echo=lambda _: None)
    assert_same_records(folder, whole)


def test_replot_of_an_interrupted_folder_says_so_and_how_to_finish(tmp_path, monkeypatch, capsys):
    interrupt_after(1, monkeypatch)
    with pytest.raises(sweep.Interrupted):
        sweep.run(lr_settings(tmp_path), echo=lambda _: None)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        plots.replot([str(folder_of(tmp_path))])
    assert exit_info.value.code == 1
    line = one_line(capsys.readouterr().err)
    assert "the run is interrupted (1 run(s) missing); finish it with --resume" in line


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_real_signal_stops_workers_removes_shared_data_and_exits_128_plus_signal(tmp_path, sig):
    # workers 2: pool processes, the data memory-mapped in /dev/shm (or the temp dir); 6 runs
    # of 2 epochs on 3,000 images, no per-coordinate part: the signal comes when the first is
    # saved, 2 are running
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    args = ["--epochs", "2", "--subset", "3000", "--batch-size", "250", "--seeds", "0", "1",
            "2", "--coordinates", "0", "--workers", "2", "--out-root", "out",
            "--run-name", "r"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "test_epoch_alpha_relu.py"), *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    runs = tmp_path / "out" / "MNIST_activation" / "r" / "runs"
    children: set[int] = set()
    shared: set[str] = set()  # the driver's memory-mapped copy of the data
    deadline = time.monotonic() + 120
    while not list(runs.glob("*.json")) and time.monotonic() < deadline:
        children |= child_pids(proc.pid)
        shared |= _mapped_data_folders(proc.pid)
        time.sleep(0.05)
    children |= child_pids(proc.pid)
    assert children and shared, "no worker processes or shared data seen"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert f"interrupted by {signal.Signals(sig).name}" in out
    state = results.read_status(runs.parent)
    assert state["state"] == INTERRUPTED and state["done"] >= 1 and state["missing"]
    assert len(list(runs.glob("*.json"))) == state["done"]  # every finished run kept
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in children if pid_alive(p)], "worker processes left running"
    assert not [f for f in shared if os.path.exists(f)], "shared data left behind"
    if os.path.isdir("/dev/shm"):  # files that carry the driver's pid (sgnoise-data-<pid>-*)
        tags = (f"_{proc.pid}_", f"-{proc.pid}-")
        assert not [n for n in os.listdir("/dev/shm") if any(t in n for t in tags)]


def _mapped_data_folders(pid: int) -> set[str]:
    """Folders of the sgnoise-data-* files that process pid has memory-mapped."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return set()
    return {
        os.path.dirname(line.split()[-1]) for line in maps.splitlines() if "sgnoise-data-" in line
    }


def resume_error(tmp_path: Path, folder, capsys, argv=()) -> str:
    """The one line ``python test_lr_alpha.py --resume FOLDER`` exits with."""
    with pytest.raises(SystemExit) as exit_info:
        sweep.main("lr", {"__file__": "test_lr_alpha.py"}, ["--resume", str(folder), *argv])
    return one_line(exit_info.value.code)


def test_resume_of_a_missing_folder_names_it(tmp_path, capsys):
    line = resume_error(tmp_path, tmp_path / "nope", capsys)
    assert "nope is not a folder: give a run folder to --resume" in line


def test_resume_of_a_folder_without_status_names_the_file(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    line = resume_error(tmp_path, tmp_path / "x", capsys)
    assert "status.json not found" in line and "not a run folder" in line


def test_resume_of_a_damaged_status_file_names_it(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "status.json").write_text('{"study": "lr", "sett')
    line = resume_error(tmp_path, tmp_path / "x", capsys)
    assert "status.json is damaged" in line


def test_resume_of_a_complete_run_says_there_is_nothing_to_do(tmp_path, capsys, no_plots):
    folder = sweep.run(lr_settings(tmp_path), echo=lambda _: None)
    assert "is complete: nothing to resume" in resume_error(tmp_path, folder, capsys)


def test_resume_with_a_changed_setting_names_it(tmp_path, monkeypatch, capsys):
    interrupt_after(1, monkeypatch)
    with pytest.raises(sweep.Interrupted):
        sweep.run(lr_settings(tmp_path), echo=lambda _: None)
    line = resume_error(tmp_path, folder_of(tmp_path), capsys, argv=["--epochs", "3"])
    assert "--epochs 3 (saved: --epochs 1)" in line and "keeps its saved settings" in line


@pytest.fixture(scope="module")
def interrupted_in_flight(tmp_path_factory) -> Path:
    """An lr study folder interrupted after its first run, saved with --in-flight."""
    tmp = tmp_path_factory.mktemp("interrupted")
    with pytest.MonkeyPatch.context() as patch:
        interrupt_after(1, patch)
        with pytest.raises(sweep.Interrupted):
            sweep.run(lr_settings(tmp, in_flight=True), echo=lambda _: None)
    return folder_of(tmp)


@pytest.mark.parametrize(
    "argv",
    [
        ["--seeds", "0", "1", "2"],
        ["--epochs", "5"],
        ["--subset", "0"],
        ["--batch-size", "500"],
        ["--lr-step", "0.01"],
        ["--no-in-flight"],
    ],  # fmt: skip
)
def test_resume_with_a_flag_at_its_default_value_but_not_the_saved_one_is_refused(
    tmp_path, interrupted_in_flight, capsys, argv
):
    # each value is the lr study's default; the folder was saved with others
    line = resume_error(tmp_path, interrupted_in_flight, capsys, argv=argv)
    assert f"{' '.join(argv)} (saved: " in line and "keeps its saved settings" in line


def test_resume_with_flags_equal_to_the_saved_values_or_locations_goes_on(
    tmp_path, monkeypatch, no_plots
):
    interrupt_after(1, monkeypatch)
    with pytest.raises(sweep.Interrupted):
        sweep.run(lr_settings(tmp_path), echo=lambda _: None)
    monkeypatch.undo()
    argv = ["--resume", str(folder_of(tmp_path)), "--epochs", "1", "--workers", "2"]
    assert sweep.main("lr", {}, argv) == folder_of(tmp_path)


def test_resume_with_another_study_s_driver_is_refused(tmp_path, monkeypatch, capsys):
    interrupt_after(1, monkeypatch)
    with pytest.raises(sweep.Interrupted):
        sweep.run(lr_settings(tmp_path), echo=lambda _: None)
    with pytest.raises(SystemExit) as exit_info:
        sweep.main("activation", {}, ["--resume", str(folder_of(tmp_path))])
    assert "holds a lr study, not activation" in str(exit_info.value.code)
    with pytest.raises(SystemExit) as exit_info:
        sweep.main("lr", {}, ["--resume", str(_activation_folder(tmp_path))])
    assert "holds an activation study, not lr" in str(exit_info.value.code)


def _activation_folder(tmp_path: Path) -> Path:
    """A folder whose status says: an activation study, interrupted."""
    folder = tmp_path / "act"
    folder.mkdir()
    results.write_status(folder, study="activation", settings={}, runs=[], state=INTERRUPTED,
                         done=0, missing=[], message="")  # fmt: skip
    return folder


def test_resume_with_a_damaged_saved_run_names_the_file_and_the_fix(tmp_path, monkeypatch):
    interrupt_after(1, monkeypatch)
    with pytest.raises(sweep.Interrupted):
        sweep.run(lr_settings(tmp_path), echo=lambda _: None)
    (saved,) = (folder_of(tmp_path) / "runs").glob("*.npy")
    saved.write_bytes(saved.read_bytes()[:40])
    with pytest.raises(SystemExit) as exit_info:
        sweep.main("lr", {}, ["--resume", str(folder_of(tmp_path))])
    assert f"{saved} is damaged" in str(exit_info.value.code)
    assert "delete it to rerun that run" in str(exit_info.value.code)


# --- a full disk ----------------------------------------------------------------------------


def _full_disk_on(name: str, monkeypatch) -> None:
    """Writing a file called ``name`` fails as on a full disk (ENOSPC)."""
    real = results.atomic_write

    def write(path, data):
        if Path(path).name == name:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(results, "atomic_write", write)


def test_a_full_disk_while_writing_results_keeps_every_run_and_resume_finishes(
    tmp_path, monkeypatch, no_plots
):
    _full_disk_on(results.RESULTS_CSV, monkeypatch)
    with pytest.raises(sweep.SweepError) as error:
        sweep.run(lr_settings(tmp_path), echo=lambda _: None)
    folder = folder_of(tmp_path)
    assert "No space left on device" in str(error.value)
    assert f"every run is saved there: free space and finish with --resume {folder}" in str(
        error.value
    )
    assert results.read_status(folder)["state"] == FAILED
    assert len(list((folder / "runs").glob("*.json"))) == 2
    assert not list(folder.glob(".*.tmp")) and not (folder / "results.csv").exists()
    monkeypatch.undo()
    sweep.run(settings.make("lr", {"resume": str(folder)}), echo=lambda _: None)
    assert results.read_status(folder)["state"] == COMPLETE


def test_a_full_disk_while_saving_a_run_keeps_the_runs_before_it(tmp_path, monkeypatch, no_plots):
    real = results.save_run
    calls = []

    def save_run(folder, key, out):
        calls.append(key)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(folder, key, out)

    monkeypatch.setattr(results, "save_run", save_run)
    with pytest.raises(sweep.SweepError, match="1 of 2 runs are saved there: free space"):
        sweep.run(lr_settings(tmp_path), echo=lambda _: None)
    assert results.read_status(folder_of(tmp_path))["state"] == FAILED


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    path.write_text("old")

    class FullFile:
        def __init__(self, *args, **kwargs):
            self.f = REAL_OPEN(*args, **kwargs)  # noqa: SIM115

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("builtins.open", FullFile)
    with pytest.raises(OSError, match="No space left"):
        results.atomic_write(path, "new contents")
    monkeypatch.undo()
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


# --- damaged run folders ------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory) -> Path:
    """A complete lr study folder, without its PNGs (a replot draws them)."""
    tmp = tmp_path_factory.mktemp("saved")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "draw_study", lambda study, results, folder, pool=None: [])
        return sweep.run(lr_settings(tmp), echo=lambda _: None)


def damaged_copy(saved_folder: Path, tmp_path: Path, name: str, contents: bytes) -> Path:
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in saved_folder.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    (copy / name).write_bytes(contents)
    return copy


@pytest.mark.parametrize(
    ("name", "contents", "message"),
    [
        ("results.json", b'{"con\x01fig": 1}', "results.json is damaged (Invalid control"),
        ("results.json", b'{"config": {}, "records": [', "results.json is damaged (Expecting"),
        ("results.json", b"", "results.json is damaged"),
        ("results.json", b"\xff\xfe", "results.json is damaged"),
        ("results.json", b'{"config": {}}', "is not an sgnoise results file: missing"),
        ("noise_samples.npz", b"PK\x03\x04 truncated", "noise_samples.npz is damaged"),
    ],
)
def test_replot_of_a_damaged_file_names_it_in_one_line(
    saved_folder, tmp_path, capsys, name, contents, message
):
    copy = damaged_copy(saved_folder, tmp_path, name, contents)
    with pytest.raises(SystemExit) as exit_info:
        plots.replot([str(copy)])
    assert exit_info.value.code == 1
    line = one_line(capsys.readouterr().err)
    assert message in line and str(copy / name) in line


@pytest.mark.parametrize(
    ("cut", "message"),
    [(0.5, "is damaged"), (0.0, "is damaged (No columns")],
)
def test_results_load_of_a_truncated_csv_names_the_file(saved_folder, tmp_path, cut, message):
    pytest.importorskip("pandas")
    text = (saved_folder / "results.csv").read_bytes()
    copy = damaged_copy(saved_folder, tmp_path, "results.csv", text[: int(len(text) * cut)])
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as error:
        results.load(copy)
    assert str(copy / "results.csv") in str(error.value)


def test_replot_of_a_folder_that_is_not_a_run_names_it(tmp_path, capsys):
    with pytest.raises(SystemExit):
        plots.replot([str(tmp_path)])
    assert "results.json not found: is" in one_line(capsys.readouterr().err)


# --- data files ---------------------------------------------------------------------------


def _idx_folder(folder: Path) -> None:
    """The four MNIST IDX files, made from the embedded sample (not the real training set)."""
    from test_data import write_idx_folder  # noqa: PLC0415  (tests/ is on sys.path)

    write_idx_folder(folder, n_train=900, n_test=300)


def data_error(tmp_path: Path, capsys, data_dir: Path) -> str:
    out_root = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        sweep.main("lr", {}, ["--dataset", "mnist", "--data-dir", str(data_dir), "--out-root",
                              str(out_root), "--batch-size", "50"])  # fmt: skip
    assert not out_root.exists()  # nothing made before the data are good
    return one_line(exit_info.value.code)


def test_a_missing_data_folder_is_named_and_nothing_is_made(tmp_path, capsys):
    assert "nowhere" in data_error(tmp_path, capsys, tmp_path / "nowhere")


def test_a_data_file_with_a_wrong_hash_is_named_with_the_fix(tmp_path, capsys):
    _idx_folder(tmp_path / "d")  # random images under the real files' names
    line = data_error(tmp_path, capsys, tmp_path / "d")
    assert "train-images-idx3-ubyte.gz: SHA-256" in line and "replace it with a fresh copy" in line


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("train-images-idx3-ubyte.gz", lambda raw: raw[:100] + b"\0" * 64 + raw[164:]),
        ("train-images-idx3-ubyte.gz", lambda raw: raw[:30]),
        ("train-images-idx3-ubyte.gz", lambda raw: gzip.decompress(raw)[:1000]),
    ],
    ids=["corrupt", "truncated", "not-gzip"],
)
def test_a_corrupt_or_truncated_data_file_is_named(tmp_path, capsys, name, damage):
    _idx_folder(tmp_path / "d")
    path = tmp_path / "d" / name
    path.write_bytes(damage(path.read_bytes()))
    assert name in data_error(tmp_path, capsys, tmp_path / "d")


# --- the same numbers whatever the parallelism ---------------------------------------------


@pytest.mark.slow
def test_workers_1_and_2_give_identical_results_files(tmp_path, no_plots):
    one = sweep.run(lr_settings(tmp_path, run_name="w1", workers=1), echo=lambda _: None)
    two = sweep.run(lr_settings(tmp_path, run_name="w2", workers=2), echo=lambda _: None)
    assert_same_records(one, two)
    a, b = (json.loads((f / "results.json").read_text())["runs"] for f in (one, two))
    assert a == b


# --- killed processes: a worker, the driver ------------------------------------------------


def _pool_workers(pid: int) -> set[int]:
    """The sgnoise.pool worker processes of process pid."""
    found = set()
    for child in child_pids(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(child)
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_worker_killed_by_sigkill_fails_its_run_only_and_resume_reruns_it(
    tmp_path, capsys, no_plots
):
    killed: list[int] = []

    def kill_one_busy_worker() -> None:  # as the out-of-memory killer would
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for pid in _pool_workers(os.getpid()):
                time.sleep(0.5)  # holding its run by now
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_one_busy_worker, daemon=True)
    watcher.start()
    s = lr_settings(tmp_path, lr_stop=0.2, workers=2)  # four runs on two workers
    with pytest.raises(sweep.SweepError) as error:
        sweep.run(s, echo=lambda _: None)
    watcher.join()
    folder = folder_of(tmp_path)
    assert killed and "1 of 4 runs failed" in str(error.value)
    assert f"rerun the failed ones with --resume {folder}" in str(error.value)
    status = results.read_status(folder)
    assert status["state"] == FAILED and status["done"] == 3 and len(status["missing"]) == 1
    (failed,) = [r for r in results.load_results(folder)["runs"] if r.get("failed")]
    assert failed["reason"].startswith(
        "WorkerDied: worker killed by signal 9 (SIGKILL), likely out of memory; last seen using "
    )
    assert f"failed:   relu lr={failed['lr']:g}" in capsys.readouterr().err
    assert {r["lr"] for r in results.load_results(folder)["records"]} == {
        0.05, 0.1, 0.15, 0.2} - {failed["lr"]}  # fmt: skip
    sweep.run(settings.make("lr", {"resume": str(folder)}), echo=lambda _: None)
    assert results.read_status(folder)["state"] == COMPLETE
    assert not _pool_workers(os.getpid())  # the sweep's workers went with it


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_driver_killed_by_sigkill_leaves_no_worker_and_the_next_run_clears_its_data(
    tmp_path, no_plots
):
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    args = ["--seeds", "0", "1", "--workers", "2", "--subset", "3000", "--batch-size", "250",
            "--epochs", "1", "--coordinates", "0", "--out-root", "out",
            "--run-name", "r"]  # fmt: skip
    driver = subprocess.Popen(
        [sys.executable, str(ROOT / "test_epoch_alpha_relu.py"), *args],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    folder = tmp_path / "out" / "MNIST_activation" / "r"
    workers: set[int] = set()
    shared: set[str] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        workers |= _pool_workers(driver.pid)
        shared |= _mapped_data_folders(driver.pid)
        with contextlib.suppress(OSError, ValueError):
            if results.read_status(folder)["done"] >= 1:
                break
        time.sleep(0.05)
    driver.kill()  # kill -9: nothing of the driver's own runs
    # Not reaped yet: while the dead driver is a zombie its pid counts as alive, so a sweep
    # another test process starts meanwhile (pytest -n 2) leaves its data to this test.
    died = time.monotonic()
    while pid_alive(driver.pid) and time.monotonic() < died + 10:
        time.sleep(0.01)
    assert workers and shared, "no worker processes or shared data seen"
    while any(pid_alive(p) for p in workers) and time.monotonic() < died + 10:
        time.sleep(0.1)
    assert not [p for p in workers if pid_alive(p)], "workers outlived their driver by 10 s"
    status = results.read_status(folder)  # rewritten at each saved run
    assert status["state"] == "running" and status["done"] >= 1
    assert len(list((folder / "runs").glob("*.json"))) - status["done"] in (0, 1)
    assert all(os.path.isdir(f) for f in shared)  # SIGKILL leaves the data in memory...
    driver.wait()  # reaped: its pid is gone, and the next sweep (here) clears its data
    parent = Path(next(iter(shared))).parent
    alive = parent / f"sgnoise-data-{os.getpid()}-kept"  # ... and a live driver's stays
    alive.mkdir()
    try:
        assert sweep.main("activation", {}, ["--resume", str(folder)]) == folder
        assert not [f for f in shared if os.path.exists(f)], "the dead driver's data stayed"
        assert alive.is_dir()
    finally:
        alive.rmdir()
    assert results.read_status(folder)["state"] == COMPLETE


def test_a_plot_that_fails_keeps_every_run_says_so_in_one_line_and_in_the_status(
    tmp_path, monkeypatch
):
    def broken(study, results, folder, pool=None):
        raise ValueError("Data has no positive values, and therefore cannot be log-scaled.")

    monkeypatch.setattr(plots, "draw_study", broken)
    with pytest.raises(SystemExit) as exit_info:
        sweep.main("lr", {}, ["--subset", "3000", "--batch-size", "250", "--epochs", "1",
                              "--seeds", "0", "--coordinates", "0", "--activations", "relu",
                              "--lr-start", "0.05", "--lr-stop", "0.1", "--lr-step", "0.05",
                              "--workers", "1", "--out-root", str(tmp_path),
                              "--run-name", "r"])  # fmt: skip
    line = one_line(exit_info.value.code)
    folder = folder_of(tmp_path)
    assert f"the results are saved in {folder}; the plots could not be drawn (ValueError: " in line
    assert f"redraw them with: python replot.py {folder}" in line
    assert len(results.load_results(folder)["runs"]) == 2 and (folder / "results.csv").is_file()
    status = results.read_status(folder)
    assert status["state"] == COMPLETE and "the plots could not be drawn" in status["message"]


def test_a_read_only_output_folder_names_the_fix(tmp_path, monkeypatch):
    def read_only(root, name=None, *, overwrite=False):
        raise OSError(errno.EROFS, "Read-only file system", str(root))

    monkeypatch.setattr(results, "new_run_dir", read_only)
    with pytest.raises(sweep.SweepError) as error:
        sweep.run(lr_settings(tmp_path), echo=lambda _: None)
    assert "(Read-only file system): choose a folder you can write to with --out-root" in str(
        error.value
    )


def test_the_fault_inventory_states_how_many_faults_it_lists():
    text = (ROOT / "docs" / "reliability.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert f"The table lists {len(rows) - 1} faults" in text  # less the header row
