"""How heavy are the tails of one coordinate? Resampled noise, a calibrated alpha, per-column alpha.

The standardised alpha of :func:`sgnoise.tail_index.summarise_noise` divides
each column of an (n_rows x n_columns) noise matrix by its own standard
deviation and pools the result. A column of n values cannot show a tail
beyond (n - 1)/sqrt(n) of its own scale, so that reading is pulled towards 2
at few rows, and by how much depends on n and on the number of values pooled
(the estimator's block size grows with it). This module maps a reading to
an alpha:

- :func:`calibration_curve`: the reading that columns of a symmetric
  alpha-stable law SaS(alpha) give, through the same :func:`standardise` and
  default :func:`estimate_alpha`, for the matrix's own shape, over a grid of
  alpha in [0.6, 2], by simulation (deterministic given the seed, kept in
  memory);
- :func:`calibrate`: the alpha whose curve value equals the reading, with an
  interval that holds both the reading's interval and the curve's Monte-Carlo
  scatter; :func:`calibrated_alpha` reads a matrix and calibrates it;
- :func:`column_alpha`: Mohammadi's estimator on every column separately
  (vectorised, ``axis``), and :func:`per_column_alpha`, the quantiles of
  those estimates beside the same for Gaussian columns of as many rows
  (:func:`per_column_alpha_by_block`: of several blocks of columns at once);
- :func:`resampled_noise`: many minibatch noises drawn from per-example
  gradients (:func:`resampled_noises`: for several batch sizes in few
  passes), so that each coordinate has enough rows for the above.

All stable laws are in parameterisation S1 with beta = 0 (scale 1:
characteristic function exp(-|t|^alpha)), as ``scipy.stats.levy_stable``.

References
----------
Simsekli, Sagun & Gurbuzbalaban (2019), "A Tail-Index Analysis of Stochastic
Gradient Noise in Deep Neural Networks", ICML, Section 3.
Mohammadi, Mohammadpour & Ogata (2015), Metrika 78:549-561, Corollary 2.4.
Chambers, Mallows & Stuck (1976), JASA 71:340-344, eq. (4.1).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse, special

from sgnoise import threads
from sgnoise.mlp import all_finite
from sgnoise.tail_index import (
    MIN_SAMPLES,
    AlphaAccumulator,
    estimate_alpha,
    standardise,
    standardised_alpha,
)

#: Alphas at which the calibration curve is simulated (finer near 2, where it bends).
ALPHA_GRID = (0.6, 0.8, 1.0, 1.2, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 1.95, 2.0)
#: Values simulated per alpha for a curve: CALIBRATION_VALUES // (n_rows x n_columns)
#: matrices, clipped to [MIN_REPS, MAX_REPS]. With R matrices the curve's scatter is
#: 1/sqrt(R) of one reading's standard deviation, and that deviation (a floor under the
#: reading's own interval) is known to R - 1 degrees of freedom: both are in the interval.
CALIBRATION_VALUES = 1 << 22
MIN_REPS, MAX_REPS = 8, 32
#: sigma of the log-normal column scales of the simulated matrices (standardising removes them).
SCALE_SIGMA = 1.5
#: Fewest rows calibrated: at 4 rows the reading is about 2.2 whatever alpha in [0.6, 2] is.
MIN_ROWS = 8
#: Most values (rows x columns) simulated for a curve; larger matrices are read on a
#: random subset of their columns (:func:`calibrated_alpha`).
MAX_VALUES = 1 << 21
#: Fewest rows for the per-column estimates (about 32 blocks of 32 values each).
MIN_COLUMN_ROWS = 1000
#: Quantiles (percent) of the per-column estimates that are reported.
QUANTILES = (5, 25, 50, 75, 95)
_FINE = 1401  # points of the fine alpha grid the curve is inverted on (steps of 0.001)
_GATHER = 1 << 24  # values of one column chunk in column_alpha's block sums
_FLOYD_VALUES = 1 << 18  # subset members resolved at once by _subsets (a few MB)
_GROUP_MEMBERS = 1 << 20  # subset members of the batch sizes resampled_noises sums in one pass
_SUM_COLUMNS = 64  # columns of one chunk of resampled_noises' sums (15 MB at n = 60,000)
_SELECTIONS = 2  # selections kept (a train and a test split's: 4 MB each at M = 1,000, B = 500)
_PIECE_MEMBERS = 1 << 19  # nonzeros of a selection's piece (B = 500 at M = 1,000: one piece)


def _check_seed(seed) -> None:
    if seed is None or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0 (results must be reproducible), got {seed}")


def _check_int(value, name: str, low: int, high: float = np.inf) -> int:
    if isinstance(value, bool) or int(value) != value or not low <= value <= high:
        bounds = f">= {low}" if high == np.inf else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {bounds}, got {value}")
    return int(value)


def _float_matrix(x, name: str) -> np.ndarray:
    """x as a finite 2-D float32/float64 array (no copy if it is one)."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if not all_finite(x):
        n_bad = x.size - int(np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"{name} must be finite, got {n_bad} NaN or inf values of {x.size}")
    return x


