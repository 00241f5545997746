"""Validate sgnoise.per_example's tail exponents on per-example columns of known law.

COLUMNS columns of N values per law (N as Fashion-MNIST's training set), as
:func:`sgnoise.per_example.tail_exponents` sees a per-example gradient matrix.
Per law and choice of k: the true exponent xi (inf: all moments finite), the
median estimate, the fraction of columns within +-0.3 of xi, the fraction whose
interval covers xi, the fraction called "infinite variance" (upper end of the
95% interval < 2) and the fraction of calls that are right (infinite iff xi < 2),
and the median moment estimate gamma_M (1/xi for power tails, <= 0 without one).
k = sqrt(N) is the module's choice; k = N^(2/3), the MSE-optimal order for
rho = -1, is shown for comparison.
Run: python bench/validate_per_example.py   (about a minute on 2 cores; levy_stable
samples take most of it)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy.stats import levy_stable  # noqa: E402

from sgnoise.per_example import tail_exponents  # noqa: E402

N, COLUMNS, SEED = 60_000, 200, 0
K_RULES = (("sqrt(N)", None), ("N^(2/3)", int(N ** (2 / 3))))
WITHIN = 0.3


def student(nu: float):
    return lambda rng: rng.standard_t(nu, (N, COLUMNS))


def stable(alpha: float):
    # Chambers-Mallows-Stuck sampling, S1 parameterisation, beta = 0.
    return lambda rng: levy_stable.rvs(alpha, 0.0, size=(N, COLUMNS), random_state=rng)


# (name, true exponent, sampler); the last two have every moment finite (xi = inf).
LAWS = (
    ("Student t(1.5)", 1.5, student(1.5)),
    ("Student t(2.5)", 2.5, student(2.5)),
    ("Student t(4)", 4.0, student(4)),
    ("SaS(1.5)", 1.5, stable(1.5)),
    ("SaS(1.8)", 1.8, stable(1.8)),
    ("Gaussian", np.inf, lambda rng: rng.standard_normal((N, COLUMNS))),
    (
        "Gauss x lognormal(1)",
        np.inf,
        lambda rng: rng.standard_normal((N, COLUMNS)) * rng.lognormal(0, 1, (N, COLUMNS)),
    ),
)


def _share(hits: np.ndarray, xi: float) -> str:
    """Fraction of hits, "-" where xi is infinite (no estimate can be near it)."""
    return f"{np.mean(hits):.2f}" if np.isfinite(xi) else "-"


def main() -> None:
    print(f"{COLUMNS} columns x N = {N:,} values per law; 95% intervals; seed {SEED}")
    header = (
        f"{'law':<22}{'xi':>5} {'k':>8}  {'median':>7} {'+-0.3':>6} {'cover':>6} "
        f"{'called inf':>10} {'correct':>8} {'gamma_M':>8}"
    )
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(SEED)
    for name, xi, sample in LAWS:
        start = time.perf_counter()
        columns = sample(rng)
        drawn = time.perf_counter() - start
        for label, k in K_RULES:
            tails = tail_exponents(columns, k=k)
            called = tails.infinite_variance
            correct = called if xi < 2 else ~called
            print(
                f"{name:<22}{xi:>5} {label:>8}  {np.median(tails.exponent):>7.3f} "
                f"{_share(np.abs(tails.exponent - xi) <= WITHIN, xi):>6} "
                f"{_share((tails.lower <= xi) & (xi <= tails.upper), xi):>6} "
                f"{np.mean(called):>10.2f} {np.mean(correct):>8.2f} "
                f"{np.median(tails.moment_gamma):>8.3f}"
            )
        print(f"{'':<22}(sampled in {drawn:.1f} s)")


if __name__ == "__main__":
    main()
