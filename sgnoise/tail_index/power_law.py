"""Is a column's tail a power law at all? Clauset, Shalizi & Newman's test, for many columns.

A Hill exponent at one number of order statistics k is a verdict only if it
does not change with k (trap 5 of the README). This module gives a verdict that
does not take k from the user: for each column of non-negative values x (e.g.
the |centred| per-example gradients of one coordinate), following Clauset,
Shalizi & Newman (2009, CSN below):

1. **Fit with an estimated x_min** (CSN section 3.3). For each candidate tail
   size k (the tail is the k largest values, x_min the smallest of them), the
   maximum-likelihood exponent of a continuous power-law density
   p(x) ~ x^-a above x_min (CSN eq. 3.1),

       a - 1 = xi = k / sum_{i <= k} log(x_(i) / x_min) ,

   and the Kolmogorov-Smirnov distance between the tail's empirical CDF and
   the fitted one, D = max_i |S(x_i) - P(x_i)| (S as CSN's reference code and
   the ``powerlaw`` package compute it: the share of tail values below x_i).
   The k of the smallest D is kept. ``xi`` is the tail exponent,
   P(X > x) ~ x^-xi (finite variance iff xi > 2), the same quantity as
   :mod:`sgnoise.per_example`'s Hill exponent (CSN's fit is Hill's estimate
   at k - 1 order statistics, scaled by (k - 1)/k).
2. **Goodness of fit** (CSN section 4.1): a semi-parametric bootstrap. Each
   synthetic sample has the column's size m; each of its values is, with
   probability k/m, a draw from the fitted power law above x_min, and
   otherwise a draw from the column's own values below x_min. It is fitted
   the same way (x_min searched again) and p = the share of synthetic samples
   whose D is at least the column's. CSN call the power law plausible when
   p >= 0.1 (:data:`PLAUSIBLE`).
3. **Against a lognormal tail** (CSN section 5): Vuong's normalised
   log-likelihood ratio between the fitted power law and the
   maximum-likelihood lognormal truncated at the same x_min, R = sum_i
   (log p_pl(x_i) - log p_ln(x_i)) over the tail, and its two-sided p-value
   erfc(|R| / sqrt(2 k var)) (CSN eq. 5.4, as ``powerlaw``'s
   ``distribution_compare``). R < 0 with p < 0.1 favours the lognormal: a tail
   that bends on a log-log plot, whose every moment is finite.

**Verdict.** A column has *infinite variance* when the lognormal is not
favoured and the exponent at the x_min the data chose is below 2
(:attr:`PowerLawTails.infinite_variance`): a best guess of the side of 2, at a
k that no one picked. Its interval is reported beside it; "credibly below 2"
(its upper end, as the Hill verdict of :mod:`sgnoise.per_example` requires)
would call only about half of Pareto(1.8) columns of 8,000 values infinite
(``bench/validate_power_law.py``). The goodness-of-fit p-value does not enter
the call: under a true power law it is about uniform, so a call that required
p >= 0.1 would miss about 10% of Pareto columns by construction; it is
reported as the share of columns whose tail is a plausible power law at all.

**Candidate tail sizes.** k runs over :data:`CANDIDATES` sizes spaced
geometrically from :data:`K_LOW` to K_SPAN sqrt(m) = 8 sqrt(m) (twice the
largest k of the Hill plot), not over every value of the column as in CSN: the
search then costs O(sqrt(m)) per column instead of O(m^2), and a synthetic
sample needs only its sqrt(m)-order largest values, drawn directly (the order
statistics of exponentials, Renyi's representation; of uniforms for the
resampled body) without drawing and sorting m values. A power law whose range
starts deeper in the body is still a power law over the top 8 sqrt(m)
values, so the verdict is the same; its exponent is less precise than with
every value (at 4 sqrt(m), only 91% of Pareto(1.8) columns of 8,000 values
were called infinite, 98% at 8 sqrt(m)). ``k_span=None`` and
``candidates=None`` search every k from K_LOW to m (as CSN), for comparisons
on small samples.

The interval of xi: above x_min, the k - 1 values log(x_(i)/x_min) of a Pareto
tail are k - 1 i.i.d. exponentials of mean 1/xi, so xi k / xi-hat ~ Gamma(k - 1)
(exact given x_min; as Hill's Gamma interval).

``powerlaw`` itself (Alstott et al. 2014) fits every candidate x_min by a Python
loop (19 s for one column of 8,000 values on this project's machine, and no
bootstrap), and by default only exponents xi < 2 (``alpha`` in (0, 3)): it is
the reference the tests compare the fit and the likelihood ratio with.

References
----------
Clauset, Shalizi & Newman, "Power-law distributions in empirical data", SIAM
Review 51 (2009) 661-703.
Vuong, "Likelihood ratio tests for model selection and non-nested
hypotheses", Econometrica 57 (1989) 307-333.
Alstott, Bullmore & Plenz, "powerlaw: a Python package for analysis of
heavy-tailed distributions", PLoS ONE 9 (2014) e85777 (the reference the tests
compare with).
Renyi, "On the theory of order statistics", Acta Math. Acad. Sci. Hungar. 4
(1953) 191-231.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from numbers import Integral

import numpy as np
from scipy import special

from sgnoise import threads
from sgnoise.tail_index.classical import largest
from sgnoise.tail_index.common import check_level, ties

#: Smallest tail size fitted (CSN's fits of fewer values are too noisy to tell anything).
K_LOW = 10
#: Largest candidate tail size, in units of sqrt(m) (m: the column's values).
K_SPAN = 8.0
#: Candidate tail sizes between K_LOW and K_SPAN sqrt(m) (geometric grid).
CANDIDATES = 16
#: Synthetic samples of the goodness-of-fit bootstrap (p resolution 1/BOOTSTRAP).
BOOTSTRAP = 50
#: CSN's threshold: the power law is plausible when its bootstrap p-value is at least this,
#: and the lognormal is favoured when Vuong's p-value is below it (with R < 0).
PLAUSIBLE = 0.1
#: Column-replicates drawn from one random stream in the bootstrap (part of its definition:
#: another value draws other synthetic samples).
_BLOCK_COLUMNS = 4096
#: Columns (or column-replicates) whose candidates are searched at once: bounds the
#: temporaries (K x this many values; numbers do not depend on it).
_SEARCH_COLUMNS = 512
#: Rows of a bootstrap block's synthetic samples drawn, or looked up, at once: bounds the
#: temporaries beside the block's output (numbers do not depend on it).
_ROWS = 64
#: Grid of a = (mu - log x_min) / sigma of the truncated lognormal's profile likelihood.
_A_GRID = np.concatenate([-np.geomspace(400, 0.05, 160), np.linspace(0, 12, 60)])
_GOLDEN = 40  # golden-section steps refining the profile's maximum


@dataclass(frozen=True, eq=False)
class PowerLawTails:
    """Per-column power-law tail fits and tests (see the module docstring).

    Attributes
    ----------
    exponent, lower, upper : ndarray, shape (n_columns,)
        xi-hat = a-hat - 1 at the chosen x_min and its interval at ``level``; NaN
        where not fitted.
    xmin : ndarray
        The estimated x_min (NaN where not fitted).
    n_tail : ndarray of int64
        k, the values at or above x_min (0 where not fitted).
    distance : ndarray
        The KS distance D of the fit.
    p_value : ndarray
        Share of the bootstrap's synthetic samples with a distance >= D.
    lr, lr_p : ndarray
        Vuong's log-likelihood ratio R (power law minus lognormal; > 0 favours
        the power law) and its two-sided p-value.
    fitted : ndarray of bool
        Columns with at least 2 K_LOW usable values.
    m : ndarray of int64
        Each column's sample size (its values that were fitted from).
    level : float
    """

    exponent: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    xmin: np.ndarray
    n_tail: np.ndarray
    distance: np.ndarray
    p_value: np.ndarray
    lr: np.ndarray
    lr_p: np.ndarray
    fitted: np.ndarray
    m: np.ndarray
    level: float

    @property
    def plausible(self) -> np.ndarray:
        """Columns whose power law is not rejected (bootstrap p >= PLAUSIBLE; False where
        no p-value was computed)."""
        return self.fitted & (self.p_value >= PLAUSIBLE)

    @property
    def tested(self) -> np.ndarray:
        """Columns with a bootstrap p-value."""
        return self.fitted & np.isfinite(self.p_value)

    @property
    def lognormal(self) -> np.ndarray:
        """Fitted columns where the lognormal tail is significantly more likely."""
        return self.fitted & (self.lr < 0) & (self.lr_p < PLAUSIBLE)

    @property
    def infinite_variance(self) -> np.ndarray:
        """Fitted columns not better described by a lognormal whose exponent is below 2."""
        return self.fitted & ~self.lognormal & (self.exponent < 2)

    def select(self, columns: slice | np.ndarray) -> PowerLawTails:
        """The fits of some columns only (e.g. one layer's)."""
        arrays = {f.name: getattr(self, f.name)[columns] for f in fields(self) if f.name != "level"}
        return PowerLawTails(**arrays, level=self.level)


def _largest_candidate(m: np.ndarray, k_span: float | None) -> np.ndarray:
    """Each column's largest candidate tail size (0 where fewer than 2 K_LOW are possible)."""
    high = m if k_span is None else np.minimum(m, np.floor(k_span * np.sqrt(m)).astype(np.int64))
    return np.where(high >= 2 * K_LOW, high, 0)


def _candidates(high: int, candidates: int | None) -> np.ndarray:
    """Candidate tail sizes from K_LOW to ``high``: geometric, or every one (None)."""
    if candidates is None:
        return np.arange(K_LOW, high + 1, dtype=np.int64)
    return np.unique(np.geomspace(K_LOW, high, candidates).astype(np.int64))


def _search(logs: np.ndarray, high: np.ndarray, sizes: np.ndarray):
    """Best candidate of every column of ``logs`` (K x C, each column's log values in
    decreasing order): (k, gamma = 1/xi, D), k = 0 and D = inf where no candidate fits.

    ``high[c]``: column c's largest candidate; ``sizes``: the candidates (ascending).
    Columns are searched :data:`_SEARCH_COLUMNS` at a time (each on its own: the same
    numbers, temporaries of K x _SEARCH_COLUMNS).
    """
    starts = range(0, max(1, logs.shape[1]), _SEARCH_COLUMNS)
    parts = [_search_columns(logs[:, a : a + _SEARCH_COLUMNS], high[a : a + _SEARCH_COLUMNS],
                             sizes) for a in starts]  # fmt: skip
    return tuple(np.concatenate(part) for part in zip(*parts, strict=True))


def _search_columns(logs: np.ndarray, high: np.ndarray, sizes: np.ndarray):
    """:func:`_search` of a few columns."""
    n_cols = logs.shape[1]
    best_d = np.full(n_cols, np.inf)
    best_k = np.zeros(n_cols, np.int64)
    best_g = np.full(n_cols, np.nan)
    sums = _leading_sums(logs, sizes)
    for k in sizes.tolist():
        live = high >= k
        if not live.any():
            break
        cols = slice(None) if live.all() else np.flatnonzero(live)
        floor = logs[k - 1, cols]
        gamma = sums[k][cols] / k - floor
        model = np.subtract(logs[:k, cols], floor)  # the excesses, then in place:
        np.negative(model, out=model)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(model, gamma, out=model)
            np.expm1(model, out=model)
        np.negative(model, out=model)  # the model's CDF, -expm1(-excess / gamma)
        empirical = (np.arange(k - 1, -1, -1) / k)[:, None]
        gap = np.subtract(model, empirical)  # in float64 (empirical's), as model - empirical
        d = np.abs(gap, out=gap).max(axis=0)
        d[~(gamma > 0)] = np.inf
        better = d < best_d[cols]
        index = np.arange(n_cols)[cols][better]
        best_d[index], best_k[index], best_g[index] = d[better], k, gamma[better]
    return best_k, best_g, best_d


def _leading_sums(logs: np.ndarray, sizes: np.ndarray) -> dict[int, np.ndarray]:
    """The sum of the first k rows of every column of logs, for each k in ``sizes``
    (ascending): a cumulative sum's rows k - 1 (the same additions in the same order, in
    logs' dtype), added row by row, without its array or its passes down strided columns."""
    sums, running, done = {}, logs[0].copy(), 1
    for k in sizes.tolist():
        for row in logs[done:k]:
            running += row
        done = max(done, k)
        sums[k] = running.copy()
    return sums


def _synthetic(logs, m, stored, k, gamma, reps: int, depth: int, rng: np.random.Generator):
    """The ``depth`` largest log-values of ``reps`` synthetic samples of every column
    (CSN's semi-parametric bootstrap), shape (depth, C * reps), column c's in c * reps ...

    Of m values, N ~ Binomial(m, k/m) come from the power law above x_min = exp(logs[k-1]):
    their largest are log x_min + gamma (E + sum_{j >= i} Z_j / j) (Renyi), E the log of
    the (depth + 1)-th largest of N exponentials' worth of Pareto (0 when N <= depth);
    the rest are the r = depth - N largest of m - N draws from the column's values below
    x_min, found from the r smallest of m - N uniforms (S_l / (S_r + Gamma(m - N + 1 - r))).

    The output is the only array of its size: the sums run row by row (the same additions
    in the same order as a cumulative sum, in float32), the body's exponentials are drawn
    :data:`_ROWS` rows at a time (the same stream as one draw) and their running sums S_l
    wait in the output's body rows (whose power-law values are never used) until the
    Gamma draws give each sample's S_r + Gamma, then become the looked-up body values.
    """
    cols = np.repeat(np.arange(logs.shape[1]), reps)
    m, stored, k, gamma = m[cols], stored[cols], k[cols], gamma[cols]
    n_pl = rng.binomial(m, k / m)
    top = np.minimum(n_pl, depth)
    first = int(top.min())  # rows from here on may hold body values
    out = rng.standard_exponential((depth, cols.size), np.float32)  # Z, then the output
    for i in range(depth - 1, -1, -1):  # sum_{j >= i} Z_j / j over j <= top, from the bottom
        row = out[i]
        row /= np.float32(i + 1)
        if i >= first:
            row[top <= i] = 0  # row i + 1 (1-based) is beyond the sample's power-law values
        if i + 1 < depth:
            row += out[i + 1]
    beyond = n_pl > depth
    threshold = np.zeros(cols.size)
    threshold[beyond] = -np.log(rng.beta(depth + 1, n_pl[beyond] - depth))
    out += threshold.astype(np.float32)
    out *= gamma.astype(np.float32)
    out += logs[k - 1, cols].astype(np.float32)  # log x_min
    if first == depth:
        return out
    rest = m - n_pl
    running = np.zeros(cols.size, np.float32)
    draws = np.empty((_ROWS, cols.size), np.float32)
    for a in range(first, depth, _ROWS):  # S_l at the l-th body row of each sample, kept in out
        s = draws[: min(_ROWS, depth - a)]
        rng.standard_exponential(dtype=np.float32, out=s)
        below = np.arange(a + 1, a + 1 + len(s))[:, None] > top
        s[~below] = 0
        for row in s:
            row += running  # running + row, as a cumulative sum adds
            running = row
        running = running.copy()
        np.copyto(out[a : a + len(s)], s, where=below)
    q = np.minimum(depth - top, rest)  # body values that are drawn at all among the rows
    need = q > 0
    total = np.full(cols.size, np.inf, np.float32)
    last = out[top[need] + q[need] - 1, np.flatnonzero(need)]
    total[need] = last + rng.standard_gamma(rest[need] + 1 - q[need])
    scale = (m - k).astype(np.float32)
    values = logs.T.astype(np.float32).ravel()  # column c's log-values at c * len(logs) ...
    offset = cols * len(logs)
    for a in range(first, depth, _ROWS):  # the look-ups, a few rows at a time
        body = out[a : a + _ROWS]
        below = np.arange(a + 1, a + 1 + len(body))[:, None] > top
        s = np.where(below, body, np.float32(0))
        rank = np.floor(s / total * scale).astype(np.int64)
        index = np.minimum(k + rank, stored - 1)  # beyond the stored values: the last
        np.copyto(body, values[index + offset], where=below)
    return out


def _truncated_lognormal(excess: np.ndarray, n: np.ndarray):
    """Maximum-likelihood normal on log x truncated at log x_min, per column: (mu, sigma)
    of the excesses e = log(x / x_min) >= 0 (rows beyond n[c] are ignored: zeros).

    From the sufficient statistics S1 = mean e, S2 = mean e^2: for a = mu / sigma, the
    likelihood's maximum over tau = 1/sigma is tau(a) = (a S1 + sqrt(a^2 S1^2 + 4 S2)) /
    (2 S2), which leaves a one-dimensional profile in a, maximised on a grid and refined
    by golden sections (vectorised over columns). As a -> -inf the truncated normal
    tends to the exponential (the power law), so the profile's maximum is at least the
    power law's likelihood up to the grid's edge.
    """
    s1 = excess.sum(axis=0) / n
    s2 = np.square(excess).sum(axis=0) / n

    def profile(a):
        tau = (a * s1 + np.sqrt(a * a * s1 * s1 + 4 * s2)) / (2 * s2)
        return np.log(tau) - 0.5 * s2 * tau * tau + a * s1 * tau - 0.5 * a * a - special.log_ndtr(a)

    values = np.stack([profile(np.full_like(s1, a)) for a in _A_GRID])
    best = np.argmax(values, axis=0)
    lo = _A_GRID[np.maximum(best - 1, 0)]
    hi = _A_GRID[np.minimum(best + 1, _A_GRID.size - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(_GOLDEN):
        c = hi - ratio * (hi - lo)
        d = lo + ratio * (hi - lo)
        left = profile(c) > profile(d)
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
    a = (lo + hi) / 2
    tau = (a * s1 + np.sqrt(a * a * s1 * s1 + 4 * s2)) / (2 * s2)
    return a / tau, 1 / tau


def _vuong(logs: np.ndarray, k: np.ndarray, gamma: np.ndarray):
    """Vuong's R (power law minus truncated lognormal) and its p-value, per fitted column."""
    depth = int(k.max())
    rows = np.arange(depth)[:, None]
    in_tail = rows < k
    floor = logs[k - 1, np.arange(k.size)]
    excess = np.where(in_tail, logs[:depth] - floor, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):  # S2 = 0 (a tail of ties): NaN
        mu, sigma = _truncated_lognormal(excess, k)
    power = -np.log(gamma) - excess / gamma
    lognormal = (
        -np.log(sigma)
        - 0.5 * np.square((excess - mu) / sigma)
        - 0.5 * np.log(2 * np.pi)
        - special.log_ndtr(mu / sigma)
    )
    diff = np.where(in_tail, power - lognormal, 0.0)
    r = diff.sum(axis=0)
    var = np.where(in_tail, np.square(diff - r / k), 0.0).sum(axis=0) / k
    with np.errstate(divide="ignore", invalid="ignore"):
        p = special.erfc(np.abs(r) / np.sqrt(2 * k * var))
    return r, np.where(var > 0, p, 1.0)


def power_law_tails(x, *, counts=None, k_span: float | None = K_SPAN, **options) -> PowerLawTails:
    """CSN's power-law fit, bootstrap goodness of fit and lognormal comparison of every column.

    Parameters
    ----------
    x : array_like, shape (n, n_columns)
        Non-negative, finite values (e.g. |per-example gradient - its mean|).
    counts : array_like of int, shape (n_columns,), optional
        m, the values of each column that are its sample: its m largest (the
        others, e.g. the atom of a mostly-zero column, are left out). Default:
        the values that are not ties with 0
        (:data:`~sgnoise.tail_index.common.TIE_TOLERANCE`).
    k_span : see the module docstring ("Candidate tail sizes").
    **options
        ``bootstrap``, ``bootstrap_columns``, ``candidates``, ``seed``, ``level``:
        see :func:`power_law_tails_of_top`.

    Returns
    -------
    PowerLawTails
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 2 * K_LOW:
        raise ValueError(
            f"x must be 2-D with >= {2 * K_LOW} rows (values) per column, got shape {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if not np.isfinite(x).all() or (x < 0).any():
        raise ValueError("x must be finite and non-negative (magnitudes)")
    if counts is None:
        m = np.count_nonzero(~ties(x), axis=0)
    else:
        m = np.asarray(counts, np.int64)
    if m.shape != (x.shape[1],) or (m < 0).any() or (m > x.shape[0]).any():
        raise ValueError(f"counts must be {x.shape[1]} integers in [0, {x.shape[0]}]")
    depth = min(x.shape[0], int(2 * _largest_candidate(m, k_span).max()) + 8)
    top = largest(x, np.full(x.shape[1], depth))  # x >= 0: its own largest values
    return power_law_tails_of_top(top, m, k_span=k_span, **options)


def stored_depth(m: np.ndarray, k_span: float | None = K_SPAN) -> np.ndarray:
    """How many of its largest values :func:`power_law_tails_of_top` needs of a column of m
    values: the largest candidate tail size, twice (the bootstrap's body draws), and 8."""
    return np.minimum(m, 2 * _largest_candidate(m, k_span) + 8)


def power_law_tails_of_top(
    top: np.ndarray,
    m,
    *,
    bootstrap: int = BOOTSTRAP,
    bootstrap_columns: int | None = None,
    k_span: float | None = K_SPAN,
    candidates: int | None = CANDIDATES,
    seed: int = 0,
    level: float = 0.95,
) -> PowerLawTails:
    """:func:`power_law_tails` from each column's largest values alone: ``top[:, c]`` holds
    column c's :func:`stored_depth` largest values in decreasing order (NaN or 0 below),
    ``m[c]`` its number of values (as selected by :func:`sgnoise.tail_index.classical.largest`,
    without a copy of the whole matrix).

    Parameters
    ----------
    bootstrap : int
        Synthetic samples per column for the p-value (0: no p-value, NaN).
    bootstrap_columns : int, optional
        The p-value of at most this many fitted columns, a seeded uniform sample
        (NaN for the others): the bootstrap costs ``bootstrap`` fits per column.
        Default: every fitted column.
    k_span, candidates : see the module docstring ("Candidate tail sizes").
    seed : int
        Seed of the bootstrap and of the column sample.
    level : float
        Confidence level of the exponent's interval.
    """
    for value, name in ((bootstrap, "bootstrap"), (bootstrap_columns or 0, "bootstrap_columns")):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value}")
    level = check_level(level)
    m = np.asarray(m, np.int64)
    n_cols = top.shape[1]
    out = {name: np.full(n_cols, np.nan) for name in _KEYS}
    k = np.zeros(n_cols, np.int64)
    high = _largest_candidate(m, k_span)
    if not high.any():
        return PowerLawTails(**out, n_tail=k, fitted=k > 0, m=m, level=level)
    sizes = _candidates(int(high.max()), candidates)
    stored = np.minimum(stored_depth(m, k_span), top.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(np.isnan(top), 0.0, top).astype(np.float64, copy=False)
        np.log(logs, out=logs)  # in place: one array of top's size, not three
    k, gamma, d = _search(logs, high, sizes)
    f = np.flatnonzero(k > 0)
    if f.size:
        kf, gf = k[f], gamma[f]
        out["exponent"][f] = 1 / gf
        total = kf * gf  # the sum of the k - 1 log-excesses above x_min
        out["lower"][f] = special.gammaincinv(kf - 1, (1 - level) / 2) / total
        out["upper"][f] = special.gammaincinv(kf - 1, (1 + level) / 2) / total
        out["xmin"][f] = np.exp(logs[kf - 1, f])
        out["distance"][f] = d[f]
        out["lr"][f], out["lr_p"][f] = _vuong(logs[: kf.max(), f], kf, gf)  # rows < k
    rng = np.random.default_rng(seed)
    if bootstrap_columns is not None and f.size > bootstrap_columns:
        f = np.sort(rng.choice(f, bootstrap_columns, replace=False))
    if bootstrap and f.size:
        out["p_value"][f] = _p_values(
            logs[:, f], m[f], stored[f], high[f], k[f], gamma[f], d[f], sizes, bootstrap, rng
        )
    return PowerLawTails(**out, n_tail=k, fitted=k > 0, m=m, level=level)


_KEYS = ("exponent", "lower", "upper", "xmin", "distance", "p_value", "lr", "lr_p")


def _p_values(logs, m, stored, high, k, gamma, d, sizes, reps: int, rng) -> np.ndarray:
    """The bootstrap p-value of each column: blocks of columns, each with its own stream
    (spawned from ``rng``), on the worker threads."""
    step = max(1, _BLOCK_COLUMNS // reps)
    blocks = [slice(a, a + step) for a in range(0, logs.shape[1], step)]
    streams = rng.spawn(len(blocks))

    def block(c: slice, stream) -> np.ndarray:
        depth = int(high[c].max())
        synthetic = _synthetic(logs[:, c], m[c], stored[c], k[c], gamma[c], reps, depth, stream)
        _, _, d_syn = _search(synthetic, np.repeat(high[c], reps), sizes)
        return (d_syn.reshape(-1, reps) >= d[c][:, None]).mean(axis=1)

    jobs = (functools.partial(block, c, s) for c, s in zip(blocks, streams, strict=True))
    return np.concatenate(list(threads.in_order(jobs)))
