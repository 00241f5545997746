"""sgnoise.calibration: resampled noise, the calibrated alpha and its interval, per-column alpha."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import levy_stable

from sgnoise import calibration, threads
from sgnoise.calibration import (
    MIN_COLUMN_ROWS,
    calibrate,
    calibrated_alpha,
    calibration_curve,
    column_alpha,
    per_column_alpha,
    resampled_noise,
)
from sgnoise.tail_index import summarise_noise

SHAPE = (120, 128)


@pytest.fixture(scope="module", autouse=True)
def _few_reps(few_reps):
    """Curves of 4 matrices per alpha (tests/conftest.py): fast tests."""


def stable(alpha, shape, seed):
    return levy_stable.rvs(alpha, 0.0, size=shape, random_state=seed)


# --- resampled_noise ----------------------------------------------------------------------


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
        monkeypatch.setattr(calibration, "_SUM_COLUMNS", width)
        np.testing.assert_array_equal(resampled_noise(g, b, m, seed=9), noise)
    calibration._kept_selection.cache_clear()  # made anew below, not taken from the cache
    monkeypatch.setattr(calibration, "_FLOYD_VALUES", 3 * b)  # subsets resolved 3 at a time
    np.testing.assert_array_equal(resampled_noise(g, b, m, seed=9), noise)
    monkeypatch.setattr(calibration, "_PIECE_MEMBERS", 5 * b)  # selections of 5 minibatches
    assert len(calibration._selection(n, b, m, 9, dtype)) == 8
    np.testing.assert_array_equal(resampled_noise(g, b, m, seed=9), noise)
    calibration._kept_selection.cache_clear()
    for members in (1, 10**6):  # several sizes: one pass for each, or all in one
        monkeypatch.setattr(calibration, "_GROUP_MEMBERS", members)
        with_others = list(calibration.resampled_noises(g, (3, b, 50), m, seed=9))
        np.testing.assert_array_equal(with_others[1], noise)
        np.testing.assert_array_equal(with_others[0], resampled_noise(g, 3, m, seed=9))
        np.testing.assert_array_equal(with_others[2], resampled_noise(g, 50, m, seed=9))
    centred = g - g.mean(axis=0, dtype=np.float64).astype(dtype)
    weight = dtype(1 / b)
    for k, subset in enumerate(calibration._subsets(n, b, m, np.random.default_rng(9))):
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
    """Floyd's algorithm step by step, subset by subset: what calibration._subsets resolves
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
        fast = calibration._subsets(n, size, 60, np.random.default_rng(seed))
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


# --- the calibration curve and calibrate ----------------------------------------------------


def test_the_curve_falls_from_heavy_tails_to_the_gaussian_and_is_cached():
    curve = calibration_curve(*SHAPE)
    assert (np.diff(curve.mean) < 0).all()  # 1/reading falls as alpha rises
    assert calibration_curve(*SHAPE) is curve
    assert calibration_curve(120, 127) is curve  # within 3%: one bucket


def test_the_standardised_reading_is_pulled_towards_two_and_the_curve_says_by_how_much():
    curve = calibration_curve(*SHAPE)
    reading = 1 / curve.mean[list(curve.alphas).index(1.2)]
    assert 1.35 < reading < 1.6  # above the truth, 1.2: the pull the calibration undoes


def test_calibrated_alpha_recovers_sas_1_5_at_120_rows():
    results = [calibrated_alpha(stable(1.5, SHAPE, 10 + s), seed=s) for s in range(3)]
    for r in results:
        assert r["alpha_calibrated_lo"] <= 1.5 <= r["alpha_calibrated_hi"]
    assert abs(np.mean([r["alpha_calibrated"] for r in results]) - 1.5) <= 0.1


def test_gaussian_columns_give_an_interval_holding_two():
    noise = np.random.default_rng(20).standard_normal(SHAPE) * np.exp(np.arange(128) / 50)
    r = calibrated_alpha(noise)
    assert r["alpha_calibrated_lo"] <= 2.0 <= r["alpha_calibrated_hi"] == 2.0
    assert r["alpha_calibrated"] > 1.85


