"""sgnoise.tail_index.per_column: each column's own alpha and the quantiles of those."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import levy_stable

from sgnoise.tail_index import (
    MIN_COLUMN_ROWS,
    QUANTILES,
    column_alpha,
    per_column,
    per_column_alpha,
    per_column_alpha_by_block,
)


def stable(alpha, shape, seed):
    return levy_stable.rvs(alpha, 0.0, size=shape, random_state=seed)


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
    monkeypatch.setattr(per_column, "_GATHER", 400 * 5)  # 7 chunks of 4 or 5 columns
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
    levels = QUANTILES
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
        together = per_column_alpha_by_block(noise, blocks, max_columns=max_columns, seed=3)
        alone = {name: _plain_spread(noise[:, cols], max_columns) for name, cols in blocks.items()}
        for spread in together.values():  # each block's own estimates, NaN where constant
            if spread is not None:
                alphas = spread.pop("alphas")
                assert alphas.size == spread["n_columns"]
        assert together == alone
        assert per_column_alpha(noise, max_columns=max_columns, seed=3) == alone["all"]
        assert together["c"] is None and together["a"]["n_columns"] == min(25, max_columns)
    few = per_column_alpha_by_block(noise[:100], blocks)
    assert few == dict.fromkeys(blocks)
    some = per_column_alpha_by_block(noise, blocks, max_columns=12, seed=3, gaussian=("all",))
    assert some["all"]["gaussian_quantiles"] == alone["all"]["gaussian_quantiles"]
    assert some["a"]["gaussian_quantiles"] is None  # not simulated: nobody reads it
    assert some["a"]["quantiles"] == alone["a"]["quantiles"]


def test_per_column_quantiles_do_not_move_with_1e15_jitter_on_repeated_values():
    """40% of each column's values repeat one value (the median); float sums taken in another
    order scatter such repeats by ~1e-16 of the scale: they stay ties (TIE_TOLERANCE)."""
    rng = np.random.default_rng(0)
    x = rng.standard_t(3, (1000, 200))
    x[rng.random(x.shape) < 0.4] = 0.25
    jittered = x + 1e-15 * rng.standard_normal(x.shape)
    plain = np.percentile(column_alpha(x), (5, 50, 95))
    moved = np.percentile(column_alpha(jittered), (5, 50, 95))
    assert plain[0] > 1.0  # the repeats are left out, not read as a tail
    np.testing.assert_allclose(moved, plain, atol=0.02)
