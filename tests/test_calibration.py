"""sgnoise.calibration: the calibration curve, the calibrated alpha and its interval."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import special
from scipy.stats import levy_stable

from sgnoise import calibration
from sgnoise.calibration import calibrate, calibrated_alpha, calibration_curve
from sgnoise.tail_index import summarise_noise

SHAPE = (120, 128)


@pytest.fixture(scope="module", autouse=True)
def _few_reps(few_reps):
    """Curves of 4 matrices per alpha (tests/conftest.py): fast tests."""


def stable(alpha, shape, seed):
    return levy_stable.rvs(alpha, 0.0, size=shape, random_state=seed)


def test_the_curve_falls_from_heavy_tails_to_the_gaussian_and_is_cached():
    curve = calibration_curve(*SHAPE)
    light = curve.alphas >= 1.2  # centred, it turns back below alpha ~ 1 (module docstring)
    assert (np.diff(curve.mean[light]) < 0).all()  # 1/reading falls as alpha rises
    assert calibration_curve(*SHAPE) is curve
    assert calibration_curve(120, 127) is curve  # within 3%: one bucket
    uncentred = calibration_curve(*SHAPE, centred=False)
    assert uncentred is not curve
    assert (np.diff(uncentred.mean) < 0).all()  # over the whole grid, from alpha = 0.5


def _fresh_curve(monkeypatch, tmp_path, shape=(16, 400)):
    """The curve of shape, read through the disk cache in tmp_path (the memory cache cleared)."""
    monkeypatch.setenv("SGNOISE_CACHE", str(tmp_path))
    calibration._stored_curve.cache_clear()
    return calibration_curve(*shape[:2], centred=shape[2] if len(shape) > 2 else True)


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda r, e: {"readings": r * 1.1, "entry": e}, "do not match their checksum"),
        (lambda r, e: {"readings": np.full_like(r, np.nan), "entry": e}, "checksum"),
        (
            lambda r, e: {
                "readings": r,
                "entry": np.array(str(e).replace('"seed": 0', '"seed": 1')),
            },
            "made by other parameters",
        ),
        (lambda r, e: {"readings": r}, "unreadable"),
    ],
    ids=["scaled", "nan", "other-seed", "no-entry"],
)
def test_a_cached_curve_that_does_not_verify_is_simulated_again_with_one_line(
    monkeypatch, tmp_path, capsys, damage, why
):
    made = _fresh_curve(monkeypatch, tmp_path)
    (path,) = tmp_path.glob("calibration-*.npz")
    with np.load(path) as f:
        np.savez(path, **damage(f["readings"], f["entry"]))
    assert _fresh_curve(monkeypatch, tmp_path).readings.tobytes() == made.readings.tobytes()
    line = capsys.readouterr().err.strip()
    assert line.count("\n") == 0 and f"calibration cache {path}: " in line and why in line
    assert _fresh_curve(monkeypatch, tmp_path) is not made  # the file was replaced: now silent
    assert capsys.readouterr().err == ""
    calibration._stored_curve.cache_clear()


def test_a_cached_curve_with_a_zero_reading_is_read_back_silently(monkeypatch, tmp_path, capsys):
    # uncentred 100 x 1 (resampled noise of one coordinate): 1/alpha-hat <= 0 in two draws, a
    # reading of 0; the cache refused it ("not all > 0") and simulated it again at every run
    monkeypatch.setattr(calibration, "MAX_REPS", 32)  # the real curve's 32 draws (fast here)
    made = _fresh_curve(monkeypatch, tmp_path, (100, 1, False))
    assert (made.readings == 0).any()
    again = _fresh_curve(monkeypatch, tmp_path, (100, 1, False))
    assert again is not made and again.readings.tobytes() == made.readings.tobytes()
    assert capsys.readouterr().err == ""
    calibration._stored_curve.cache_clear()


def test_the_standardised_reading_is_pulled_towards_two_and_the_curve_says_by_how_much():
    curve = calibration_curve(*SHAPE)
    reading = 1 / curve.mean[list(curve.alphas).index(1.2)]
    assert 1.35 < reading < 1.6  # above the truth, 1.2: the pull the calibration undoes


def test_calibrated_alpha_recovers_sas_1_5_at_120_rows():
    results = [calibrated_alpha(stable(1.5, SHAPE, 10 + s), seed=s) for s in range(3)]
    for r in results:
        assert r["alpha_calibrated_lo"] <= 1.5 <= r["alpha_calibrated_hi"]
    assert abs(np.mean([r["alpha_calibrated"] for r in results]) - 1.5) <= 0.1


def test_gaussian_columns_give_an_interval_holding_two():
    noise = np.random.default_rng(20).standard_normal(SHAPE) * np.exp(np.arange(128) / 50)
    r = calibrated_alpha(noise)
    assert r["alpha_calibrated_lo"] <= 2.0
    assert r["alpha_calibrated_hi"] == 2.0 or (
        r["above_grid"] and np.isnan(r["alpha_calibrated_hi"])
    )
    assert r["alpha_calibrated"] > 1.85


def test_a_reading_above_the_gaussians_is_said_to_be_gaussian():
    summary = {"alpha_std": 2.3, "alpha_std_lo": 2.25, "alpha_std_hi": 2.35, "n_dropped": 0}
    r = calibrate(summary, SHAPE)
    assert r["above_grid"] and not r["below_grid"]
    assert r["alpha_calibrated"] == 2.0 and np.isnan(r["alpha_calibrated_hi"])  # a bound


def test_a_centred_reading_below_the_curve_is_a_bound_not_a_zero_width_point():
    """The reading of issue #26 (resampled noise at B = 1, centred): it used to give 0.80
    [0.80, 0.80]; the centred curve turns back below alpha ~ 1, so it is 'that or heavier'."""
    summary = {"alpha_std": 1.032, "alpha_std_lo": 1.019, "alpha_std_hi": 1.044, "n_dropped": 81}
    r = calibrate(summary, (1000, 250))
    assert r["below_grid"] and not r["above_grid"]
    assert np.isnan(r["alpha_calibrated_lo"])  # open below
    assert r["alpha_calibrated"] <= r["alpha_calibrated_hi"] <= 1.2  # "the edge or heavier"


@pytest.mark.parametrize("alpha", [0.6, 0.8, 1.0])
def test_uncentred_reading_recovers_alpha_below_one(alpha):
    """Noise of known mean zero read without centring: SaS(alpha < 1) is not saturated."""
    noise = stable(alpha, (1000, 64), seed=int(alpha * 10))
    r = calibrated_alpha(noise, centred=False, seed=1)
    assert abs(r["alpha_calibrated"] - alpha) <= 0.1  # coverage: bench/validate_calibration.py
    assert r["alpha_calibrated_lo"] - 0.02 <= alpha <= r["alpha_calibrated_hi"] + 0.02


def test_a_wider_reading_interval_gives_a_wider_calibrated_interval():
    narrow = {"alpha_std": 1.6, "alpha_std_lo": 1.59, "alpha_std_hi": 1.61, "n_dropped": 0}
    # wider than the floor of tests/conftest.py's 4-matrix curves (t with 1.7 degrees of freedom)
    wide = narrow | {"alpha_std_lo": 1.4, "alpha_std_hi": 1.85}
    a, b = calibrate(narrow, SHAPE), calibrate(wide, SHAPE)
    assert a["alpha_calibrated"] == b["alpha_calibrated"]
    assert b["alpha_calibrated_lo"] < a["alpha_calibrated_lo"]
    assert b["alpha_calibrated_hi"] > a["alpha_calibrated_hi"]


def test_constant_columns_are_not_counted_in_the_calibrated_shape():
    noise = stable(1.5, SHAPE, 30)
    noise[:, :8] = 1.0
    summary = summarise_noise(noise)
    assert summary["n_dropped"] == 8
    assert calibrate(summary, noise.shape) == calibrate(summary | {"n_dropped": 0}, (120, 120))


def test_too_few_values_or_rows_give_nan_not_an_error():
    nan = {"alpha_std": np.nan, "alpha_std_lo": np.nan, "alpha_std_hi": np.nan, "n_dropped": 0}
    assert np.isnan(calibrate(nan, SHAPE)["alpha_calibrated"])
    four_rows = {"alpha_std": 2.1, "alpha_std_lo": 2.0, "alpha_std_hi": 2.2, "n_dropped": 0}
    assert np.isnan(calibrate(four_rows, (4, 1000))["alpha_calibrated"])


def test_a_matrix_above_max_values_is_calibrated_on_a_column_subset(monkeypatch):
    monkeypatch.setattr(calibration, "MAX_VALUES", 120 * 64)
    r = calibrated_alpha(stable(1.5, (120, 200), 40))
    assert r["n_columns_calibrated"] == 64
    monkeypatch.setattr(calibration, "MAX_VALUES", 100 * 47)  # 47 columns, simulated as 48
    assert calibrated_alpha(stable(1.5, (100, 200), 41))["n_columns_calibrated"] == 47
    assert calibration_curve(100, 47).n_columns == 48


@pytest.mark.parametrize(
    ("args", "match"),
    [((4, 100), "n_rows"), ((16, 5), "at least 100"), ((16, 10**6), "MAX_VALUES")],
)
def test_calibration_curve_rejects_shapes_it_cannot_simulate(args, match):
    with pytest.raises(ValueError, match=match):
        calibration_curve(*args)


def test_the_curves_spread_is_the_sd_of_normal_readings_and_ignores_one_far_reading():
    """calibration.biweight_scale: a normal column's standard deviation (its quadrature
    constant makes it so), and one of 16 values 10 sd away moves it by little, where it
    doubles the standard deviation."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200_000, 2))
    np.testing.assert_allclose(calibration.biweight_scale(x), 1, atol=0.01)
    few = rng.standard_normal((16, 200))
    spiked = few.copy()
    spiked[0] = 10.0
    moved = calibration.biweight_scale(spiked) / calibration.biweight_scale(few)
    assert np.median(moved) < 1.15 and np.median(spiked.std(axis=0) / few.std(axis=0)) > 2
    assert calibration.biweight_scale(np.ones((8, 3))).tolist() == [0, 0, 0]  # MAD = 0


