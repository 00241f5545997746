"""Validate the calibrated alpha (sgnoise.calibration) on matrices of known per-column alpha.

Each matrix has n rows and C columns of i.i.d. SaS(alpha) values
(scipy.stats.levy_stable, an implementation independent of the calibration's
own sampler), column j scaled by exp(1.5 Z_j). It is read with
summarise_noise (standardised alpha and its interval) and calibrated with
calibrate. Prints, per (n, alpha): the mean standardised reading, the bias and
sd of the calibrated alpha, the mean width of its 95% interval and how often
the interval holds the truth, over REPS matrices. Targets: |bias| <= 0.05 at
n >= 120 and coverage in [0.90, 0.98]; at n = 16 an honest (wide) interval.
Then the same for Student t columns (information: t(1.5) is attracted to
SaS(1.5), t(3) has finite variance, alpha = 2), the shape of the 784-100-10
MLP's noise (16 x 79,400, fewer matrices), the per-column quantiles at
n = 1000 beside those of Gaussian columns, and the reading without centring
(noise of known mean zero, as resampled minibatch noise is) at the resampled
rows' shape, 1000 x 256, for alpha = 0.6, 0.8, 1.0 (and 1.5, 2.0): targets
|bias| <= 0.05 and coverage in [0.90, 0.98] among the intervals that are
finite (a reading beyond the curve is a bound, open on one side; "finite" says
how many were not), PASS/FAIL on each of those three rows; the centred reading
of the same matrices beside it (information: it saturates below alpha ~ 1).
Run: python bench/validate_calibration.py   (about 5 minutes on 2 cores)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import zlib
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy.stats import binom, levy_stable  # noqa: E402

from sgnoise.calibration import calibrate, calibration_curve  # noqa: E402
from sgnoise.tail_index import (  # noqa: E402
    per_column_alpha,
    standardised_alpha,
    summarise_noise,
)

ALPHAS = (1.2, 1.5, 1.8, 2.0)
#: The uncentred reading's rows (resampled noise's shape); the first three have targets.
UNCENTRED_ALPHAS, UNCENTRED_SHAPE = (0.6, 0.8, 1.0, 1.5, 2.0), (1000, 256)
SHAPES = ((16, 4096), (120, 1024), (1000, 256))  # (rows n, columns C)
REPS = 100  # matrices per cell
T_DOFS, T_REPS = ((1.5, 1.5), (3.0, 2.0)), 50  # (nu, the alpha it is attracted to)
MLP_SHAPE, MLP_REPS = (16, 79_400), 20
PER_COLUMN_SHAPE, PER_COLUMN_REPS = (1000, 1024), 5
SCALE_SIGMA = 1.5


def stable(alpha: float, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    return levy_stable.rvs(alpha, 0.0, size=shape, random_state=rng)


def student(nu: float):
    return lambda _, shape, rng: rng.standard_t(nu, shape)


def cell(
    draw, alpha: float, shape: tuple[int, int], reps: int, label: str, *, centred: bool = True,
    target: bool = False,
) -> None:  # fmt: skip
    """One row of the table: reps matrices of this law and shape; ``centred=False``: read
    without centring; ``target``: PASS/FAIL on |bias| <= 0.05 and coverage in [0.90, 0.98]
    among the finite intervals."""
    rows = []
    for r in range(reps):
        rng = np.random.default_rng((zlib.crc32(label.encode()), *shape, r))
        x = draw(alpha, shape, rng) * rng.lognormal(0.0, SCALE_SIGMA, shape[1])
        if centred:
            s = summarise_noise(x, seed=r)
        else:
            s = standardised_alpha(x, seed=r, centred=False)
        c = calibrate(s, x.shape, centred=centred)
        lo, hi = c["alpha_calibrated_lo"], c["alpha_calibrated_hi"]
        rows.append((s["alpha_std"], c["alpha_calibrated"], hi - lo, lo <= alpha <= hi))
    std, cal, width, hit = np.array(rows).T
    finite = np.isfinite(width)
    cover, bias = hit[finite].mean() if finite.any() else np.nan, cal.mean() - alpha
    verdict = ""
    if target:
        ok = abs(bias) <= 0.05 and (not finite.any() or 0.90 <= cover <= 0.98)
        verdict = f"  |bias| <= 0.05, cover 0.90-0.98: {'PASS' if ok else 'FAIL'}"
    print(
        f"{label:16s}{shape[0]:>6d}{shape[1]:>8d}{alpha:>7.2f}{std.mean():>10.3f}"
        f"{bias:>+9.3f}{cal.std():>8.3f}{np.mean(width[finite]) if finite.any() else np.nan:>8.3f}"
        f"{cover:>9.2f}{finite.mean():>8.2f}{verdict}",
        flush=True,
    )


def header(reps: int) -> None:
    lo, hi = binom.ppf((0.025, 0.975), reps, 0.95) / reps
    print(f"\n{reps} matrices per row (a true coverage of 0.95 reads in [{lo:.2f}, {hi:.2f}])")
    print(
        f"{'law':16s}{'n':>6s}{'C':>8s}{'alpha':>7s}{'std':>10s}{'bias':>9s}{'sd':>8s}"
        f"{'width':>8s}{'cover':>9s}{'finite':>8s}"
    )


def curve_costs() -> None:
    """Time each table's curve simulated (in an empty disk cache: a curve kept from an
    earlier run would time 0), then read again from memory; per matrix: the cost of one
    more of the curve's R matrices per alpha."""
    print("calibration curves (new shape: simulated; repeated: the in-memory cache)")
    with tempfile.TemporaryDirectory() as empty, mock.patch.dict(os.environ, SGNOISE_CACHE=empty):
        for n, c in (*SHAPES, MLP_SHAPE):
            start = time.perf_counter()
            curve = calibration_curve(n, c)
            new = time.perf_counter() - start
            start = time.perf_counter()
            calibration_curve(n, c)
            cached = time.perf_counter() - start
            reps = curve.readings.shape[0]
            print(
                f"  {n} x {c}: {reps} matrices per alpha, new {new:.2f} s "
                f"({new / reps:.2f} s per matrix), cached {cached * 1e6:.0f} us",
                flush=True,
            )


