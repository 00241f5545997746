"""The calibrated alpha of a standardised reading: the calibration curve and its reading.

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
  alpha in [0.5, 2], by simulation (deterministic given the seed, kept in
  memory and on disk, :func:`cache_dir`);
- :func:`calibrate`: the alpha whose curve value equals the reading, with an
  interval that holds both the reading's interval and the curve's Monte-Carlo
  scatter; :func:`calibrated_alpha` reads a matrix and calibrates it.

Centred or not. A column centred on its sample mean cannot be read below
alpha ~ 1: for a stable law with alpha <= 1 the sample mean is itself
dominated by the extremes, and the centred reading saturates near 1.07
(SaS(0.6), (0.8), (1.0) read 1.08, 1.07, 1.13 at 1,000 x 250: the curve turns
back). Noise whose mean is known to be zero, as resampled minibatch noise is
(minibatch gradient minus the full gradient of the examples drawn from), is
read without centring (``centred=False``: each column divided by its root mean
square), and its curve rises over the whole grid (0.49, 0.59, 0.80, 0.99 for
alpha = 0.5, 0.6, 0.8, 1.0). A reading beyond the part of the curve that rises
(below its lightest alpha, or at or above the Gaussian's) is a bound, not a
point: :func:`calibrate` says so (``below_grid``, ``above_grid``) and leaves
the interval open on that side.

The rows are typically resampled minibatches (:mod:`sgnoise.resample`); each
column's own alpha is :mod:`sgnoise.tail_index.per_column`'s.

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
import hashlib
import json
import os
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import special

from sgnoise.results import open_npz
from sgnoise.tail_index import (
    MIN_SAMPLES,
    AlphaAccumulator,
    estimate_alpha,
    standardise,
    standardised_alpha,
)
from sgnoise.tail_index.common import check_int, check_level, check_seed, float_matrix

#: Alphas at which the calibration curve is simulated (finer near 2, where it bends).
ALPHA_GRID = (0.5, 0.6, 0.8, 1.0, 1.2, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 1.95, 2.0)
#: Values simulated per alpha for a curve: CALIBRATION_VALUES // (n_rows x n_columns)
#: matrices, clipped to [MIN_REPS, MAX_REPS]. With R matrices the curve's scatter is
#: 1/sqrt(R) of one reading's spread, and that spread (a floor under the reading's own
#: interval) is known to the effective degrees of freedom of its estimate from R readings
#: (:func:`biweight_law`): both are in the interval.
CALIBRATION_VALUES = 1 << 22
MIN_REPS, MAX_REPS = 8, 32
#: Tuning constant of :func:`biweight_scale`, in median absolute deviations: values beyond
#: it are left out of the curve's spread.
BIWEIGHT_C = 6.0
#: Normal samples of R values simulated by :func:`biweight_law` (seeded: the same law every run).
BIWEIGHT_LAW_DRAWS = 1 << 15
#: sigma of the log-normal column scales of the simulated matrices (standardising removes them).
SCALE_SIGMA = 1.5
#: Fewest rows calibrated: at 4 rows the reading is about 2.2 whatever alpha in [0.6, 2] is.
MIN_ROWS = 8
#: Most values (rows x columns) simulated for a curve; larger matrices are read on a
#: random subset of their columns (:func:`calibrated_alpha`).
MAX_VALUES = 1 << 21
_FINE = 1401  # points of the fine alpha grid the curve is inverted on (steps of 0.001)


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
    centred : bool
        Whether the simulated columns were centred before standardising.
    """

    n_rows: int
    n_columns: int
    alphas: np.ndarray
    readings: np.ndarray
    centred: bool = True

    @property
    def mean(self) -> np.ndarray:
        """Mean 1/reading at each alpha: the curve."""
        return self.readings.mean(axis=0)

    @functools.cached_property
    def spread(self) -> np.ndarray:
        """Spread of one matrix's 1/reading at each alpha over the R matrices: Tukey's biweight
        midvariance, square-rooted (:func:`biweight_scale`), not the standard deviation, over
        its finite-sample consistency factor at R (:func:`biweight_law`). Computed once a curve
        (curves are kept in memory and read at every checkpoint; read-only, as the readings)."""
        spread = biweight_scale(self.readings) / biweight_law(self.readings.shape[0])[0]
        spread.flags.writeable = False  # shared by every reader of the kept curve
        return spread

    @property
    def spread_dof(self) -> float:
        """Effective degrees of freedom of :attr:`spread` (:func:`biweight_law`), not R - 1."""
        return biweight_law(self.readings.shape[0])[1]


