"""sgnoise.measure: a checkpoint's frozen rows, and the per-coordinate rows of a Detail."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sgnoise import calibration
from sgnoise import measure as measure_module
from sgnoise.data import prepare
from sgnoise.measure import Detail, measure, scan_sizes
from sgnoise.mlp import MLP
from sgnoise.noise import noise_pass
from sgnoise.per_example import Recorder, per_example_gradients
from sgnoise.run_config import RunConfig
from sgnoise.tail_index import summarise_noise


@pytest.fixture(scope="module", autouse=True)
def _few_reps(few_reps):
    """Curves of 4 matrices per alpha (tests/conftest.py): fast tests."""


#: The run the measured model belongs to: minibatches of 250, seed 0.
RUN = RunConfig(
    activation="relu", optimizer="sgd", lr=0.1, batch_size=250, epochs=1, seed=0, hidden=(20,)
)


@pytest.fixture(scope="module")
def data():
    return prepare("mnist10k", None, 3000, 250)  # 12 train minibatches, 3 test ones


@pytest.fixture(scope="module")
def model():
    return MLP((784, 20, 10), "relu", seed=1)


@pytest.fixture(scope="module")
def measured_and_coordinates(data, model):
    detail = Detail(coordinates=40, minibatches=1000, batch_scan=(1, 16, 256))
    rows, _, _, coordinates = measure(model, data, RUN, detail)
    return rows, coordinates


@pytest.fixture(scope="module")
def measured(measured_and_coordinates):
    return measured_and_coordinates[0]


def test_the_noise_pass_records_the_same_per_example_gradients_as_a_separate_pass(data, model):
    n = 12 * 250
    recorder = Recorder(model, n, coords_per_layer=40, seed=5)
    with_tap = noise_pass(model, data.x_train, data.y_train, 250, per_example=recorder)
    without = noise_pass(model, data.x_train, data.y_train, 250)
    np.testing.assert_array_equal(with_tap.matrix, without.matrix)  # the tap changes nothing
    alone = per_example_gradients(model, data.x_train[:n], data.y_train[:n],
                                  coords_per_layer=40, seed=5)  # fmt: skip
    fused = recorder.result()
    np.testing.assert_array_equal(fused.index, alone.index)
    np.testing.assert_allclose(fused.matrix, alone.matrix, rtol=1e-5, atol=1e-6)
    # and their mean is the full gradient at those coordinates
    full = without.gradient
    expected = [full[j].ravel()[i] for j, i in zip(fused.param, fused.index, strict=True)]
    np.testing.assert_allclose(fused.matrix.mean(axis=0), expected, rtol=1e-4, atol=1e-7)


def test_measure_returns_the_passes_with_the_last_layers_noise_only(data, model):
    """The matrix of every layer is freed once summarised (38 MB at 60,000 images)."""
    _, train, test, _ = measure(model, data, RUN)
    full = noise_pass(model, data.x_train, data.y_train, 250)
    last = model.layer_names[-1]
    for measured in (train, test):
        assert list(measured.noise) == [last]
        assert measured.matrix is measured.noise[last]
    np.testing.assert_array_equal(train.matrix, full.noise[last])
    for a, b in zip(train.gradient, full.gradient, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (train.loss, train.accuracy) == (full.loss, full.accuracy)


def test_a_wide_matrix_is_calibrated_on_a_seeded_subset_of_its_varying_columns(monkeypatch):
    """Beyond CALIBRATED_COLUMNS non-constant columns, alpha_cal is the calibration of
    summarise_noise on that many of them (drawn with the seed, in column order, gathered
    as fancy indexing gathers them: the standardisation's sums follow the layout)."""
    monkeypatch.setattr(measure_module, "CALIBRATED_COLUMNS", 64)
    rng = np.random.default_rng(4)
    noise = (rng.standard_t(2.5, (16, 300)) * rng.lognormal(0, 1, 300)).astype(np.float32)
    noise[:, [3, 250]] = 0.0  # dead units: constant columns, never in the subset
    noise -= noise.mean(axis=0)
    layers = {"layer1": slice(0, 200), "layer2": slice(200, 300)}
    rows = measure_module._summaries(noise, layers, seed=6)
    for layer, cols in {**layers, "all": slice(None)}.items():
        block = noise[:, cols]
        varying = np.flatnonzero(np.ptp(block, axis=0) > 0)
        picked = np.sort(np.random.default_rng(6).choice(varying, 64, replace=False))
        subset = block[:, picked]
        expected = calibration.calibrate(summarise_noise(subset, seed=6), subset.shape)
        got = rows[layer]
        assert got["alpha_cal"] == expected["alpha_calibrated"]
        assert (got["alpha_cal_lo"], got["alpha_cal_hi"]) == (
            expected["alpha_calibrated_lo"],
            expected["alpha_calibrated_hi"],
        )


def test_frozen_rows_do_not_depend_on_the_per_coordinate_measurement(data, model, measured):
    plain = measure(model, data, RUN)[0]
    frozen = [r for r in measured if r["mode"] == "frozen"]
    assert len(frozen) == len(plain) == 2 * 3
    np.testing.assert_equal(frozen, plain)


def test_the_detail_rows_cover_every_layer_split_and_scanned_batch_size(measured):
    keys = {(r["mode"], r["split"], r["layer"], r.get("measured_batch")) for r in measured}
    layers = ("layer1", "layer2", "all")
    assert {("resampled", s, la, 250) for s in ("train", "test") for la in layers} <= keys
    assert {("per_example", "train", la, None) for la in layers} <= keys
    assert {("batch_scan", "train", la, b) for la in layers for b in (1, 16, 256)} <= keys
    assert not [k for k in keys if k[0] in ("per_example", "batch_scan") and k[1] == "test"]


def test_resampled_rows_hold_a_calibrated_alpha_and_per_coordinate_quantiles(measured):
    for r in (r for r in measured if r["mode"] == "resampled"):
        assert r["status"] == "ok" and r["n_samples"] > 0
        if r["above_grid"]:  # a bound: alpha = 2, open above
            assert r["alpha_cal"] == 2.0 and math.isnan(r["alpha_cal_hi"])
        elif r["below_grid"]:  # a bound: the grid's edge or heavier, open below
            assert math.isnan(r["alpha_cal_lo"]) and r["alpha_cal"] <= r["alpha_cal_hi"]
        else:
            assert r["alpha_cal_lo"] <= r["alpha_cal"] <= r["alpha_cal_hi"] <= 2.0
        assert 0 <= r["sparse_share"] <= 1
        for kind in ("dense", "sparse"):  # NaN where there is no such coordinate
            lo, mid = r[f"alpha_cal_{kind}_lo"], r[f"alpha_cal_{kind}"]
            assert math.isnan(mid) or math.isnan(lo) or lo <= mid
        quantiles = [r[f"col_alpha_{q}"] for q in ("5", "25", "50", "75", "95")]
        assert quantiles == sorted(quantiles) and all(math.isfinite(q) for q in quantiles)
        assert r["col_alpha_gauss_5"] < r["col_alpha_gauss_50"] < r["col_alpha_gauss_95"]


def test_per_example_rows_hold_tail_quantiles_and_an_interval_for_the_fraction(measured):
    for r in (r for r in measured if r["mode"] == "per_example"):
        assert r["frac_inf_var_lo"] <= r["frac_inf_var"] <= r["frac_inf_var_hi"]
        assert r["tail_5"] <= r["tail_50"] <= r["tail_95"]
        for k in ("_k025", "_k05", "_k2", "_k4"):  # the Hill plot's thresholds
            assert math.isnan(r[f"tail_50{k}"]) or r[f"tail_5{k}"] <= r[f"tail_50{k}"]
            assert math.isnan(r[f"frac_inf_var{k}"]) or 0 <= r[f"frac_inf_var{k}"] <= 1
        assert r["variance_call"] in ("finite", "infinite", "undecided")
        assert r["k_holds_lo"] <= 1.0 <= r["k_holds_hi"]
        assert r["frac_inf_var_csn_lo"] <= r["frac_inf_var_csn"] <= r["frac_inf_var_csn_hi"]
        assert 0 <= r["frac_lognormal"] <= 1 and 0 <= r["sparse_share"] <= 1
        assert r["tail_50_csn"] > 0 and r["k_csn_50"] > 0


def test_the_coordinates_of_the_activity_figure_are_returned(measured_and_coordinates):
    _, c = measured_and_coordinates
    n = len(c["layer"])
    assert n == len(c["nonzero_share"]) == len(c["alpha"]) and c["sparse"] == 0.05
    assert set(c["layer"]) == {"layer1", "layer2"}
    assert all(0 <= s <= 1 for s in c["nonzero_share"])
    assert sum(a is not None for a in c["alpha"]) > n / 2


def test_the_frozen_train_noise_is_calibrated_and_too_few_test_rows_are_not(measured):
    frozen = {(r["split"], r["layer"]): r for r in measured if r["mode"] == "frozen"}
    assert math.isfinite(frozen["train", "all"]["alpha_cal"])  # 12 rows >= MIN_ROWS
    assert math.isnan(frozen["test", "all"]["alpha_cal"])  # 3 rows: no calibration


def test_scan_sizes_are_powers_of_two_up_to_half_the_examples():
    assert scan_sizes(8000) == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
    assert scan_sizes(100) == (1, 2, 4, 8, 16, 32)


def test_too_few_values_are_not_called_constant_coordinates():
    matrix = np.random.default_rng(0).standard_normal((16, 200))
    layers = {"layer1": slice(0, 4), "layer2": slice(4, 200)}  # layer1: 64 values
    rows = measure_module._summaries(matrix, layers, seed=0)
    assert rows["layer1"]["status"] == "degenerate"
    assert rows["layer1"]["reason"].startswith("too few values (64) for a tail estimate")
    assert rows["layer2"]["status"] == rows["all"]["status"] == "ok"
    matrix[:, :4] = 1.0  # now every coordinate of layer1 is constant
    rows = measure_module._summaries(matrix, layers, seed=0)
    assert "all 4 coordinates are constant" in rows["layer1"]["reason"]


def test_calibration_curves_are_cached_on_disk_and_read_back_identically(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("SGNOISE_CACHE", str(tmp_path))
    calibration._stored_curve.cache_clear()
    first = calibration.calibration_curve(16, 40, seed=7)
    (saved,) = tmp_path.glob("calibration-v*-16x40-r*-seed7.npz")
    calibration._stored_curve.cache_clear()
    again = calibration.calibration_curve(16, 40, seed=7)
    np.testing.assert_array_equal(first.readings, again.readings)
    saved.write_bytes(b"damaged")  # a damaged cache file is simulated again, not trusted
    calibration._stored_curve.cache_clear()
    np.testing.assert_array_equal(calibration.calibration_curve(16, 40, seed=7).readings,
                                  first.readings)  # fmt: skip
    assert "unreadable" in capsys.readouterr().err
    calibration._stored_curve.cache_clear()
