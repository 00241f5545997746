"""Hill, Pickands, moment and McCulloch: the classical estimators, to compare with Mohammadi's."""

from __future__ import annotations

import functools
import warnings

import numpy as np
from scipy import special

from sgnoise import threads
from sgnoise.tail_index.common import check_level

#: Columns :func:`largest` selects from at once, and the step of its row sample.
SELECT_COLUMNS, SELECT_STEP = 8, 32


def largest(x, counts, *, centre=None, dtype=None) -> np.ndarray:
    """The ``counts[c]`` largest |x[:, c] - centre[c]| of every column c, in decreasing order.

    Returns a (max(counts), n_columns) array (``dtype``, default x's float dtype) whose
    column c holds them in its first counts[c] rows (NaN below): exactly the top of the
    column's full sort, without the full sort. Columns are taken
    :data:`SELECT_COLUMNS` at a time (in cache); a column's threshold is the (2 count /
    s + 2)-th largest value of every s-th row (s = :data:`SELECT_STEP`), so that about 2
    count + 2 s values pass it, and only those are sorted. A column with fewer than
    count values at or above its threshold is sorted whole (rarely: about count / s
    values of the sample lie above the column's count-th largest, and 2 count / s + 2
    would have to). Ties and the atom at |0 - centre| of mostly-zero columns cost
    nothing (np.partition slows down on them). O(n) per column; groups of columns run on
    the process's worker threads (:mod:`sgnoise.threads`).

    Parameters
    ----------
    x : ndarray, shape (n, n_columns)
        Finite values: a NaN is in no order, and whether it is among a column's result
        depends on the row sample (callers check first: per-example gradients, and
        :func:`sgnoise.tail_index.estimate_alpha`'s samples; :func:`hill` and
        :func:`moment` called directly on values with a NaN may skip it and return a number).
    counts : array_like of int, shape (n_columns,)
        How many values of each column, at most n (0: none).
    centre : ndarray, shape (n_columns,), optional
        Subtracted from each column first, in x's dtype (default: nothing).
    dtype : optional
        The result's dtype (the values are exact in any wider one).
    """
    x = np.asarray(x)
    counts = np.asarray(counts, np.int64)
    if dtype is None:
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    top = np.full((int(counts.max(initial=0)), x.shape[1]), np.nan, dtype)
    starts = range(0, x.shape[1], SELECT_COLUMNS)
    jobs = (functools.partial(_largest_of_block, x, centre, counts, top, a) for a in starts)
    for _ in threads.in_order(jobs):
        pass
    return top