def test_a_reading_above_the_gaussians_is_said_to_be_gaussian():
    summary = {"alpha_std": 2.3, "alpha_std_lo": 2.25, "alpha_std_hi": 2.35, "n_dropped": 0}
    r = calibrate(summary, SHAPE)
    assert r["at_gaussian"] and not r["below_grid"]
    assert r["alpha_calibrated"] == r["alpha_calibrated_hi"] == 2.0


def test_a_wider_reading_interval_gives_a_wider_calibrated_interval():
    narrow = {"alpha_std": 1.6, "alpha_std_lo": 1.59, "alpha_std_hi": 1.61, "n_dropped": 0}
    wide = narrow | {"alpha_std_lo": 1.5, "alpha_std_hi": 1.7}
    a, b = calibrate(narrow, SHAPE), calibrate(wide, SHAPE)
    assert a["alpha_calibrated"] == b["alpha_calibrated"]
    assert b["alpha_calibrated_lo"] < a["alpha_calibrated_lo"]
    assert b["alpha_calibrated_hi"] > a["alpha_calibrated_hi"]


def test_constant_columns_are_not_counted_in_the_calibrated_shape():
    noise = stable(1.5, SHAPE, 30)
    noise[:, :8] = 1.0
    summary = summarise_noise(noise)
    assert summary["n_dropped"] == 8
    assert calibrate(summary, noise.shape) == calibrate(summary | {"n_dropped": 0}, (120, 120))


def test_too_few_values_or_rows_give_nan_not_an_error():
    nan = {"alpha_std": np.nan, "alpha_std_lo": np.nan, "alpha_std_hi": np.nan, "n_dropped": 0}
    assert np.isnan(calibrate(nan, SHAPE)["alpha_calibrated"])
    four_rows = {"alpha_std": 2.1, "alpha_std_lo": 2.0, "alpha_std_hi": 2.2, "n_dropped": 0}
    assert np.isnan(calibrate(four_rows, (4, 1000))["alpha_calibrated"])


def test_a_matrix_above_max_values_is_calibrated_on_a_column_subset(monkeypatch):
    monkeypatch.setattr(calibration, "MAX_VALUES", 120 * 64)
    r = calibrated_alpha(stable(1.5, (120, 200), 40))
    assert r["n_columns_calibrated"] == 64
    monkeypatch.setattr(calibration, "MAX_VALUES", 100 * 47)  # 47 columns, simulated as 48
    assert calibrated_alpha(stable(1.5, (100, 200), 41))["n_columns_calibrated"] == 47
    assert calibration_curve(100, 47).n_columns == 48


@pytest.mark.parametrize(
    ("args", "match"),
    [((4, 100), "n_rows"), ((16, 5), "at least 100"), ((16, 10**6), "MAX_VALUES")],
)
def test_calibration_curve_rejects_shapes_it_cannot_simulate(args, match):
    with pytest.raises(ValueError, match=match):
        calibration_curve(*args)


# --- per-column alpha -------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [1.2, 1.8])
def test_column_alpha_recovers_sas_alpha_column_by_column(alpha):
    x = stable(alpha, (2000, 100), 50)
    est = column_alpha(x)
    assert est.shape == (100,)
    assert abs(np.median(est) - alpha) < 0.06


def test_column_alpha_along_axis_1_is_axis_0_transposed_and_shift_free():
    x = stable(1.5, (400, 6), 60)
    np.testing.assert_allclose(column_alpha(x.T, axis=1), column_alpha(x))
    np.testing.assert_allclose(column_alpha(x + 100.0), column_alpha(x), rtol=1e-6)


