"""Shared by all estimators: the sample floor, reported quantiles, argument checks, intervals."""

from __future__ import annotations

import numpy as np
from scipy import special

from sgnoise.mlp import all_finite

MIN_SAMPLES = 100
#: Values within this share of a column's scale (its root mean square about its centre) of
#: the centre are ties with it, as exact zeros are, in every estimator that leaves zeros
#: out (:func:`ties`). Float sums taken in another order (a PyTorch user's, or noise summed
#: after centring) scatter repeated values by about 1e-16 of the scale, which must not read
#: as a tail: 1e-15 of such scatter once moved per-column quantiles from 1.5 to 0.24.
TIE_TOLERANCE = 1e-9
#: Quantiles (percent) reported over coordinates; the keys of their dicts are ``str(q)``.
QUANTILES = (5, 25, 50, 75, 95)


def quantiles(values: np.ndarray) -> dict[str, float]:
    """The :data:`QUANTILES` of values, keyed ``str(q)``."""
    levels = np.percentile(values, QUANTILES)
    return {str(q): float(v) for q, v in zip(QUANTILES, levels, strict=True)}


def tie_tolerance(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """:data:`TIE_TOLERANCE` times the root mean square of x along ``axis`` (x centred on
    what its ties would equal: 0 for per-example gradients, the median for per-column
    estimates), computed in float64."""
    return TIE_TOLERANCE * np.sqrt(np.mean(np.square(x, dtype=np.float64), axis=axis))


def tie_tolerance_of(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """:func:`tie_tolerance` of columns of this mean and standard deviation, known without
    the values (their root mean square about 0 is hypot(mean, std)), in float64."""
    return TIE_TOLERANCE * np.hypot(mean.astype(np.float64), std.astype(np.float64))


def ties(x: np.ndarray, axis: int = 0, tolerance: np.ndarray | None = None) -> np.ndarray:
    """Where x (centred) is within :func:`tie_tolerance` of 0: exact zeros and near-ties.

    ``tolerance``: the tolerance of each column (axis 0) or row (axis 1) if already known
    (:data:`TIE_TOLERANCE` times the root mean square of the whole column or row, when x is
    only a piece of it)."""
    if tolerance is None:
        tolerance = tie_tolerance(x, axis)
    return np.abs(x) <= np.expand_dims(np.asarray(tolerance, x.dtype), axis)


def check_level(level: float) -> float:
    """``level`` as a float in (0, 1), or a one-line ValueError."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(level)


def check_seed(seed) -> None:
    if seed is None or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0 (results must be reproducible), got {seed}")


def check_int(value, name: str, low: int, high: float = np.inf) -> int:
    if isinstance(value, bool) or int(value) != value or not low <= value <= high:
        bounds = f">= {low}" if high == np.inf else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {bounds}, got {value}")
    return int(value)


def float_matrix(x, name: str) -> np.ndarray:
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


def interval(u: float, se: float, dof: int, level: float) -> tuple[float, float]:
    """alpha-interval from 1/alpha-hat = u with standard error se (t quantiles)."""
    t = special.stdtrit(dof, (1 + check_level(level)) / 2)
    return inverse(u + t * se), inverse(u - t * se)


def inverse(u: float) -> float:
    """alpha = 1/u, +inf for u <= 0 (no sign of a tail at all)."""
    return float(1 / u) if u > 0 else float("inf")


def as_float(x) -> np.ndarray:
    """x as a float32 or wider float array (no copy if it is one)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float64)
    return x.astype(np.float32) if x.dtype.itemsize < 4 else x


def check_finite(x: np.ndarray, name: str) -> None:
    n_nan = int(np.count_nonzero(np.isnan(x)))
    n_inf = int(np.count_nonzero(np.isinf(x)))
    if n_nan or n_inf:
        raise ValueError(
            f"{name} must be finite, got {n_nan} NaN and {n_inf} inf values of {x.size}: "
            "a diverged run? Drop or fix them before estimating alpha"
        )
