"""sgnoise.pool: a killed worker costs its own task only; workers leave with their driver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import child_pids, pid_alive

from sgnoise.pool import Pool, WorkerDied

ROOT = Path(__file__).resolve().parents[1]


def square(x: int) -> int:
    return x * x


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def killed_by(sig: int) -> None:
    """A task whose worker dies of ``sig`` (the out-of-memory killer sends SIGKILL)."""
    os.kill(os.getpid(), sig)


def fails() -> None:
    raise ZeroDivisionError("a task's own error")


def test_results_come_back_for_every_task_with_its_index():
    with Pool(2) as pool:
        assert sorted(pool.run([(square, (x,)) for x in range(7)])) == [
            (x, x * x) for x in range(7)
        ]
        assert pool.map(square, [3, 1, 2]) == [9, 1, 4]  # in order; the workers are reused


@pytest.mark.parametrize(
    ("sig", "why"),
    [
        (
            signal.SIGKILL,
            "worker killed by signal 9 (SIGKILL), likely out of memory; last seen using ",
        ),
        (signal.SIGSEGV, "worker killed by signal 11 (SIGSEGV)"),
    ],  # fmt: skip
)
def test_a_killed_worker_costs_its_own_task_only_and_a_fresh_one_takes_its_place(sig, why):
    tasks = [(pid_after, (0.5,)), (killed_by, (sig,)), *[(square, (x,)) for x in range(5)]]
    with Pool(2) as pool:
        out = dict(pool.run(tasks))
        assert sorted(out) == list(range(7))
        assert isinstance(out[1], WorkerDied) and str(out[1]).startswith(why)
        assert out[1].exitcode == -sig
        assert [out[i] for i in range(2, 7)] == [x * x for x in range(5)]
        assert len(pool._idle) == 2  # the dead worker was replaced


def test_an_error_a_task_raises_is_raised_in_the_driver_and_the_workers_stop():
    pool = Pool(2)
    with pytest.raises(ZeroDivisionError, match="a task's own error"):
        pool.map(call, [fails, fails])
    assert not pool._idle


def call(function):
    return function()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_workers_exit_within_ten_seconds_of_their_driver_s_sigkill(tmp_path):
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "from sgnoise.pool import Pool\n"
        "from test_pool import pid_after\n"
        "with Pool(2) as pool:\n"
        "    for i, pid in pool.run([(pid_after, (60,)), (pid_after, (60,))]):\n"
        "        pass\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path)
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while len(workers) < 2 and time.monotonic() < deadline:
        workers = {p for p in child_pids(driver.pid) if "spawn_main" in _cmdline(p)}
        time.sleep(0.1)
    assert len(workers) == 2, "the workers did not start"
    driver.kill()
    driver.wait()
    killed = time.monotonic()
    while any(pid_alive(p) for p in workers) and time.monotonic() < killed + 10:
        time.sleep(0.1)
    assert not [p for p in workers if pid_alive(p)], "workers outlived their driver by 10 s"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""
