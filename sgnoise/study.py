"""One training run with gradient-noise measurements at checkpoints.

Both trainers (``model_epoch_vs_alpha.py``, ``model_lr_vs_alpha.py``) call
:func:`train_and_measure`; it returns tidy records, one row per (checkpoint,
split, layer), ready for :mod:`sgnoise.results` and :mod:`sgnoise.plots`.
"""

from __future__ import annotations

import time

import numpy as np

from sgnoise.data import Dataset
from sgnoise.mlp import MLP
from sgnoise.noise import InFlightNoise, full_gradient, gradient_noise, iterate_minibatches
from sgnoise.optim import make_optimizer
from sgnoise.tail_index import summarise_noise

# Largest number of noise values kept per run for the histogram plot.
HISTOGRAM_SAMPLES = 200_000


def measure(
    model: MLP, data: Dataset, batch_size: int, seed: int, *, train_reference: bool = False
) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Alpha of the train and test gradient noise, per layer and pooled ("all").

    Returns the rows (without run metadata) and the train noise per layer.
    """
    rows, train_noise, reference = [], {}, None
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        if split == "test" and train_reference:
            reference = full_gradient(model, data.x_train, data.y_train)
        if len(x) < 2 * batch_size:
            raise ValueError(
                f"the {split} set has {len(x)} images, fewer than 2 minibatches of "
                f"batch_size={batch_size}: lower --batch-size or raise --subset"
            )
        noise = gradient_noise(model, x, y, batch_size, reference=reference)
        if split == "train":
            train_noise = noise
        layers = dict(noise, all=np.concatenate(list(noise.values()), axis=1))
        for layer, matrix in layers.items():
            rows.append({"split": split, "layer": layer, **summarise_noise(matrix, seed=seed)})
    return rows, train_noise


def train_and_measure(
    data: Dataset,
    *,
    activation: str = "relu",
    optimizer: str = "sgd",
    lr: float = 0.1,
    batch_size: int = 500,
    epochs: int = 10,
    seed: int = 0,
    sizes=(784, 100, 10),
    checkpoint_every: int = 0,
    in_flight: bool = False,
    train_reference: bool = False,
    measure_at: str = "all",
    progress=None,
) -> dict:
    """Train one network with SGD (or another optimiser) and measure its gradient noise.

    Parameters
    ----------
    checkpoint_every : int
        Measure every this many iterations; 0 means at the end of every epoch.
        Iteration 0 (the initialisation) is always measured.
    in_flight : bool
        Also record the original study's in-flight noise (last layer, weights
        moving during the epoch, row-major blocking) at every epoch's end.
    train_reference : bool
        Subtract the full *train* gradient from test minibatch gradients (the
        original code's convention) instead of the test set's own mean.
    measure_at : {"all", "end"}
        Measure at every checkpoint, or only at iteration 0 and the end.
    progress : callable, optional
        Called as progress(epoch_done, postfix_dict) after each epoch.

    Returns
    -------
    dict
        ``{"records": [...], "run": {...}, "noise_sample": ndarray}``;
        ``run["diverged"]`` is True (with the iteration) if the loss or a
        gradient became NaN/inf: training stops there and nothing non-finite
        reaches the estimator.
    """
    model = MLP(sizes, activation, seed=seed)
    opt = make_optimizer(optimizer, lr)
    rng = np.random.default_rng(seed)
    meta = {
        "activation": activation,
        "optimizer": optimizer,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
    }
    records: list[dict] = []
    run = {**meta, "diverged": False, "diverged_iteration": None, "reason": ""}
    start = time.perf_counter()
    noise_sample = np.empty(0, np.float32)

    def checkpoint(epoch: float, iteration: int, loss: float) -> None:
        nonlocal noise_sample
        rows, train_noise = measure(model, data, batch_size, seed, train_reference=train_reference)
        last = train_noise[model.layer_names[-1]].ravel()
        noise_sample = np.random.default_rng(seed).permutation(last)[:HISTOGRAM_SAMPLES]
        common = {
            **meta,
            "epoch": epoch,
            "iteration": iteration,
            "loss": loss,
            "train_acc": model.accuracy(data.x_train, data.y_train),
            "test_acc": model.accuracy(data.x_test, data.y_test),
            "elapsed_s": time.perf_counter() - start,
        }
        records.extend({**common, "mode": "frozen", **row} for row in rows)

    n = len(data.x_train)
    per_epoch = n // batch_size
    checkpoint(0.0, 0, model.loss(data.x_train, data.y_train))
    iteration, loss = 0, float("nan")
    for epoch in range(1, epochs + 1):
        recorder = InFlightNoise() if in_flight else None
        if recorder is not None:
            recorder.start(model, data.x_train, data.y_train)
        for idx in iterate_minibatches(n, batch_size, rng):
            loss, grads = model.batched_loss_and_grads(data.x_train[idx], data.y_train[idx])
            loss = float(loss)
            iteration += 1
            if not (np.isfinite(loss) and all(np.isfinite(g).all() for g in grads)):
                run.update(
                    diverged=True, diverged_iteration=iteration, reason="NaN/inf loss or gradient"
                )
                return {"records": records, "run": run, "noise_sample": noise_sample}
            if recorder is not None:
                recorder.add(grads)
            opt.step(model.params, grads)
            if checkpoint_every and iteration % checkpoint_every == 0 and measure_at == "all":
                checkpoint(iteration / per_epoch, iteration, loss)
        if not checkpoint_every and (measure_at == "all" or epoch == epochs):
            checkpoint(float(epoch), iteration, loss)
        if recorder is not None:
            inflight = recorder.result()
            records.append(
                {
                    **meta,
                    "epoch": float(epoch),
                    "iteration": iteration,
                    "mode": "in_flight_row_major",
                    "split": "train",
                    "layer": model.layer_names[-1],
                    **summarise_inflight(inflight, seed),
                }
            )
        if progress is not None:
            last = [r for r in records if r["layer"] == "all" and r["split"] == "train"]
            progress(epoch, {"loss": loss, "alpha": last[-1]["alpha"] if last else float("nan")})
    run["final_loss"] = loss
    return {"records": records, "run": run, "noise_sample": noise_sample}


def summarise_inflight(noise: np.ndarray, seed: int) -> dict:
    """The original study's estimate: row-major blocks (no shuffle), plain Mohammadi."""
    from sgnoise.tail_index import estimate_alpha

    return {
        "alpha": estimate_alpha(noise, "mohammadi", shuffle=False),
        "alpha_shuffled": estimate_alpha(noise, "mohammadi", seed=seed),
        "n_samples": int(noise.size),
    }
