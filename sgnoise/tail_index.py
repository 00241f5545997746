"""Tail-index (alpha) estimators for symmetric alpha-stable samples.

A symmetric alpha-stable law SaS(alpha) (Samorodnitsky & Taqqu 1994,
parameterisation S1 with beta = 0, the one ``scipy.stats.levy_stable`` uses by
default) has tail index alpha in (0, 2]: alpha = 2 is the Gaussian, alpha < 2
has power-law tails P(|X| > t) ~ t^-alpha.

Mohammadi, Mohammadpour & Ogata (2015), as used by Simsekli et al. (2019,
Corollary 2.4): a sum of K i.i.d. SaS(alpha) samples is K^(1/alpha) times one,
so with K2 = N / K block sums Y_k of K samples each

    1/alpha = (E log|Y| - E log|X|) / log K,

and the estimator replaces both expectations by sample means. Both means are
unbiased for any K >= 2, so 1/alpha-hat is unbiased (alpha-hat = 1 over it
only to second order); its variance is

    Var(1/alpha-hat) ~ [Var(log|Y|) / K2 + Var(log|X|) / N - 2 Cov] / log(K)^2.

The first term dominates (K2 ~ sqrt(N) blocks against N samples). The
default, ``"mohammadi_avg"`` (:class:`StreamingAlpha`), averages the estimator
over P = 32 random partitions of the same samples: they share the one mean of
log|X|, and their block-sum parts are nearly independent, so the first term
shrinks by up to P. What all partitions share (the "complete" U-statistic
over every partition) remains and dominates for heavy tails; hence a gain in
RMSE of 3x at alpha = 2 but little at alpha = 0.8.

Block size. For exact stable samples any K works and small K has the least
variance (``"mohammadi_median"``, whose block sizes start at 2, and McCulloch's
quantiles have the lowest RMSE on ``levy_stable`` samples). Gradient noise is
at best in a stable law's domain of attraction, where a sum of K values
approaches the stable law only as K grows and the estimate's bias shrinks
like 1/log K; there small blocks and the body's quantiles are biased further
(``bench/validate_tail_index.py``, second table). The default keeps the
original study's K ~ sqrt(N).

Order. The estimator assumes i.i.d. samples. Flattening a (minibatch x
parameter) noise matrix row by row puts correlated coordinates into one block
(softmax-layer gradients sum to zero over the classes), block sums cancel and
alpha comes out far above 2. No method here uses the given order by default:
``"mohammadi"`` and ``"mohammadi_median"`` shuffle (seeded) before cutting
consecutive blocks; ``"mohammadi_avg"`` gives every sample an i.i.d. uniform
label, a random partition whose law does not depend on the order at all (even
sorted samples), for the cost of one pass and no N-element permutation.

Reporting. Estimates are returned unclipped: values above 2 mean "no heavier
tail than a Gaussian" (Gaussian samples give estimates scattered around 2).
``estimate_alpha(..., clip=True)`` clips to (0, 2] on request. McCulloch's
quantile table ends at alpha = 2 (and about 0.5); that method returns the
table's edge there and warns. The tail estimators (Hill, Pickands, moment)
see no power tail in a Gaussian and return large values or ``inf`` there.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
import warnings
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np
from scipy import special

METHODS = (
    "mohammadi_avg",
    "mohammadi",
    "mohammadi_median",
    "hill",
    "pickands",
    "moment",
    "mcculloch",
)
#: Mohammadi averaged over 32 random partitions. On levy_stable samples of
#: N = 1e5 (20 per alpha, alpha in {0.8, 1, 1.2, 1.5, 1.8, 2}): |bias| <= 0.006
#: and RMSE <= 0.019, against RMSE up to 0.043 for one partition; 95% intervals
#: cover 0.95 of the time. The least biased block estimator on laws only
#: attracted to a stable law (module notes).
DEFAULT_METHOD = "mohammadi_avg"
MIN_SAMPLES = 100
#: Block sizes of Gurbuzbalaban, Simsekli & Zhu (2021) for ``"mohammadi_median"``.
MEDIAN_K1 = (2, 5, 10, 20, 50, 100, 500, 1000)
#: Methods with a cheap interval (delta method); the others bootstrap.
INTERVAL_METHODS = ("mohammadi_avg", "mohammadi")

_PARAMS = {
    "mohammadi_avg": ("n_partitions",),
    "mohammadi": ("k1",),
    "mohammadi_median": ("k1_list",),
    "hill": ("k",),
    "pickands": ("k",),
    "moment": ("k",),
    "mcculloch": (),
}
_CHUNK = 1 << 18  # samples per job (1 MB of float32 and 512 kB of labels)
_IN_FLIGHT = 4  # jobs queued beyond the one collected
_NORMAL_BLOCK = 1 << 18  # values per Gaussian stream of the surrogate (part of its definition)
_PARTITIONS = 32  # random partitions averaged by the default method
_ATOMS_PER_BLOCK = 16
_GROUPS = 16  # independent groups of samples, for the interval


class _Words:
    """Random 16-bit words from one seeded stream, the same however they are requested."""

    def __init__(self, seed_sequence: np.random.SeedSequence):
        self._bits = np.random.PCG64(seed_sequence)
        self._left = np.empty(0, np.uint16)

    def take(self, m: int) -> np.ndarray:
        need = m - self._left.size
        words = self._left
        if need > 0:
            fresh = self._bits.random_raw((need + 3) // 4).view(np.uint16)
            words = np.concatenate((words, fresh)) if words.size else fresh
        self._left = words[m:]
        return words[:m]

    def state(self) -> tuple:
        return self._bits.state, self._left

    def restore(self, state: tuple) -> None:
        self._bits.state, self._left = state


def _design(n: int) -> tuple[int, int, int]:
    """Blocks per partition (the power of two nearest sqrt(n)), groups, atoms per block."""
    n_blocks = 1 << int(np.clip(round(np.log2(n) / 2), 2, 16))
    return n_blocks, min(_GROUPS, n_blocks), max(1, min(_ATOMS_PER_BLOCK, (1 << 16) // n_blocks))


class StreamingAlpha:
    """The default estimator (``"mohammadi_avg"``) over data seen chunk by chunk.

    Two-stage random partitions. Every sample gets an i.i.d. uniform label
    among M = B * R "atoms" (one pass over the data; no N-element
    permutation), and only the M atom sums are kept, with running sums of
    log|X| and of its square: an estimate over 10^8 samples never holds a
    10^8-element array, and the result depends neither on the order of the
    samples nor on how they are cut into chunks (``estimate_alpha(x,
    seed=s)`` is this class fed ``x``). At :meth:`fit`, each of P partitions
    groups the atoms at random into B blocks of R atoms, whose block sums are
    sums of atom sums: P partitions cost P * M additions, not P passes.
    Updates run in jobs of 2^18 samples on worker threads (one per core, at
    most 4; numpy's log, sums and scatter release the GIL), summed in order.

    Block sizes n_k are then Binomial(N, 1/B); the estimate divides by their
    expected log,

        1/alpha-hat = sum_{p,k} (log|Y_pk| - mean log|X|) / E[sum_{p,k} log n_pk],

    which is exactly unbiased (the labels do not depend on the data) and
    saves counting; the variance this adds, about u^2 / (N log^2 K), is
    negligible. Exact zeros (e.g. float32 underflow) are samples in their
    blocks but have no log: they are left out of mean log|X|; more than 1% of
    them is an error (a stable law has no atom at 0).

    Atoms are nested in G = 16 groups shared by all partitions (a partition
    shuffles atoms only within groups: in group g it takes one atom from each
    of R rows of atoms, with a random cyclic shift per row). Groups are
    independent, so their spread gives the standard error (a delta method on
    the ratio, t quantiles with G - 1 degrees of freedom), to which the
    variance of mean log|X| is added.

    Parameters
    ----------
    n_total : int
        Expected number of samples; it sets B, the power of two nearest
        sqrt(n_total) (so K = N / B is within a factor sqrt(2) of sqrt(N)).
        Any other total is still estimated correctly.
    seed : int or None
        Seed of the atom labels and of the partitions.
    n_partitions : int
        P, default 32.

    References
    ----------
    Mohammadi, Mohammadpour & Ogata (2015), Metrika 78:549-561, Corollary 2.4.
    Simsekli, Sagun & Gurbuzbalaban (2019), ICML, Section 3 and Corollary 2.4.
    """

    def __init__(self, n_total: int, *, seed: int | None = 0, n_partitions: int = _PARTITIONS):
        if int(n_total) != n_total or n_total < MIN_SAMPLES:
            raise ValueError(f"n_total must be an integer >= {MIN_SAMPLES}, got {n_total}")
        if int(n_partitions) != n_partitions or n_partitions < 1:
            raise ValueError(f"n_partitions must be an integer >= 1, got {n_partitions}")
        self.n_blocks, self.n_groups, self.atoms_per_block = _design(int(n_total))
        self.n_partitions = int(n_partitions)
        self._labels, self._shuffles = np.random.SeedSequence(seed).spawn(2)
        self._words = _Words(self._labels)
        self._atoms = np.zeros(self.n_blocks * self.atoms_per_block)
        self._moments = np.zeros(4)  # samples, zeros, sum log|x|, sum log|x|^2

    @property
    def n_samples(self) -> int:
        """Samples seen so far."""
        return int(self._moments[0])

    def update(self, chunk) -> None:
        """Add samples (any shape, finite). On error nothing is added."""
        x = _as_float(chunk).ravel()
        try:
            _accumulate([self], [*range(0, x.size, _CHUNK), x.size], lambda a, b: [x[a:b]])
        except _NotFinite:
            _check_finite(x, "x")
            raise

    def block_sums(self) -> np.ndarray:
        """Block sums, shape (n_partitions, n_groups, blocks per group)."""
        g, r = self.n_groups, self.atoms_per_block
        per_group = self.n_blocks // g
        atoms = self._atoms.reshape(g, r, per_group)
        if per_group == 1:  # one block per group: every partition is the same
            return np.broadcast_to(atoms.sum(axis=1), (self.n_partitions, g, 1))
        shift = np.random.default_rng(self._shuffles).integers(
            0, per_group, (r, self.n_partitions, g)
        )
        # windows[i] holds per_group atoms from position i of the rows, each row doubled
        # (so a window starting at row start + s is that row cyclically shifted by s)
        doubled = np.concatenate((atoms, atoms), axis=2).ravel()
        windows = np.lib.stride_tricks.sliding_window_view(doubled, per_group)
        row_start = 2 * per_group * np.arange(g * r).reshape(g, r).T  # [row, group]
        return windows[row_start[:, None, :] + shift].sum(axis=0)

    def fit(self) -> tuple[float, float, int]:
        """1/alpha-hat, its standard error and the degrees of freedom of that error."""
        n, n_zero, sum_lx, sum_lx2 = self._moments
        if n < MIN_SAMPLES:
            raise ValueError(f"need >= {MIN_SAMPLES} samples, got {int(n)}")
        if n_zero > 0.01 * n:
            raise ValueError(
                f"x must have at most 1% exact zeros (log|0| = -inf), got {int(n_zero)} of "
                f"{int(n)}: leave them out (summarise_noise does) or check the data"
            )
        n_log = n - n_zero
        mean_lx = sum_lx / n_log
        var_lx = max(sum_lx2 / n_log - mean_lx**2, 0.0)
        with np.errstate(divide="ignore"):  # empty blocks, exact cancellations: log 0
            num = np.log(np.abs(self.block_sums()))
        num -= mean_lx
        n_used = num.size
        if np.isneginf(num).any():
            used = np.isfinite(num)
            n_used = int(np.count_nonzero(used))
            if num.size - n_used > 0.01 * num.size + 1:
                raise ValueError(
                    f"{num.size - n_used} of {num.size} block sums are exactly 0: "
                    "the data look discrete; a stable law is continuous"
                )
            num[~used] = 0
        total = _expected_log_binomial(int(n), 1 / self.n_blocks) * n_used
        u = num.sum() / total
        resid = num.sum(axis=(0, 2)) - u * total / self.n_groups
        var_u = self.n_groups / (self.n_groups - 1) * np.sum(resid**2) / total**2
        var_u += (n_used / total) ** 2 * var_lx / n_log
        return float(u), float(np.sqrt(var_u)), self.n_groups - 1

    @property
    def alpha(self) -> float:
        """The estimate over everything seen so far (unclipped)."""
        return _inverse(self.fit()[0])

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Confidence interval for alpha (see the class notes)."""
        return _interval(*self.fit(), level)


class _NotFinite(ValueError):
    """A job met NaN or inf; the caller names the array and counts them."""


def _accumulate(
    accs: list[StreamingAlpha], bounds, parts, sizes=None, words: _Words | None = None
) -> None:
    """Add samples to accs[i], all with the labels of accs[0] (or of ``words``).

    ``parts(start, stop)`` returns, for each accumulator, its samples
    [start, stop) as a flat float array (of ``sizes[j]`` samples for the
    j-th job if given: summarise_noise leaves exact zeros out). The jobs
    [bounds[j], bounds[j + 1]) run on all cores (:func:`_in_order`) and
    their sums are added in order: the result does not depend on the
    threads, and jobs of other sizes change it only by rounding. With
    several accumulators (same seed and n_total) each gets exactly what its
    own update would have given, for one label stream: only accs[0]'s stream
    advances, so the others are for one use (summarise_noise estimates noise,
    its standardised version and the surrogates together). ``words``: the
    label stream to draw from instead (which then advances; the accumulators
    must share one design). On error nothing is added to any of them.
    """
    stream = accs[0]._words if words is None else words
    state = stream.state()
    mask = np.uint16(accs[0]._atoms.size - 1)
    atoms = [acc._atoms.copy() for acc in accs]
    moments = [acc._moments.copy() for acc in accs]
    jobs = (  # labels drawn in order, as each job is handed out
        functools.partial(
            _job,
            parts,
            start,
            stop,
            stream.take(stop - start if sizes is None else sizes[j]) & mask,
            atoms[0].size,
        )
        for j, (start, stop) in enumerate(itertools.pairwise(bounds))
    )
    try:
        for result in _in_order(jobs):
            for i, (sums, moms) in enumerate(result):
                atoms[i] += sums
                moments[i] += moms
    except BaseException:
        stream.restore(state)
        raise
    for acc, a, m in zip(accs, atoms, moments, strict=True):
        acc._atoms, acc._moments = a, m


def _job(parts, start: int, stop: int, labels: np.ndarray, n_atoms: int) -> list[tuple]:
    """(atom sums, log moments) of each array parts(start, stop) returns.

    The arrays hold the job's samples in order, flat or as a (possibly
    strided) 2-d block of rows, flattened here: np.add.at is fast only on
    flat arrays (about 2 ns a value, and 10 ns on a 2-d strided view).
    """
    out = []
    for block in parts(start, stop):
        x = block.ravel()
        moments = _log_moments(x)
        if moments is None:
            raise _NotFinite("samples must be finite")
        sums = np.zeros(n_atoms, x.dtype)  # per job, then in float64
        np.add.at(sums, labels, x)
        out.append((sums, moments))
    return out


def _log_moments(x: np.ndarray) -> np.ndarray | None:
    """(samples, exact zeros, sum log|x|, sum log|x|^2) over x; None if x is not finite."""
    lx = np.abs(x)
    with np.errstate(divide="ignore", invalid="ignore"):  # zeros, NaN, inf: handled below
        np.log(lx, out=lx)
    s = lx.sum(dtype=np.float64)
    n_zero = 0
    if not np.isfinite(s):
        if np.isnan(s) or s > 0:
            return None
        zero = lx == -np.inf
        n_zero = int(np.count_nonzero(zero))
        lx[zero] = 0
        s = lx.sum(dtype=np.float64)
    return np.array([x.size, n_zero, s, np.dot(lx, lx)])


_POOL: list[ThreadPoolExecutor] = []
os.register_at_fork(after_in_child=_POOL.clear)  # a forked child has no such threads


def _thread_budget() -> int:
    """Threads for the estimator: one per core, at most 4, and at most ``OMP_NUM_THREADS``.

    joblib's worker processes set ``OMP_NUM_THREADS`` to their share of the
    cores (1 each when the trainers run one process per core), so parallel
    runs do not each start a thread per core and oversubscribe the machine.
    """
    budget = min(4, os.cpu_count() or 1)
    try:
        budget = min(budget, int(os.environ.get("OMP_NUM_THREADS", budget)))
    except ValueError:  # not a number: ignore it, as numpy's BLAS does
        pass
    return max(budget, 1)


_WORKERS = _thread_budget() - 1  # worker threads beside the calling thread


def _in_order(tasks) -> Iterator:
    """Results of the tasks (callables), in order, computed on all cores.

    Every (_WORKERS + 1)-th task runs in the calling thread, the others on the
    worker threads, at most _IN_FLIGHT ahead of the one returned: few
    threads, so few hand-overs of the GIL (which numpy releases in its loops).
    """
    if not _POOL and _WORKERS:
        _POOL.append(ThreadPoolExecutor(_WORKERS, thread_name_prefix="sgnoise-tail-index"))
    pending: deque = deque()
    try:
        for j, task in enumerate(tasks):
            inline = j % (_WORKERS + 1) == _WORKERS
            pending.append(task() if inline else _POOL[0].submit(task))
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


def _expected_log_binomial(n: int, p: float) -> float:
    """E[log m; m >= 1] for m ~ Binomial(n, p).

    Over mean +- 12 sd (all but 1e-30 of the mass), with the probabilities
    from their ratios P(m + 1) / P(m) = (n - m) p / ((m + 1)(1 - p)),
    normalised to sum to 1.
    """
    mean, sd = n * p, np.sqrt(n * p * (1 - p))
    m = np.arange(max(0, int(mean - 12 * sd)), min(n, int(mean + 12 * sd) + 2) + 1)
    log_ratio = np.log((n - m[:-1]) / (m[:-1] + 1) * (p / (1 - p)))
    log_pmf = np.concatenate(([0.0], np.cumsum(log_ratio)))
    pmf = np.exp(log_pmf - log_pmf.max())
    return float(np.dot(pmf[m > 0], np.log(m[m > 0])) / pmf.sum())


def _interval(u: float, se: float, dof: int, level: float) -> tuple[float, float]:
    """alpha-interval from 1/alpha-hat = u with standard error se (t quantiles)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    t = special.stdtrit(dof, (1 + level) / 2)
    return _inverse(u + t * se), _inverse(u - t * se)


def _inverse(u: float) -> float:
    """alpha = 1/u, +inf for u <= 0 (no sign of a tail at all)."""
    return float(1 / u) if u > 0 else float("inf")


def _as_float(x) -> np.ndarray:
    """x as a float32 or wider float array (no copy if it is one)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float64)
    return x.astype(np.float32) if x.dtype.itemsize < 4 else x