def biweight_scale(x: np.ndarray, c: float = BIWEIGHT_C) -> np.ndarray:
    """Tukey's biweight midvariance of each column of x, square-rooted and divided by its
    value for normal values (Mosteller & Tukey 1977; ``astropy.stats.biweight_midvariance``
    without the division): with M the column's median, MAD its median absolute deviation
    and u = (x - M) / (c MAD),

        n sum_{|u| < 1} (x - M)^2 (1 - u^2)^4 / (sum_{|u| < 1} (1 - u^2)(1 - 5 u^2))^2.

    The standard deviation of normal values as n grows (at n = 8, 16, 32 normal values
    its mean is 0.87, 0.94, 0.97 of sigma, the sample standard deviation's 0.97, 0.98,
    0.99), but values beyond c MADs of the median count for nothing: one of R matrices
    whose reading an extreme value moved no longer widens every interval of its curve (see
    :func:`calibrate`). 0 where more than half of a column's values are equal (MAD = 0).
    """
    median = np.median(x, axis=0)
    deviation = x - median
    mad = np.median(np.abs(deviation), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = deviation / (c * mad)
        inside = np.abs(u) < 1
        w = np.where(inside, 1 - u * u, 0.0)
        num = np.sum(np.where(inside, deviation**2, 0.0) * w**4, axis=0)
        den = np.sum(w * (1 - 5 * u * u), axis=0)
        scale = np.sqrt(x.shape[0] * num) / np.abs(den) / _biweight_normal(c)
    return np.where(mad > 0, scale, 0.0)


@functools.cache
def biweight_law(n: int, c: float = BIWEIGHT_C) -> tuple[float, float]:
    """Law of :func:`biweight_scale` s of n normal values of standard deviation sigma, as a
    scaled chi-square: (k_n, nu_n) with (s / (k_n sigma))^2 ~ chi^2_nu_n / nu_n.

    Then x / (s / k_n), x a further N(0, sigma^2) value (or a further value less the n
    values' mean, over sqrt(1 + 1/n): that mean is independent of s, Basu's theorem), is
    nearly Student t with nu_n degrees of freedom, and t_nu_n s / k_n is a floor of the
    level it says, where t_{n-1} s is not: the biweight scale is biased low and noisier
    than a standard deviation at few values (k = 0.93, 0.97, 0.99 and nu = 3.7, 9.9, 23 at
    n = 8, 16, 32; the floor t_{n-1} s held 0.907, 0.934, 0.943 of normal values at level
    0.95).
    k and nu match the mean and variance of log s^2 to those of log(chi^2_nu / nu)
    (digamma and trigamma of nu / 2), estimated on :data:`BIWEIGHT_LAW_DRAWS` simulated
    samples of n standard normal values (seeded: the same numbers in every run; 0.3-0.8 s
    for n = 32 on a shared core, once a process, then kept in memory). Matching log s^2
    rather than s^2 fits the lower tail of s, which sets the floor's coverage: at n = 8 to
    32 the floor then holds a new normal value within 0.005 of each level from 0.80 to 0.99
    (``tests/test_calibration.py``; matching s^2's moments, 0.94 at level 0.95 and n = 8).
    """
    from scipy import optimize  # noqa: PLC0415  (as PchipInterpolator: where used)

    n = check_int(n, "n", 4)
    x = np.random.default_rng((0xB1, n)).standard_normal((n, BIWEIGHT_LAW_DRAWS))
    log_s2 = 2 * np.log(biweight_scale(x, c=c))
    var = log_s2.var()
    nu = optimize.brentq(lambda nu: special.polygamma(1, nu / 2) - var, 1e-3, 1e6)
    log_k2 = log_s2.mean() - special.digamma(nu / 2) + np.log(nu / 2)
    return float(np.exp(log_k2 / 2)), float(nu)


@functools.cache
def _biweight_normal(c: float) -> float:
    """:func:`biweight_scale` of the standard normal law (n -> infinity), by 64-point
    Gauss-Legendre quadrature over the window |t| < c MAD (a polynomial times the normal
    density: exact to rounding, as scipy's adaptive quadrature; numpy and scipy.special only,
    so a worker never imports scipy.stats nor scipy.integrate, ~0.2-1.5 s): 1.046 at c = 6,
    1.009 at c = 9."""
    edge = c * special.ndtri(0.75)  # c MAD
    nodes, weights = np.polynomial.legendre.leggauss(64)
    t, weights = nodes * edge, weights * edge
    density = np.exp(-t * t / 2) / np.sqrt(2 * np.pi)
    u = nodes  # t / edge
    num = np.sum(weights * density * t * t * (1 - u * u) ** 4)
    den = np.sum(weights * density * (1 - u * u) * (1 - 5 * u * u))
    return float(np.sqrt(num) / abs(den))


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


def _simulate(n_rows: int, n_columns: int, seed: int, reps: int, centred: bool) -> np.ndarray:
    """The readings of :class:`CalibrationCurve` (R x A), simulated."""
    streams = np.random.SeedSequence((seed, n_rows, n_columns)).spawn(reps)
    readings = np.empty((reps, len(ALPHA_GRID)))
    shape = (n_rows, n_columns)
    # Centred curves: float32 draws (4x faster than float64; the open interval (0, 1) keeps
    # |V| < pi/2). Uncentred ones are read from their extremes (each column over its root
    # mean square), which float32's V near +-pi/2 gets wrong by large factors (the readings
    # of SaS(0.8) matrices scattered twice as much as exact draws'): float64 draws.
    dtype, tiny = (np.float32, 2.0**-25) if centred else (np.float64, 2.0**-54)
    for r, stream in enumerate(streams):
        rng = np.random.default_rng(stream)
        v = (rng.random(shape, dtype) - dtype(0.5) + dtype(tiny)) * np.pi
        w = np.maximum(rng.standard_exponential(shape, dtype), np.finfo(dtype).tiny)
        scales = rng.lognormal(0.0, SCALE_SIGMA, n_columns)
        estimator_seed = int(rng.integers(2**31))
        for a, alpha in enumerate(ALPHA_GRID):
            with np.errstate(over="ignore"):
                x = _symmetric_stable(alpha, v, w).astype(np.float64)
            if not np.isfinite(x).all():  # alpha = 0.5 overflows float32: the same draws in float64
                x = _symmetric_stable(alpha, v.astype(np.float64), w.astype(np.float64))
            x *= scales
            z = standardise(x, centred=centred)[0]
            readings[r, a] = 1 / estimate_alpha(z, seed=estimator_seed)
    return readings


#: Version of the simulation in the names of cached curves: change it with the simulation.
CURVE_VERSION = 3


def cache_dir() -> Path:
    """Where simulated curves are kept between runs and processes: ``$SGNOISE_CACHE``, else
    ``$XDG_CACHE_HOME/sgnoise``, else ``~/.cache/sgnoise``."""
    if os.environ.get("SGNOISE_CACHE"):
        return Path(os.environ["SGNOISE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sgnoise"


def _cache_entry(n_rows: int, n_columns: int, seed: int, reps: int, centred: bool) -> dict:
    """What made a cached curve (its file holds this and a checksum of the readings)."""
    import sgnoise  # noqa: PLC0415  (the package imports this module)

    return {
        "sgnoise": sgnoise.__version__,
        "simulation": CURVE_VERSION,
        "shape": [n_rows, n_columns],
        "grid": list(ALPHA_GRID),
        "seed": seed,
        "draws": reps,
        "centred": centred,
    }


def _checksum(readings: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(readings, "<f8").tobytes()).hexdigest()


def _cached(path: Path, entry: Mapping) -> tuple[np.ndarray | None, str]:
    """The readings kept in ``path`` if they verify, else None and why not ('': no file)."""
    try:
        with open_npz(path) as f:
            readings, saved = f["readings"], json.loads(f["entry"].item())
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        return None, f"unreadable ({err})"
    checksum = saved.pop("sha256", None) if isinstance(saved, dict) else None
    if saved != entry:
        return None, f"made by other parameters ({saved}, not {entry})"
    if checksum != _checksum(readings):
        return None, "its values do not match their checksum (changed or damaged)"
    # a reading is 1/alpha-hat >= 0: 0 where 1/alpha-hat <= 0 (estimate_alpha's inf), which
    # a matrix of few values gives at alpha near 2 (uncentred 100 x 1: two of 416 readings)
    if readings.shape != (entry["draws"], len(ALPHA_GRID)) or not (readings >= 0).all():
        return None, f"its values are not readings (shape {readings.shape}, or not all >= 0)"
    return readings, ""


@functools.lru_cache(maxsize=128)
def _stored_curve(
    n_rows: int, n_columns: int, seed: int, reps: int, centred: bool
) -> CalibrationCurve:
    """The curve of one shape and seed: from memory, else the disk cache, else simulated.

    The simulation is deterministic given (shape, seed, :data:`CURVE_VERSION`), so a
    cached file is the same curve; worker processes and later runs share it. Each file
    holds what made it (sgnoise's version, the simulation's, the shape, the alpha grid,
    the seed and the number of draws) and a SHA-256 of its readings: a file that does
    not verify is simulated again and replaced, with one line on stderr saying so. A
    file that cannot be written is ignored (the curve is kept in memory).
    """
    kind = "centred" if centred else "uncentred"
    name = f"calibration-v{CURVE_VERSION}-{kind}-{n_rows}x{n_columns}-r{reps}-seed{seed}.npz"
    path = cache_dir() / name
    entry = _cache_entry(n_rows, n_columns, seed, reps, centred)
    readings, why = _cached(path, entry)
    if readings is None:
        if why:
            print(f"calibration cache {path}: {why}; simulating it again", file=sys.stderr)
        readings = _simulate(n_rows, n_columns, seed, reps, centred)
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                kept = json.dumps({**entry, "sha256": _checksum(readings)})
                np.savez(f, readings=readings, entry=np.array(kept))
            os.replace(tmp, path)
    readings.flags.writeable = False
    return CalibrationCurve(n_rows, n_columns, np.array(ALPHA_GRID), readings, centred)


def calibration_curve(
    n_rows: int, n_columns: int, *, seed: int = 0, centred: bool = True
) -> CalibrationCurve:
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
    centred : bool
        Columns centred on their mean before they are divided by their standard
        deviation (as :func:`summarise_noise` does), or divided by their root mean
        square only (noise known to have mean zero; see the module docstring).

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
    n_rows = check_int(n_rows, "n_rows", MIN_ROWS)
    n_columns = check_int(n_columns, "n_columns", 1)
    check_seed(seed)
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
    return _stored_curve(n_rows, columns, int(seed), _reps(n_rows, columns), bool(centred))


def calibrate(
    summary: Mapping[str, float],
    shape: tuple[int, int],
    *,
    seed: int = 0,
    level: float = 0.95,
    centred: bool = True,
) -> dict[str, float | bool]:
    """Calibrated alpha of a standardised reading: the SaS(alpha) whose reading is the same.

    With u = 1/reading and f(alpha) the curve's mean 1/reading at alpha
    (:func:`calibration_curve`, interpolated monotonically between grid
    points), the estimate is the alpha where f(alpha) is closest to u, and
    the interval is every alpha with

        |u - f(alpha)| <= sqrt(max(h, t s(alpha))^2 + (t s(alpha))^2 / R),

    where h is the half-width of the reading's interval on 1/alpha (it is
    symmetric there: a t interval, see :func:`summarise_noise`), s(alpha) the
    spread of one simulated matrix's 1/reading over the curve's R matrices
    (:attr:`CalibrationCurve.spread`: a biweight scale over its finite-sample
    consistency factor at R, see below), and t the quantile of ``level`` with the
    effective degrees of freedom of that scale at R (:func:`biweight_law`: 3.7,
    9.9, 23 at R = 8, 16, 32, not R - 1). The second term is
    the curve's Monte-Carlo scatter; t s(alpha) is a floor under h because the
    reading's interval, from the spread of independent groups of values, misses
    what a column's values share (its own mean and standard deviation divide
    them all): with 1000 rows and 256 columns it gave the calibrated interval a
    coverage of 0.82-0.89, not 0.95 (``bench/validate_calibration.py``).

    Why a biweight scale (:func:`biweight_scale`), not the standard deviation:
    at alpha <= 1 one matrix's reading in R is now and then far from the others
    (an extreme value dominates its columns), and the same matrix at every alpha
    (the curve's common random numbers). Its deviation inflated the standard
    deviation, so every interval of that curve: uncentred at 1,000 x 256 (R = 16)
    they covered SaS(0.6), (0.8), (1.0) in 100 of 100 matrices, 1.4-1.3 times
    too wide. The biweight scale leaves out values beyond 6 median absolute
    deviations and tends to the standard deviation for normal readings; with it
    the same matrices are covered 0.97, 0.98, 0.95 of the time (0.97, 0.98, 0.99 with
    the correction below), and the rows at
    alpha >= 1.2 moved by at most 0.02 (docs/validation.md). The median absolute
    deviation alone, tried first, is too noisy at R = 16 (coverage 0.88 at
    SaS(1.5), 1,000 x 256, centred). Neither scale makes the coverage exact: it
    hangs on one curve's R readings (centred SaS(1.5) at 1,000 x 128 is covered
    0.81 of the time, with or without the correction below, 0.88 with the standard
    deviation; docs/validation.md).

    Why the consistency factor and the effective degrees of freedom: at the curves'
    R the biweight scale of normal values is biased low and noisier than a standard
    deviation (mean 0.87, 0.94, 0.97 of sigma at R = 8, 16, 32), so t_{R-1} s(alpha)
    held a new normal reading 0.907, 0.934, 0.943 of the time at level 0.95, not 0.95.
    Scaled by the factor and read with t of the effective degrees of
    freedom (both simulated on normal samples, :func:`biweight_law`) it holds 0.95
    within 0.005 at every R, and at levels 0.80 to 0.99: the floor is 1.03 times what
    it was at R = 32, 1.08 at R = 16 and 1.29 at R = 8 (level 0.95). That corrects the
    floor on average over curves, not the luck of one: a curve's spread is known to
    about 1/sqrt(2 nu) (15% at R = 32, 22% at 16, 37% at 8), and the 0.81 above is
    such a curve (other seeds' R = 32 curves of that shape cover 0.89-0.98;
    docs/validation.md).

    Only the part of the curve where the reading rises with alpha is read
    (all of it for an uncentred curve; from about alpha = 1 up for a centred
    one, which turns back below, see the module docstring): its lightest alpha
    is the edge. A reading at or above the Gaussian's (u <= f(2)) gives 2.0,
    ``above_grid`` and an interval open above (``alpha_calibrated_hi`` NaN: no
    alpha fits better than 2, the bound); one below the edge gives the edge,
    ``below_grid`` and an interval open below (``alpha_calibrated_lo`` NaN:
    "the edge or heavier"). Neither is a point estimate.

    Parameters
    ----------
    summary : mapping
        What :func:`summarise_noise` (or one entry of
        :func:`~sgnoise.tail_index.summarise_layers`) returns for the noise:
        ``alpha_std``, ``alpha_std_lo``, ``alpha_std_hi`` and ``n_dropped``,
        at the same ``level``; :func:`~sgnoise.tail_index.standardised_alpha`'s
        with ``centred=False`` for an uncentred reading.
    shape : (int, int)
        Shape of the noise matrix that was read (constant columns included:
        ``n_dropped`` of them are subtracted).
    seed : int
        Seed of the calibration curve.
    level : float
        Coverage of the interval, in (0, 1).
    centred : bool
        Whether the reading centred the columns (:func:`calibration_curve`).

    Returns
    -------
    dict
        ``alpha_calibrated``, ``alpha_calibrated_lo``, ``alpha_calibrated_hi``
        (NaN if the reading is NaN, with too few values, or if there are
        fewer than :data:`MIN_ROWS` rows: a study can call it on every
        matrix; NaN on the open side of a bound), ``above_grid``, ``below_grid``.
    """
    level = check_level(level)
    n_rows, n_columns = shape
    n_kept = n_columns - int(summary["n_dropped"])
    reading, lo, hi = (summary[k] for k in ("alpha_std", "alpha_std_lo", "alpha_std_hi"))
    if not np.isfinite(reading) or n_rows < MIN_ROWS or n_rows * n_kept < MIN_SAMPLES:
        nan = float("nan")
        keys = ("alpha_calibrated", "alpha_calibrated_lo", "alpha_calibrated_hi")
        return dict.fromkeys(keys, nan) | {"above_grid": False, "below_grid": False}
    curve = calibration_curve(n_rows, n_kept, seed=seed, centred=centred)
    grid = np.round(np.linspace(ALPHA_GRID[0], ALPHA_GRID[-1], _FINE), 3)
    # imported here: scipy.interpolate (with scipy.optimize, 0.2-0.3 s) only where a reading
    # is calibrated, not in a driver that imports the engine and hands its runs to workers
    from scipy.interpolate import PchipInterpolator  # noqa: PLC0415

    f = PchipInterpolator(curve.alphas, curve.mean)(grid)
    rising = np.flatnonzero(np.diff(f) >= 0)  # 1/reading must fall as alpha grows
    edge = rising[-1] + 1 if rising.size else 0
    grid, f = grid[edge:], f[edge:]
    reps = curve.readings.shape[0]
    spread = np.interp(grid, curve.alphas, curve.spread)
    ts = special.stdtrit(curve.spread_dof, (1 + level) / 2) * spread
    u, h = 1 / reading, (1 / lo - 1 / hi) / 2
    distance = np.abs(u - f)
    inside = grid[distance <= np.sqrt(np.maximum(h, ts) ** 2 + ts**2 / reps)]
    above, below = bool(u <= f[-1]), bool(u >= f[0])
    alpha = 2.0 if above else float(grid[0]) if below else float(grid[np.argmin(distance)])
    low = float(inside.min()) if inside.size else alpha
    high = float(inside.max()) if inside.size else alpha
    return {
        "alpha_calibrated": alpha,
        "alpha_calibrated_lo": float("nan") if below else min(low, alpha),
        "alpha_calibrated_hi": float("nan") if above else max(high, alpha),
        "above_grid": above,
        "below_grid": below,
    }


def calibrated_alpha(
    noise,
    *,
    summary: Mapping[str, float] | None = None,
    seed: int = 0,
    level: float = 0.95,
    centred: bool = True,
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
        ``standardised_alpha(noise, seed=seed, level=level, centred=centred)`` (or
        :func:`summarise_noise`'s, centred) if already computed (used only when the
        whole matrix is read).
    seed : int
        Seed of the reading, of the column subset and of the curve.
    level : float
        Coverage of the interval.
    centred : bool
        Centre the columns (False: noise known to have mean zero, e.g. resampled
        minibatch noise; see the module docstring).

    Returns
    -------
    dict
        :func:`calibrate`'s keys and ``n_columns_calibrated`` (the columns read).
    """
    noise = float_matrix(noise, "noise")
    n_rows, n_columns = noise.shape
    check_int(n_rows, "noise's number of rows", MIN_ROWS)
    check_seed(seed)
    if n_rows * n_columns > MAX_VALUES:
        keep = MAX_VALUES // n_rows
        columns = np.sort(np.random.default_rng(seed).choice(n_columns, keep, replace=False))
        noise, summary = noise[:, columns], None
    if summary is None:
        summary = standardised_alpha(noise, seed=seed, level=level, centred=centred)
    return calibrate(summary, noise.shape, seed=seed, level=level, centred=centred) | {
        "n_columns_calibrated": noise.shape[1]
    }
