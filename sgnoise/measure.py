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
    """

    coordinates: int = 250
    minibatches: int = 1000
    batch_scan: tuple[int, ...] = ()


def scan_sizes(n: int, largest: int = 2048) -> tuple[int, ...]:
    """Measured batch sizes 1, 2, 4, ... up to ``largest`` and at most n / 2."""
    return tuple(2**k for k in range(32) if 2**k <= min(largest, n // 2))


#: The calibrated standardised α's columns.
CAL = ("alpha_cal", "alpha_cal_lo", "alpha_cal_hi")


def _empty(status: str, reason: str) -> dict:
    """A row without α: every α column NaN, with the status and why."""
    nan = {k: math.nan for k in (*ALPHA_COLUMNS, *CAL) if k not in ("n_samples", "n_dropped")}
    return {**nan, "n_samples": 0, "n_dropped": 0, "status": status, "reason": reason}


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


def _calibrated(summary: Mapping, matrix: np.ndarray, seed: int, varying: np.ndarray) -> dict:
    """The calibrated standardised α of ``matrix`` (whose summary is given), with its interval.

    A matrix with more than :data:`CALIBRATED_COLUMNS` non-constant columns is read
    again on a seeded random subset of exactly that many of them (``varying``: the
    columns whose values are not all equal), so that every such matrix of the same
    number of rows shares one calibration curve (a new curve is a simulation of
    seconds; the kept columns change as units die during training). Only its
    standardised α is read (:func:`~sgnoise.tail_index.standardised_alpha`).
    """
    if matrix.shape[1] - summary["n_dropped"] > CALIBRATED_COLUMNS:
        rng = np.random.default_rng(seed)
        kept = np.flatnonzero(varying)
        picked = np.sort(rng.choice(kept, CALIBRATED_COLUMNS, replace=False))
        # column-major, as fancy indexing makes it: the standardisation's float sums
        # follow the layout (np.take's row-major copy moves alpha_cal by a grid step at times)
        subset = matrix[:, picked]
        summary = standardised_alpha(subset, seed=seed)
        matrix = subset
    if matrix.size > MAX_VALUES:  # more than 128 rows: a subset of MAX_VALUES / n_rows columns
        cal = calibrated_alpha(matrix, seed=CURVE_SEED)
    else:
        cal = calibrate(summary, matrix.shape, seed=CURVE_SEED)
    return dict(
        zip(CAL, (cal[f"alpha_calibrated{end}"] for end in ("", "_lo", "_hi")), strict=True)
    )


def _summaries(matrix: np.ndarray, columns: Mapping[str, slice], seed: int) -> dict[str, dict]:
    """Per layer and pooled: the summary, its status and its calibration (NaN if degenerate)."""
    try:
        summaries = summarise_layers(matrix, columns, seed=seed)
    except ValueError as err:  # noise no stable law describes (zeros, constant columns)
        return {layer: _empty(DEGENERATE, str(err)) for layer in [*columns, POOLED]}
    blocks = {POOLED: slice(None), **columns}
    varying = None  # the columns not constant, found once when a layer is calibrated on a subset
    out = {}
    for layer, s in summaries.items():
        status = _status(s)
        cal = dict.fromkeys(CAL, math.nan)
        if status["status"] == OK:
            block = matrix[:, blocks[layer]]
            if varying is None and block.shape[1] - s["n_dropped"] > CALIBRATED_COLUMNS:
                varying = np.ptp(matrix, axis=0) > 0
            cal = _calibrated(s, block, seed, None if varying is None else varying[blocks[layer]])
        out[layer] = {**s, **cal, **status}
    return out


def _resampled(
    noise: np.ndarray, layers: Mapping[str, slice], batch_size: int, seed: int
) -> dict[str, dict]:
    """Per layer and pooled: the measurement of the noise of M resampled minibatches of
    ``batch_size`` (:func:`~sgnoise.resample.resampled_noise`)."""
    summaries = _summaries(noise, layers, seed)
    blocks = {POOLED: slice(None), **layers}
    measured = {layer: blocks[layer] for layer, s in summaries.items() if s["status"] == OK}
    spreads = per_column_alpha_by_block(noise, measured, seed=seed)
    rows = {}
    for layer, summary in summaries.items():
        spread = spreads.get(layer)
        quantiles = {}
        for name, key in (("col_alpha", "quantiles"), ("col_alpha_gauss", "gaussian_quantiles")):
            for q in QUANTILES:
                quantiles[f"{name}_{q}"] = spread[key][str(q)] if spread else math.nan
        rows[layer] = {**summary, **quantiles, "measured_batch": batch_size}
    return rows


def _tails(grads: np.ndarray, layers: Mapping[str, slice]) -> dict[str, dict]:
    """Per layer and pooled: the per-example tail exponents' quantiles and the fraction of
    coordinates with infinite variance (each column sorted once)."""
    try:
        tails = per_example.tail_exponents(grads)
    except ValueError as err:  # too few examples, or not finite
        return {layer: _empty(DEGENERATE, str(err)) for layer in [*layers, POOLED]}
    rows = {}
    for layer, cols in [*layers.items(), (POOLED, slice(None))]:
        try:
            s = per_example.summarise_exponents(tails.select(cols), len(grads))
        except ValueError as err:  # every column constant (a dead layer)
            rows[layer] = _empty(DEGENERATE, str(err))
            continue
        lo, hi = s["fraction_infinite_variance_ci"]
        rows[layer] = {
            **{f"tail_{q}": _nan(s["tail_exponent_quantiles"][str(q)]) for q in QUANTILES},
            "frac_inf_var": _nan(s["fraction_infinite_variance"]),
            "frac_inf_var_lo": lo,
            "frac_inf_var_hi": hi,
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
) -> tuple[list[dict], NoisePass, NoisePass]:
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
    """
    batch_size, seed = config.batch_size, config.seed
    passes, rows = [], []
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
        scan = detail.batch_scan if split == "train" else ()  # the examples SGD draws from
        noises = resampled_noises(grads.matrix, (batch_size, *scan), detail.minibatches, seed=seed)
        rows += _rows(split, RESAMPLED, _resampled(next(noises), grads.layers, batch_size, seed))
        if split == "train":
            rows += _rows(split, PER_EXAMPLE, _tails(grads.matrix, grads.layers))
        for b, noise in zip(scan, noises, strict=True):
            rows += _rows(split, BATCH_SCAN, _resampled(noise, grads.layers, b, seed))
        del noises, grads
    return rows, passes[0], passes[1]
