"""Null levels of the default estimator in closed form: its expected 1/alpha on Gaussian columns.

The surrogates of :func:`sgnoise.tail_index.summarise_noise` answer "what would
the estimator give if each column were Gaussian with its own variance?".
Drawing such a matrix and estimating it costs as much as the estimate of the
noise itself, and answers with the estimator's sampling noise (sd 0.001-0.01).
For the default estimator (:class:`AlphaAccumulator`) and centred columns the
answer has a closed form up to one numerical integral, computed here from the
columns' standard deviations alone.

The estimator is 1/alpha-hat = (mean_pk log|Y_pk| - mean_i log|X_i|) / D, where
D = E[log n_k] (n_k ~ Binomial(N, 1/B), the values in a block; B blocks) is a
constant, so E[1/alpha-hat] = (E log|Y| - E log|X|) / D exactly. Every block
is the set of values whose atom lies in it: each of the N values is in it
with probability p = 1/B, independently. With column c (``rows`` values)
Gaussian with mean 0 and standard deviation s_c:

- E log|X| = mean over columns of log s_c + E log|z|, z one value of an
  exactly standardised Gaussian column of ``rows`` values (the surrogate's
  construction, :func:`sgnoise.tail_index.gaussian_surrogate`):
  z^2 / (rows - 1) ~ Beta(1/2, (rows - 2)/2), so
  E log|z| = (log(rows - 1) + psi(1/2) - psi((rows - 1)/2)) / 2.
- E log|Y| = (E log V) / 2 + E log|G| (G ~ N(0, 1)), V the sum of the block's
  variances s_c^2 (Y is Gaussian given which values are in the block), and
  E log V = int_0^inf (e^-t - E e^-tV) dt / t (Frullani), with
  E e^-tV = prod_c (1 - p + p e^(-t s_c^2))^rows, conditioned on a non-empty
  block. The integral is a trapezoid sum in log t (step STEP), and columns
  whose log s_c^2 agree to within BIN share one term at their mean variance:
  together within 1e-7 of a 10x finer evaluation, on gradient noise and on
  lognormal (sd 1-4) column scales.

Values of one column in one block are correlated (by -1/(rows - 1)): that
scales the block's variance by 1 - p on average, taken as a shift of
log(1 - p) in E log V (first order; p <= 1/64 for N >= 4,096). What is left
out: the block sum of an exactly standardised column's values is taken as
Gaussian given which values are in the block (a sum of ~sqrt(N) values from
mostly different columns). Against the mean of drawn surrogates over seeds
(``bench/validate_tail_index.py``) the difference is within their sd.

References
----------
Mohammadi, Mohammadpour & Ogata (2015), Metrika 78:549-561, Corollary 2.4.
Panigrahi, Somani, Goyal & Netrapalli (2019), arXiv:1910.09626 (the objection
the surrogate answers).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from sgnoise.tail_index.common import MIN_SAMPLES
from sgnoise.tail_index.streaming import design, expected_log_binomial

#: Step of the trapezoid sum in log t.
STEP = 0.5
#: Columns whose log variances agree to within BIN share one term.
BIN = 0.02
#: Columns count as centred when |mean| <= CENTRED * sd: the mean's effect on E log|Y|
#: is then below K * CENTRED^2 / 2 (K ~ sqrt(N) values per block), ~1e-5 for N = 1e7.
CENTRED = 1e-4
#: The sum starts at u = _LOG_T_START + min(0, log(E[V] / largest s_c^2)): below, the integrand
#: is -t^2 Var(V) / (2 E[V]^2) + O(t^3), and Var(V) <= E[V] * largest s_c^2, so what is left
#: out is below e^-24.
_LOG_T_START = -12.0
#: ... and ends by u = _LOG_T_STOP + max(0, log(E[V] / smallest s_c^2)), where every column's
#: term has saturated, unless the integrand is negligible before.
_LOG_T_STOP = 40.0
_NODES = 16  # values of t per evaluation
_NEGLIGIBLE = 1e-15
_LOG_ABS_GAUSSIAN = (special.digamma(0.5) + np.log(2)) / 2  # E log|G|, G ~ N(0, 1)


def log_abs_standardised(rows: int) -> float:
    """E log|z| for one value of an exactly standardised Gaussian column of ``rows`` values.

    z^2 / (rows - 1) ~ Beta(1/2, (rows - 2)/2), so |z| <= sqrt(rows - 1) and
    E log|z| = (log(rows - 1) + psi(1/2) - psi((rows - 1)/2)) / 2, above
    E log|G| = -0.635 by about 1 / (2 (rows - 1)).
    """
    return float((np.log(rows - 1) + special.digamma(0.5) - special.digamma((rows - 1) / 2)) / 2)


def _bins(std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(columns, mean variance) of the groups of columns whose log variances round alike (BIN)."""
    var = std.astype(np.float64) ** 2
    key = np.rint(np.log(var) / BIN).astype(np.int64)
    key -= key.min()
    count = np.bincount(key)
    used = np.flatnonzero(count)
    return count[used], np.bincount(key, var)[used] / count[used]


