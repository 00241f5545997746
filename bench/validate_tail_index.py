"""Validate the tail-index estimators on samples of known alpha (scipy.stats.levy_stable).

Prints, per method and alpha, the bias and RMSE over REPS samples of N values
(alpha = 2 is the Gaussian: estimates scatter around 2, unclipped); the same
bias on laws that are only in the domain of attraction of a stable law (as
gradient noise would be), where block sizes far below sqrt(N) and quantiles of
the body fail; the coverage of the 95% intervals of the methods with a cheap
interval; the null levels quoted in ``sgnoise.tail_index.summarise_noise``; and
the closed-form surrogates (``sgnoise.tail_index.nulls``) against the estimator
on drawn surrogates, mean +- sd over seeds.
Run: python bench/validate_tail_index.py   (about two minutes on 2 cores)
"""

from __future__ import annotations

import warnings

import _root  # noqa: F401, I001  (the project root on sys.path: runs without PYTHONPATH)
import numpy as np
from scipy.stats import binom, levy_stable

from sgnoise.data import load
from sgnoise.mlp import MLP
from sgnoise.noise import noise_pass
from sgnoise.tail_index import (
    DEFAULT_METHOD,
    INTERVAL_METHODS,
    METHODS,
    alpha_ci,
    estimate_alpha,
    gaussian_surrogate,
    nulls,
    summarise_noise,
)
from sgnoise.tail_index.columns import standardised_gaussian

ALPHAS = (0.8, 1.0, 1.2, 1.5, 1.8, 2.0)
N, REPS = 100_000, 20
COVERAGE_REPS = 100  # per alpha, for the interval coverage
NULL_ROWS, NULL_COORDS, NULL_SEEDS = (16, 120), 79_400, 10  # 784-100-10 MLP: 79,400 weights


def samples(alpha: float, reps: int, offset: int) -> list[np.ndarray]:
    return [levy_stable.rvs(alpha, 0.0, size=N, random_state=offset + r) for r in range(reps)]


def symmetric_pareto(a: float):
    return lambda rng: rng.choice((-1.0, 1.0), N) * (rng.pareto(a, N) + 1)


# Laws in the domain of attraction of SaS(alpha) but not stable: (name, alpha, sampler).
ATTRACTED = (
    ("Student t(1.5)", 1.5, lambda rng: rng.standard_t(1.5, N)),
    ("sym. Pareto(1.5)", 1.5, symmetric_pareto(1.5)),
    ("sym. Pareto(0.8)", 0.8, symmetric_pareto(0.8)),
    ("Student t(3)", 2.0, lambda rng: rng.standard_t(3, N)),
    ("Laplace", 2.0, lambda rng: rng.laplace(size=N)),
    ("Gauss scale mix", 2.0, lambda rng: rng.standard_normal(N) * rng.lognormal(0, 1, N)),
)


