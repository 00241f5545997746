"""sgnoise.per_example: per-example gradients against the model, tail exponents of known laws."""

from __future__ import annotations

import json

import numpy as np
import pytest

import sgnoise.per_example as per_example_module
from sgnoise.mlp import MLP
from sgnoise.per_example import _wilson, per_example_gradients, summarise, tail_exponents
from sgnoise.tail_index import classical


def _model_and_data(activation="relu", bias=True, n=40):
    rng = np.random.default_rng(3)
    model = MLP((12, 8, 6, 4), activation, bias=bias, init_scale=0.5, dtype=np.float64, seed=1)
    if bias:
        for b in model.params[1::2]:
            b[:] = rng.normal(0, 0.3, b.shape)
    return model, rng.standard_normal((n, 12)), rng.integers(0, 4, n)


def _at_columns(grads, pe):
    """The entries of a gradient list (aligned with model.params) at pe's columns."""
    return np.array([grads[j].ravel()[i] for j, i in zip(pe.param, pe.index, strict=True)])


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("bias", [False, True])
def test_rows_are_each_examples_own_gradient_and_their_mean_the_full_gradient(activation, bias):
    model, x, y = _model_and_data(activation, bias)
    pe = per_example_gradients(model, x, y, coords_per_layer=20, seed=0)
    _, full = model.loss_and_grads(x, y)
    np.testing.assert_allclose(pe.matrix.mean(axis=0), _at_columns(full, pe), atol=1e-15)
    for i in (0, 17, 39):
        _, own = model.loss_and_grads(x[i : i + 1], y[i : i + 1])
        np.testing.assert_allclose(pe.matrix[i], _at_columns(own, pe), rtol=1e-12, atol=1e-15)


def test_layout_samples_large_layers_takes_small_ones_whole_and_follows_the_seed():
    model, x, y = _model_and_data(bias=True)  # layers of 104, 54 and 28 coordinates
    pe = per_example_gradients(model, x, y, coords_per_layer=30, seed=5)
    assert pe.layers == {"layer1": slice(0, 30), "layer2": slice(30, 60), "layer3": slice(60, 88)}
    assert pe.matrix.shape == (40, 88)
    assert set(pe.param[pe.layers["layer3"]]) == {4, 5}
    assert pe.index[pe.layers["layer3"]].tolist() == list(range(24)) + list(range(4))
    for layer, columns in pe.layers.items():  # no coordinate twice, each within its parameter
        assert set(pe.param[columns]) <= set(model.layer_params(layer))
        pairs = set(zip(pe.param[columns].tolist(), pe.index[columns].tolist(), strict=True))
        assert len(pairs) == columns.stop - columns.start
        assert all(i < model.params[j].size for j, i in pairs)
    again = per_example_gradients(model, x, y, coords_per_layer=30, seed=5)
    other = per_example_gradients(model, x, y, coords_per_layer=30, seed=6)
    assert np.array_equal(again.index, pe.index) and np.array_equal(again.matrix, pe.matrix)
    assert not np.array_equal(other.index, pe.index)
    every = per_example_gradients(model, x, y, coords_per_layer=None)
    assert every.matrix.shape == (40, sum(p.size for p in model.params))


def test_chunks_of_examples_give_the_same_matrix(monkeypatch):
    model, x, y = _model_and_data(n=50)
    whole = per_example_gradients(model, x, y, coords_per_layer=25)
    monkeypatch.setattr(per_example_module, "CHUNK_ELEMENTS", 7 * model.activations_per_example)
    chunked = per_example_gradients(model, x, y, coords_per_layer=25).matrix
    np.testing.assert_allclose(chunked, whole.matrix, rtol=1e-12, atol=1e-15)  # BLAS blocking


def test_the_recorder_writes_the_same_products_in_any_row_blocks(monkeypatch):
    """record's row blocks (RECORD_ROWS) change where products are made, not their values,
    scaled or not, and the matrix stays column-major."""
    model, x, y = _model_and_data(n=50)
    tapped = []
    model.batched_loss_and_grads(x, y, tap=lambda i, h, d: tapped.append((i, h.copy(), d.copy())))

    def recorded(rows):
        monkeypatch.setattr(per_example_module, "RECORD_ROWS", rows)
        recorder = per_example_module.Recorder(model, 100, coords_per_layer=25, seed=2)
        for start, scale in ((0, 1.0), (50, 3.0)):
            for layer, h, delta in tapped:
                recorder.record(layer, h, delta, start, scale=scale)
        return recorder.result().matrix

    whole = recorded(1000)
    assert whole.flags.f_contiguous
    np.testing.assert_array_equal(recorded(7), whole)
    np.testing.assert_array_equal(whole[50:], 3.0 * whole[:50])


