"""Hill, Pickands, moment and McCulloch: the classical estimators, to compare with Mohammadi's."""

from __future__ import annotations

import warnings

import numpy as np


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
