"""sgnoise.sweep with ``--backend dask``: a real ``distributed.LocalCluster`` of 2 processes.

The same results as the local backend to the last digit, a killed worker's run
rerun (or recorded as failed, naming the run), nothing finished lost, SIGTERM
closing what the sweep started, and dask never imported on the default path.

No test waits for a nanny to restart a killed worker (under load that once took over
300 s, or never happened): the test that kills a worker of the shared cluster is its
last user, the one that lets a run fail starts a cluster of its own.
"""

from __future__ import annotations

import csv
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402  (after the skip: dask comes with distributed)
import psutil  # noqa: E402  (a dependency of distributed)

from sgnoise import plots, results, settings, sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# 3,000 training images in 12 minibatches of 250, one epoch, one seed; the per-coordinate
# measurement on 20 coordinates a layer from 100 resampled minibatches.
TINY = {"subset": 3000, "batch_size": 250, "epochs": 1, "seeds": (0,), "coordinates": 20,
        "resampled": 100}  # fmt: skip
# 2 activations x 2 learning rates: 4 runs, 2 per worker.
SWEEP = settings.make("lr", lr_start=0.05, lr_stop=0.1, lr_step=0.05, **TINY)


@pytest.fixture(scope="module", autouse=True)
def no_plots():
    """Sweeps without their plots (drawn from the saved results; tested elsewhere): faster."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "draw_study", lambda study, results, folder, pool=None: [])
        yield


def local_cluster() -> distributed.LocalCluster:
    """Two single-threaded worker processes, as ``--backend dask`` starts them."""
    return distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )


@pytest.fixture(scope="module")
def cluster():
    with local_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster) as client:
        yield client


@pytest.fixture
def workers(client):
    """Both workers' pids by address (none was killed yet: see the module's docstring)."""
    client.wait_for_workers(2, timeout=60)
    return client.run(os.getpid)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The sweep run here, one run after the other: the reference."""
    return sweep.run(
        SWEEP.replace(workers=1, out_root=str(tmp_path_factory.mktemp("local"))), echo=print
    )


def records(folder: Path) -> list[dict[str, str]]:
    """results.csv without the elapsed_s column (the only one that may differ)."""
    with open(folder / results.RESULTS_CSV, newline="") as f:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in csv.DictReader(f)]


def on_dask(cluster: distributed.LocalCluster, tmp_path: Path) -> Path:
    """The sweep as tasks on ``cluster``."""
    s = SWEEP.replace(backend="dask", scheduler=cluster.scheduler_address, out_root=str(tmp_path))
    return sweep.run(s, echo=print)


def kill_a_busy_worker(client, pids: dict[str, int], killed: list) -> threading.Thread:
    """A thread that SIGKILLs the first worker seen holding a run; its (worker, runs) go in
    ``killed``."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for address, keys in client.processing().items():
                if any(str(k).startswith("_one_run") for k in keys):
                    os.kill(pids[address], signal.SIGKILL)
                    killed.append((address, keys))
                    return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_the_dask_backend_writes_the_results_csv_of_the_local_backend(cluster, local, tmp_path):
    folder = on_dask(cluster, tmp_path)
    frozen = [r for r in records(local) if r["mode"] == "frozen"]
    assert records(folder) == records(local) and len(frozen) == 4 * 2 * 2 * 3
    with np.load(folder / "noise_samples.npz") as a, np.load(local / "noise_samples.npz") as b:
        assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    doc = json.loads((folder / results.RESULTS_JSON).read_text())
    assert doc["provenance"]["backend"] == "dask"
    assert "backend" not in doc["config"] and "scheduler" not in doc["config"]  # LOCATION


def cannot_run(*args):
    """A task that fails outside the run's own error handling, as on a worker without sgnoise."""
    raise ModuleNotFoundError("No module named 'sgnoise'")


@pytest.mark.slow
def test_a_task_failing_on_the_cluster_stops_the_sweep_and_resume_finishes_it_on_any_backend(
    cluster, workers, local, tmp_path, monkeypatch
):
    monkeypatch.setattr(sweep, "_one_run", cannot_run)
    with pytest.raises(sweep.SweepError) as err:
        on_dask(cluster, tmp_path)
    (folder,) = (tmp_path / "MNIST_lr").iterdir()
    assert re.match(
        r"run (relu|sigmoid)_h100_lr0\.\d+_b250_seed0 failed on the dask cluster, "
        r"not in its own code: ",
        str(err.value),
    )
    assert "ModuleNotFoundError: No module named 'sgnoise'" in str(err.value)
    assert str(err.value).endswith(f"0 of 4 runs are saved in {folder}: fix the cluster and "
                                   f"finish with --resume {folder}")  # fmt: skip
    assert results.read_status(folder)["state"] == results.FAILED
    monkeypatch.undo()  # the cluster fixed; the backend is free to change on --resume
    resume = settings.make("lr", resume=str(folder), backend="local", workers=1)
    assert sweep.run(resume, echo=print) == folder and records(folder) == records(local)


@pytest.mark.slow
def test_the_scheduler_defaults_to_dask_s_scheduler_address_setting(cluster, workers, monkeypatch):
    # $DASK_SCHEDULER_ADDRESS sets dask's "scheduler-address"; no LocalCluster is started then.
    monkeypatch.setattr(distributed, "LocalCluster", None)
    s = settings.make("activation", backend="dask", **TINY)
    with dask.config.set({"scheduler-address": cluster.scheduler_address}):
        on_cluster = sweep.compute(s)
    here = sweep.compute(s.replace(backend="local", workers=1))
    assert on_cluster["runs"] == here["runs"]
    drop = [{k: v for k, v in r.items() if k != "elapsed_s"} for r in here["records"]]
    np.testing.assert_equal(
        [{k: v for k, v in r.items() if k != "elapsed_s"} for r in on_cluster["records"]], drop
    )


