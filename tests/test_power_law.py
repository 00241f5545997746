"""sgnoise.tail_index.power_law: the fit against powerlaw, the bootstrap's synthetic samples,
the lognormal comparison, the verdict on laws of known variance, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import optimize, special, stats

from sgnoise.tail_index import power_law
from sgnoise.tail_index.classical import largest
from sgnoise.tail_index.power_law import (
    K_LOW,
    PowerLawTails,
    _synthetic,
    _truncated_lognormal,
    power_law_tails,
)

M = 8000


def _columns(seed: int = 3, n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            rng.pareto(1.2, n) + 1,
            np.abs(rng.standard_t(3, n)),
            rng.lognormal(0, 1, n),
            np.abs(rng.standard_normal(n)) * rng.lognormal(0, 1, n),
        ],
        axis=1,
    )


def test_fit_and_lognormal_comparison_match_the_powerlaw_package():
    powerlaw = pytest.importorskip("powerlaw")
    x = _columns()
    fit = power_law_tails(x, k_span=None, candidates=None, bootstrap=0)
    for j in range(x.shape[1]):
        top = np.sort(x[:, j])[::-1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # every tail size from K_LOW on (powerlaw drops the largest candidate of its
            # range), and exponents >= 2 allowed (powerlaw's default range stops at 2)
            ref = powerlaw.Fit(
                x[:, j],
                xmin=(top[-1], top[K_LOW - 2] * (1 + 1e-12)),
                parameter_ranges={"alpha": [1, None]},
                verbose=False,
            )
            r, p = ref.distribution_compare("power_law", "lognormal")
        assert fit.xmin[j] == pytest.approx(ref.xmin, rel=1e-12)
        assert fit.n_tail[j] == ref.power_law.n
        assert fit.exponent[j] == pytest.approx(ref.power_law.alpha - 1, rel=1e-9)
        assert fit.distance[j] == pytest.approx(ref.power_law.D, rel=1e-9)
        # our truncated lognormal is the maximum: at least as likely as powerlaw's (up to
        # powerlaw's rounding where the lognormal tends to the power law, mu -> -inf)
        assert fit.lr[j] <= r + 0.05
        assert fit.lr[j] == pytest.approx(r, abs=0.05)
        if abs(r) > 0.1:
            assert fit.lr_p[j] == pytest.approx(p, abs=0.01)
        else:  # a tail the lognormal only matches in its exponential limit: no preference
            assert min(fit.lr_p[j], p) > 0.1


def test_truncated_lognormal_is_the_maximum_likelihood_fit():
    rng = np.random.default_rng(0)
    e = rng.lognormal(0.5, 0.8, 3000)
    e = np.log(e[e > 1.5] / 1.5)[:, None]  # log-excesses over x_min = 1.5
    mu, sigma = _truncated_lognormal(e, np.array([e.shape[0]]))

    def nll(theta):
        m, log_s = theta
        s = np.exp(log_s)
        return -np.sum(stats.norm.logpdf(e[:, 0], m, s) - special.log_ndtr(m / s))

    best = optimize.minimize(nll, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-8})
    assert nll([mu[0], np.log(sigma[0])]) <= best.fun + 1e-6
    assert mu[0] == pytest.approx(0.5 - np.log(1.5), abs=0.15)
    assert sigma[0] == pytest.approx(0.8, abs=0.1)


def test_synthetic_top_values_have_the_law_of_sorted_semiparametric_samples():
    # CSN's semi-parametric sample, drawn whole and sorted, against the top rows
    # _synthetic draws directly: the same law, row by row (two-sample KS)
    rng = np.random.default_rng(1)
    m, depth, reps = 2000, 60, 4000
    data = np.abs(rng.standard_t(3, m))
    logs = np.log(largest(data[:, None], [m]))
    k, gamma = np.array([40]), np.array([0.4])
    fast = _synthetic(logs, np.array([m]), np.array([m]), k, gamma, reps, depth, rng)
    body = np.sort(data)[::-1][k[0] :]
    slow = np.empty((depth, reps))
    for r in range(reps // 4):  # fewer brute-force samples: they are slow
        n_pl = rng.binomial(m, k[0] / m)
        pareto = np.exp(logs[k[0] - 1, 0] + gamma[0] * rng.standard_exponential(n_pl))
        sample = np.concatenate([pareto, rng.choice(body, m - n_pl)])
        slow[:, r] = np.log(np.sort(sample)[::-1][:depth])
    slow = slow[:, : reps // 4].astype(np.float32)  # the same rounding of tied body values
    for row in (0, 10, 35, 45, 59):  # the power law's rows, where the body starts, the body's
        assert stats.ks_2samp(fast[row], slow[row]).pvalue > 1e-3, row


def test_synthetic_samples_do_not_depend_on_how_many_rows_are_drawn_at_once(monkeypatch):
    # the body's draws, running sums and look-ups go _ROWS rows at a time: one stream, the
    # same float32 additions in the same order, so the same bits at 1, 7 or all rows a time
    rng = np.random.default_rng(5)
    data = np.abs(rng.standard_t(2.5, (3000, 3)))
    logs = np.log(largest(data, [600] * 3))
    m, k, gamma = np.array([3000, 2000, 900]), np.array([30, 200, 12]), np.array([0.4, 0.6, 0.3])
    stored = np.array([600, 600, 400])

    def draw(rows: int) -> np.ndarray:
        monkeypatch.setattr(power_law, "_ROWS", rows)
        return _synthetic(logs, m, stored, k, gamma, 9, 300, np.random.default_rng(6))

    whole = draw(1000)
    for rows in (1, 7):
        np.testing.assert_array_equal(draw(rows), whole)


def _verdicts(sample, infinite: bool, seed: int) -> float:
    rng = np.random.default_rng(seed)
    g = sample(rng, (M, 100))
    fit = power_law_tails(
        np.abs(g - g.mean(axis=0)), counts=np.count_nonzero(g, axis=0), bootstrap=0
    )
    return float(np.mean(fit.infinite_variance == infinite))


def _pareto(xi):
    return lambda rng, shape: rng.choice((-1.0, 1.0), shape) * rng.random(shape) ** (-1 / xi)


def _mostly_zero(rng, shape):
    x = np.zeros(shape)
    on = rng.random(shape) < 0.01
    x[on] = rng.standard_normal(int(on.sum()))
    return x


@pytest.mark.parametrize(
    ("sample", "infinite"),
    [
        (lambda rng, shape: rng.standard_t(3, shape), False),
        (_pareto(1.5), True),
        (_pareto(1.8), True),
        (_mostly_zero, False),
        (lambda rng, shape: rng.lognormal(0, 1, shape), False),
    ],
    ids=["t3-finite", "pareto1.5-infinite", "pareto1.8-infinite", "sparse-finite", "lognormal"],
)
def test_verdict_right_for_90_percent_of_columns_of_8000_rows(sample, infinite):
    assert _verdicts(sample, infinite, seed=0) >= 0.9


def test_bootstrap_p_value_rejects_a_bounded_tail_keeps_a_pareto():
    rng = np.random.default_rng(2)
    x = np.concatenate([1 + rng.random((M, 20)), rng.pareto(1.5, (M, 20)) + 1], axis=1)
    fit = power_law_tails(x, bootstrap=50, seed=0)
    assert np.mean(fit.p_value[:20] < 0.1) >= 0.8  # a bounded tail is no power law
    assert np.mean(fit.p_value[20:] >= 0.1) >= 0.8  # p about uniform under a power law
    again = power_law_tails(x, bootstrap=50, seed=0)
    np.testing.assert_array_equal(fit.p_value, again.p_value)


def test_bootstrap_columns_subset_and_select():
    rng = np.random.default_rng(4)
    x = rng.pareto(1.5, (2000, 30)) + 1
    fit = power_law_tails(x, bootstrap=10, bootstrap_columns=7, seed=1)
    assert fit.tested.sum() == 7 and fit.fitted.all()
    assert np.isnan(fit.p_value[~fit.tested]).all()
    part = fit.select(slice(0, 5))
    assert isinstance(part, PowerLawTails) and part.exponent.shape == (5,)


def test_columns_with_too_few_values_are_not_fitted():
    x = np.zeros((1000, 3))
    x[:5, 0] = 1.0 + np.arange(5)  # 5 values: fewer than 2 K_LOW
    x[:, 1] = np.random.default_rng(0).pareto(1.5, 1000) + 1
    fit = power_law_tails(x, bootstrap=5)
    assert fit.fitted.tolist() == [False, True, False]
    assert np.isnan(fit.exponent[[0, 2]]).all()
    assert not fit.infinite_variance[[0, 2]].any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": -np.ones((100, 2))}, "non-negative"),
        ({"x": np.ones(100)}, "2-D"),
        ({"x": np.ones((100, 2)), "counts": [1]}, "counts"),
        ({"x": np.ones((100, 2)), "bootstrap": -1}, "bootstrap"),
        ({"x": np.ones((100, 2)), "level": 1.5}, "level"),
    ],
)
def test_bad_input_is_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message):
        power_law_tails(**kwargs)


def test_a_tail_of_ties_is_compared_with_the_lognormal_without_a_warning():
    # excesses all 0 (S2 = 0): the truncated lognormal's tau is 0/0; a diverged conv run's
    # per-example gradients printed a RuntimeWarning for it ("invalid value in divide")
    logs = np.zeros((20, 2))
    logs[:, 0] = np.sort(np.random.default_rng(0).exponential(size=20))[::-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r, p = power_law._vuong(logs, np.array([10, 10]), np.array([1.0, 1.0]))
    assert np.isfinite(r[0]) and np.isnan(r[1]) and p[1] == 1.0
