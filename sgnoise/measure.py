"""One checkpoint's measurement: α of the train and test gradient noise at frozen weights.

What a checkpoint measures (Simsekli et al. 2019, section 4, with the weights
frozen): the train and the test set are each split into disjoint minibatches of
the training batch size, the noise is every minibatch gradient minus their mean
(:func:`sgnoise.noise.noise_pass`, which also gives the loss, accuracy and full
gradient), and :func:`sgnoise.tail_index.summarise_layers` estimates α per
layer and pooled over all parameters (``layer = "all"``) in one pass.

Noise the estimator cannot describe (exactly zero, as a dead ReLU network
gives, too many exact zeros, constant) does not stop a sweep: the checkpoint's
rows carry NaN α, ``status = "degenerate"`` and the estimator's message as
``reason`` (the estimator itself still raises for direct callers).
"""

from __future__ import annotations

import math

from sgnoise.data import Dataset
from sgnoise.mlp import MLP
from sgnoise.noise import NoisePass, noise_pass
from sgnoise.results import ALPHA_COLUMNS, DEGENERATE, OK, POOLED, SPLITS
from sgnoise.tail_index import summarise_layers


def _degenerate_rows(split: str, layers: list[str], reason: str, n_samples: int) -> list[dict]:
    """NaN α for every layer and the pool of one split, with why."""
    empty = {k: math.nan for k in ALPHA_COLUMNS if k not in ("n_samples", "n_dropped")}
    return [
        {
            "split": split,
            "layer": layer,
            **empty,
            "n_samples": n_samples,
            "n_dropped": 0,
            "status": DEGENERATE,
            "reason": reason,
        }  # fmt: skip
        for layer in [*layers, POOLED]
    ]


def measure(
    model: MLP, data: Dataset, batch_size: int, seed: int, *, train_reference: bool = False
) -> tuple[list[dict], NoisePass, NoisePass]:
    """α of the train and test gradient noise, per layer and pooled (``"all"``), weights frozen.

    Parameters
    ----------
    train_reference : bool
        Subtract the full *train* gradient from the test minibatch gradients
        (the original code's convention) instead of their own mean.

    Returns
    -------
    rows : list of dict
        ``{"split", "layer", "status", "reason", **summary}`` for each split and
        layer (and ``"all"``), summaries from
        :func:`sgnoise.tail_index.summarise_layers`; degenerate noise gives NaN
        α with ``status = "degenerate"`` and the reason.
    train, test : NoisePass
        The two passes (noise, full gradient, loss and accuracy of each split).
    """
    # A Dataset's images were checked (in [0, 1]) when it was made: no NaN/inf scan per checkpoint.
    train = noise_pass(model, data.x_train, data.y_train, batch_size, check_finite=False)
    reference = train.gradient if train_reference else None
    test = noise_pass(
        model, data.x_test, data.y_test, batch_size, reference=reference, check_finite=False
    )
    rows = []
    for split, measured in zip(SPLITS, (train, test), strict=True):
        try:
            summaries = summarise_layers(measured.matrix, measured.columns, seed=seed)
        except ValueError as err:  # noise no stable law describes (zeros, constant columns)
            layers = list(measured.columns)
            rows += _degenerate_rows(split, layers, str(err), int(measured.matrix.size))
            continue
        rows += [
            {"split": split, "layer": layer, **s, **_status(s)} for layer, s in summaries.items()
        ]
    return rows, train, test


def _status(summary: dict) -> dict:
    """``ok``, or ``degenerate`` with why when the summary has no α (every column constant)."""
    if math.isfinite(summary["alpha"]):
        return {"status": OK, "reason": ""}
    return {
        "status": DEGENERATE,
        "reason": f"no noise to describe: all {summary['n_dropped']} coordinates are constant "
        "across minibatches (e.g. dead ReLUs)",
    }