def _check_finite(x: np.ndarray, name: str) -> None:
    n_nan = int(np.count_nonzero(np.isnan(x)))
    n_inf = int(np.count_nonzero(np.isinf(x)))
    if n_nan or n_inf:
        raise ValueError(
            f"{name} must be finite, got {n_nan} NaN and {n_inf} inf values of {x.size}: "
            "a diverged run? Drop or fix them before estimating alpha"
        )


def _samples(x, *, check_finite: bool = True) -> np.ndarray:
    """x flattened as floats, with at least MIN_SAMPLES values (finite, if checked here)."""
    x = _as_float(x).ravel()
    if x.size < MIN_SAMPLES:
        raise ValueError(f"x must have >= {MIN_SAMPLES} samples, got {x.size}")
    if check_finite:
        _check_finite(x, "x")
    return x


def _consecutive_blocks(x: np.ndarray, k1: int) -> tuple[float, float, int]:
    """Plain Mohammadi on consecutive blocks of k1 (remainder dropped): 1/alpha, se, dof.

    d_k = log|Y_k| - mean_{i in k} log|X_i| are i.i.d. over blocks and
    1/alpha-hat = mean(d) / log k1, so the standard error is exact.
    """
    k2 = x.size // k1
    if not 2 <= k1 <= x.size // 2:
        raise ValueError(f"k1 must be in [2, {x.size // 2}], got {k1}")
    blocks = x[: k1 * k2].reshape(k2, k1)
    lx = np.abs(blocks)
    with np.errstate(divide="ignore"):  # exact zeros: handled below
        np.log(lx, out=lx)
    d = lx.mean(axis=1, dtype=np.float64)
    if not np.all(np.isfinite(d)):  # exact zeros: in their blocks, not in the log means
        zero = blocks == 0
        n_zero = int(np.count_nonzero(zero))
        if n_zero > 0.01 * blocks.size:
            raise ValueError(
                f"x must have at most 1% exact zeros (log|0| = -inf), got {n_zero} of {blocks.size}"
            )
        lx[zero] = 0
        d = lx.sum(axis=1, dtype=np.float64) / (k1 - zero.sum(axis=1))
    y = np.abs(blocks.sum(axis=1, dtype=np.float64))
    used = y > 0  # an exactly cancelling block carries no information (log 0)
    d = np.log(y[used]) - d[used]
    log_k1 = np.log(k1)
    return float(d.mean() / log_k1), float(d.std(ddof=1) / np.sqrt(d.size) / log_k1), d.size - 1


