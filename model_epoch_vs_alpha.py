"""Trainer: the SGN tail index alpha over epochs, one network per activation and seed.

Used by ``test_epoch_alpha_relu.py``; ``run`` returns numbers only (records, runs).
"""

from __future__ import annotations

from tqdm import tqdm

from sgnoise.data import load
from sgnoise.study import train_and_measure


def run(
    *,
    dataset="mnist10k",
    activations=("relu", "sigmoid"),
    epochs=10,
    batch_size=500,
    lr=0.1,
    seeds=(0,),
    optimizer="sgd",
    checkpoint_every=0,
    subset=0,
    in_flight=False,
    train_reference=False,
    data_dir=None,
    **_ignored,
) -> dict:
    """Train every (activation, seed) and measure alpha at each checkpoint.

    Returns ``{"records", "runs", "noise_samples"}`` (see :mod:`sgnoise.study`).
    """
    data = _subset(load(dataset, data_dir), subset)
    records, runs, samples = [], [], {}
    jobs = [(a, s) for a in activations for s in seeds]
    with tqdm(total=len(jobs) * epochs, desc="epochs", unit="ep") as bar:
        for activation, seed in jobs:

            def progress(epoch, post, activation=activation):
                bar.set_postfix(
                    act=activation, loss=f"{post['loss']:.3f}", alpha=f"{post['alpha']:.2f}"
                )
                bar.update(1)

            out = train_and_measure(
                data,
                activation=activation,
                optimizer=optimizer,
                lr=lr,
                batch_size=batch_size,
                epochs=epochs,
                seed=seed,
                checkpoint_every=checkpoint_every,
                in_flight=in_flight,
                train_reference=train_reference,
                progress=progress,
            )
            records += out["records"]
            runs.append(out["run"])
            samples.setdefault(f"{activation}_last_layer", out["noise_sample"])
    return {"records": records, "runs": runs, "noise_samples": samples, "dataset": data}


def _subset(data, n):
    """The first n training and n // 4 test images (0: everything), for quick runs."""
    if not n:
        return data
    from dataclasses import replace

    return replace(
        data,
        x_train=data.x_train[:n],
        y_train=data.y_train[:n],
        x_test=data.x_test[: max(n // 4, 1)],
        y_test=data.y_test[: max(n // 4, 1)],
    )
