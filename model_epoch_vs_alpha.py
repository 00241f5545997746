"""Trainer: the SGN tail index α over training, one network per activation and seed.

``run`` trains and measures and returns numbers only (records, runs, noise
samples); the driver ``test_epoch_alpha_relu.py`` saves and plots them. At
iteration 0 and after every epoch (or every k iterations) it records, for the
train and the test noise, per layer and pooled over all parameters: the pooled
α with its confidence interval and Gaussian-surrogate α, the same for the
per-coordinate standardised noise, the training loss, the train and test
accuracy and the elapsed time (see :mod:`sgnoise.study`).

Run it directly for a quick look without saving anything:
    python model_epoch_vs_alpha.py
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sgnoise import study
from sgnoise.data import Dataset


def run(
    *,
    dataset: str | Dataset = "mnist10k",
    activations: Sequence[str] = ("relu", "sigmoid"),
    hidden: Sequence[int] = (100,),
    epochs: int = 10,
    batch_size: int = 500,
    lr: float = 0.1,
    seeds: Sequence[int] = (0, 1, 2),
    optimizer: str = "sgd",
    checkpoint_every: int = 0,
    subset: int = 0,
    in_flight: bool = False,
    train_reference: bool = False,
    workers: int = 1,
    data_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train one network per (activation, seed) and measure α at every checkpoint.

    Parameters are the driver's settings (``python test_epoch_alpha_relu.py
    --help``); ``dataset`` is a name from :data:`sgnoise.data.DATASETS` (loaded
    from ``data_dir``) or a loaded :class:`~sgnoise.data.Dataset`.

    Returns
    -------
    dict
        ``{"records", "runs", "noise_samples"}`` (see :func:`sgnoise.study.gather`);
        the histogram samples are those of the first seed of each activation.
    """
    data = study.prepare(dataset, data_dir, subset, batch_size, shared=workers > 1)
    configs = study.grid(
        activations=activations,
        lrs=[lr],
        seeds=seeds,
        optimizer=optimizer,
        batch_size=batch_size,
        epochs=epochs,
        hidden=tuple(hidden),
        checkpoint_every=checkpoint_every,
        in_flight=in_flight,
        train_reference=train_reference,
    )
    outs = study.run_all(data, configs, workers=workers)
    keep = [i for i, c in enumerate(configs) if c["seed"] == seeds[0]]
    return study.gather(outs, keep, study="activation", dataset=data.name)


if __name__ == "__main__":
    out = run(epochs=2, seeds=(0,))
    for r in out["records"]:
        if r["layer"] == "all" and r["split"] == "train":
            print(
                f"{r['activation']:8s} epoch {r['epoch']:g}: pooled α {r['alpha']:.3f} "
                f"(Gaussian surrogate {r['alpha_surrogate']:.3f}), loss {r['loss']:.3f}"
            )
