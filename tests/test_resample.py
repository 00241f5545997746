"""sgnoise.resample: resampled minibatch noise, its subsets and its sums."""

from __future__ import annotations

import numpy as np
import pytest

from sgnoise import resample, threads
from sgnoise.resample import resampled_noise


def test_each_resampled_minibatch_holds_batch_size_distinct_examples():
    n, b = 50, 7
    noise = resampled_noise(np.eye(n), b, 300, seed=1)  # row k: indicator(S_k) / b - 1 / n
    members = noise > 0
    assert noise.shape == (300, n)
    assert (members.sum(axis=1) == b).all()
    np.testing.assert_allclose(noise[members], 1 / b - 1 / n)
    np.testing.assert_allclose(noise[~members], -1 / n, atol=1e-15)


def test_resampled_minibatches_are_uniform_subsets():
    n, b, m = 5, 2, 20_000
    members = resampled_noise(np.eye(n), b, m, seed=2) > 0
    pairs = np.unique(members @ (1 << np.arange(n)), return_counts=True)[1]
    assert pairs.size == 10  # every one of C(5, 2) subsets occurs
    assert np.abs(pairs / m - 0.1).max() < 0.01  # each 0.1 +- 0.0021 (sd)


def test_resampled_noise_has_the_without_replacement_variance():
    g = np.random.default_rng(3).standard_normal((40, 3)) * [1.0, 10.0, 0.1] + 5.0
    n, b = 40, 10
    noise = resampled_noise(g, b, 20_000, seed=4)
    expected = g.var(axis=0) * n / (n - 1) / b * (n - b) / (n - 1)  # finite population
    np.testing.assert_allclose(noise.var(axis=0), expected, rtol=0.05)
    assert (np.abs(noise.mean(axis=0)) < 0.03 * np.sqrt(expected)).all()  # 4 sd


def test_resampled_noise_same_seed_same_noise_and_float32_stays_float32():
    g = np.random.default_rng(5).standard_normal((30, 4)).astype(np.float32)
    a, b = resampled_noise(g, 5, 50, seed=6), resampled_noise(g, 5, 50, seed=6)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, resampled_noise(g, 5, 50, seed=7))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resampled_noise_is_the_definition_summed_example_by_example(monkeypatch, dtype):
    """u_k = sum over S_k, in ascending example order, of (1/B)(g_i - mean g), in the
    matrix's dtype: the compressed-column product adds exactly these terms in this order."""
    rng = np.random.default_rng(8)
    g = (rng.standard_normal((200, 6)) * [1.0, 1e3, 1e-3, 1.0, 5.0, 0.1] + 3).astype(dtype)
    g = np.asfortranarray(g)  # the Recorder's layout
    n, b, m = 200, 17, 40
    noise = resampled_noise(g, b, m, seed=9)
    for width in (2, 3, 16):  # columns summed in chunks are the same columns
        monkeypatch.setattr(resample, "_SUM_COLUMNS", width)
        np.testing.assert_array_equal(resampled_noise(g, b, m, seed=9), noise)
    resample._kept_selection.cache_clear()  # made anew below, not taken from the cache
    monkeypatch.setattr(resample, "_FLOYD_VALUES", 3 * b)  # subsets resolved 3 at a time
    np.testing.assert_array_equal(resampled_noise(g, b, m, seed=9), noise)
    monkeypatch.setattr(resample, "_PIECE_MEMBERS", 5 * b)  # selections of 5 minibatches
    assert len(resample._selection(n, b, m, 9, dtype)) == 8
    np.testing.assert_array_equal(resampled_noise(g, b, m, seed=9), noise)
    resample._kept_selection.cache_clear()
    for members in (1, 10**6):  # several sizes: one pass for each, or all in one
        monkeypatch.setattr(resample, "_GROUP_MEMBERS", members)
        with_others = list(resample.resampled_noises(g, (3, b, 50), m, seed=9))
        np.testing.assert_array_equal(with_others[1], noise)
        np.testing.assert_array_equal(with_others[0], resampled_noise(g, 3, m, seed=9))
        np.testing.assert_array_equal(with_others[2], resampled_noise(g, 50, m, seed=9))
    centred = g - g.mean(axis=0, dtype=np.float64).astype(dtype)
    weight = dtype(1 / b)
    for k, subset in enumerate(resample._subsets(n, b, m, np.random.default_rng(9))):
        total = np.zeros(6, dtype)
        for i in np.sort(subset):
            total += weight * centred[i]
        np.testing.assert_array_equal(noise[k], total)


@pytest.mark.parametrize("columns", [1, 3, 37])
@pytest.mark.parametrize("order", ["F", "C"])
@pytest.mark.parametrize("workers", [0, 1, 3])
def test_column_means_in_chunks_are_the_float64_means(monkeypatch, columns, order, workers):
    """What resampled_noises centres with (and noise_pass subtracts): whatever the chunks."""
    monkeypatch.setattr(threads, "WORKERS", workers)
    rng = np.random.default_rng(10)
    for dtype in (np.float32, np.float64):
        g = np.asarray(rng.standard_t(2.0, (200, columns)) * 3 + 1, dtype=dtype, order=order)
        means = threads.column_means(g)
        assert means.dtype == np.float64
        np.testing.assert_array_equal(means, g.mean(axis=0, dtype=np.float64))


def _floyd(n, size, count, rng):
    """Floyd's algorithm step by step, subset by subset: what resample._subsets resolves
    all at once (the same draws t, one array first)."""
    t = rng.integers(0, np.arange(n - size + 1, n + 1), size=(count, size))
    out = np.empty((count, size), np.intp)
    for r in range(count):
        taken = set()
        for k, j in enumerate(range(n - size, n)):
            out[r, k] = j if t[r, k] in taken else t[r, k]
            taken.add(int(out[r, k]))
    return out


@pytest.mark.parametrize(
    ("n", "size"), [(2, 1), (5, 2), (10, 9), (50, 49), (300, 150), (1000, 999), (5000, 300)]
)
def test_subsets_are_floyds_algorithm_step_by_step(n, size):
    """The vectorised resolution (duplicates and chains of j's) gives Floyd's subsets
    exactly; n close to size makes long chains."""
    for seed in range(3):
        fast = resample._subsets(n, size, 60, np.random.default_rng(seed))
        np.testing.assert_array_equal(fast, _floyd(n, size, 60, np.random.default_rng(seed)))
        assert all(len(set(row)) == size for row in fast.tolist())


@pytest.mark.parametrize(
    ("per_example", "batch_size", "n_minibatches", "match"),
    [
        (np.zeros(10), 2, 5, "2-D"),
        (np.zeros((10, 2)), 10, 5, "batch_size"),
        (np.zeros((10, 2)), 2, 0, "n_minibatches"),
        (np.full((10, 2), np.nan), 2, 5, "finite"),
    ],
)
def test_resampled_noise_rejects_bad_input_with_one_line(
    per_example, batch_size, n_minibatches, match
):
    with pytest.raises(ValueError, match=match):
        resampled_noise(per_example, batch_size, n_minibatches)


def test_resampled_noises_rejects_bad_input_at_the_call():
    """The generator's arguments are checked when it is made, not at its first value."""
    with pytest.raises(ValueError, match="batch_size"):
        resample.resampled_noises(np.ones((10, 2)), (2, 10), 5)
    with pytest.raises(ValueError, match="finite"):
        resample.resampled_noises(np.full((10, 2), np.nan), (2,), 5)
