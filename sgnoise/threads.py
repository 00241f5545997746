"""The worker threads of a process: results in order; one pool per process, reset on fork.

They run the estimators' jobs, the noise pass's chunks of minibatches and the
updates of large parameters.

One thread per core, at most 4 and at most ``OMP_NUM_THREADS``; ``CHUNK`` is the
size of a job in samples.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np

CHUNK = 1 << 18  # samples per job (1 MB of float32 and 512 kB of labels)
_IN_FLIGHT = 4  # jobs queued beyond the one collected
_POOL: list[ThreadPoolExecutor] = []
_PREFIX = "sgnoise-worker"  # the worker threads' names
os.register_at_fork(after_in_child=_POOL.clear)  # a forked child has no such threads


def _thread_budget() -> int:
    """Threads for the estimator: one per core, at most 4, and at most ``OMP_NUM_THREADS``.

    A sweep's worker processes (:mod:`sgnoise.pool`) have ``OMP_NUM_THREADS`` set to
    their share of the cores (1 each when the runs go one process per core), so parallel
    runs do not each start a thread per core and oversubscribe the machine.
    """
    budget = min(4, os.cpu_count() or 1)
    try:
        budget = min(budget, int(os.environ.get("OMP_NUM_THREADS", budget)))
    except ValueError:  # not a number: ignore it, as numpy's BLAS does
        pass
    return max(budget, 1)


WORKERS = _thread_budget() - 1  # worker threads beside the calling thread


def in_order(tasks) -> Iterator:
    """Results of the tasks (callables), in order, computed on all cores.

    Every (WORKERS + 1)-th task runs in the calling thread, the others on the
    worker threads, at most _IN_FLIGHT ahead of the one returned: few
    threads, so few hand-overs of the GIL (which numpy releases in its loops).
    Each task runs in a copy of the caller's context, so that the caller's
    ``np.errstate`` (a context variable) holds on the worker threads too.
    Called from a task on a worker thread, it runs every task there (a task
    waiting on the pool it runs on could wait for ever).
    """
    nested = threading.current_thread().name.startswith(_PREFIX)
    if not _POOL and WORKERS:
        _POOL.append(ThreadPoolExecutor(WORKERS, thread_name_prefix=_PREFIX))
    pending: deque = deque()
    try:
        for j, task in enumerate(tasks):
            inline = nested or j % (WORKERS + 1) == WORKERS
            pending.append(
                task() if inline else _POOL[0].submit(contextvars.copy_context().run, task)
            )
            while len(pending) > _IN_FLIGHT or (pending and not isinstance(pending[0], Future)):
                done = pending.popleft()
                yield done.result() if isinstance(done, Future) else done
        for done in pending:
            yield done.result() if isinstance(done, Future) else done
    finally:
        futures = [f for f in pending if isinstance(f, Future)]
        for future in futures:
            future.cancel()
        wait(futures)


def column_chunks(n_columns: int, most: int | None = None) -> list[slice]:
    """Column ranges of about equal width: at most ``most`` columns where that allows
    at least two (default: about two ranges per thread), at least one range per thread
    where there are columns enough, and never a single column unless there is only
    one. numpy sums a lone column pairwise and wider blocks column by column in order:
    without lone columns a column's float sums do not depend on the chunks (nor on the
    thread count)."""
    if n_columns <= 0:
        return []
    if most is None:
        most = -(-n_columns // (2 * (WORKERS + 1)))
    n_chunks = max(-(-n_columns // max(1, most)), WORKERS + 1)
    n_chunks = max(1, min(n_chunks, n_columns // 2))
    bounds = np.linspace(0, n_columns, n_chunks + 1).round().astype(int).tolist()
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def column_means(matrix: np.ndarray) -> np.ndarray:
    """The column means of a 2-D array, summed in float64, by chunks of columns on the
    worker threads (about two per thread): the same numbers whatever the chunks."""
    chunks = column_chunks(matrix.shape[1])
    means = in_order(lambda c=c: matrix[:, c].mean(axis=0, dtype=np.float64) for c in chunks)
    return np.concatenate([np.empty(0), *means])
