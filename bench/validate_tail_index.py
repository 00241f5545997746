"""Validate the tail-index estimators on samples of known alpha (scipy.stats.levy_stable).

Prints, per method and alpha, the bias and RMSE over REPS repetitions of N samples,
and the coverage of the default method's 95% interval. alpha = 2 is the Gaussian.
Run: python bench/validate_tail_index.py   (about 2 minutes on 2 cores)
"""

from __future__ import annotations

import numpy as np
from scipy.stats import levy_stable

from sgnoise.tail_index import DEFAULT_METHOD, alpha_ci, estimate_alpha

ALPHAS = (0.8, 1.0, 1.2, 1.5, 1.8, 2.0)
N, REPS = 100_000, 20
METHODS = (DEFAULT_METHOD, "mohammadi", "mohammadi_median", "hill", "mcculloch")


def main() -> None:
    samples = {
        a: [levy_stable.rvs(a, 0.0, size=N, random_state=10_000 + 100 * i + r) for r in range(REPS)]
        for i, a in enumerate(ALPHAS)
    }
    print(
        f"N = {N}, {REPS} repetitions; cells: bias / RMSE (target for {DEFAULT_METHOD}: "
        "|bias| <= 0.01, RMSE <= 0.03)"
    )
    print(f"{'method':18s}" + "".join(f"{'alpha=' + str(a):>16s}" for a in ALPHAS))
    for method in METHODS:
        cells = []
        for a in ALPHAS:
            est = np.array([estimate_alpha(x, method, seed=r) for r, x in enumerate(samples[a])])
            cells.append(f"{est.mean() - a:+.3f} / {np.sqrt(np.mean((est - a) ** 2)):.3f}")
        print(f"{method:18s}" + "".join(f"{c:>16s}" for c in cells))
    cover = []
    for a in ALPHAS:
        hits = [lo <= a <= hi for lo, hi in (alpha_ci(x, seed=r) for r, x in enumerate(samples[a]))]
        cover.append(f"{np.mean(hits):.2f}")
    print(f"{'95% CI coverage':18s}" + "".join(f"{c:>16s}" for c in cover))


if __name__ == "__main__":
    main()
