"""The worker threads: results in order, errors raised, and chunked column sums that do not
depend on the chunks (the same numbers as plain numpy, bit for bit)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from sgnoise import threads


@pytest.fixture(params=[0, 1, 3], ids=lambda w: f"workers={w}")
def workers(request, monkeypatch):
    """Each thread count, with a pool of its own (closed afterwards)."""
    monkeypatch.setattr(threads, "WORKERS", request.param)
    monkeypatch.setattr(threads, "_POOL", [])
    yield request.param
    for pool in threads._POOL:
        pool.shutdown()


def test_results_come_in_the_order_of_the_tasks_whatever_order_they_finish_in(workers):
    delays = [0.02, 0.0, 0.01, 0.0, 0.03, 0.0, 0.005, 0.0, 0.0, 0.01]

    def task(i):
        time.sleep(delays[i])
        return i, threading.current_thread().name

    out = list(threads.in_order(lambda i=i: task(i) for i in range(len(delays))))
    assert [i for i, _ in out] == list(range(len(delays)))
    on_workers = {name for _, name in out if name.startswith(threads._PREFIX)}
    assert bool(on_workers) == (workers > 0)


def test_tasks_are_taken_lazily_a_few_ahead_of_the_result_returned(workers):
    taken = []

    def tasks():
        for i in range(100):
            taken.append(i)
            yield lambda i=i: i

    results = threads.in_order(tasks())
    assert next(results) == 0
    assert len(taken) <= threads._IN_FLIGHT + 2
    assert list(results) == list(range(1, 100))


def test_an_error_in_a_task_is_raised_to_the_caller(workers):
    def task(i):
        if i == 5:
            raise ZeroDivisionError(f"task {i}")
        return i

    with pytest.raises(ZeroDivisionError, match="task 5"):
        list(threads.in_order(lambda i=i: task(i) for i in range(20)))


def test_the_caller_s_errstate_holds_on_the_worker_threads(workers):
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        list(threads.in_order(lambda: np.float64(1.0) / np.zeros(3) for _ in range(8)))


def test_a_nested_call_from_a_task_runs_inline_and_does_not_wait_forever(workers):
    def outer(i):
        return sum(threads.in_order(lambda j=j: i * j for j in range(10)))

    out = list(threads.in_order(lambda i=i: outer(i) for i in range(12)))
    assert out == [45 * i for i in range(12)]


@pytest.mark.parametrize("most", [None, 1, 2, 3, 7, 64])
def test_column_chunks_cover_the_columns_in_order_without_lone_columns(workers, most):
    for n in range(0, 130):
        chunks = threads.column_chunks(n, most)
        assert [c.start for c in chunks[1:]] == [c.stop for c in chunks[:-1]]
        assert (chunks[0].start, chunks[-1].stop) == (0, n) if n else chunks == []
        widths = [c.stop - c.start for c in chunks]
        assert n < 2 or min(widths) >= 2, (n, most, widths)
        assert not widths or max(widths) - min(widths) <= 1, (n, most, widths)
        if most is not None and most >= 3:
            assert max(widths, default=0) <= most, (n, most, widths)
        if n >= 2 * (workers + 1):
            assert len(chunks) >= workers + 1, (n, most, len(chunks))


def test_column_chunks_default_to_about_two_per_thread(workers):
    assert len(threads.column_chunks(1000)) == 2 * (workers + 1)


@pytest.mark.parametrize("shape", [(1, 1), (7, 1), (5, 2), (100, 3), (33, 257), (1000, 64)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_means_equal_numpy_s_to_the_last_bit(workers, shape, dtype):
    rng = np.random.default_rng(sum(shape))
    matrix = (rng.standard_cauchy(shape) * 1e3).astype(dtype)
    expected = matrix.mean(axis=0, dtype=np.float64)
    got = threads.column_means(matrix)
    assert got.dtype == np.float64 and got.shape == (shape[1],)
    np.testing.assert_array_equal(got, expected)


def test_column_means_of_a_strided_view_and_of_no_columns():
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((50, 40)).astype(np.float32)
    view = matrix[::2, 1::3]
    np.testing.assert_array_equal(threads.column_means(view), view.mean(axis=0, dtype=np.float64))
    assert threads.column_means(np.zeros((3, 0))).shape == (0,)


@pytest.mark.parametrize(
    ("omp", "cores", "expected"),
    [(None, 8, 4), (None, 2, 2), ("1", 8, 1), ("3", 8, 3), ("16", 2, 2), ("0", 8, 1), ("x", 2, 2)],
)
def test_the_thread_budget_is_a_core_each_at_most_4_and_at_most_omp_num_threads(
    monkeypatch, omp, cores, expected
):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: cores)
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    assert threads._thread_budget() == expected
