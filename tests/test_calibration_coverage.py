"""The calibrated interval's coverage on matrices of known law, with the real curves (8-32
simulated matrices per alpha, not tests/conftest.py's 4): bench/validate_calibration.py's
property on fewer matrices and one shape."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import levy_stable

from sgnoise.calibration import calibrate
from sgnoise.tail_index import standardised_alpha

REPS = 100  # a true coverage of 0.95 reads in [0.89, 1.00] 99% of the time (binomial)


@pytest.mark.slow
@pytest.mark.parametrize(("alpha", "centred"), [(0.8, False)])
def test_the_95_percent_interval_covers_the_truth_about_95_percent_of_the_time(alpha, centred):
    """SaS(alpha) columns (scipy's sampler, not the calibration's) of the resampled rows'
    length, read without centring, column scales exp(Z): the interval covers alpha in
    0.89-0.99 of REPS matrices (0.95; 0.93 before the biweight's finite-sample correction,
    and with the curve's standard deviation for its spread 0.96 here and 1.00 at 1,000 x
    256). Centred SaS(1.5) at this shape is covered only 0.81 of the time, with or without
    the correction: its seed-0 curve's spread there is 0.6 of the spread of 256 simulated
    readings (other seeds' curves cover 0.89-0.98): docs/validation.md, not a target."""
    shape = (1000, 128)
    hits, estimates = [], []
    for r in range(REPS):
        rng = np.random.default_rng((26, r))
        x = levy_stable.rvs(alpha, 0.0, size=shape, random_state=rng)
        x *= rng.lognormal(0.0, 1.0, shape[1])
        c = calibrate(standardised_alpha(x, seed=r, centred=centred), shape, centred=centred)
        hits.append(c["alpha_calibrated_lo"] <= alpha <= c["alpha_calibrated_hi"])
        estimates.append(c["alpha_calibrated"])
    assert abs(np.mean(estimates) - alpha) <= 0.05
    # 1.00 (100 of 100) has probability 0.006 at a true 0.95: what too wide an interval gives
    assert 0.89 <= np.mean(hits) <= 0.99, np.mean(hits)