def test_bad_coordinate_counts_and_inputs_are_named():
    model, x, y = _model_and_data()
    with pytest.raises(ValueError, match="coords_per_layer must be an integer >= 1 or None, got 0"):
        per_example_gradients(model, x, y, coords_per_layer=0)
    with pytest.raises(ValueError, match=r"y must have shape \(40,\), got \(39,\)"):
        per_example_gradients(model, x, y[:-1])


def _student(nu, n, columns, seed):
    return np.random.default_rng(seed).standard_t(nu, (n, columns))


def test_student_t_1_5_is_called_infinite_variance_and_t_4_finite():
    heavy, light = _student(1.5, 30_000, 30, 0), _student(4, 30_000, 30, 1)
    s_heavy, s_light = summarise(heavy), summarise(light)
    assert s_heavy["fraction_infinite_variance"] >= 0.9  # 29/30 with these seeds
    assert s_light["fraction_infinite_variance"] == 0
    assert abs(s_heavy["tail_exponent_quantiles"]["50"] - 1.5) < 0.1
    # Hill at k = sqrt(n) reads t(4) a little heavy (second-order bias, rho = -1/2).
    assert 3.4 < s_light["tail_exponent_quantiles"]["50"] < 4.2
    assert 0.55 < s_heavy["moment_gamma_quantiles"]["50"] < 0.8  # gamma = 1/1.5


def test_intervals_contain_the_estimate_and_the_exponent_ignores_scale_and_shift():
    g = _student(2.5, 5_000, 8, 2)
    tails = tail_exponents(g)
    assert np.all(tails.k == 70) and np.all(tails.lower < tails.exponent)
    assert np.all(tails.exponent < tails.upper)
    moved = tail_exponents(g * np.arange(1, 9) * 1e-3 + 7.0)
    np.testing.assert_allclose(moved.exponent, tails.exponent, rtol=1e-9)
    np.testing.assert_array_equal(tail_exponents(g, k=70).exponent, tails.exponent)
    wider = tail_exponents(g, level=0.99)
    assert np.all(wider.lower < tails.lower) and np.all(wider.upper > tails.upper)


def test_bounded_columns_get_negative_moment_gamma_and_large_hill_exponents():
    uniform = np.random.default_rng(4).random((20_000, 10))  # gamma = -1, finite endpoint
    s = summarise(uniform)
    assert s["fraction_moment_gamma_negative"] == 1 and s["fraction_infinite_variance"] == 0
    assert -1.3 < s["moment_gamma_quantiles"]["50"] < -0.7
    assert s["tail_exponent_quantiles"]["5"] > 5


def test_constant_sparse_and_atom_columns_are_dropped_and_counted():
    g = _student(1.5, 2_500, 7, 5)
    g[:, 0] = 0.0  # a dead unit
    g[:, 1] = 3.25
    g[:-60, 2] = 0.0  # 60 non-zero values: k = 7 < 10
    g[:-40, 3] = 0.5  # 2,500 non-zero (k = 50) but an atom of 2,460 reaches the top 52
    s = summarise(g)
    counts = ("n_constant", "n_sparse", "n_atom", "n_dropped", "n_kept")
    assert tuple(s[c] for c in counts) == (2, 1, 1, 4, 3)
    assert s["per_column"]["column"] == [4, 5, 6] and s["k_range"] == [50, 50]


def test_k_follows_the_non_zero_values_so_a_mostly_zero_column_keeps_its_exponent():
    rng = np.random.default_rng(8)
    g = rng.standard_t(1.5, (40_000, 20)) * (rng.random((40_000, 20)) < 0.1)  # ~4,000 non-zero
    tails = tail_exponents(g)
    assert np.all(np.abs(tails.k - 63) <= 1)
    assert abs(np.median(tails.exponent) - 1.5) < 0.15
    fixed = tail_exponents(g, k=200)  # one k for all: 200 of ~4,000 non-zero values
    assert np.all(fixed.k == 200) and not fixed.sparse.any()
    assert tail_exponents(g[:1_500], k=200).sparse.all()  # ~150 non-zero: fewer than k + 2