def per_column_table() -> None:
    n, c = PER_COLUMN_SHAPE
    print(f"\nper-column alpha quantiles (5/25/50/75/95), {n} rows x {c} columns, mean of reps")
    for alpha in ALPHAS:
        q, g = [], []
        for r in range(PER_COLUMN_REPS):
            rng = np.random.default_rng((99, r, int(alpha * 100)))
            out = per_column_alpha(stable(alpha, (n, c), rng), seed=r)
            q.append(list(out["quantiles"].values()))
            g.append(list(out["gaussian_quantiles"].values()))
        cells = " ".join(f"{v:.2f}" for v in np.mean(q, axis=0))
        gauss = " ".join(f"{v:.2f}" for v in np.mean(g, axis=0))
        print(f"  SaS({alpha}): {cells}   Gaussian columns: {gauss}", flush=True)


def uncentred_table() -> None:
    print("\nwithout centring (noise of known mean zero, as resampled noise), then centred")
    header(REPS)
    for alpha in UNCENTRED_ALPHAS:
        label = f"SaS({alpha}) uncen."
        cell(stable, alpha, UNCENTRED_SHAPE, REPS, label, centred=False, target=alpha <= 1)
    for alpha in UNCENTRED_ALPHAS[:3]:
        cell(stable, alpha, UNCENTRED_SHAPE, REPS, f"SaS({alpha}) centred")


if __name__ == "__main__":
    curve_costs()
    header(REPS)
    for n, c in SHAPES:
        for alpha in ALPHAS:
            cell(stable, alpha, (n, c), REPS, f"SaS({alpha})")
    header(T_REPS)
    for n, c in SHAPES:
        for nu, alpha in T_DOFS:
            cell(student(nu), alpha, (n, c), T_REPS, f"Student t({nu})")
    header(MLP_REPS)
    for alpha in ALPHAS:
        cell(stable, alpha, MLP_SHAPE, MLP_REPS, f"SaS({alpha})")
    per_column_table()
    uncentred_table()