@pytest.mark.parametrize("c", [6.0, 9.0])
def test_the_biweight_normal_constant_is_scipys_adaptive_quadrature_of_the_normal_law(c):
    """calibration._biweight_normal (Gauss-Legendre, numpy only) against scipy.integrate.quad
    of the same integrals under scipy.stats.norm; and finding it imports neither module (a
    worker would pay ~0.2-1.5 s for them)."""
    from scipy import integrate, stats

    edge = c * stats.norm.ppf(0.75)

    def mean(f) -> float:
        return integrate.quad(lambda t: f(t / edge) * stats.norm.pdf(t), -edge, edge)[0]

    num = mean(lambda u: (u * edge) ** 2 * (1 - u * u) ** 4)
    den = mean(lambda u: (1 - u * u) * (1 - 5 * u * u))
    assert calibration._biweight_normal(c) == pytest.approx(np.sqrt(num) / abs(den), rel=1e-13)
    code = (
        "import sys; from sgnoise import calibration; calibration._biweight_normal(6.0); "
        "calibration.biweight_law(8); print([m for m in ('scipy.stats', 'scipy.integrate') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("n", [8, 16, 32])
def test_the_corrected_spread_floors_a_new_normal_reading_at_the_level_it_says(n):
    """calibration.biweight_law against normal samples of other seeds than its own: a new
    N(0, 1) value lies within t_nu s / k of 0, s the biweight scale of n other N(0, 1)
    values, at levels 0.80-0.99 (within 0.008: 4 binomial standard errors at 0.95), and
    s / k is the standard deviation in the mean of log s^2 (the scaled chi-square's). The
    uncorrected floor t_{n-1} s holds less than its level says: 0.907 at n = 8, 0.934 at
    n = 16, 0.943 at n = 32 (level 0.95)."""
    k, nu = calibration.biweight_law(n)
    rng = np.random.default_rng((7, n))
    s = calibration.biweight_scale(rng.standard_normal((n, 50_000)))
    z = np.abs(rng.standard_normal(s.size))
    for level in (0.80, 0.90, 0.95, 0.99):
        t = special.stdtrit(nu, (1 + level) / 2)
        assert abs(np.mean(z <= t * s / k) - level) <= 0.008, (n, level)
    expected = special.digamma(nu / 2) - np.log(nu / 2)  # E log(chi^2_nu / nu)
    assert abs(np.mean(2 * np.log(s / k)) - expected) <= 0.01
    raw = np.mean(z <= special.stdtrit(n - 1, 0.975) * s)
    assert raw < 0.95 - 0.004  # what the correction is for
    curve = calibration.CalibrationCurve(n, 1, np.array([1.0]), rng.standard_normal((n, 1)))
    assert curve.spread == pytest.approx(calibration.biweight_scale(curve.readings) / k)
    assert curve.spread_dof == nu
    assert curve.spread is curve.spread and not curve.spread.flags.writeable  # kept, read-only
