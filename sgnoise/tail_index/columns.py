"""Per-column statistics of a noise matrix: :func:`standardise`, :func:`gaussian_surrogate`."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict

import numpy as np

from sgnoise import threads
from sgnoise.tail_index.common import as_float, check_finite, tie_tolerance_of, ties
from sgnoise.threads import in_order

_NORMAL_BLOCK = 1 << 18  # values per Gaussian stream of the surrogate (part of its definition)


def check_matrix(noise) -> np.ndarray:
    noise = as_float(noise)
    if noise.ndim != 2 or noise.shape[0] < 2:
        raise ValueError(f"noise must have shape (n_rows >= 2, n_coords), got {noise.shape}")
    return noise


def column_stats(
    m: np.ndarray, *, centred: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Column means, standard deviations (ddof 0) in m's dtype, non-constant and zero-free columns.

    Zero-free: no value within :func:`tie_tolerance_of` of 0 (exact zeros and the near-ties
    of :data:`~sgnoise.tail_index.common.TIE_TOLERANCE`, which the pooled estimators leave
    out).

    A column counts as constant if its standard deviation is within 100
    rounding errors of its mean (a constant column's float mean need not be
    exactly its value). Raises if m is not finite (seen in the means).
    Blocks of columns go to the worker threads. ``centred=False``: the centre
    is 0 and the scale the root mean square (noise known to have mean zero).
    """
    width = max(1, threads.CHUNK // m.shape[0])
    starts = range(0, max(1, m.shape[1]), width)
    blocks = in_order(functools.partial(_block_stats, m[:, c : c + width]) for c in starts)
    mean, std, nonzero = (np.concatenate(parts) for parts in zip(*blocks, strict=True))
    if not np.isfinite(mean).all():
        check_finite(m, "noise")
    varying = std > 100 * np.finfo(m.dtype).eps * np.abs(mean)
    if not centred:
        std = np.sqrt(np.square(std, dtype=np.float64) + np.square(mean, dtype=np.float64))
        mean, std = np.zeros_like(mean), std.astype(m.dtype)
    return mean, std, varying, nonzero


def _block_stats(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = m.mean(axis=0, dtype=np.float64).astype(m.dtype)
    if not np.isfinite(mean).all():  # NaN or inf in m: the caller raises
        return mean, mean, mean
    d = m - mean
    std = np.sqrt(np.einsum("ij,ij->j", d, d) / m.shape[0])
    return mean, std, ~ties(m, tolerance=tie_tolerance_of(mean, std)).any(axis=0)


def standardise(noise, *, centred: bool = True) -> tuple[np.ndarray, int]:
    """Each column centred and divided by its standard deviation across rows.

    Parameters
    ----------
    noise : array_like, shape (n_rows, n_coords)
        E.g. gradient noise, one row per minibatch. Finite, n_rows >= 2.
    centred : bool
        False: each column divided by its root mean square, not centred (noise
        whose mean is known to be zero, as resampled minibatch noise's is: its
        sample mean would be dominated by the extremes when alpha <= 1).

    Returns
    -------
    z : ndarray, shape (n_rows, n_kept)
        Columns with mean 0 and standard deviation 1 (ddof 0), float dtype of
        ``noise`` kept.
    n_dropped : int
        Constant columns (zero variance), left out.

    Notes
    -----
    A standardised column of n values is bounded, |z| <= sqrt(n - 1)
    (3.87 for n = 16), and its values are correlated (they sum to 0 and their
    squares to n). For Gaussian columns this barely moves the estimator:
    E log|z| differs from a Gaussian's by O(1/n^2), and the standardised
    Gaussian surrogate gives alpha ~= 2 (see :func:`summarise_noise`). For
    heavy-tailed columns it does: a column of n values cannot show a tail
    beyond sqrt(n - 1) of its own scale, so with few rows the
    standardised alpha is pulled towards 2.
    """
    noise = check_matrix(noise)
    mean, std, keep, _ = column_stats(noise, centred=centred)
    if not keep.all():
        noise, mean, std = noise[:, keep], mean[keep], std[keep]
    z = noise - mean
    z *= 1 / std  # as summarise_noise does it
    return z, int(keep.size - np.count_nonzero(keep))


_SURROGATES: OrderedDict[tuple, np.ndarray] = OrderedDict()  # (rows, cols, dtype, seed) -> matrix
_SURROGATES_LOCK = threading.Lock()
#: Bytes of standardised Gaussian matrices kept for reuse (128 MiB):
#: summarise_noise meets the same shapes at every checkpoint of a run.
_SURROGATE_BYTES = 1 << 27


def standardised_gaussian(shape: tuple[int, int], dtype, seed) -> np.ndarray:
    """Standard Gaussian matrix, each column standardised exactly (mean 0, std 1). Read-only.

    Rows come in blocks from independent streams (spawned from ``seed``),
    drawn on the worker threads. With a fixed seed the matrix is kept for
    reuse: the most recently used ones, up to :data:`_SURROGATE_BYTES` in all.
    """
    key = (*shape, np.dtype(dtype).str, seed)
    with _SURROGATES_LOCK:
        if seed is not None and key in _SURROGATES:
            _SURROGATES.move_to_end(key)
            return _SURROGATES[key]
    rows, cols = shape
    g = np.empty(shape, dtype)
    step = max(1, _NORMAL_BLOCK // max(cols, 1))
    starts = range(0, rows, step)
    streams = np.random.SeedSequence(seed).spawn(len(starts))
    fills = zip(starts, streams, strict=True)
    list(in_order(functools.partial(_fill_normal, g[r : r + step], s) for r, s in fills))
    if cols:
        mean, std, _, _ = column_stats(g)
        standardised = (
            functools.partial(_standardise_rows, g[r : r + step], mean, std) for r in starts
        )
        list(in_order(standardised))
    g.flags.writeable = False
    if seed is not None and g.nbytes <= _SURROGATE_BYTES:
        with _SURROGATES_LOCK:
            _SURROGATES[key] = g
            while sum(m.nbytes for m in _SURROGATES.values()) > _SURROGATE_BYTES:
                _SURROGATES.popitem(last=False)
    return g


def _fill_normal(out: np.ndarray, seed: np.random.SeedSequence) -> None:
    np.random.default_rng(seed).standard_normal(out.shape, out.dtype, out=out)


def _standardise_rows(rows: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
    rows -= mean
    rows /= std


def gaussian_surrogate(noise, *, seed: int | None = 0) -> np.ndarray:
    """Gaussian noise with the per-column means and variances of ``noise`` (the null control).

    A standard Gaussian matrix whose columns are standardised exactly, then
    scaled and shifted: every column has exactly the mean and the (ddof 0)
    variance of the same column of ``noise``; constant columns are copied. If
    each column of ``noise`` were i.i.d. Gaussian (any means and variances),
    it would have the same distribution as the surrogate given those column
    moments (they are sufficient, and the standardised column is uniform on
    its sphere, independent of them), so the estimator on the surrogate is
    the exact null level: how far from 2 pooling Gaussians of unequal scales
    alone takes alpha (the objection of Panigrahi et al. 2019). Columns are
    independent in the surrogate.

    Parameters
    ----------
    noise : array_like, shape (n_rows, n_coords)
        Finite, n_rows >= 2.
    seed : int or None
        Seed of the Gaussian draws: the first columns of the standardised
        Gaussian matrix of ``noise``'s shape drawn from it, one per
        non-constant column.

    Returns
    -------
    ndarray, same shape and float dtype as ``noise``.
    """
    noise = check_matrix(noise)
    mean, std, keep, _ = column_stats(noise)
    out = np.empty_like(noise)
    out[:] = mean
    z = standardised_gaussian(noise.shape, noise.dtype, seed)[:, : int(keep.sum())]
    out[:, keep] = z * std[keep] + mean[keep]
    return out