def _expected_log_variance(groups: list[tuple], rows: int, n_total: int) -> float:
    """E[log V | the block is not empty], V the block's sum of variances, p from ``n_total``.

    ``groups``: :func:`_bins` of each set of columns pooled in the estimate.
    The trapezoid sum runs in u = log(t E[V]), from where the part left out
    is below e^-24 (see _LOG_T_START) until e^-t and the integrand are below 1e-15.
    """
    p = 1 / design(n_total)[0]
    empty = (1 - p) ** n_total
    scale = p * rows * sum(float(count @ var) for count, var in groups)  # E[V]
    largest = max(float(var[-1]) for _, var in groups)
    smallest = min(float(var[0]) for _, var in groups)
    total, u = 0.0, _LOG_T_START + min(0.0, float(np.log(scale / largest)))
    while u < _LOG_T_STOP + max(0.0, float(np.log(scale / smallest))):
        t = np.exp(u + STEP * np.arange(_NODES))
        log_laplace = sum(
            rows * (np.log1p(p * np.expm1(-np.multiply.outer(t / scale, var))) @ count)
            for count, var in groups
        )
        integrand = np.exp(-t) - (np.exp(log_laplace) - empty) / (1 - empty)
        total += STEP * float(integrand.sum())
        if t[-1] > 36 and np.all(np.abs(integrand[-4:]) < _NEGLIGIBLE):  # e^-36 < 1e-15
            break
        u += _NODES * STEP
    return total + float(np.log(scale))


def inverse_alpha(stds: list[np.ndarray], rows: int) -> tuple[list[float], float]:
    """E[1/alpha-hat] on centred Gaussian columns with these sds, per group and pooled.

    Parameters
    ----------
    stds : list of ndarray
        Each group's (e.g. layer's) columns' standard deviations (> 0), of
        columns of ``rows`` values.
    rows : int
        Values per column, >= 2.

    Returns
    -------
    per_group : list of float
        1/alpha of each group's estimate alone (NaN below MIN_SAMPLES values).
    pooled : float
        1/alpha of the estimate over all groups' values.
    """
    e_z = log_abs_standardised(rows)
    bins = [_bins(s) if s.size else None for s in stds]
    sum_log_x = [float(np.log(s.astype(np.float64)).sum()) + s.size * e_z for s in stds]

    def one(groups: list[int]) -> float:
        groups = [g for g in groups if stds[g].size]
        n_cols = sum(stds[g].size for g in groups)
        n = rows * n_cols
        if n < MIN_SAMPLES:
            return float("nan")
        p = 1 / design(n)[0]
        # Values of one column in one block are correlated by -1/(rows - 1): that scales the
        # block's variance by 1 - p on average (E[m(m - 1)] = rows (rows - 1) p^2 for the m
        # values of a column in it), a shift of log(1 - p) in E log V to first order.
        log_v = _expected_log_variance([bins[g] for g in groups], rows, n) + np.log1p(-p)
        mean_log_x = sum(sum_log_x[g] for g in groups) / n_cols
        return (log_v / 2 + _LOG_ABS_GAUSSIAN - mean_log_x) / expected_log_binomial(n, p)

    return [one([g]) for g in range(len(stds))], one(list(range(len(stds))))