# --- resampled minibatch noise ------------------------------------------------------------


def _floyd_draws(n: int, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """The draws of :func:`_subsets`, shape (count, size): column k uniform in [0, n - size + k]."""
    return rng.integers(0, np.arange(n - size + 1, n + 1), size=(count, size))


def _floyd(t: np.ndarray, n: int) -> np.ndarray:
    """The subsets of range(n) that Floyd's algorithm makes from the draws t (see
    :func:`_subsets`); each row on its own."""
    size = t.shape[1]
    k = np.arange(size)
    key_type = np.int32 if n * size < 2**31 else np.int64
    value, position = np.divmod(np.sort((t * size + k).astype(key_type), axis=1), size)
    taken = np.zeros(t.shape, bool)  # t_k taken before step k: step k takes its j
    rows, later = np.nonzero(value[:, 1:] == value[:, :-1])
    taken[rows, position[rows, later + 1]] = True
    earlier = t - (n - size)  # the step whose j is t_k, if it comes before step k
    rows, steps = np.nonzero((earlier >= 0) & (earlier < k))
    earlier, repeated = earlier[rows, steps], taken[rows, steps]
    while True:
        linked = repeated | taken[rows, earlier]
        if np.array_equal(linked, taken[rows, steps]):
            break
        taken[rows, steps] = linked
    return np.where(taken, n - size + k, t)


def _subsets(n: int, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` independent uniform subsets of ``size`` of range(n), shape (count, size).

    Floyd's algorithm (Bentley & Floyd 1987): for j = n - size + k, k = 0, ...,
    size - 1, draw t_k uniform in [0, j] and take t_k, or j if t_k is taken
    already. The t of many subsets are drawn as one array (:func:`_floyd_draws`),
    and their steps are resolved for all of them at once instead of one after
    another (:func:`_floyd`): t_k is taken before step k exactly when an earlier t_i
    equals it (the value t_i is taken from step i on, whatever step i took), or
    when an earlier step i took its own j = n - size + i = t_k because t_i was
    taken. The first case is found by sorting each row's (t_k, k), the second by
    following those rare links until nothing changes. O(count size log size)
    work, no Python loop over k; subsets are drawn and resolved
    :data:`_FLOYD_VALUES` members at a time (each on its own, from the stream in
    order: the same subsets), so the temporaries stay a few MB. int32 indices
    where n allows.
    """
    out = np.empty((count, size), np.int32 if n < 2**31 else np.int64)
    step = max(1, _FLOYD_VALUES // size)
    for k in range(0, count, step):  # the draws in pieces too: the same stream, in order
        out[k : k + step] = _floyd(_floyd_draws(n, size, out[k : k + step].shape[0], rng), n)
    return out


def _selection(
    n: int, batch_size: int, n_minibatches: int, seed: int, dtype, keep: bool = False
) -> list[tuple]:
    """The (M x n) matrix of weight 1/B at (k, i) for each example i of minibatch k, as
    (rows, piece) pairs: the piece of rows ``rows`` (minibatches), in compressed-column
    form (one column per example), of at most :data:`_PIECE_MEMBERS` nonzeros each
    (or one minibatch each, if B is larger).

    Made piece by piece from one seeded stream (the same subsets as all at once), so
    that making it never holds more than a piece's temporaries (the 2M nonzeros of
    B = 2,048 made whole took 55 MB besides its 16 MB). With ``keep``, one of a single
    piece is kept for the next call with the same arguments (the last
    :data:`_SELECTIONS` such, read-only): a study's checkpoints resample the same n
    examples with the same seed at the training batch size, and making it costs about
    a third of the sums it serves (the sizes of a batch scan are made anew each time:
    kept, they would push the training batch size's out).
    """
    if keep and batch_size * n_minibatches <= _PIECE_MEMBERS:
        return _kept_selection(n, batch_size, n_minibatches, seed, dtype)
    return _new_selection(n, batch_size, n_minibatches, seed, dtype)


def _new_selection(n: int, batch_size: int, n_minibatches: int, seed: int, dtype) -> list:
    rng = np.random.default_rng(seed)
    step = max(1, _PIECE_MEMBERS // batch_size)
    pieces = []
    for k in range(0, n_minibatches, step):
        count = min(step, n_minibatches - k)
        rows = _subsets(n, batch_size, count, rng).ravel()
        weights = np.full(rows.size, 1 / batch_size, dtype)
        starts = np.arange(0, rows.size + 1, batch_size)
        piece = sparse.csr_array((weights, rows, starts), shape=(count, n)).tocsc()
        pieces.append((slice(k, k + count), piece))
    return pieces


@functools.lru_cache(maxsize=_SELECTIONS)
def _kept_selection(n: int, batch_size: int, n_minibatches: int, seed: int, dtype) -> list:
    pieces = _new_selection(n, batch_size, n_minibatches, seed, dtype)
    for _, piece in pieces:
        for array in (piece.data, piece.indices, piece.indptr):
            array.flags.writeable = False
    return pieces


def resampled_noise(
    per_example, batch_size: int, n_minibatches: int = 1000, *, seed: int = 0
) -> np.ndarray:
    """Minibatch gradient noise drawn from per-example gradients.

    Each of M minibatches is B examples drawn at random without replacement
    (minibatches independently of each other), and its noise is

        u_k = (1/B) sum_{i in S_k} g_i - (1/n) sum_{i=1}^n g_i ,

    the minibatch gradient minus the full gradient of the n examples
    (Simsekli et al. 2019, Section 2). Unlike the K = n/B disjoint minibatches
    of :func:`sgnoise.noise.noise_pass`, M can be as large as wanted (the
    rows are i.i.d. given the examples), which per-coordinate estimates
    need (:func:`per_column_alpha`).

    Parameters
    ----------
    per_example : array_like, shape (n_examples, n_coords)
        Per-example gradients g_i (of sampled coordinates), finite.
    batch_size : int
        B, in [1, n_examples - 1].
    n_minibatches : int
        M >= 1.
    seed : int
        Seed of the subsets; the same seed gives the same noise.

    Returns
    -------
    ndarray, shape (n_minibatches, n_coords)
        u_k, float32 if ``per_example`` is float32, else float64.

    Notes
    -----
    Computed as (1/B) sum_{i in S_k} (g_i - mean g), summed in the order of
    the examples (i ascending), in the dtype of the matrix (centring first
    keeps the full-gradient offset out of the float32 sums). Cost: the
    subsets take O(M B log B) steps (:func:`_subsets`), and the sums one
    sparse (M x n) by dense (n x d) product with M B nonzeros, O(M B d), taken
    example by example (a compressed-column product): each example's row is
    read once and added to the minibatches that hold it, whose sums stay in
    cache, so the matrix is streamed once instead of gathered at random M B
    times. :func:`resampled_noises` does several batch sizes in one pass.
    """
    return next(resampled_noises(per_example, (batch_size,), n_minibatches, seed=seed))


def resampled_noises(
    per_example, batch_sizes, n_minibatches: int = 1000, *, seed: int = 0
) -> Iterator[np.ndarray]:
    """:func:`resampled_noise` for each batch size, in order, from few passes over ``per_example``.

    The same numbers as one call per size with the same seed. The sizes are
    taken in groups of at most :data:`_GROUP_MEMBERS` subset members in all
    (or one size alone), one pass over the matrix per group: the matrix is
    read in chunks of :data:`_SUM_COLUMNS` columns (on the process's worker
    threads), each centred into a row-major buffer that is added to every
    size's minibatches of the group. No centred copy of the whole matrix is
    made (the Recorder's 60,000 x 500 float32 matrix is 120 MB), and a group's
    selections and noises are all that is held besides it.
    """
    g = _float_matrix(per_example, "per_example")
    n = g.shape[0]
    sizes = [_check_int(b, "batch_size", 1, n - 1) for b in batch_sizes]
    n_minibatches = _check_int(n_minibatches, "n_minibatches", 1)
    _check_seed(seed)
    return _grouped_noises(g, sizes, n_minibatches, seed)  # bad input raises above, at the call


def _grouped_noises(g: np.ndarray, sizes: list[int], n_minibatches: int, seed: int) -> Iterator:
    """The generator of :func:`resampled_noises`, its arguments checked."""
    n, d = g.shape
    mean = threads.column_means(g).astype(g.dtype)
    chunks = threads.column_chunks(d, _SUM_COLUMNS)
    groups: list[list[int]] = []
    for b in sizes:
        if groups and (sum(groups[-1]) + b) * n_minibatches <= _GROUP_MEMBERS:
            groups[-1].append(b)
        else:
            groups.append([b])
    for group in groups:
        selections = [  # the first size (a study's training batch size) kept for next time
            _selection(n, b, n_minibatches, seed, g.dtype, keep=b == sizes[0]) for b in group
        ]
        outs = [np.empty((n_minibatches, d), g.dtype) for _ in group]

        def sums(c: slice, selections=selections, outs=outs) -> None:
            block = np.subtract(g[:, c], mean[c], out=np.empty((n, c.stop - c.start), g.dtype))
            for pieces, out in zip(selections, outs, strict=True):
                for rows, piece in pieces:
                    out[rows, c] = piece @ block

        for _ in threads.in_order(functools.partial(sums, c) for c in chunks):
            pass
        del selections
        while outs:
            yield outs.pop(0)


# --- the calibration curve ---------------------------------------------------------------


def _symmetric_stable(alpha: float, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """SaS(alpha) values from V ~ U(-pi/2, pi/2) and W ~ Exp(1): Chambers, Mallows & Stuck (4.1).

    X = sin(alpha V) / cos(V)^(1/alpha) * (cos((1 - alpha) V) / W)^((1 - alpha) / alpha).
    """
    cos_v = np.abs(np.cos(v))  # |.|: V = -pi/2 may round to just past it in float32
    return (
        np.sin(alpha * v)
        / cos_v ** (1 / alpha)
        * (np.cos((1 - alpha) * v) / w) ** ((1 - alpha) / alpha)
    )


@dataclass(frozen=True)
class CalibrationCurve:
    """Standardised readings of SaS(alpha) matrices of one shape.

    Attributes
    ----------
    n_rows, n_columns : int
        Shape of the simulated matrices.
    alphas : ndarray, shape (A,)
        :data:`ALPHA_GRID`.
    readings : ndarray, shape (R, A)
        1 / (standardised alpha) of each simulated matrix; row r uses the same
        uniform draws, column scales and estimator seed for every alpha
        (common random numbers: each row is a smooth curve).
    """

    n_rows: int
    n_columns: int
    alphas: np.ndarray
    readings: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """Mean 1/reading at each alpha: the curve."""
        return self.readings.mean(axis=0)

    @property
    def sd(self) -> np.ndarray:
        """Standard deviation of one matrix's 1/reading at each alpha."""
        return self.readings.std(axis=0, ddof=1)


def _simulated_columns(n_rows: int, n_columns: int) -> int:
    """The number of columns simulated for a matrix of this shape (the cache's bucket).

    n_columns rounded to 16 steps per octave (within 3%), so that matrices
    whose kept columns vary a little (dead units, from one checkpoint to the
    next) share a curve; kept exactly when the rounding would change the
    estimator's number of blocks (the reading jumps there).
    """
    step = 1 << max(0, n_columns.bit_length() - 5)
    rounded = max(step, round(n_columns / step) * step)
    if AlphaAccumulator(n_rows * rounded).n_blocks != AlphaAccumulator(n_rows * n_columns).n_blocks:
        return n_columns
    return rounded


def _reps(n_rows: int, n_columns: int) -> int:
    """R, the simulated matrices per alpha of a curve of this shape."""
    return int(np.clip(CALIBRATION_VALUES // (n_rows * n_columns), MIN_REPS, MAX_REPS))


def _simulate(n_rows: int, n_columns: int, seed: int, reps: int) -> np.ndarray:
    """The readings of :class:`CalibrationCurve` (R x A), simulated."""
    streams = np.random.SeedSequence((seed, n_rows, n_columns)).spawn(reps)
    readings = np.empty((reps, len(ALPHA_GRID)))
    shape = (n_rows, n_columns)
    for r, stream in enumerate(streams):
        rng = np.random.default_rng(stream)
        # float32 draws (4x faster than float64); the open interval (0, 1) keeps |V| < pi/2
        v = (rng.random(shape, np.float32) - np.float32(0.5) + np.float32(2.0**-25)) * np.pi
        w = np.maximum(rng.standard_exponential(shape, np.float32), np.finfo(np.float32).tiny)
        scales = rng.lognormal(0.0, SCALE_SIGMA, n_columns)
        estimator_seed = int(rng.integers(2**31))
        for a, alpha in enumerate(ALPHA_GRID):
            x = _symmetric_stable(alpha, v, w).astype(np.float64)
            x *= scales
            readings[r, a] = 1 / estimate_alpha(standardise(x)[0], seed=estimator_seed)
    return readings


#: Version of the simulation in the names of cached curves: change it with the simulation.
CURVE_VERSION = 1


def cache_dir() -> Path:
    """Where simulated curves are kept between runs and processes: ``$SGNOISE_CACHE``, else
    ``$XDG_CACHE_HOME/sgnoise``, else ``~/.cache/sgnoise``."""
    if os.environ.get("SGNOISE_CACHE"):
        return Path(os.environ["SGNOISE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sgnoise"


@functools.lru_cache(maxsize=128)
def _curve(n_rows: int, n_columns: int, seed: int, reps: int) -> CalibrationCurve:
    """The curve of one shape and seed: from memory, else the disk cache, else simulated.

    The simulation is deterministic given (shape, seed, :data:`CURVE_VERSION`), so a
    cached file is the same curve; worker processes and later runs share it. A file that
    cannot be read or written is ignored (the curve is simulated and kept in memory).
    """
    name = f"calibration-v{CURVE_VERSION}-{n_rows}x{n_columns}-r{reps}-seed{seed}.npy"
    path = cache_dir() / name
    readings = None
    try:
        readings = np.load(path, allow_pickle=False)
        if readings.shape != (reps, len(ALPHA_GRID)):
            readings = None
    except (OSError, ValueError, EOFError):
        pass
    if readings is None:
        readings = _simulate(n_rows, n_columns, seed, reps)
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                np.save(f, readings, allow_pickle=False)
            os.replace(tmp, path)
    readings.flags.writeable = False
    return CalibrationCurve(n_rows, n_columns, np.array(ALPHA_GRID), readings)


def calibration_curve(n_rows: int, n_columns: int, *, seed: int = 0) -> CalibrationCurve:
    """The standardised reading of SaS(alpha) columns of this shape, against alpha.

    For each alpha in :data:`ALPHA_GRID`, R matrices (R = 8 to 32, see
    :data:`CALIBRATION_VALUES`) of n_rows x n_columns i.i.d. SaS(alpha)
    values (Chambers, Mallows & Stuck 1976), column j scaled by
    exp(SCALE_SIGMA Z_j), are standardised with :func:`standardise` and
    read with the default :func:`estimate_alpha`: exactly what
    :func:`summarise_noise` reports as ``alpha_std``.

    Parameters
    ----------
    n_rows : int
        Rows, >= :data:`MIN_ROWS`.
    n_columns : int
        Columns that are read (not constant ones); rounded to 16 steps per
        octave (:func:`_simulated_columns`): the curve's ``n_columns``.
    seed : int
        Seed of the simulation; the same seed gives the same curve.

    Returns
    -------
    CalibrationCurve
        Kept in memory (the last 128 shapes and seeds): a repeated call costs
        about 0.2 ms; and on disk, in :func:`cache_dir` (a few kB a curve), for
        other processes and later runs. A new curve costs 12 R stable draws, standardisations
        and estimates of n_rows x n_columns values (at most 12 x 32 x 2^17,
        or 12 x 8 x :data:`MAX_VALUES`): measured on 2 shared cores, 2 s for
        16 x 4096, 5 s for 120 x 1024 and 12 s for 16 x 79,400
        (``bench/validate_calibration.py`` prints them).
    """
    n_rows = _check_int(n_rows, "n_rows", MIN_ROWS)
    n_columns = _check_int(n_columns, "n_columns", 1)
    _check_seed(seed)
    if n_rows * n_columns < MIN_SAMPLES:
        raise ValueError(
            f"n_rows x n_columns must be at least {MIN_SAMPLES} values, got {n_rows} x {n_columns}"
        )
    if n_rows * n_columns > MAX_VALUES:
        raise ValueError(
            f"n_rows x n_columns must be at most MAX_VALUES = {MAX_VALUES}, got {n_rows} x "
            f"{n_columns}: read a random subset of the columns (calibrated_alpha does)"
        )
    columns = _simulated_columns(n_rows, n_columns)
    return _curve(n_rows, columns, int(seed), _reps(n_rows, columns))


def calibrate(
    summary: Mapping[str, float],
    shape: tuple[int, int],
    *,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float | bool]:
    """Calibrated alpha of a standardised reading: the SaS(alpha) whose reading is the same.

    With u = 1/reading and f(alpha) the curve's mean 1/reading at alpha
    (:func:`calibration_curve`, interpolated monotonically between grid
    points), the estimate is the alpha where f(alpha) is closest to u, and
    the interval is every alpha with

        |u - f(alpha)| <= sqrt(max(h, t s(alpha))^2 + (t s(alpha))^2 / R),

    where h is the half-width of the reading's interval on 1/alpha (it is
    symmetric there: a t interval, see :func:`summarise_noise`), s(alpha) the
    standard deviation of one simulated matrix's 1/reading over the curve's
    R matrices, and t the quantile of ``level`` with R - 1 degrees of
    freedom. The second term is the curve's Monte-Carlo scatter; t s(alpha)
    is a floor under h because the reading's interval, from the spread of
    independent groups of values, misses what a column's values share (its
    own mean and standard deviation divide them all): with 1000 rows and
    256 columns it gave the calibrated interval a coverage of 0.82-0.89, not
    0.95 (``bench/validate_calibration.py``).

    A reading at or above the Gaussian's (u <= f(2)) gives 2.0 and an
    interval whose upper end is 2 (``at_gaussian``); one below the lightest
    tail the grid reaches gives its edge, 0.6 (``below_grid``: "about 0.6 or
    heavier").

    Parameters
    ----------
    summary : mapping
        What :func:`summarise_noise` (or one entry of
        :func:`~sgnoise.tail_index.summarise_layers`) returns for the noise:
        ``alpha_std``, ``alpha_std_lo``, ``alpha_std_hi`` and ``n_dropped``,
        at the same ``level``.
    shape : (int, int)
        Shape of the noise matrix that was read (constant columns included:
        ``n_dropped`` of them are subtracted).
    seed : int
        Seed of the calibration curve.
    level : float
        Coverage of the interval, in (0, 1).

    Returns
    -------
    dict
        ``alpha_calibrated``, ``alpha_calibrated_lo``, ``alpha_calibrated_hi``
        (NaN if the reading is NaN, with too few values, or if there are
        fewer than :data:`MIN_ROWS` rows: a study can call it on every
        matrix), ``at_gaussian``, ``below_grid``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n_rows, n_columns = shape
    n_kept = n_columns - int(summary["n_dropped"])
    reading, lo, hi = (summary[k] for k in ("alpha_std", "alpha_std_lo", "alpha_std_hi"))
    if not np.isfinite(reading) or n_rows < MIN_ROWS or n_rows * n_kept < MIN_SAMPLES:
        nan = float("nan")
        keys = ("alpha_calibrated", "alpha_calibrated_lo", "alpha_calibrated_hi")
        return dict.fromkeys(keys, nan) | {"at_gaussian": False, "below_grid": False}
    curve = calibration_curve(n_rows, n_kept, seed=seed)
    grid = np.round(np.linspace(ALPHA_GRID[0], ALPHA_GRID[-1], _FINE), 3)
    # imported here: scipy.interpolate (with scipy.optimize, 0.2-0.3 s) only where a reading
    # is calibrated, not in a driver that imports the engine and hands its runs to workers
    from scipy.interpolate import PchipInterpolator  # noqa: PLC0415

    f = PchipInterpolator(curve.alphas, curve.mean)(grid)
    reps = curve.readings.shape[0]
    ts = special.stdtrit(reps - 1, (1 + level) / 2) * np.interp(grid, curve.alphas, curve.sd)
    u, h = 1 / reading, (1 / lo - 1 / hi) / 2
    distance = np.abs(u - f)
    inside = grid[distance <= np.sqrt(np.maximum(h, ts) ** 2 + ts**2 / reps)]
    at_gaussian = bool(u <= f[-1])
    alpha = 2.0 if at_gaussian else float(grid[np.argmin(distance)])
    low = float(inside.min()) if inside.size else alpha
    high = 2.0 if at_gaussian else float(inside.max()) if inside.size else alpha
    return {
        "alpha_calibrated": alpha,
        "alpha_calibrated_lo": min(low, alpha),
        "alpha_calibrated_hi": max(high, alpha),
        "at_gaussian": at_gaussian,
        "below_grid": bool(u >= f[0]),
    }


def calibrated_alpha(
    noise,
    *,
    summary: Mapping[str, float] | None = None,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float | bool | int]:
    """Read a noise matrix's standardised alpha and calibrate it (:func:`calibrate`).

    Parameters
    ----------
    noise : array_like, shape (n_rows, n_columns)
        Finite, n_rows >= :data:`MIN_ROWS`. If n_rows x n_columns exceeds
        :data:`MAX_VALUES`, a random subset of MAX_VALUES // n_rows columns
        (seeded) is read instead: the reading's interval is then wider, the
        calibration as cheap as for that shape.
    summary : mapping, optional
        ``summarise_noise(noise, seed=seed, level=level)`` if already
        computed (used only when the whole matrix is read).
    seed : int
        Seed of the reading, of the column subset and of the curve.
    level : float
        Coverage of the interval.

    Returns
    -------
    dict
        :func:`calibrate`'s keys and ``n_columns_calibrated`` (the columns read).
    """
    noise = _float_matrix(noise, "noise")
    n_rows, n_columns = noise.shape
    _check_int(n_rows, "noise's number of rows", MIN_ROWS)
    _check_seed(seed)
    if n_rows * n_columns > MAX_VALUES:
        keep = MAX_VALUES // n_rows
        columns = np.sort(np.random.default_rng(seed).choice(n_columns, keep, replace=False))
        noise, summary = noise[:, columns], None
    if summary is None:
        summary = standardised_alpha(noise, seed=seed, level=level)
    return calibrate(summary, noise.shape, seed=seed, level=level) | {
        "n_columns_calibrated": noise.shape[1]
    }


# --- per-column alpha ---------------------------------------------------------------------


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
    uniformly random ones). Exact zeros are left out of the log means (the
    median of an odd M is one); columns with fewer than M/2 nonzero values
    (constant ones) give NaN. Chunks of columns are estimated on the
    process's worker threads (:mod:`sgnoise.threads`).

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
    n_partitions = _check_int(n_partitions, "n_partitions", 1)
    _check_seed(seed)
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


def _quantiles(values: np.ndarray) -> dict[str, float]:
    values = values[~np.isnan(values)]
    levels = np.percentile(values, QUANTILES)
    return {str(q): float(v) for q, v in zip(QUANTILES, levels, strict=True)}


@functools.lru_cache(maxsize=16)
def _gaussian_column_quantiles(n_rows: int, n_columns: int, seed: int) -> dict[str, float]:
    gauss = np.random.default_rng((seed, n_rows, n_columns)).standard_normal((n_rows, n_columns))
    return _quantiles(column_alpha(gauss, seed=seed))


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
        Finite. Rows are samples (e.g. :func:`resampled_noise`'s minibatches).
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
    return spread


def per_column_alpha_by_block(
    noise, blocks: Mapping[str, slice], *, max_columns: int = 4096, seed: int = 0
) -> dict[str, dict[str, dict[str, float] | int] | None]:
    """:func:`per_column_alpha` of each block of columns of one matrix (e.g. of each layer's,
    and of all of them), each column estimated once.

    ``{name: per_column_alpha(noise[:, columns], max_columns=max_columns, seed=seed)}``
    for ``blocks = {name: columns}``: the column subsets are drawn block by block as
    there, and :func:`column_alpha` runs once on the union of the columns they keep
    (a column's estimate does not depend on the columns beside it).
    """
    noise = _float_matrix(noise, "noise")
    max_columns = _check_int(max_columns, "max_columns", 1)
    _check_seed(seed)
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
            "quantiles": _quantiles(alphas[index]),
            "gaussian_quantiles": _gaussian_column_quantiles(n_rows, index.size, seed),
            "n_columns": int(index.size),
            "n_rows": int(n_rows),
        }
    return out
