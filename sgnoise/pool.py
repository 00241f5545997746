"""Worker processes that lose nothing but what they held: a pool for a sweep's local runs.

Tasks are handed out one at a time, so the driver knows which task each worker
holds. A worker that dies (the kernel's out-of-memory killer sends SIGKILL)
costs only its own task, which :meth:`Pool.run` yields as a :class:`WorkerDied`
error (with the worker's last resident memory seen), and a fresh worker takes
its place; the other workers go on. Each worker

- checks every :data:`POLL` seconds that its driver lives, and exits when it
  does not (a driver killed with ``kill -9`` leaves no worker behind);
- ignores SIGINT (a terminal's Ctrl-C reaches the whole process group: it is
  for the driver, which stops the workers);
- gets the BLAS and OpenMP thread variables set to its share of the cores, as
  joblib sets them for its workers (a variable the user set is kept).

Workers are started (``spawn``: the same on Linux and macOS) when the first
task needs them and kept for later calls until :meth:`Pool.close`, so a
sweep's figures are drawn by workers that are already warm.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from typing import Any

#: Seconds between a worker's checks that its driver lives (it exits within about this
#: long of the driver's death), and between the driver's samples of its workers' memory.
POLL = 1.0
#: The thread-count variables set for a worker (joblib's list).
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
_CONTEXT = get_context("spawn")


class WorkerDied(Exception):
    """The worker process that held a task died before it answered."""

    def __init__(self, exitcode: int, memory: int | None):
        self.exitcode, self.memory = exitcode, memory
        if exitcode < 0:
            name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else "?"
            why = f"worker killed by signal {-exitcode} ({name})"
            why += ", likely out of memory" if -exitcode == signal.SIGKILL else ""
        else:
            why = f"worker exited with code {exitcode}"
        if memory is not None:
            why += f"; last seen using {memory / 2**20:.0f} MiB"
        super().__init__(why)


class _Raised:
    """An exception a task raised, carried back to the driver, which raises it again."""

    def __init__(self, error: BaseException):
        self.error = error


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _watch(driver: int) -> None:
    """Exit this process when its parent, the driver, is gone (it is then re-parented)."""
    while os.getppid() == driver:
        time.sleep(POLL)
    os._exit(1)


def _serve(conn: Connection, driver: int) -> None:
    """A worker's life: take ``(function, args)``, send back its result, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch, args=(driver,), daemon=True, name="driver-watch").start()
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the driver closed its end
            return
        if task is None:
            return
        function, args = task
        try:
            out = function(*args)
        except Exception as err:
            out = _Raised(err)
        try:
            conn.send(out)
        except Exception as err:  # a result or an exception that does not pickle
            conn.send(_Raised(RuntimeError(f"{type(err).__name__}: {err}")))


def _resident(pid: int) -> int | None:
    """Resident memory of process pid in bytes (Linux), else None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class _Worker:
    def __init__(self, threads: int):
        self.conn, theirs = _CONTEXT.Pipe()
        self.process = _CONTEXT.Process(target=_serve, args=(theirs, os.getpid()), daemon=True)
        with _environment({v: os.environ.get(v, str(threads)) for v in THREAD_VARS}):
            self.process.start()
        theirs.close()
        self.memory: int | None = None

    def sample(self) -> None:
        self.memory = _resident(self.process.pid) or self.memory


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Within the block, os.environ holds these values (a spawned process inherits them)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Pool:
    """``n`` worker processes, started as tasks need them; use it in a ``with`` block.

    Leaving the block stops the workers: idle ones are told to exit, and on an
    exception (SIGINT, SIGTERM, an error) every worker is killed at once.
    """

    def __init__(self, n: int):
        if n < 1:
            raise ValueError(f"a pool needs at least one worker, got {n}")
        self.n = n
        self._idle: deque[_Worker] = deque()
        self._threads = max(_cores() // n, 1)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, kind, *_: Any) -> None:
        self.close(kill=kind is not None)

    def run(self, tasks: Sequence[tuple[Callable, tuple]]) -> Iterator[tuple[int, Any]]:
        """Run ``function(*args)`` for each task; yield ``(index, result)`` as each finishes.

        The result of a task whose worker died is a :class:`WorkerDied` (not
        raised: the other tasks go on, on a fresh worker in its place); an
        exception a task raised is raised here, after the workers are stopped.
        """
        pending = deque(enumerate(tasks))
        busy: dict[_Worker, int] = {}
        try:
            while pending or busy:
                while pending and len(busy) < self.n:
                    worker = self._idle.popleft() if self._idle else _Worker(self._threads)
                    i, task = pending.popleft()
                    try:
                        worker.conn.send(task)
                    except OSError:  # an idle worker that died: the task goes to another
                        pending.appendleft((i, task))
                        self._discard(worker)
                        continue
                    busy[worker] = i
                for worker in busy:
                    worker.sample()
                handles = [h for w in busy for h in (w.conn, w.process.sentinel)]
                ready = set(wait(handles, timeout=POLL))
                for worker in list(busy):
                    if worker.conn in ready:
                        try:
                            out = worker.conn.recv()
                        except (EOFError, OSError):  # died while answering
                            worker.process.join()
                        else:
                            i = busy.pop(worker)
                            self._idle.append(worker)
                            if isinstance(out, _Raised):
                                raise out.error
                            yield i, out
                            continue
                    if worker.process.sentinel in ready or not worker.process.is_alive():
                        i = busy.pop(worker)
                        self._discard(worker)
                        yield i, WorkerDied(worker.process.exitcode or 0, worker.memory)
        except BaseException:  # SIGINT, SIGTERM, a task's error, the caller stopping early
            self.close(kill=True)
            raise
        finally:
            for worker in busy:  # stopped early: those workers hold tasks no one awaits
                self._discard(worker)

    def map(self, function: Callable, items: Sequence[Any]) -> list[Any]:
        """``[function(item) for item in items]`` on the workers, in order; a dead worker's
        item raises its :class:`WorkerDied`."""
        out: list[Any] = [None] * len(items)
        for i, result in self.run([(function, (item,)) for item in items]):
            if isinstance(result, WorkerDied):
                raise result
            out[i] = result
        return out

    def _discard(self, worker: _Worker) -> None:
        """Kill a worker (if alive) and forget it."""
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        worker.conn.close()
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)

    def close(self, kill: bool = False) -> None:
        """Stop the idle workers: tell them to exit (or kill them), and wait for them."""
        while self._idle:
            worker = self._idle.popleft()
            if not kill:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
                worker.process.join(timeout=10)
            self._discard(worker)