def test_an_unreachable_scheduler_is_a_sweep_error_that_names_it(tmp_path):
    s = SWEEP.replace(backend="dask", scheduler="tcp://127.0.0.1:1", out_root=str(tmp_path))
    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}):
        with pytest.raises(sweep.SweepError, match="could not reach the dask scheduler at tcp://"):
            sweep.run(s, echo=print)
    (folder,) = (tmp_path / "MNIST_lr").iterdir()
    assert results.read_status(folder)["state"] == results.FAILED


def test_a_port_where_a_web_server_listens_is_one_line_within_30_s(tmp_path, monkeypatch):
    # distributed.Client alone waits for ever there: the handshake has a deadline
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    assert sweep.HELLO_S <= 25  # the deadline in use: one line within 30 s
    monkeypatch.setattr(sweep, "HELLO_S", 3.0)  # the same path, sooner
    address = f"tcp://127.0.0.1:{server.server_address[1]}"
    s = SWEEP.replace(backend="dask", scheduler=address, out_root=str(tmp_path))
    started = time.monotonic()
    try:
        with pytest.raises(sweep.SweepError) as error:
            sweep.run(s, echo=print)
    finally:
        server.shutdown()
    assert time.monotonic() - started < 30
    assert f"could not reach the dask scheduler at {address} (no dask scheduler answered " in (
        str(error.value)
    )
    assert "\n" not in str(error.value)


def test_without_dask_the_dask_backend_is_a_one_line_error_before_any_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed: ImportError
    s = SWEEP.replace(backend="dask", out_root=str(tmp_path))
    with pytest.raises(sweep.SweepError) as err:
        sweep.run(s, echo=print)
    assert str(err.value) == (
        "--backend dask needs dask.distributed: pip install -r requirements-dask.txt"
    )
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_the_default_local_path_never_imports_dask():
    code = (
        "import sys\n"
        "from sgnoise import settings, sweep\n"
        f"s = settings.make('activation', workers=2, **{TINY!r})\n"
        "assert s.backend == 'local'\n"
        "sweep.compute(s)\n"
        "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "[]"


@pytest.mark.slow
def test_sigterm_cancels_the_runs_closes_the_local_cluster_and_marks_the_folder(tmp_path):
    # 2 x 40 runs: far more than finish before the signal; no --scheduler: a LocalCluster
    # of 2 worker processes is started for the sweep, and must go with it.
    args = ["--backend", "dask", "--workers", "2", "--lr-start", "0.01", "--lr-stop", "0.4",
            "--lr-step", "0.01", "--subset", "3000", "--batch-size", "250", "--epochs", "1",
            "--seeds", "0", "--coordinates", "20", "--resampled", "100",
            "--run-name", "r"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "test_lr_alpha.py"), *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = tmp_path / "MNIST_lr" / "r"
    try:
        deadline = time.monotonic() + 120
        while not list(folder.glob(f"{results.RUNS_DIR}/*.json")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children  # the LocalCluster's worker processes
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted by SIGTERM" in stdout
    status = results.read_status(folder)
    assert status["state"] == results.INTERRUPTED and status["missing"]
    assert status["done"] == len(list(folder.glob(f"{results.RUNS_DIR}/*.json"))) >= 1
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, alive


@pytest.mark.slow
def test_a_killed_worker_s_run_is_rerun_and_the_results_are_those_of_a_local_run(
    cluster, client, workers, local, tmp_path
):
    killed: list = []
    thread = kill_a_busy_worker(client, workers, killed)
    folder = on_dask(cluster, tmp_path)
    thread.join()
    assert killed, "no worker was seen running a run"
    assert records(folder) == records(local)
    assert results.read_status(folder)["state"] == results.COMPLETE
    # the cluster's last user: the nanny's restart of the killed worker is not waited for


@pytest.mark.slow
def test_a_run_whose_workers_all_die_is_recorded_as_failed_and_the_others_are_kept(local, tmp_path):
    with local_cluster() as cluster, distributed.Client(cluster) as client:
        cluster.scheduler.allowed_failures = 0  # the first death of a run's worker fails it
        client.wait_for_workers(2, timeout=60)
        killed: list = []
        thread = kill_a_busy_worker(client, client.run(os.getpid), killed)
        with pytest.raises(sweep.SweepError, match="runs failed") as error:
            on_dask(cluster, tmp_path)
        thread.join()
    (folder,) = (tmp_path / "MNIST_lr").iterdir()
    assert f"--resume {folder}" in str(error.value)  # the failed run is rerun by a resume
    assert results.read_status(folder)["state"] == "failed"
    doc = json.loads((folder / results.RESULTS_JSON).read_text())
    failed = [r for r in doc["runs"] if r.get("failed")]
    assert killed and failed and len(doc["runs"]) == 4
    assert all(r["reason"].startswith("KilledWorker: ") for r in failed)
    failed_keys = {(r["activation"], r["lr"]) for r in failed}
    expected = [r for r in records(local) if (r["activation"], float(r["lr"])) not in failed_keys]
    assert records(folder) == expected  # every run that finished, to the last digit