def _hard_columns(n=5000, seed=4):
    """Columns that trouble a selection: heavy tails, 98% zeros, few distinct values (ties at
    the top and at the threshold), a constant, an atom at the top, and large values only in
    the rows of the selection's sample (so its threshold lets too few through: the fallback)."""
    rng = np.random.default_rng(seed)
    cols = [
        rng.standard_t(1.5, n),
        np.where(rng.random(n) < 0.98, 0.0, rng.standard_t(2.0, n)),
        np.round(rng.standard_normal(n) * 2) / 2,
        np.full(n, 0.25),
        np.where(rng.random(n) < 0.1, 7.0, rng.standard_normal(n)),
        np.where(np.arange(n) % classical.SELECT_STEP == 0, 100 + rng.random(n), 0.0),
        -np.abs(rng.standard_cauchy(n)),
    ]
    return np.asfortranarray(np.column_stack(cols * 3).astype(np.float32))


@pytest.mark.parametrize("order", ["F", "C"])
def test_the_selected_top_values_are_those_of_a_full_sort(order):
    grads = np.asarray(_hard_columns(), order=order)
    mean = grads.mean(axis=0, dtype=np.float64).astype(grads.dtype)
    n, n_columns = grads.shape
    counts = np.resize([0, 12, 80, 250, 1000, 2], n_columns)
    top = classical.largest(grads, counts, centre=mean, dtype=np.float64)
    full = np.sort(np.abs(grads - mean), axis=0)[::-1].astype(np.float64)
    assert top.shape == (1000, n_columns)
    for c, count in enumerate(counts):
        np.testing.assert_array_equal(top[:count, c], full[:count, c])
        assert np.isnan(top[count:, c]).all()


@pytest.mark.parametrize("order", ["F", "C"])
@pytest.mark.parametrize("columns", [1, 9, 21])
def test_column_census_in_chunks_are_those_of_the_whole_matrix(order, columns):
    grads = np.asarray(_hard_columns()[:, :columns], order=order)
    constant, nonzero, mean, tolerance = per_example_module.column_census(grads)
    np.testing.assert_array_equal(constant, grads.max(axis=0) == grads.min(axis=0))
    np.testing.assert_array_equal(nonzero, np.count_nonzero(grads, axis=0))
    rms = np.sqrt(np.mean(np.square(grads.astype(np.float64)), axis=0))
    np.testing.assert_allclose(tolerance, 1e-9 * rms, rtol=1e-12)
    np.testing.assert_array_equal(mean, grads.mean(axis=0, dtype=np.float64).astype(np.float32))


