"""Alpha of every column on its own: :func:`column_alpha` and the quantiles of its estimates.

:func:`column_alpha` is Mohammadi's estimator (Mohammadi, Mohammadpour & Ogata
2015, Corollary 2.4, as in Simsekli et al. 2019) vectorised over columns
(``axis``); :func:`per_column_alpha` gives the quantiles of those estimates
beside the same for Gaussian columns of as many rows (the estimator's own
spread), :func:`per_column_alpha_by_block` of several blocks of columns at once.
A column needs :data:`MIN_COLUMN_ROWS` values (e.g. resampled minibatches,
:mod:`sgnoise.resample`) for its estimate to tell anything.

References
----------
Mohammadi, Mohammadpour & Ogata (2015), Metrika 78:549-561, Corollary 2.4.
Simsekli, Sagun & Gurbuzbalaban (2019), ICML, Section 3.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping

import numpy as np

from sgnoise import threads
from sgnoise.tail_index.common import check_int, check_seed, float_matrix, quantiles, ties

#: Fewest rows for the per-column estimates (about 32 blocks of 32 values each).
MIN_COLUMN_ROWS = 1000
_GATHER = 1 << 24  # values of one column chunk in column_alpha's block sums


def column_alpha(x, axis: int = 0, *, n_partitions: int = 16, seed: int = 0) -> np.ndarray:
    """Mohammadi's estimator of alpha on every column (or row) separately.

    Each column of M values is centred on its median (the centre of a
    symmetric law, and unlike the mean not dominated by one huge value) and,
    for each of P random partitions of the rows into K2 = M // K1 blocks of
    K1 = floor(sqrt(M)) rows (the M - K1 K2 rows left over differ between
    partitions),

        1/alpha_p = (mean_k log|Y_k| - mean_i log|X_i|) / log K1 ,

    with Y_k the block sums (Mohammadi et al. 2015, Corollary 2.4, as in
    Simsekli et al. 2019); the estimate is 1 / mean_p(1/alpha_p). The P
    partitions are the same for every column (each column alone sees
    uniformly random ones). Zeros are left out of the log means (the median
    of an odd M is one), and so are values within
    :data:`~sgnoise.tail_index.common.TIE_TOLERANCE` of the column's scale of
    the median (ties with it that float rounding scattered, set to 0 first);
    columns with fewer than M/2 nonzero values (constant ones) give NaN.
    Chunks of columns are estimated on the process's worker threads
    (:mod:`sgnoise.threads`).

    Parameters
    ----------
    x : array_like
        At least 16 values along ``axis`` (2-D: columns are estimated
        separately along ``axis``), finite.
    axis : int
        The axis along which the samples lie.
    n_partitions : int
        P >= 1.
    seed : int
        Seed of the partitions.

    Returns
    -------
    ndarray
        alpha-hat of each column (the shape of x without ``axis``),
        unclipped; ``inf`` where 1/alpha-hat <= 0.
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    m = x.shape[0]
    if m < 16:
        raise ValueError(f"x must have >= 16 values along axis {axis}, got {m}")
    n_partitions = check_int(n_partitions, "n_partitions", 1)
    check_seed(seed)
    rest = x.shape[1:]
    x = x.reshape(m, -1)
    if not np.isfinite(x).all():
        raise ValueError(f"x must be finite, got {x.size - np.isfinite(x).sum()} NaN or inf values")
    k1 = int(np.sqrt(m))
    k2 = m // k1
    rng = np.random.default_rng(seed)
    partitions = [rng.permutation(m)[: k1 * k2] for _ in range(n_partitions)]
    chunks = threads.column_chunks(x.shape[1], _GATHER // m)
    jobs = [
        functools.partial(_inverse_alpha_by_column, x[:, c], partitions, k1, k2) for c in chunks
    ]
    u = np.concatenate([np.empty(0), *threads.in_order(jobs)])
    with np.errstate(divide="ignore"):
        alpha = np.where(u > 0, 1 / u, np.inf)
    alpha[np.isnan(u)] = np.nan
    return alpha.reshape(rest)


def _inverse_alpha_by_column(x: np.ndarray, partitions, k1: int, k2: int) -> np.ndarray:
    """1/alpha-hat of each column of x (see :func:`column_alpha`)."""
    x = x - np.median(x, axis=0)
    x[ties(x)] = 0  # values within TIE_TOLERANCE of the median are ties with it, as zeros are
    nonzero = x != 0
    count = nonzero.sum(axis=0)
    with np.errstate(divide="ignore"):
        log_x = np.log(np.abs(x), where=nonzero, out=np.zeros_like(x))
    mean_log_x = log_x.sum(axis=0) / np.maximum(count, 1)
    total = np.zeros(x.shape[1])
    used = np.zeros(x.shape[1])
    for rows in partitions:
        y = np.abs(x[rows].reshape(k2, k1, -1).sum(axis=1))
        ok = y > 0  # an exactly cancelling block carries no information
        total += np.log(y, where=ok, out=np.zeros_like(y)).sum(axis=0) - ok.sum(axis=0) * mean_log_x
        used += ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = total / used / np.log(k1)
    u[(count < x.shape[0] / 2) | (used == 0)] = np.nan
    return u


def _estimated_quantiles(alphas: np.ndarray) -> dict[str, float]:
    """The quantiles of the estimates, NaN (constant columns) left out."""
    return quantiles(alphas[~np.isnan(alphas)])


@functools.lru_cache(maxsize=16)
def _gaussian_column_quantiles(n_rows: int, n_columns: int, seed: int) -> dict[str, float]:
    gauss = np.random.default_rng((seed, n_rows, n_columns)).standard_normal((n_rows, n_columns))
    return _estimated_quantiles(column_alpha(gauss, seed=seed))


def per_column_alpha(
    noise, *, max_columns: int = 4096, seed: int = 0
) -> dict[str, dict[str, float] | int] | None:
    """Quantiles of the per-column alpha, beside those of Gaussian columns of as many rows.

    Each column's alpha by :func:`column_alpha`. The Gaussian quantiles are
    the estimator's own spread (columns of one law, alpha = 2): per-column
    quantiles spread wider than them show a real spread of tail indices;
    shifted below them, heavier tails than Gaussian.

    Parameters
    ----------
    noise : array_like, shape (n_rows, n_columns)
        Finite. Rows are samples (e.g. :func:`sgnoise.resample.resampled_noise`'s
        minibatches).
    max_columns : int
        At most this many columns are estimated, drawn at random (seeded),
        and as many Gaussian columns.
    seed : int
        Seed of the column subset, the partitions and the Gaussian columns.

    Returns
    -------
    dict or None
        ``quantiles`` and ``gaussian_quantiles`` (dicts ``{"5": ..., "25":
        ..., "50": ..., "75": ..., "95": ...}``, constant columns left out),
        ``n_columns`` estimated and ``n_rows``; None if n_rows <
        :data:`MIN_COLUMN_ROWS` (the estimate of one column is then too
        noisy to tell anything) or no column is non-constant.
    """
    (spread,) = per_column_alpha_by_block(
        noise, {"all": slice(None)}, max_columns=max_columns, seed=seed
    ).values()
    return None if spread is None else {k: v for k, v in spread.items() if k != "alphas"}


def per_column_alpha_by_block(
    noise,
    blocks: Mapping[str, slice],
    *,
    max_columns: int = 4096,
    seed: int = 0,
    gaussian: Collection[str] | None = None,
) -> dict[str, dict[str, dict[str, float] | int] | None]:
    """:func:`per_column_alpha` of each block of columns of one matrix (e.g. of each layer's,
    and of all of them), each column estimated once.

    ``{name: per_column_alpha(noise[:, columns], max_columns=max_columns, seed=seed)}``
    for ``blocks = {name: columns}`` (a slice or an index array each): the column subsets
    are drawn block by block as there, and :func:`column_alpha` runs once on the union
    of the columns they keep (a column's estimate does not depend on the columns beside
    it). Each block's dict also holds ``alphas``, the estimates of its columns.
    ``gaussian``: the blocks whose ``gaussian_quantiles`` are wanted (default: all; the
    others get None): each is a simulation of as many Gaussian columns, tens of
    milliseconds for a block size not met before.
    """
    noise = float_matrix(noise, "noise")
    max_columns = check_int(max_columns, "max_columns", 1)
    check_seed(seed)
    n_rows, n_columns = noise.shape
    if n_rows < MIN_COLUMN_ROWS:
        return dict.fromkeys(blocks)
    picked = {}
    for name, columns in blocks.items():
        index = np.arange(n_columns)[columns]
        if index.size > max_columns:
            keep = np.random.default_rng(seed).choice(index.size, max_columns, replace=False)
            index = index[np.sort(keep)]
        picked[name] = index
    estimated = np.unique(np.concatenate([np.empty(0, np.intp), *picked.values()]))
    alphas = np.full(n_columns, np.nan)
    if estimated.size:  # column_alpha's float sums follow the memory layout: read the matrix
        # itself when every column is kept, else a gathered copy (as per_column_alpha always did)
        kept = noise if estimated.size == n_columns else noise[:, estimated]
        alphas[estimated] = column_alpha(kept, seed=seed)
    out = {}
    for name, index in picked.items():
        if np.isnan(alphas[index]).all():
            out[name] = None
            continue
        out[name] = {
            "quantiles": _estimated_quantiles(alphas[index]),
            "gaussian_quantiles": _gaussian_column_quantiles(n_rows, index.size, seed)
            if gaussian is None or name in gaussian
            else None,
            "n_columns": int(index.size),
            "n_rows": int(n_rows),
            "alphas": alphas[index],
        }
    return out