def test_column_alpha_of_a_column_does_not_depend_on_the_columns_beside_it(monkeypatch):
    """Column chunks (one per thread, or of at most _GATHER values) and column blocks of 2 or
    more give each column the estimate it has in the whole matrix, bit for bit."""
    x = stable(1.5, (400, 33), 61).astype(np.float32)
    whole = column_alpha(x)
    np.testing.assert_array_equal(column_alpha(x[:, 5:7]), whole[5:7])
    np.testing.assert_array_equal(column_alpha(x[:, 10:]), whole[10:])
    monkeypatch.setattr(calibration, "_GATHER", 400 * 5)  # 7 chunks of 4 or 5 columns
    np.testing.assert_array_equal(column_alpha(x), whole)


def test_a_constant_column_gives_nan():
    x = stable(1.5, (400, 3), 70)
    x[:, 1] = 2.0
    est = column_alpha(x)
    assert np.isnan(est[1]) and np.isfinite(est[[0, 2]]).all()


def test_per_column_quantiles_sit_below_the_gaussian_ones_for_heavy_tails():
    out = per_column_alpha(stable(1.3, (MIN_COLUMN_ROWS, 300), 80), seed=1)
    q, g = out["quantiles"], out["gaussian_quantiles"]
    assert list(q) == ["5", "25", "50", "75", "95"]
    assert q["95"] < g["5"]
    assert g["5"] < 2.0 < g["95"]
    assert out["n_columns"] == 300


def test_per_column_alpha_is_none_with_too_few_rows():
    assert per_column_alpha(np.ones((MIN_COLUMN_ROWS - 1, 3))) is None


def test_per_column_alpha_estimates_at_most_max_columns():
    out = per_column_alpha(stable(1.5, (MIN_COLUMN_ROWS, 50), 90), max_columns=20)
    assert out["n_columns"] == 20


def _plain_spread(block, max_columns, seed=3):
    """per_column_alpha by its definition: one block, its own column subset, column_alpha."""
    if block.shape[1] > max_columns:
        keep = np.random.default_rng(seed).choice(block.shape[1], max_columns, replace=False)
        block = block[:, np.sort(keep)]
    alphas = column_alpha(block, seed=seed)
    if np.isnan(alphas).all():
        return None
    alphas = alphas[~np.isnan(alphas)]
    gauss = column_alpha(
        np.random.default_rng((seed, *block.shape)).standard_normal(block.shape), seed=seed
    )
    levels = calibration.QUANTILES
    return {
        "quantiles": dict(zip(map(str, levels), np.percentile(alphas, levels), strict=True)),
        "gaussian_quantiles": dict(
            zip(map(str, levels), np.percentile(gauss, levels), strict=True)
        ),
        "n_columns": block.shape[1],
        "n_rows": block.shape[0],
    }


def test_per_column_alpha_by_block_is_per_column_alpha_of_each_block():
    """Each column estimated once for all blocks gives what each block alone gives, bit for
    bit, column subsets (max_columns) included; too few rows gives None for every block."""
    noise = stable(1.3, (MIN_COLUMN_ROWS, 60), 91).astype(np.float32)
    noise[:, 7] = 0.0  # a constant column
    noise[:, 40:] = 1.0  # a constant block
    blocks = {"all": slice(None), "a": slice(0, 25), "b": slice(25, 40), "c": slice(40, 60)}
    for max_columns in (4096, 12):
        together = calibration.per_column_alpha_by_block(
            noise, blocks, max_columns=max_columns, seed=3
        )
        alone = {name: _plain_spread(noise[:, cols], max_columns) for name, cols in blocks.items()}
        assert together == alone
        assert per_column_alpha(noise, max_columns=max_columns, seed=3) == alone["all"]
        assert together["c"] is None and together["a"]["n_columns"] == min(25, max_columns)
    few = calibration.per_column_alpha_by_block(noise[:100], blocks)
    assert few == dict.fromkeys(blocks)


def test_resampled_noises_rejects_bad_input_at_the_call():
    """The generator's arguments are checked when it is made, not at its first value."""
    with pytest.raises(ValueError, match="batch_size"):
        calibration.resampled_noises(np.ones((10, 2)), (2, 10), 5)
    with pytest.raises(ValueError, match="finite"):
        calibration.resampled_noises(np.full((10, 2), np.nan), (2,), 5)
