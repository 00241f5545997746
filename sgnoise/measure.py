"""One checkpoint's measurement: α of the train and test gradient noise at frozen weights.

What a checkpoint measures (Simsekli et al. 2019, section 4, with the weights
frozen): the train and the test set are each split into disjoint minibatches of
the training batch size, the noise is every minibatch gradient minus their mean
(:func:`sgnoise.noise.noise_pass`, which also gives the loss, accuracy and full
gradient), and :func:`sgnoise.tail_index.summarise_layers` estimates α per
layer and pooled over all parameters (``layer = "all"``) in one pass; each
standardised α is then calibrated (:func:`sgnoise.calibration.calibrate`).

With a :class:`Detail`, the same noise pass also records every example's own
gradient at a seeded sample of coordinates (:class:`sgnoise.per_example.Recorder`),
which gives, per layer and pooled, rows of three more kinds (``mode``):

``resampled``
    M minibatches of the training batch size drawn at random from the examples
    (:func:`sgnoise.resample.resampled_noise`): standardised α over M rows,
    calibrated, and the quantiles of each coordinate's own α beside those of
    Gaussian columns of M rows (:func:`sgnoise.tail_index.per_column_alpha`);
``per_example``
    the tail exponent of the per-example gradients themselves (Hill), its
    quantiles over coordinates and the fraction credibly below 2 (infinite
    variance), with an interval (:func:`sgnoise.per_example.summarise`);
``batch_scan``
    the resampled measurement at each measured batch size B of ``Detail.batch_scan``.

Noise the estimator cannot describe (exactly zero, as a dead ReLU network
gives, too many exact zeros, constant) does not stop a sweep: the checkpoint's
rows carry NaN α, ``status = "degenerate"`` and the estimator's message as
``reason`` (the estimator itself still raises for direct callers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sgnoise import per_example
from sgnoise.calibration import MAX_VALUES, calibrate, calibrated_alpha
from sgnoise.data import Dataset
from sgnoise.model import Model
from sgnoise.noise import NoisePass, n_minibatches, noise_pass
from sgnoise.resample import resampled_noises
from sgnoise.results import (
    ALPHA_COLUMNS,
    BATCH_SCAN,
    DEGENERATE,
    FROZEN,
    OK,
    PER_EXAMPLE,
    POOLED,
    RESAMPLED,
    SPLITS,
)
from sgnoise.run_config import RunConfig
from sgnoise.tail_index import (
    MIN_SAMPLES,
    QUANTILES,
    per_column_alpha_by_block,
    standardised_alpha,
    summarise_layers,
)
from sgnoise.verdict import held_range

#: Seed of every calibration curve: the curve belongs to the estimator and the matrix's
#: shape, not to a run, so all runs share it (and its cache).
CURVE_SEED = 0
#: Columns a calibrated reading is made from at most (a random subset of the non-constant
#: ones beyond): one curve serves every layer and checkpoint with more.
CALIBRATED_COLUMNS = 1 << 14


@dataclass(frozen=True)
class Detail:
    """The per-coordinate measurement of a checkpoint (see the module docstring).

    Attributes
    ----------
    coordinates : int
        Coordinates sampled per layer for the per-example gradients.
    minibatches : int
        M, resampled minibatches per measurement (>= 1000 for per-column α).
    batch_scan : tuple of int
        Measured batch sizes B of the ``batch_scan`` rows (empty: none).

    sparse : float
        A coordinate whose per-example gradients are non-zero (beyond
        :data:`~sgnoise.tail_index.common.TIE_TOLERANCE`) for fewer than this share
        of the examples is sparse; the resampled rows give the dense and the sparse
        coordinates' calibrated α and per-column quantiles apart.
    """

    coordinates: int = 250
    minibatches: int = 1000
    batch_scan: tuple[int, ...] = ()
    sparse: float = 0.05


def scan_sizes(n: int, largest: int = 2048) -> tuple[int, ...]:
    """Measured batch sizes 1, 2, 4, ... up to ``largest`` and at most n / 2."""
    return tuple(2**k for k in range(32) if 2**k <= min(largest, n // 2))


#: The calibrated standardised α's columns.
CAL = ("alpha_cal", "alpha_cal_lo", "alpha_cal_hi")
#: The Hill thresholds of the per-example rows: k = f sqrt(m) for these f, and the column
#: suffix of each (f = 1, the default k, has the plain names).
HILL_K = ((0.25, "_k025"), (0.5, "_k05"), (1.0, ""), (2.0, "_k2"), (4.0, "_k4"))


def _empty(status: str, reason: str) -> dict:
    """A row without α: every α column NaN, with the status and why."""
    nan = {k: math.nan for k in (*ALPHA_COLUMNS, *CAL) if k not in ("n_samples", "n_dropped")}
    return {**nan, "n_samples": 0, "n_dropped": 0, "status": status, "reason": reason}


def _bounds(cal: Mapping) -> dict:
    """The calibrated α's columns (NaN on the open side of a bound) and whether the reading
    lay below or above the calibration curve (:func:`~sgnoise.calibration.calibrate`)."""
    ends = zip(CAL, ("", "_lo", "_hi"), strict=True)
    out = {name: cal[f"alpha_calibrated{end}"] for name, end in ends}
    return out | {"below_grid": cal["below_grid"], "above_grid": cal["above_grid"]}


def _status(summary: Mapping) -> dict:
    """``ok``, or ``degenerate`` with why when the summary has no α: every column constant,
    or fewer values than a tail estimate needs (:data:`~sgnoise.tail_index.MIN_SAMPLES`)."""
    if math.isfinite(summary["alpha"]):
        return {"status": OK, "reason": ""}
    n, dropped = summary["n_samples"], summary["n_dropped"]
    if n == 0 and dropped:
        reason = (
            f"no noise to describe: all {dropped} coordinates are constant across minibatches "
            "(e.g. dead ReLUs)"
        )
    else:
        reason = f"too few values ({n}) for a tail estimate (at least {MIN_SAMPLES} are needed)"
        reason += f"; {dropped} constant coordinates left out" if dropped else ""
    return {"status": DEGENERATE, "reason": reason}


def _calibrated(
    summary: Mapping | None, matrix: np.ndarray, seed: int, varying: np.ndarray | None,
    centred: bool = True,
) -> dict:  # fmt: skip
    """The calibrated standardised α of ``matrix`` (whose centred summary is given), with its
    interval and bounds (:func:`_bounds`).

    A matrix with more than :data:`CALIBRATED_COLUMNS` non-constant columns is read
    again on a seeded random subset of exactly that many of them (``varying``: the
    columns whose values are not all equal), so that every such matrix of the same
    number of rows shares one calibration curve (a new curve is a simulation of
    seconds; the kept columns change as units die during training). Only its
    standardised α is read (:func:`~sgnoise.tail_index.standardised_alpha`).
    ``centred=False``: the reading and the curve without centring (noise known to have
    mean zero, as resampled noise is; :mod:`sgnoise.calibration`), on a seeded subset of
    2^floor(log2 n) of its n non-constant columns (:func:`_power_of_two`): the resampled
    rows' column counts change with the layer, the measured batch size and the checkpoint
    (dead units, dense and sparse coordinates), and each new count would be a new curve,
    seconds to simulate, where these few sizes share a handful.
    """
    if not centred:  # a power-of-two subset of the non-constant columns: a handful of curves
        matrix, summary = (
            matrix[:, _power_of_two(np.flatnonzero(np.ptp(matrix, axis=0)), seed)],
            None,
        )
    elif summary is not None and matrix.shape[1] - summary["n_dropped"] > CALIBRATED_COLUMNS:
        rng = np.random.default_rng(seed)
        kept = np.flatnonzero(varying)
        picked = np.sort(rng.choice(kept, CALIBRATED_COLUMNS, replace=False))
        # column-major, as fancy indexing makes it: the standardisation's float sums
        # follow the layout (np.take's row-major copy moves alpha_cal by a grid step at times)
        matrix, summary = matrix[:, picked], None
    if matrix.size > MAX_VALUES:  # more than 128 rows: a subset of MAX_VALUES / n_rows columns
        return _bounds(calibrated_alpha(matrix, seed=CURVE_SEED, centred=centred))
    if summary is None or not centred:
        summary = standardised_alpha(matrix, seed=seed, centred=centred)
    return _bounds(calibrate(summary, matrix.shape, seed=CURVE_SEED, centred=centred))


def _summaries(
    matrix: np.ndarray, columns: Mapping[str, slice], seed: int, centred: bool = True
) -> dict[str, dict]:
    """Per layer and pooled: the summary, its status and its calibration (NaN if degenerate;
    ``centred``: see :func:`_calibrated`)."""
    try:
        summaries = summarise_layers(matrix, columns, seed=seed)
    except ValueError as err:  # noise no stable law describes (zeros, constant columns)
        return {layer: _empty(DEGENERATE, str(err)) for layer in [*columns, POOLED]}
    blocks = {POOLED: slice(None), **columns}
    varying = None  # the columns not constant, found once when a layer is calibrated on a subset
    out = {}
    for layer, s in summaries.items():
        status = _status(s)
        cal = dict.fromkeys(CAL, math.nan) | {"below_grid": False, "above_grid": False}
        if status["status"] == OK:
            block = matrix[:, blocks[layer]]
            if varying is None and block.shape[1] - s["n_dropped"] > CALIBRATED_COLUMNS:
                varying = np.ptp(matrix, axis=0) > 0
            mine = None if varying is None else varying[blocks[layer]]
            cal = _calibrated(s, block, seed, mine, centred)
        out[layer] = {**s, **cal, **status}
    return out


def _quantile_columns(spread: Mapping | None, names: Mapping[str, str]) -> dict:
    """``{f"{name}_{q}": quantile}`` of a per-column spread (NaN without one), for
    ``names = {column prefix: key of the spread}``."""
    return {
        f"{name}_{q}": spread[key][str(q)] if spread else math.nan
        for name, key in names.items()
        for q in QUANTILES
    }


def _power_of_two(index: np.ndarray, seed: int) -> np.ndarray:
    """A seeded subset of 2^floor(log2 n) of the n columns ``index`` (all of them if n is a
    power of two; none if n is 0): at least half the columns are read."""
    size = 1 << max(int(index.size).bit_length() - 1, 0)
    if size >= index.size:
        return index
    return np.sort(np.random.default_rng(seed).choice(index, size, replace=False))


def _resampled(
    noise: np.ndarray,
    layers: Mapping[str, slice],
    batch_size: int,
    seed: int,
    sparse: np.ndarray,
    split_kinds: bool = False,
) -> tuple[dict[str, dict], dict | None]:
    """Per layer and pooled: the measurement of the noise of M resampled minibatches of
    ``batch_size`` (:func:`~sgnoise.resample.resampled_noise`), calibrated without
    centring (the noise's mean is known to be zero); the share of sparse coordinates
    (``sparse``: a flag per column, NaN-free); with ``split_kinds``, the calibrated α and
    the per-column quantiles of the dense and of the sparse coordinates apart. Also the
    pooled block's per-column spread (with each column's own α, ``alphas``), or None below
    MIN_COLUMN_ROWS rows."""
    summaries = _summaries(noise, layers, seed, centred=False)
    blocks = {POOLED: slice(None), **layers}
    every = np.arange(noise.shape[1])
    varying = np.ptp(noise, axis=0) > 0
    measured = {layer: blocks[layer] for layer, s in summaries.items() if s["status"] == OK}
    kinds = {}
    if split_kinds:
        for layer, cols in measured.items():
            index = every[cols][varying[cols]]
            kinds[layer] = {"dense": index[~sparse[index]], "sparse": index[sparse[index]]}
    by_block = dict(measured)
    by_block |= {f"{layer} {kind}": i for layer, d in kinds.items() for kind, i in d.items()}
    spreads = per_column_alpha_by_block(noise, by_block, seed=seed, gaussian=measured)
    rows = {}
    for layer, summary in summaries.items():
        names = {"col_alpha": "quantiles", "col_alpha_gauss": "gaussian_quantiles"}
        row = {**summary, **_quantile_columns(spreads.get(layer), names)}
        mine = every[blocks[layer]][varying[blocks[layer]]]
        row["sparse_share"] = float(sparse[mine].mean()) if mine.size else math.nan
        for kind, index in kinds.get(layer, {}).items():
            cal = dict.fromkeys(CAL, math.nan)
            if index.size * noise.shape[0] >= MIN_SAMPLES:
                cal = _calibrated(None, noise[:, index], seed, None, centred=False)
            ends = zip(CAL, ("", "_lo", "_hi"), strict=True)
            row |= {f"alpha_cal_{kind}{end}": cal[name] for name, end in ends}
            spread = spreads.get(f"{layer} {kind}")
            row |= _quantile_columns(spread, {f"col_alpha_{kind}": "quantiles"})
        rows[layer] = {**row, "measured_batch": batch_size}
    return rows, spreads.get(POOLED)


def _tails(
    grads: np.ndarray, layers: Mapping[str, slice], seed: int, sparse: np.ndarray,
    census: per_example.Census,
) -> dict[str, dict]:  # fmt: skip
    """Per layer and pooled: the per-example tail exponents' quantiles and the fraction of
    coordinates with infinite variance, at each Hill threshold of :data:`HILL_K`, the range
    of thresholds over which the call of most coordinates holds
    (:func:`sgnoise.verdict.held_range`), the threshold-free verdict's shares
    (:func:`sgnoise.per_example.power_law_fit`), all from one selection of each column's
    largest values (:func:`sgnoise.per_example.hill_and_power_law`), and the share of sparse
    coordinates among the non-constant ones."""
    factors = tuple(f for f, _ in HILL_K)
    try:
        tails, fit = per_example.hill_and_power_law(grads, factors, census=census, seed=seed)
    except ValueError as err:  # too few examples, or not finite
        return {layer: _empty(DEGENERATE, str(err)) for layer in [*layers, POOLED]}
    default = factors.index(1.0)
    rows = {}
    for layer, cols in [*layers.items(), (POOLED, slice(None))]:
        mine = [t.select(cols) for t in tails]
        try:
            s = per_example.summarise_exponents(mine[default], len(grads))
        except ValueError as err:  # every column constant (a dead layer)
            rows[layer] = _empty(DEGENERATE, str(err))
            continue
        lo, hi = s["fraction_infinite_variance_ci"]
        row = {
            **{f"tail_{q}": _nan(s["tail_exponent_quantiles"][str(q)]) for q in QUANTILES},
            "frac_inf_var": _nan(s["fraction_infinite_variance"]),
            "frac_inf_var_lo": lo,
            "frac_inf_var_hi": hi,
        }
        over_k = per_example.summarise_over_k(mine, factors)
        for (_, suffix), by_k in zip(HILL_K, over_k, strict=True):
            if suffix:
                q_at_k = by_k["tail_exponent_quantiles"] or {}
                row |= {f"tail_{q}{suffix}": _nan(q_at_k.get(str(q))) for q in QUANTILES}
                row[f"frac_inf_var{suffix}"] = by_k["fraction_infinite_variance"]
        call, held, _ = held_range(over_k)
        power = per_example.summarise_power_law(fit.select(cols))
        p_lo, p_hi = power["fraction_infinite_variance_ci"]
        rows[layer] = row | {
            "variance_call": call,
            "k_holds_lo": held[0]["k_factor"],
            "k_holds_hi": held[-1]["k_factor"],
            "frac_inf_var_csn": power["fraction_infinite_variance"],
            "frac_inf_var_csn_lo": p_lo,
            "frac_inf_var_csn_hi": p_hi,
            "frac_power_law": _nan(power["fraction_plausible"]),
            "frac_lognormal": power["fraction_lognormal"],
            "tail_50_csn": _nan((power["tail_exponent_quantiles"] or {}).get("50")),
            "k_csn_50": _nan((power["k_over_sqrt_m_quantiles"] or {}).get("50")),
            "sparse_share": float(sparse[cols][~census.constant[cols]].mean()),
            "n_samples": s["n_rows"] * s["n_kept"],
            "n_dropped": s["n_dropped"],
            "status": OK,
            "reason": "",
        }
    return rows


def _last_layer(measured: NoisePass) -> NoisePass:
    """The pass with the noise of its last layer only (a copy): the matrix of every
    layer (38 MB for 60,000 images) is not held through the per-coordinate part."""
    layer, block = list(measured.noise.items())[-1]
    block = block.copy()
    return NoisePass({layer: block}, block, measured.gradient, measured.loss, measured.accuracy)


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _rows(split: str, mode: str, by_layer: Mapping[str, dict]) -> list[dict]:
    return [{"split": split, "mode": mode, "layer": layer, **r} for layer, r in by_layer.items()]


def measure(
    model: Model, data: Dataset, config: RunConfig, detail: Detail | None = None
) -> tuple[list[dict], NoisePass, NoisePass, dict | None]:
    """α of the train and test gradient noise, per layer and pooled (``"all"``), weights frozen.

    Parameters
    ----------
    model, data
        The network at its current weights, and the data it is measured on.
    config : RunConfig
        The run: minibatches of ``config.batch_size``, ``config.seed`` for every
        random choice; with ``config.train_reference`` the full *train* gradient
        is subtracted from the test minibatch gradients (the original code's
        convention) instead of their own mean.
    detail : Detail, optional
        Also the per-coordinate rows (``resampled``, ``per_example``, ``batch_scan``).

    Returns
    -------
    rows : list of dict
        ``{"split", "mode", "layer", "status", "reason", **summary}``; the
        frozen rows (``mode = "frozen"``) for each split and layer (and
        ``"all"``), with the calibrated standardised α; degenerate noise gives
        NaN α with ``status = "degenerate"`` and the reason.
    train, test : NoisePass
        The two passes: full gradient, loss and accuracy of each split, and the noise
        of the last layer only (the noise of every layer is summarised, then freed).
    coordinates : dict or None
        With ``detail``, each sampled train coordinate's ``layer``, ``nonzero_share``
        (share of examples with a non-zero gradient there) and own ``alpha`` (of the
        resampled noise at the training batch size; None where not estimated), and the
        ``sparse`` threshold and the ``gaussian`` quantiles of Gaussian columns of as
        many rows: what ``alpha_vs_activity.png`` draws.
    """
    batch_size, seed = config.batch_size, config.seed
    passes, rows, coordinates = [], [], None
    splits = ((data.x_train, data.y_train), (data.x_test, data.y_test))
    for split, (x, y) in zip(SPLITS, splits, strict=True):  # one split's matrices at a time
        recorder = None
        if detail is not None:
            used = n_minibatches(len(x), batch_size) * batch_size
            recorder = per_example.Recorder(
                model, used, coords_per_layer=detail.coordinates, seed=seed
            )
        reference = passes[0].gradient if config.train_reference and passes else None
        # A Dataset's images were checked (in [0, 1]) when it was made: no NaN/inf scan here.
        measured = noise_pass(
            model, x, y, batch_size, reference=reference, per_example=recorder, check_finite=False
        )
        rows += _rows(split, FROZEN, _summaries(measured.matrix, measured.columns, seed))
        passes.append(_last_layer(measured))  # the matrix of all layers is freed here
        del measured
        if recorder is None:
            continue
        grads = recorder.result()
        del recorder
        census = per_example.column_census(grads.matrix)  # for activity and the tails
        share, constant = per_example.activity(grads.matrix, census=census)
        sparse = (share < detail.sparse) & ~constant
        scan = detail.batch_scan if split == "train" else ()  # the examples SGD draws from
        noises = resampled_noises(grads.matrix, (batch_size, *scan), detail.minibatches, seed=seed)
        measured, spread = _resampled(next(noises), grads.layers, batch_size, seed, sparse, True)
        rows += _rows(split, RESAMPLED, measured)
        if split == "train":
            tails = _tails(grads.matrix, grads.layers, seed, sparse, census)
            rows += _rows(split, PER_EXAMPLE, tails)
            names = np.repeat(list(grads.layers), [c.stop - c.start for c in grads.layers.values()])
            coordinates = {
                "sparse": detail.sparse,
                "layer": names.tolist(),
                "nonzero_share": share.tolist(),
                "alpha": [None] * share.size if spread is None else
                         [float(a) if np.isfinite(a) else None for a in spread["alphas"]],
                "gaussian": None if spread is None else spread["gaussian_quantiles"],
            }  # fmt: skip
        for b, noise in zip(scan, noises, strict=True):
            rows += _rows(split, BATCH_SCAN, _resampled(noise, grads.layers, b, seed, sparse)[0])
        del noises, grads
    return rows, passes[0], passes[1], coordinates
