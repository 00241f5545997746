"""Trainer: the SGN tail index alpha against the learning rate.

Every learning rate starts from the same fresh initialisation (the original
code carried the weights over from one rate to the next, confounding the sweep
with training time). Independent configurations run in parallel (joblib).
"""

from __future__ import annotations

from joblib import Parallel, delayed
from tqdm import tqdm

from model_epoch_vs_alpha import _subset
from sgnoise.cli import lr_grid
from sgnoise.data import load
from sgnoise.study import train_and_measure


def run(
    *,
    dataset="mnist10k",
    activations=("relu", "sigmoid"),
    lr_start=0.001,
    lr_stop=0.1,
    lr_step=0.02,
    epochs=5,
    batch_size=500,
    seeds=(0,),
    optimizer="sgd",
    subset=0,
    workers=2,
    train_reference=False,
    data_dir=None,
    **_ignored,
) -> dict:
    """Train every (activation, learning rate, seed); measure alpha at iteration 0 and the end."""
    data = _subset(load(dataset, data_dir), subset)
    jobs = [
        (a, lr, s) for a in activations for lr in lr_grid(lr_start, lr_stop, lr_step) for s in seeds
    ]
    outs = Parallel(n_jobs=workers, return_as="generator")(
        delayed(train_and_measure)(
            data,
            activation=a,
            optimizer=optimizer,
            lr=lr,
            batch_size=batch_size,
            epochs=epochs,
            seed=s,
            train_reference=train_reference,
            measure_at="end",
        )
        for a, lr, s in jobs
    )
    records, runs, samples = [], [], {}
    with tqdm(total=len(jobs), desc="configurations", unit="run") as bar:
        for (a, lr, _), out in zip(jobs, outs, strict=True):
            records += out["records"]
            runs.append(out["run"])
            if out["noise_sample"].size and not out["run"]["diverged"]:
                samples[a] = (f"{a}_last_layer_lr{lr:g}", out["noise_sample"])  # largest rate
            final = [r for r in out["records"] if r["layer"] == "all" and r["split"] == "train"]
            bar.set_postfix(
                act=a,
                lr=f"{lr:g}",
                alpha=f"{final[-1]['alpha']:.2f}",
                diverged=out["run"]["diverged"],
            )
            bar.update(1)
    samples = dict(samples.values())
    return {"records": records, "runs": runs, "noise_samples": samples, "dataset": data}