def _shuffled(x: np.ndarray, shuffle: bool, seed) -> np.ndarray:
    return np.random.default_rng(seed).permutation(x) if shuffle else x


def _top(x: np.ndarray, k: int) -> np.ndarray:
    """The k + 1 largest |x|, in decreasing order."""
    a = np.abs(x)
    return -np.sort(-np.partition(a, a.size - k - 1)[a.size - k - 1 :])


def _default_k(n: int, k: int | None, low: int, high: int, name: str) -> int:
    k = int(np.sqrt(n)) if k is None else k
    if int(k) != k or not low <= k <= high:
        raise ValueError(f"k must be an integer in [{low}, {high}] for {name}, got {k}")
    return int(k)


def _hill(x: np.ndarray, k: int | None) -> float:
    """1/alpha: Hill (1975) on the k largest |x| (default k = sqrt(N))."""
    k = _default_k(x.size, k, 1, x.size - 1, "hill")
    top = np.log(_top(x, k))
    return float(np.mean(top[:k] - top[k]))


def _pickands(x: np.ndarray, k: int | None) -> float:
    """xi = 1/alpha: Pickands (1975) on |x|, from the k-th, 2k-th and 4k-th largest."""
    k = _default_k(x.size, k, 1, x.size // 4, "pickands")
    s = _top(x, 4 * k)
    return float(np.log((s[k - 1] - s[2 * k - 1]) / (s[2 * k - 1] - s[4 * k - 1])) / np.log(2))


def _moment(x: np.ndarray, k: int | None) -> float:
    """xi = 1/alpha: Dekkers, Einmahl & de Haan (1989), eq. (1.7), on the k largest |x|."""
    k = _default_k(x.size, k, 2, x.size - 1, "moment")
    top = np.log(_top(x, k))
    d = top[:k] - top[k]
    m1, m2 = d.mean(), (d * d).mean()
    return float(m1 + 1 - 0.5 / (1 - m1 * m1 / m2))


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


def _mcculloch(x: np.ndarray) -> float:
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


def _check_method(method: str, params: dict) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    extra = set(params) - set(_PARAMS[method])
    if extra:
        raise ValueError(
            f"method {method!r} takes parameters {_PARAMS[method]}, got {sorted(extra)}"
        )


def _inverse_alpha_and_se(x: np.ndarray, method: str, seed, shuffle: bool, params: dict):
    """(1/alpha, se, dof) for the interval methods."""
    if method == "mohammadi_avg":
        if not shuffle:
            raise ValueError(
                "shuffle=False applies to 'mohammadi' and 'mohammadi_median' (consecutive "
                "blocks in the given order); 'mohammadi_avg' always uses random blocks"
            )
        acc = StreamingAlpha(x.size, seed=seed, **params)
        acc.update(x)
        return acc.fit()
    k1 = params.get("k1")
    return _consecutive_blocks(
        _shuffled(x, shuffle, seed), int(np.sqrt(x.size)) if k1 is None else k1
    )


def estimate_alpha(
    x,
    method: str = DEFAULT_METHOD,
    *,
    seed: int | None = 0,
    shuffle: bool = True,
    clip: bool = False,
    **params,
) -> float:
    """Estimate the tail index alpha of symmetric alpha-stable samples.

    Parameters
    ----------
    x : array_like
        Samples, any shape (flattened). At least 100, finite; the Mohammadi
        methods also need them nonzero (log|x|).
    method : str
        One of :data:`METHODS`:

        - ``"mohammadi_avg"`` (default): Mohammadi et al. (2015) averaged over
          P random partitions into ~sqrt(N) blocks (module notes);
          parameter ``n_partitions`` (P).
        - ``"mohammadi"``: one partition into consecutive blocks of ``k1``
          (default floor(sqrt(N))) after a seeded shuffle; the last N mod k1
          samples (random ones, after the shuffle) are dropped, so every N
          works (the original code takes the largest divisor of N below
          sqrt(N): block size 1 and a division by log 1 = 0 for a prime N).
        - ``"mohammadi_median"``: Gurbuzbalaban, Simsekli & Zhu (2021), the
          median of the ``"mohammadi"`` estimates over block sizes ``k1_list``
          (default :data:`MEDIAN_K1`; sizes above N/2 are skipped).
        - ``"hill"``: Hill (1975) on the ``k`` largest |x| (default
          k = sqrt(N)).
        - ``"pickands"``: Pickands (1975) from the k-th, 2k-th and 4k-th
          largest |x| (default k = sqrt(N)); alpha = 1/xi.
        - ``"moment"``: Dekkers, Einmahl & de Haan (1989) on the ``k``
          largest |x| (default k = sqrt(N)); alpha = 1/xi.
        - ``"mcculloch"``: McCulloch (1986) quantile estimator (his Table III;
          saturates at 2 and 0.5, with a warning).
    seed : int or None
        Seed of the random blocks (Mohammadi methods; the others are
        order-free).
    shuffle : bool
        ``False`` makes ``"mohammadi"`` and ``"mohammadi_median"`` cut blocks
        in the given order: the original study's row-major blocking, wrong for
        correlated neighbours (module notes).
    clip : bool
        Clip the estimate to (0, 2]. Off by default: we report what we measure.

    Returns
    -------
    float
        alpha-hat; ``inf`` if 1/alpha-hat <= 0.

    References
    ----------
    Mohammadi, Mohammadpour & Ogata (2015), Metrika 78:549-561, Corollary 2.4.
    Simsekli, Sagun & Gurbuzbalaban (2019), ICML. Gurbuzbalaban, Simsekli &
    Zhu (2021), ICML. Hill (1975), Ann. Stat. 3:1163-1174. Pickands (1975),
    Ann. Stat. 3:119-131. Dekkers, Einmahl & de Haan (1989), Ann. Stat.
    17:1833-1855. McCulloch (1986), Commun. Stat. Simul. 15:1109-1136.
    """
    _check_method(method, params)
    x = _samples(x, check_finite=method != "mohammadi_avg")  # that one checks as it goes
    if method in INTERVAL_METHODS:
        alpha = _inverse(_inverse_alpha_and_se(x, method, seed, shuffle, params)[0])
    elif method == "mohammadi_median":
        xs = _shuffled(x, shuffle, seed)
        sizes = [k for k in params.get("k1_list", MEDIAN_K1) if 2 <= k <= x.size // 2]
        if not sizes:
            raise ValueError(f"k1_list must hold a block size in [2, {x.size // 2}], got none")
        alpha = float(np.median([_inverse(_consecutive_blocks(xs, k)[0]) for k in sizes]))
    elif method == "mcculloch":
        alpha = _mcculloch(x)
    else:
        alpha = _inverse(
            {"hill": _hill, "pickands": _pickands, "moment": _moment}[method](x, params.get("k"))
        )
    return min(alpha, 2.0) if clip else alpha


def alpha_ci(
    x,
    method: str = DEFAULT_METHOD,
    *,
    level: float = 0.95,
    seed: int | None = 0,
    n_boot: int = 200,
    **params,
) -> tuple[float, float]:
    """Confidence interval for alpha.

    For the methods in :data:`INTERVAL_METHODS` a delta-method interval from
    the same pass as the estimate (cost about one estimate): t quantiles on
    1/alpha-hat with the standard error of :class:`StreamingAlpha` (default)
    or of the i.i.d. block terms (``"mohammadi"``), inverted. For the other
    methods a percentile bootstrap of ``n_boot`` resamples (``n_boot`` times
    the cost; the bootstrap is only approximate for the tail-order-statistic
    methods).

    Parameters
    ----------
    x, method, seed, params
        As for :func:`estimate_alpha`.
    level : float
        Coverage, in (0, 1).
    n_boot : int
        Bootstrap resamples (methods outside :data:`INTERVAL_METHODS`).

    Returns
    -------
    (lo, hi) : tuple of float
        ``hi`` is ``inf`` when the interval on 1/alpha reaches 0.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    _check_method(method, params)
    x = _samples(x, check_finite=method != "mohammadi_avg")
    if method in INTERVAL_METHODS:
        return _interval(*_inverse_alpha_and_se(x, method, seed, True, params), level)
    if int(n_boot) != n_boot or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2, got {n_boot}")
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        boots = [
            estimate_alpha(rng.choice(x, x.size), method, seed=int(rng.integers(2**31)), **params)
            for _ in range(int(n_boot))
        ]
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _check_matrix(noise) -> np.ndarray:
    noise = _as_float(noise)
    if noise.ndim != 2 or noise.shape[0] < 2:
        raise ValueError(f"noise must have shape (n_rows >= 2, n_coords), got {noise.shape}")
    return noise


def _column_stats(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Column means, standard deviations (ddof 0) in m's dtype, non-constant and zero-free columns.

    A column counts as constant if its standard deviation is within 100
    rounding errors of its mean (a constant column's float mean need not be
    exactly its value). Raises if m is not finite (seen in the means).
    Blocks of columns go to the worker threads.
    """
    width = max(1, _CHUNK // m.shape[0])
    starts = range(0, max(1, m.shape[1]), width)
    blocks = _in_order(functools.partial(_block_stats, m[:, c : c + width]) for c in starts)
    mean, std, nonzero = (np.concatenate(parts) for parts in zip(*blocks, strict=True))
    if not np.isfinite(mean).all():
        _check_finite(m, "noise")
    return mean, std, std > 100 * np.finfo(m.dtype).eps * np.abs(mean), nonzero


def _block_stats(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = m.mean(axis=0, dtype=np.float64).astype(m.dtype)
    if not np.isfinite(mean).all():  # NaN or inf in m: the caller raises
        return mean, mean, mean
    d = m - mean
    return mean, np.sqrt(np.einsum("ij,ij->j", d, d) / m.shape[0]), m.all(axis=0)


def standardise(noise) -> tuple[np.ndarray, int]:
    """Each column centred and divided by its standard deviation across rows.

    Parameters
    ----------
    noise : array_like, shape (n_rows, n_coords)
        E.g. gradient noise, one row per minibatch. Finite, n_rows >= 2.

    Returns
    -------
    z : ndarray, shape (n_rows, n_kept)
        Columns with mean 0 and standard deviation 1 (ddof 0), float dtype of
        ``noise`` kept.
    n_dropped : int
        Constant columns (zero variance), left out.

    Notes
    -----
    A standardised column of n values is bounded, |z| <= (n - 1)/sqrt(n)
    (3.75 for n = 16), and its values are correlated (they sum to 0 and their
    squares to n). For Gaussian columns this barely moves the estimator:
    E log|z| differs from a Gaussian's by O(1/n^2), and the standardised
    Gaussian surrogate gives alpha ~= 2 (see :func:`summarise_noise`). For
    heavy-tailed columns it does: a column of n values cannot show a tail
    beyond (n - 1)/sqrt(n) of its own scale, so with few rows the
    standardised alpha is pulled towards 2.
    """
    noise = _check_matrix(noise)
    mean, std, keep, _ = _column_stats(noise)
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


def _standardised_gaussian(shape: tuple[int, int], dtype, seed) -> np.ndarray:
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
    list(_in_order(functools.partial(_fill_normal, g[r : r + step], s) for r, s in fills))
    if cols:
        mean, std, _, _ = _column_stats(g)
        standardised = (
            functools.partial(_standardise_rows, g[r : r + step], mean, std) for r in starts
        )
        list(_in_order(standardised))
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
    noise = _check_matrix(noise)
    mean, std, keep, _ = _column_stats(noise)
    out = np.empty_like(noise)
    out[:] = mean
    z = _standardised_gaussian(noise.shape, noise.dtype, seed)[:, : int(keep.sum())]
    out[:, keep] = z * std[keep] + mean[keep]
    return out


class _Block:
    """The kept columns of a column block of a matrix, row-major, cut into jobs for the threads.

    Jobs are whole rows, or pieces of one row when a row is longer than a
    job. :meth:`parts` gives a job's values and (if ``mean`` is given) their
    standardised values, exact zeros left out (``sizes[j]`` values remain in
    job j; ``zero_free``: columns known to have none; without ``mean`` zeros
    stay, as samples without a log); :meth:`null_parts` gives the pooled
    Gaussian surrogate, the first columns of ``null`` (a standardised
    Gaussian matrix) scaled to the kept columns' standard deviations and
    shifted to their means. Neither array is ever held whole.
    """

    def __init__(
        self,
        noise: np.ndarray,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        zero_free: np.ndarray | None = None,
        kept: np.ndarray | None = None,
        null: np.ndarray | None = None,
    ):
        self.noise, self.mean, self.std, self.kept, self.null = noise, mean, std, kept, null
        self.inverse_std = None if std is None else 1 / std
        rows = noise.shape[0]
        self.cols = cols = noise.shape[1] if kept is None else kept.size
        self.n = n = rows * cols
        if not cols:
            self.bounds, self.sizes, self.n_x, self._zeros = [0], np.zeros(0, int), 0, {}
            return
        if cols >= _CHUNK:
            bounds = [*(r * cols + c for r in range(rows) for c in range(0, cols, _CHUNK)), n]
        else:
            bounds = [*range(0, n, _CHUNK // cols * cols), n]
        zeros = np.zeros(len(bounds) - 1, int)
        if mean is not None:
            zero_cols = np.flatnonzero(~zero_free)
            x = noise[:, zero_cols if kept is None else kept[zero_cols]]
            r, j = np.nonzero(x == 0)
            zeros = np.diff(np.searchsorted(r * cols + zero_cols[j], bounds))
        self.bounds, self.sizes = bounds, np.diff(bounds) - zeros
        self.n_x = int(self.sizes.sum())
        self._zeros = dict(zip(bounds, zeros > 0, strict=False))

    def _where(self, start: int, stop: int) -> tuple[slice, slice]:
        r0, c0 = divmod(start, self.cols)  # rows r0:r1 in full, or columns c0:c1 of row r0
        rows = slice(r0, max(r0 + 1, stop // self.cols))
        return rows, slice(c0, c0 + min(self.cols, stop - start))

    def parts(self, start: int, stop: int) -> list[np.ndarray]:
        r, c = self._where(start, stop)
        # np.take: numpy's mixed slice-and-array indexing is 5x slower here
        x = self.noise[r, c] if self.kept is None else np.take(self.noise[r], self.kept[c], 1)
        if self.mean is None:
            return [x]
        z = x - self.mean[c]
        z *= self.inverse_std[c]
        if self._zeros[start]:
            nonzero = x != 0
            return [x[nonzero], z[nonzero]]
        return [x, z]

    def null_parts(self, start: int, stop: int) -> list[np.ndarray]:
        r, c = self._where(start, stop)
        null = self.null[r, c] * self.std[c]
        null += self.mean[c]
        return [null]

    def feed(
        self, x_accs: list[StreamingAlpha], null_accs: list[StreamingAlpha], words=None
    ) -> None:
        """Values (and standardised values) into x_accs, the surrogate into null_accs.

        One label stream for all of them when no zeros are left out and they
        share a design; otherwise one each for the two lists.
        """
        designs = {_design_of(a) for a in x_accs + null_accs}
        if x_accs and null_accs and self.n_x == self.n and len(designs) == 1:
            both = lambda a, b: self.parts(a, b) + self.null_parts(a, b)  # noqa: E731
            _accumulate(x_accs + null_accs, self.bounds, both, None, words)
            return
        if x_accs:
            _accumulate(x_accs, self.bounds, self.parts, self.sizes, words)
        if null_accs:
            _accumulate(null_accs, self.bounds, self.null_parts, None, words)


def _design_of(acc: StreamingAlpha) -> tuple[int, int, int]:
    return acc.n_blocks, acc.n_groups, acc.atoms_per_block


def _pooled_accumulators(
    blocks: list[_Block], n_kinds: int, with_null: bool, seed
) -> list[list[StreamingAlpha] | None]:
    """Accumulators of every block, then of all blocks pooled (last); None below MIN_SAMPLES.

    Each list holds ``n_kinds`` accumulators of the block's values (and
    standardised values) and, ``with_null``, one of its pooled surrogate. A
    block's accumulators are exactly what the block alone gives (its own
    label stream, from ``seed``). The pooled ones take over the atoms and
    moments of the first block whose design they share (the atoms of one
    pass serve both estimates); every other block's samples are labelled
    again for them, from one further stream (every block's own stream
    repeats the first block's labels, which must not happen twice within
    one estimate). With one dominant block, as the first layer of an MLP
    is, the pooled estimate costs little more than the scatter of the
    other blocks.
    """

    def new(n_x: int, n: int) -> list[StreamingAlpha] | None:
        if n_x < MIN_SAMPLES:
            return None
        accs = [StreamingAlpha(n_x, seed=seed) for _ in range(n_kinds)]
        return accs + ([StreamingAlpha(n, seed=seed)] if with_null else [])

    n_x, n = sum(b.n_x for b in blocks), sum(b.n for b in blocks)
    pooled = new(n_x, n)
    if pooled is None:
        return [new(b.n_x, b.n) for b in blocks] + [None]  # not one estimate has enough samples
    words = _Words(np.random.SeedSequence(seed).spawn(3)[2])  # beside the two of StreamingAlpha
    kinds = [(slice(0, n_kinds), n_x), (slice(n_kinds, len(pooled)), n)]  # values; surrogate
    taken = [False, False]
    out = []
    for block in blocks:
        own = new(block.n_x, block.n)
        if own is not None:
            block.feed(own[:n_kinds], own[n_kinds:])
        out.append(own)
        if not block.n_x:
            continue
        shadows: list[list[StreamingAlpha]] = [[], []]
        for k, (part, total) in enumerate(kinds):
            if not pooled[part]:
                continue
            mine = None if own is None or taken[k] else own[part]
            if mine and _design_of(mine[0]) == _design_of(pooled[part][0]):
                for acc, one in zip(pooled[part], mine, strict=True):
                    _absorb(acc, one)
                taken[k] = True
            else:
                shadows[k] = [StreamingAlpha(total, seed=seed) for _ in pooled[part]]
        if shadows[0] or shadows[1]:
            block.feed(*shadows, words)
            for (part, _), made in zip(kinds, shadows, strict=True):
                for acc, shadow in zip(pooled[part], made, strict=True) if made else ():
                    _absorb(acc, shadow)
    return [*out, pooled]


def _absorb(into: StreamingAlpha, other: StreamingAlpha) -> None:
    """Add other's atoms and moments to into (same design; other's labels independent of into's)."""
    into._atoms += other._atoms
    into._moments += other._moments


@functools.lru_cache(maxsize=64)
def _standardised_null(rows: int, widths: tuple[int, ...], dtype: str, seed) -> tuple:
    """(1/alpha, se, dof) of standardised Gaussians (rows, w) for w in widths, and pooled (last).

    The null level of the standardised estimates: it depends only on the
    shapes and the seed, so it is computed once per run (None: too few values).
    """
    blocks = [_Block(_standardised_gaussian((rows, w), dtype, seed)) for w in widths]
    accs = _pooled_accumulators(blocks, 1, False, seed)
    return tuple(None if a is None else a[0].fit() for a in accs)


def _column_blocks(n_coords: int, layers: Mapping[str, slice] | None) -> list[tuple[str, slice]]:
    """(name, columns) of each layer, checked to cover 0..n_coords in order; [] without layers."""
    if not layers:
        return []
    stop = 0
    for cols in layers.values():
        if not isinstance(cols, slice) or cols.start != stop or cols.step not in (None, 1):
            break
        stop = cols.stop
    else:
        if stop == n_coords and "all" not in layers:
            return list(layers.items())
    raise ValueError(
        f"layers must map names other than 'all' to column slices covering 0..{n_coords} "
        f"in order (slice(0, a), slice(a, b), ...), got {dict(layers)}"
    )


def _plain_fits(noise, mean, std, kept, method: str, seed) -> tuple[list[tuple], int]:
    """The four (1/alpha, se, dof) by ``method`` on arrays made whole (not the default method)."""
    x = noise[:, kept]
    z = x - mean
    z *= 1 / std  # as standardise() and the default method's _Block.parts do it
    z = z.ravel()
    nonzero = x.ravel() != 0
    x, z = x.ravel()[nonzero], z[nonzero]
    if x.size < MIN_SAMPLES:
        return [], x.size
    g = _standardised_gaussian(noise.shape, noise.dtype, seed)
    arrays = (x, z, g[:, : kept.size] * std + mean, g)
    return [_inverse_alpha_and_se(v.ravel(), method, seed, True, {}) for v in arrays], x.size


def _summary(fits: list, n_samples: int, n_dropped: int, level: float) -> dict[str, float]:
    """summarise_noise's dict from fits (noise, standardised, surrogate, standardised surrogate)."""
    out: dict[str, float] = {"n_samples": n_samples, "n_dropped": n_dropped}
    if not fits:
        keys = ("", "_lo", "_hi", "_surrogate")
        return {f"{p}{k}": float("nan") for p in ("alpha", "alpha_std") for k in keys} | out
    for prefix, (u, se, dof) in zip(("alpha", "alpha_std"), fits[:2], strict=True):
        out[prefix] = _inverse(u)
        out[f"{prefix}_lo"], out[f"{prefix}_hi"] = _interval(u, se, dof, level)
    out["alpha_surrogate"], out["alpha_std_surrogate"] = (_inverse(f[0]) for f in fits[2:])
    return out


def summarise_layers(
    noise,
    layers: Mapping[str, slice] | None = None,
    *,
    method: str = DEFAULT_METHOD,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, float]]:
    """:func:`summarise_noise` of each layer's columns and of all columns, in one pass.

    Parameters
    ----------
    noise : array_like, shape (n_rows, n_coords)
        As for :func:`summarise_noise`.
    layers : mapping of str to slice, optional
        Each layer's columns, ``{"layer1": slice(0, a), "layer2": slice(a,
        b), ...}``, in order and covering all columns (as
        :class:`sgnoise.noise.NoisePass` lays them out).
    method, seed, level
        As for :func:`summarise_noise`.

    Returns
    -------
    dict
        ``{name: summary}`` for each layer, then ``"all"``: the summary of
        all columns pooled. A layer's summary is exactly
        ``summarise_noise(noise[:, columns], seed=seed)``; ``"all"`` is an
        estimate of the same quantity as ``summarise_noise(noise, seed=seed)``
        with other random blocks: with the default method its accumulators
        take over the first layer's (whose values the pooled estimate would
        otherwise label and log a second time) and label only the other
        layers' values again, from a stream of their own (see
        ``_pooled_accumulators``). Its standardised surrogate is the pooled
        estimate over the layers' standardised Gaussian matrices.
    """
    noise = _check_matrix(noise)
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {INTERVAL_METHODS}, got {method!r}")
    named = _column_blocks(noise.shape[1], layers) or [("all", slice(0, noise.shape[1]))]
    mean, std, keep, zero_free = _column_stats(noise)
    if method != "mohammadi_avg":
        parts = [*named, ("all", slice(0, noise.shape[1]))] if layers else named
        results = []
        for _, cols in parts:
            k = np.flatnonzero(keep[cols])
            fits, n_x = _plain_fits(noise[:, cols], mean[cols][k], std[cols][k], k, method, seed)
            results.append(_summary(fits, n_x, cols.stop - cols.start - k.size, level))
    else:
        rows, dtype = noise.shape[0], noise.dtype
        widths = [cols.stop - cols.start for _, cols in named]
        kept = [np.flatnonzero(keep[cols]) for _, cols in named]
        dropped = [w - k.size for w, k in zip(widths, kept, strict=True)]
        blocks = [
            _Block(
                noise[:, cols],
                mean[cols][k],
                std[cols][k],
                zero_free[cols][k],
                None if k.size == w else k,
                _standardised_gaussian((rows, w), dtype, seed),
            )
            for (_, cols), k, w in zip(named, kept, widths, strict=True)
        ]
        accs = _pooled_accumulators(blocks, 2, True, seed)
        null = (_standardised_null.__wrapped__ if seed is None else _standardised_null)(
            rows, tuple(widths), np.dtype(dtype).str, seed
        )
        n_x = [b.n_x for b in blocks]
        counts = zip([*n_x, sum(n_x)], [*dropped, sum(dropped)], strict=True)
        results = [
            _summary([] if a is None else [acc.fit() for acc in a] + [f], n, d, level)
            for a, f, (n, d) in zip(accs, null, counts, strict=True)
        ]
    if not layers:
        return {"all": results[-1]}
    return dict(zip([name for name, _ in named] + ["all"], results, strict=True))


def summarise_noise(
    noise, *, method: str = DEFAULT_METHOD, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Pooled and standardised alpha of a noise matrix, with intervals and null levels.

    Parameters
    ----------
    noise : array_like, shape (n_rows, n_coords)
        Gradient noise: one row per minibatch, one column per parameter.
        Finite (NaN/inf raise, with their count), n_rows >= 2.
    method : str
        One of :data:`INTERVAL_METHODS` (a cheap interval is needed at every
        checkpoint).
    seed : int
        Seed of the random blocks and of the surrogate.
    level : float
        Coverage of the intervals.

    Returns
    -------
    dict
        ``alpha, alpha_lo, alpha_hi``: all values pooled (the paper's
        quantity, with order-safe random blocks); ``alpha_surrogate``: the
        same on :func:`gaussian_surrogate` of the noise, the level pooling
        Gaussians of these column scales would give; ``alpha_std,
        alpha_std_lo, alpha_std_hi``: after :func:`standardise`;
        ``alpha_std_surrogate``: the same on a standardised Gaussian matrix
        of the noise's shape (the null level of ``alpha_std``; constant
        columns, left out of the noise, are not left out of it: it then
        depends only on the shape and the seed).
        ``n_samples``: values used (constant columns and exact zeros, which
        have no log, are left out of every estimate); ``n_dropped``: constant
        columns. All estimates unclipped; all NaN if fewer than 100 values
        remain (e.g. a dead network).

    Notes
    -----
    Compare ``alpha`` with ``alpha_surrogate`` and ``alpha_std`` with
    ``alpha_std_surrogate``, not with 2. :func:`summarise_layers` gives this
    for every layer and for all of them in one pass.

    Cost. With the default method the three estimates that depend on the
    noise share one label stream and one pass over it, on the worker
    threads; the standardised surrogate and its estimate depend only on the
    shape and the seed, so they are kept for the next call with the same
    shape (at every checkpoint of a run): a repeated call costs about four
    estimates of as many values (3.8 measured), a first one, which also
    draws the Gaussian matrix, about six (bench/bench_tail_index.py).

    The pooled surrogate is Gaussian with the *sample* variance of each
    column. If the noise itself is heavy-tailed, each column's sample
    variance is dominated by its largest value, so these variances spread
    widely and the surrogate looks heavy-tailed too: for SaS(1.5) columns of
    equal scale (16 rows) ``alpha`` = 1.50 and ``alpha_surrogate`` = 1.55.
    ``alpha`` near ``alpha_surrogate`` therefore says "no heavier than
    Gaussians with these column variances", not "Gaussian".

    Standardised values are bounded, |z| <= (n - 1)/sqrt(n) for n rows, and
    correlated within a column. For Gaussian columns this hardly matters: the
    standardised surrogate gives alpha = 2.019 +- 0.007 for 16 rows x 79,400
    columns (the 784-100-10 MLP on mnist10k, batch 500) and 2.003 +- 0.003
    for 120 rows (full MNIST), mean +- sd over 10 seeds. For heavy tails it
    does: a column of n values shows no tail beyond (n - 1)/sqrt(n) of its own
    scale, so ``alpha_std`` is pulled towards 2 (SaS(1.5) columns: 1.87 for
    16 rows, 1.69 for 120). ``alpha_std`` below its surrogate is evidence of
    heavy tails within coordinates; it is not an estimate of their alpha.
    (``bench/validate_tail_index.py`` prints these numbers.)
    """
    return summarise_layers(noise, method=method, seed=seed, level=level)["all"]
