"""Shared by all estimators: the sample floor, float input, the finiteness check, intervals."""

from __future__ import annotations

import numpy as np
from scipy import special

MIN_SAMPLES = 100


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
