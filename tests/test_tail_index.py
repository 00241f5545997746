"""sgnoise.tail_index: recovery of known alpha, the order trap, invariances, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import levy_stable

from sgnoise.tail_index import (
    METHODS,
    StreamingMohammadi,
    _mohammadi,
    alpha_ci,
    estimate_alpha,
    gaussian_surrogate,
    standardise,
    summarise_noise,
)

ALPHAS = (0.8, 1.0, 1.2, 1.5, 1.8, 2.0)


def stable(alpha, n, seed):
    return levy_stable.rvs(alpha, 0.0, size=n, random_state=seed)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_default_recovers_known_alpha_bias_and_rmse(alpha):
    est = np.array([estimate_alpha(stable(alpha, 100_000, 500 + s), seed=s) for s in range(20)])
    assert abs(est.mean() - alpha) <= 0.01
    assert np.sqrt(np.mean((est - alpha) ** 2)) <= 0.03


@pytest.mark.parametrize("method", METHODS)
def test_every_method_recovers_a_heavy_tail(method):
    # alpha = 1.2 is well inside every estimator's range (Hill/Pickands/moment are
    # tail estimators: loose at N = 1e5, and they see no tail at all at alpha = 2).
    est = np.median([estimate_alpha(stable(1.2, 100_000, s), method, seed=s) for s in range(5)])
    assert abs(est - 1.2) <= (
        0.05 if method.startswith("mohammadi") or method == "mcculloch" else 0.3
    )


def test_ci_covers_the_true_alpha_about_95_percent_of_the_time():
    hits = []
    for alpha in (1.0, 1.5, 1.9):
        for s in range(50):
            lo, hi = alpha_ci(stable(alpha, 40_000, 900 + s), seed=s)
            hits.append(lo <= alpha <= hi)
    # conservative by design (the standard error of one partition; see _mohammadi_avg)
    assert 0.93 <= np.mean(hits) <= 1.0


def test_delta_method_ci_agrees_with_a_bootstrap():
    x = stable(1.5, 20_000, 7)
    lo, hi = alpha_ci(x)
    rng = np.random.default_rng(0)
    boots = [estimate_alpha(rng.choice(x, x.size), seed=i) for i in range(100)]
    blo, bhi = np.quantile(boots, [0.025, 0.975])
    assert 0.8 <= (hi - lo) / (bhi - blo) <= 2.5  # never narrower; conservative by design


def test_row_major_blocking_fails_on_rows_summing_to_zero_and_shuffling_fixes_it():
    rng = np.random.default_rng(0)
    m = levy_stable.rvs(1.5, 0, size=(10_000, 10), random_state=rng)
    m -= m.mean(axis=1, keepdims=True)  # like softmax-layer gradients: rows sum to zero
    assert _mohammadi(m.ravel(), 10) < 0.5 - 0.5  # row-major blocks of 10 cancel exactly...
    assert estimate_alpha(m, "mohammadi", k1=10, shuffle=False) > 2  # ...so alpha "> 2"
    assert estimate_alpha(m) < 2


def test_invariant_to_positive_scale_and_to_permutation():
    x = stable(1.3, 50_000, 3)
    a = estimate_alpha(x)
    assert estimate_alpha(37.5 * x) == pytest.approx(a, rel=1e-9)
    others = [estimate_alpha(np.random.default_rng(s).permutation(x), seed=s) for s in range(5)]
    assert np.ptp(others + [a]) < 0.1


def test_streaming_equals_in_memory_with_the_same_blocks():
    x = stable(1.4, 60_000, 4)
    s = StreamingMohammadi(k1=100, shuffle=False)
    for chunk in np.split(x, 6):
        s.update(chunk)
    assert s.alpha == pytest.approx(1 / _mohammadi(x, 100), rel=1e-9)
    shuffled = StreamingMohammadi(k1=100)
    for chunk in np.split(x, 6):
        shuffled.update(chunk)
    assert abs(shuffled.alpha - 1.4) < 0.1


def test_surrogate_has_the_columns_variances_and_pooling_it_looks_heavy_tailed():
    rng = np.random.default_rng(0)
    scales = np.exp(rng.normal(0, 1.5, 2000))
    noise = rng.standard_normal((64, 2000)) * scales
    sur = gaussian_surrogate(noise, seed=1)
    assert np.allclose(sur.std(axis=0) / noise.std(axis=0), 1, atol=0.35)
    assert np.median(sur.std(axis=0) / noise.std(axis=0)) == pytest.approx(1, abs=0.05)
    s = summarise_noise(noise)
    assert s["alpha"] < 1.8 and s["alpha_surrogate"] < 1.8  # the pooling trap, on Gaussians
    assert s["alpha_std"] > 1.9  # standardising removes it


def test_standardise_drops_and_counts_zero_variance_columns():
    noise = np.random.default_rng(0).standard_normal((10, 5))
    noise[:, [1, 3]] = 4.0
    z, dropped = standardise(noise)
    assert dropped == 2 and z.shape == (10, 3)
    assert np.allclose(z.std(axis=0), 1) and np.allclose(z.mean(axis=0), 0)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="x must be finite, got 2 NaN/inf values"):
        estimate_alpha(np.r_[np.ones(200), np.nan, np.inf])
    with pytest.raises(ValueError, match="x must have >= 100 samples, got 50"):
        estimate_alpha(np.ones(50))
    with pytest.raises(ValueError, match="method must be one of .* got 'fancy'"):
        estimate_alpha(np.ones(500), "fancy")
    with pytest.raises(ValueError, match="level must be in \\(0, 1\\), got 1.5"):
        alpha_ci(np.ones(500), level=1.5)


def test_clip_is_explicit():
    x = np.random.default_rng(1).uniform(-1, 1, 20_000)  # lighter than Gaussian: alpha > 2
    assert estimate_alpha(x) > 2
    assert estimate_alpha(x, clip=True) == 2.0