def _largest_of_block(x, centre, counts: np.ndarray, top: np.ndarray, first: int) -> None:
    """:func:`largest` of the SELECT_COLUMNS columns from ``first`` on, written into top."""
    n = x.shape[0]
    cols = slice(first, first + SELECT_COLUMNS)
    wanted = counts[cols]
    if not wanted.any():
        return
    values = np.abs(x[:, cols] if centre is None else x[:, cols] - centre[cols])
    sample = np.sort(values[:: SELECT_STEP if n >= 64 * SELECT_STEP else 1], axis=0)
    rank = np.minimum(len(sample), -(-2 * wanted * len(sample) // n) + 2)
    threshold = sample[len(sample) - rank, np.arange(values.shape[1])]
    for j, count in enumerate(wanted.tolist()):
        if count:
            column = values[:, j]
            passed = column[column >= threshold[j]]
            passed = passed if passed.size >= count else column
            top[:count, first + j] = np.sort(passed)[::-1][:count]


def _top(x: np.ndarray, k: int) -> np.ndarray:
    """The k + 1 largest |x| along axis 0 (all of them if fewer), in decreasing order, in the
    shape of x's other axes: :func:`largest` of its slices."""
    count = min(k + 1, x.shape[0])
    flat = x.reshape(x.shape[0], -1)
    return largest(flat, np.full(flat.shape[1], count)).reshape(count, *x.shape[1:])


def default_k(n: int, k: int | None, low: int, high: int, name: str) -> int:
    """k, by default floor(sqrt(n)), checked to be an integer in [low, high]."""
    k = int(np.sqrt(n)) if k is None else k
    if int(k) != k or not low <= k <= high:
        raise ValueError(f"k must be an integer in [{low}, {high}] for {name}, got {k}")
    return int(k)


def _along(x, axis: int | None) -> np.ndarray:
    """x with its samples along axis 0 (all of them, flattened, for axis None)."""
    x = np.asarray(x)
    return x.ravel() if axis is None else np.moveaxis(x, axis, 0)


def _scalar(value: np.ndarray):
    """A float for a 0-d result, the array otherwise."""
    return float(value) if np.ndim(value) == 0 else value


def log_excess_moments(top_values: np.ndarray, k) -> tuple[np.ndarray, np.ndarray]:
    """M1 and M2 of the log-excesses log X_(i) - log X_(k+1), i <= k, of each column.

    ``top_values`` holds each column's decreasing order statistics X_(1) >= X_(2)
    >= ... along axis 0, at least k + 1 of them (values below a column's
    X_(k+1) are not used and may be NaN); ``k`` is one int or one per column
    (>= 1). M_j = (1/k) sum_{i<=k} (log X_(i) - log X_(k+1))^j.
    """
    k = np.asarray(k)
    top_k = int(k.max())
    with np.errstate(divide="ignore"):  # zeros and NaN below a column's k: never used
        logs = np.log(top_values[:top_k])
    at_k = np.broadcast_to(k, top_values.shape[1:])[None, ...]
    threshold = np.log(np.take_along_axis(top_values, at_k, axis=0)[0])
    in_tail = np.arange(top_k).reshape(-1, *(1,) * (top_values.ndim - 1)) < k
    excess = np.where(in_tail, logs - threshold, 0.0)
    return excess.sum(axis=0) / k, np.square(excess).sum(axis=0) / k


def moment_gamma(m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """gamma_M = M1 + 1 - 1 / (2 (1 - M1^2 / M2)): Dekkers, Einmahl & de Haan (1989), eq. (1.7)."""
    with np.errstate(divide="ignore"):
        return m1 + 1 - 0.5 / (1 - m1 * m1 / m2)


def hill(x, k: int | None = None, *, axis: int | None = None):
    """gamma = 1/alpha: Hill (1975) on the k largest |x| along ``axis`` (default k = sqrt(N)).

    ``axis=None``: all values of x, flattened (a float); an int: each slice
    along that axis on its own (an array of the other axes' shape).
    """
    x = _along(x, axis)
    k = default_k(x.shape[0], k, 1, x.shape[0] - 1, "hill")
    return _scalar(log_excess_moments(_top(x, k), k)[0])


def hill_interval(gamma: np.ndarray, k, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The interval of the exponent 1/gamma at ``level``, from Hill's gamma on k log-excesses.

    Above the threshold a Pareto tail makes the k log-excesses i.i.d.
    exponential with mean gamma (Renyi's representation), so k gamma_H / gamma
    ~ Gamma(k, 1); the exponent's interval is [G_{(1-level)/2}, G_{(1+level)/2}]
    / (k gamma_H), G_p the Gamma(k) quantiles (exact for a Pareto tail).
    """
    level = check_level(level)
    return (
        special.gammaincinv(k, (1 - level) / 2) / (k * gamma),
        special.gammaincinv(k, (1 + level) / 2) / (k * gamma),
    )


def pickands(x, k: int | None = None, *, axis: int | None = None):
    """xi = 1/alpha: Pickands (1975) on |x|, from the k-th, 2k-th and 4k-th largest (along
    ``axis``, as for :func:`hill`)."""
    x = _along(x, axis)
    k = default_k(x.shape[0], k, 1, x.shape[0] // 4, "pickands")
    s = _top(x, 4 * k)
    return _scalar(np.log((s[k - 1] - s[2 * k - 1]) / (s[2 * k - 1] - s[4 * k - 1])) / np.log(2))


def moment(x, k: int | None = None, *, axis: int | None = None):
    """xi = 1/alpha: Dekkers, Einmahl & de Haan (1989), eq. (1.7), on the k largest |x| along
    ``axis``."""
    x = _along(x, axis)
    k = default_k(x.shape[0], k, 2, x.shape[0] - 1, "moment")
    return _scalar(moment_gamma(*log_excess_moments(_top(x, k), k)))


# McCulloch (1986), Table III: alpha = psi_1(nu_alpha, nu_beta); rows nu_alpha, columns nu_beta.
_NU_ALPHA = (2.439, 2.5, 2.6, 2.7, 2.8, 3.0, 3.2, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 25.0)
_NU_BETA = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
_PSI1 = np.array(
    [
        [2.000, 2.000, 2.000, 2.000, 2.000, 2.000, 2.000],
        [1.916, 1.924, 1.924, 1.924, 1.924, 1.924, 1.924],
        [1.808, 1.813, 1.829, 1.829, 1.829, 1.829, 1.829],
        [1.729, 1.730, 1.737, 1.745, 1.745, 1.745, 1.745],
        [1.664, 1.663, 1.663, 1.668, 1.676, 1.676, 1.676],
        [1.563, 1.560, 1.553, 1.548, 1.547, 1.547, 1.547],
        [1.484, 1.480, 1.471, 1.460, 1.448, 1.438, 1.438],
        [1.391, 1.386, 1.378, 1.364, 1.337, 1.318, 1.318],
        [1.279, 1.273, 1.266, 1.250, 1.210, 1.184, 1.150],
        [1.128, 1.121, 1.114, 1.101, 1.067, 1.027, 0.973],
        [1.029, 1.021, 1.014, 1.004, 0.974, 0.935, 0.874],
        [0.896, 0.892, 0.884, 0.883, 0.855, 0.823, 0.769],
        [0.818, 0.812, 0.806, 0.801, 0.780, 0.756, 0.691],
        [0.698, 0.695, 0.692, 0.689, 0.676, 0.656, 0.597],
        [0.593, 0.590, 0.588, 0.586, 0.579, 0.563, 0.513],
    ]
)


def mcculloch(x: np.ndarray) -> float:
    """alpha: McCulloch (1986) quantile estimator, bilinear in his Table III.

    nu_alpha = (q95 - q05) / (q75 - q25) and nu_beta = (q95 + q05 - 2 q50) /
    (q95 - q05); outside the table (nu_alpha < 2.439, the Gaussian's, or > 25)
    the table's edge is returned, with a warning.
    """
    q05, q25, q50, q75, q95 = np.quantile(x, (0.05, 0.25, 0.5, 0.75, 0.95))
    nu_alpha = (q95 - q05) / (q75 - q25)
    nu_beta = min(abs(q95 + q05 - 2 * q50) / (q95 - q05), 1.0)
    if not _NU_ALPHA[0] <= nu_alpha <= _NU_ALPHA[-1]:
        warnings.warn(
            f"mcculloch: nu_alpha = {nu_alpha:.3f} is outside McCulloch's table "
            f"[{_NU_ALPHA[0]}, {_NU_ALPHA[-1]}]; alpha is clipped to the table's edge",
            RuntimeWarning,
            stacklevel=3,
        )
    column = [np.interp(nu_alpha, _NU_ALPHA, _PSI1[:, j]) for j in range(len(_NU_BETA))]
    return float(np.interp(nu_beta, _NU_BETA, column))