def test_tail_exponents_are_those_of_fully_sorted_columns(monkeypatch):
    """The selection gives the estimates of the plain method (sort every column), bit for bit:
    the selection patched to a full sort."""
    grads = _hard_columns(n=20_000, seed=5)

    def sorted_whole(grads, counts, *, centre, dtype):
        full = np.sort(np.abs(grads - centre), axis=0)[::-1].astype(dtype)[: counts.max()]
        full[np.arange(counts.max())[:, None] >= counts] = np.nan
        return full

    fast = [tail_exponents(grads), tail_exponents(grads, k=40)]
    monkeypatch.setattr(per_example_module, "largest", sorted_whole)
    plain = [tail_exponents(grads), tail_exponents(grads, k=40)]
    for a, b in zip(fast, plain, strict=True):
        for name in ("exponent", "lower", "upper", "moment_gamma", "k", "sparse", "atom"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert fast[0].atom.any() and fast[0].constant.any() and fast[0].kept.sum() >= 12


def test_hill_and_power_law_from_one_selection_are_the_two_calls_bit_for_bit():
    """One selection, as deep as the power law's, serves the Hill estimates at every k too."""
    rng = np.random.default_rng(8)
    hard = np.delete(_hard_columns(n=6000, seed=6), [3, 10, 17], axis=1)  # not the constants
    grads = np.column_stack([hard, rng.standard_t(2.5, (6000, 20))])
    grads = np.asfortranarray(grads.astype(np.float32))
    factors = (0.25, 1.0, 4.0)
    tails, fit = per_example_module.hill_and_power_law(grads, factors, seed=3)
    alone = per_example_module.tail_exponents_over_k(grads, factors)
    fit_alone = per_example_module.power_law_fit(grads, seed=3)
    for a, b in zip(tails, alone, strict=True):
        for name in ("exponent", "lower", "upper", "moment_gamma", "k", "sparse", "atom"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name in ("exponent", "lower", "upper", "xmin", "n_tail", "distance", "p_value", "lr"):
        np.testing.assert_array_equal(getattr(fit, name), getattr(fit_alone, name))
    assert fit.tested.sum() >= 20 and tails[1].kept.sum() >= 30


def test_summary_is_json_and_does_not_depend_on_the_seed():
    g = _student(3, 1_000, 5, 6).astype(np.float32)
    a, b = summarise(g, seed=0), summarise(g, seed=1)
    assert json.loads(json.dumps(a, allow_nan=False)) == a == b
    assert set(a["tail_exponent_quantiles"]) == {"5", "25", "50", "75", "95"}
    low, high = a["fraction_infinite_variance_ci"]
    assert 0 <= low <= a["fraction_infinite_variance"] <= high <= 1


def test_wilson_interval_matches_the_textbook_values():
    np.testing.assert_allclose(_wilson(0, 10), [0, 0.2775], atol=1e-4)
    np.testing.assert_allclose(_wilson(5, 10), [0.2366, 0.7634], atol=1e-4)


@pytest.mark.parametrize(
    ("grads", "match"),
    [
        (np.ones(500), r"grads must be 2-D \(rows = examples, .*\), got shape \(500,\)"),
        (np.ones((500, 0)), r"grads must be 2-D .* got shape \(500, 0\)"),
        (np.ones((99, 3)), "grads must have at least 100 rows .* >= 10 largest .* got 99"),
        (np.full((200, 2), np.nan), "grads must be finite, got 400 NaN/inf values"),
        (
            np.ones((200, 4)),
            "no column to estimate: of 4, 4 are constant, 0 have fewer than 100 non",
        ),
    ],
)
def test_bad_matrices_are_named(grads, match):
    with pytest.raises(ValueError, match=match):
        summarise(grads)


def test_bad_k_and_level_are_named():
    g = _student(2, 400, 2, 7)
    with pytest.raises(ValueError, match=r"k must be an integer in \[10, n - 2 = 398\], got 399"):
        tail_exponents(g, k=399)
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 1.5"):
        summarise(g, level=1.5)


def test_exponents_over_k_follow_the_threshold_rule_and_call_heavy_columns_at_every_k():
    from sgnoise.per_example import exponents_over_k

    rng = np.random.default_rng(5)
    grads = rng.standard_t(1.2, (8000, 30))
    rows = exponents_over_k(grads)
    default = summarise(grads)
    middle = next(row for row in rows if row["k_factor"] == 1)
    assert middle["k_range"] == default["k_range"]
    assert middle["fraction_infinite_variance"] == default["fraction_infinite_variance"]
    assert [row["k_range"][0] for row in rows] == sorted(row["k_range"][0] for row in rows)
    assert all(row["fraction_infinite_variance"] > 0.5 for row in rows[2:])
    with pytest.raises(ValueError, match="k_factor"):
        tail_exponents(grads, k_factor=0)


def test_tail_exponents_and_power_law_do_not_move_with_1e15_jitter_on_zeros():
    """Mostly-zero per-example columns with 1e-15 scatter on the zeros (a PyTorch user's
    float sums): the zeros stay zeros within TIE_TOLERANCE, k and the estimates do not move."""
    rng = np.random.default_rng(1)
    g = rng.standard_t(3, (8000, 60)) * (rng.random((8000, 60)) < 0.3)
    jittered = g + 1e-15 * rng.standard_normal(g.shape)
    plain, moved = tail_exponents(g), tail_exponents(jittered)
    np.testing.assert_array_equal(moved.k, plain.k)
    np.testing.assert_allclose(
        np.percentile(moved.exponent, (5, 50, 95)), np.percentile(plain.exponent, (5, 50, 95)),
        atol=0.02,
    )  # fmt: skip
    fits = [per_example_module.power_law_fit(m, bootstrap_columns=0) for m in (g, jittered)]
    np.testing.assert_array_equal(fits[1].m, fits[0].m)
    np.testing.assert_allclose(fits[1].exponent, fits[0].exponent, atol=0.02)


def test_a_census_made_once_gives_what_each_function_finds_alone():
    """measure makes one column_census for activity, the Hill thresholds and the power-law fit."""
    rng = np.random.default_rng(3)
    grads = rng.standard_t(3, (2000, 30)) * (rng.random((2000, 30)) < 0.3)
    census = per_example_module.column_census(grads)
    for a, b in zip(per_example_module.activity(grads, census=census),
                    per_example_module.activity(grads), strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)
    shared = per_example_module.tail_exponents_over_k(grads, (0.5, 1.0), census=census)
    alone = per_example_module.tail_exponents_over_k(grads, (0.5, 1.0))
    for s, a in zip(shared, alone, strict=True):
        np.testing.assert_array_equal(s.exponent, a.exponent)
    fits = [per_example_module.power_law_fit(grads, bootstrap_columns=0, census=c)
            for c in (census, None)]  # fmt: skip
    np.testing.assert_array_equal(fits[0].exponent, fits[1].exponent)
