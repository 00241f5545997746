"""Trainer: the SGN tail index α against the learning rate.

For learning rates from ``lr_start`` to ``lr_stop`` by ``lr_step`` (both ends
included, see :func:`sgnoise.cli.lr_grid`), ``run`` trains each activation and
seed for ``epochs`` epochs and records the same measurements as
``model_epoch_vs_alpha.py`` over training and at the end. Every learning rate
starts from the same fresh initialisation (the original code carried the
weights over from one rate to the next, which confounds the sweep with training
time). Independent runs go in parallel over ``workers`` processes (joblib). A
run that diverges (NaN/inf) is stopped and recorded as such; the sweep goes on.

Run it directly for a quick look without saving anything:
    python model_lr_vs_alpha.py
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sgnoise import study
from sgnoise.cli import lr_grid
from sgnoise.data import Dataset


def run(
    *,
    dataset: str | Dataset = "mnist10k",
    activations: Sequence[str] = ("relu", "sigmoid"),
    hidden: Sequence[int] = (100,),
    lr_start: float = 0.001,
    lr_stop: float = 0.1,
    lr_step: float = 0.01,
    epochs: int = 5,
    batch_size: int = 500,
    seeds: Sequence[int] = (0, 1, 2),
    optimizer: str = "sgd",
    checkpoint_every: int = 0,
    subset: int = 0,
    in_flight: bool = False,
    train_reference: bool = False,
    workers: int = 2,
    data_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train every (activation, learning rate, seed) from the seed's initialisation.

    Parameters are the driver's settings (``python test_lr_alpha.py --help``);
    ``dataset`` is a name from :data:`sgnoise.data.DATASETS` (loaded from
    ``data_dir``) or a loaded :class:`~sgnoise.data.Dataset`.

    Returns
    -------
    dict
        ``{"records", "runs", "noise_samples"}`` (see :func:`sgnoise.study.gather`);
        the histogram samples are those of the largest learning rate that did
        not diverge, first seed, for each activation.
    """
    data = study.prepare(dataset, data_dir, subset, batch_size, shared=workers > 1)
    configs = study.grid(
        activations=activations,
        lrs=lr_grid(lr_start, lr_stop, lr_step),
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
    keep = []
    for activation in activations:
        stable = [
            i
            for i, c in enumerate(configs)
            if c["activation"] == activation
            and c["seed"] == seeds[0]
            and not outs[i]["run"]["diverged"]
        ]
        keep += [max(stable, key=lambda i: configs[i]["lr"])] if stable else []
    return study.gather(outs, keep, study="lr", dataset=data.name)


if __name__ == "__main__":
    out = run(epochs=1, seeds=(0,), lr_step=0.05)
    for r in out["records"]:
        if r["layer"] == "all" and r["split"] == "train" and r["epoch"] == 1:
            print(
                f"{r['activation']:8s} lr {r['lr']:<6g}: pooled α {r['alpha']:.3f} "
                f"(Gaussian surrogate {r['alpha_surrogate']:.3f}), loss {r['loss']:.3f}"
            )