def estimates(data: list[np.ndarray], method: str) -> tuple[np.ndarray, int]:
    """Estimates over the samples, and how many warned (McCulloch at its table's edge)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        est = np.array([estimate_alpha(x, method, seed=r) for r, x in enumerate(data)])
    return est, len(caught)


def row(method: str, cells: list[str], saturated: int) -> None:
    note = f"  ({saturated} at a table edge)" if saturated else ""
    print(f"{method:18s}" + "".join(f"{c:>18s}" for c in cells) + note, flush=True)


def error_table() -> None:
    print(f"N = {N}, {REPS} samples per alpha; cells: bias / RMSE of alpha-hat")
    print(f"targets for {DEFAULT_METHOD} (default): |bias| <= 0.01 and RMSE <= 0.03 at every alpha")
    print(f"{'method':18s}" + "".join(f"{'alpha=' + str(a):>18s}" for a in ALPHAS))
    data = {a: samples(a, REPS, 10_000 + 100 * i) for i, a in enumerate(ALPHAS)}
    for method in METHODS:
        cells, saturated = [], 0
        for a in ALPHAS:
            est, warned = estimates(data[a], method)
            saturated += warned
            cells.append(f"{est.mean() - a:+.4f} / {np.sqrt(np.mean((est - a) ** 2)):.4f}")
        row(method, cells, saturated)


def attraction_table() -> None:
    print(f"\nlaws attracted to SaS(alpha), not stable: bias of alpha-hat, N = {N}, {REPS} samples")
    print(f"{'method':18s}" + "".join(f"{f'{name} [{a}]':>24s}" for name, a, _ in ATTRACTED))
    data = [
        [draw(np.random.default_rng((i, r))) for r in range(REPS)]
        for i, (_, _, draw) in enumerate(ATTRACTED)
    ]
    for method in METHODS:
        cells, saturated = [], 0
        for (_, a, _), xs in zip(ATTRACTED, data, strict=True):
            est, warned = estimates(xs, method)
            saturated += warned
            cells.append(f"{est.mean() - a:+.3f}")
        note = f"  ({saturated} at a table edge)" if saturated else ""
        print(f"{method:18s}" + "".join(f"{c:>24s}" for c in cells) + note, flush=True)


def coverage_table() -> None:
    print(f"\ncoverage of the 95% interval, {COVERAGE_REPS} samples of N = {N} per alpha")
    print(f"{'method':18s}" + "".join(f"{'alpha=' + str(a):>16s}" for a in ALPHAS) + "         all")
    data = {a: samples(a, COVERAGE_REPS, 50_000 + 1000 * i) for i, a in enumerate(ALPHAS)}
    for method in INTERVAL_METHODS:
        hits = np.array(
            [
                [
                    lo <= a <= hi
                    for lo, hi in (alpha_ci(x, method, seed=r) for r, x in enumerate(data[a]))
                ]
                for a in ALPHAS
            ]
        )
        cells = "".join(f"{h:>16.2f}" for h in hits.mean(axis=1))
        print(f"{method:18s}{cells}{hits.mean():>12.3f}", flush=True)
    lo, hi = binom.ppf((0.025, 0.975), COVERAGE_REPS, 0.95) / COVERAGE_REPS
    print(f"(a coverage of 0.95 gives [{lo:.2f}, {hi:.2f}] per alpha 95% of the time: binomial)")


def null_levels() -> None:
    print(f"\nnull levels of {DEFAULT_METHOD}, mean +- sd over {NULL_SEEDS} seeds")
    for rows in NULL_ROWS:
        est = [
            estimate_alpha(standardised_gaussian((rows, NULL_COORDS), np.float32, s), seed=s)
            for s in range(NULL_SEEDS)
        ]
        print(
            f"standardised Gaussian, {rows} rows x {NULL_COORDS} columns: "
            f"{np.mean(est):.3f} +- {np.std(est):.3f}"
        )
    for rows in NULL_ROWS:
        noise = levy_stable.rvs(1.5, 0.0, size=(rows, 20_000), random_state=rows)
        s = summarise_noise(noise)
        print(
            f"SaS(1.5) columns, {rows} rows, equal scales: alpha {s['alpha']:.3f}, "
            f"alpha_surrogate {s['alpha_surrogate']:.3f}, alpha_std {s['alpha_std']:.3f}, "
            f"alpha_std_surrogate {s['alpha_std_surrogate']:.3f}"
        )


def closed_form_surrogates() -> None:
    print(f"\nsurrogates in closed form (nulls) against {NULL_SEEDS} drawn ones: mean +- sd")
    rng = np.random.default_rng(7)
    cases = []
    for rows, spread in ((16, 1.5), (120, 1.5)):
        noise = rng.standard_normal((rows, NULL_COORDS)) * rng.lognormal(0, spread, NULL_COORDS)
        cases.append((f"Gaussian, lognormal(0, {spread}) scales, {rows} rows", noise))
    data = load("mnist10k")
    model = MLP((784, 100, 10), seed=0)
    for split, (x, y) in (
        ("train", (data.x_train, data.y_train)),
        ("test", (data.x_test, data.y_test)),
    ):
        noise = noise_pass(model, x, y, 500).matrix
        cases.append((f"784-100-10 at init, mnist10k {split} noise, {len(noise)} rows", noise))
    for name, noise in cases:
        noise = noise - noise.mean(axis=0)  # centred columns: the closed form applies
        layers = {"layer1": slice(0, 78_400), "layer2": slice(78_400, noise.shape[1])}
        for layer, cols in layers.items():
            part = noise[:, cols]
            part = part[:, part.std(axis=0) > 0]  # constant columns (dead pixels) left out
            closed = summarise_noise(part)
            for key, draw in (
                ("alpha_surrogate", lambda s, m=part: gaussian_surrogate(m, seed=s)),
                (
                    "alpha_std_surrogate",
                    lambda s, m=part: standardised_gaussian(m.shape, m.dtype, s),
                ),
            ):
                est = [estimate_alpha(draw(s), seed=s) for s in range(NULL_SEEDS)]
                print(
                    f"{name}, {layer} ({part.size} values): {key} closed "
                    f"{closed[key]:.4f}, drawn {np.mean(est):.4f} +- {np.std(est):.4f}",
                    flush=True,
                )
    for rows in NULL_ROWS:
        u = nulls.inverse_alpha([np.ones(NULL_COORDS)], rows)[1]
        print(
            f"standardised Gaussian, {rows} rows x {NULL_COORDS} columns: closed form {1 / u:.4f}"
        )


if __name__ == "__main__":
    error_table()
    attraction_table()
    coverage_table()
    null_levels()
    closed_form_surrogates()
