"""Training runs with gradient-noise measurements at checkpoints.

Both trainers (``model_epoch_vs_alpha.py``, ``model_lr_vs_alpha.py``) describe
their runs as keyword dicts for :func:`train_and_measure`, run them with
:func:`run_all` (in parallel with joblib, or in-process with a per-epoch
progress bar) and gather them with :func:`gather` into tidy records, one row
per (run, checkpoint, split, layer) with the columns of
:data:`sgnoise.results.RECORD_COLUMNS`, ready for :mod:`sgnoise.results` and
:mod:`sgnoise.plots`.

What a checkpoint measures (Simsekli et al. 2019, section 4, with the weights
frozen): the train and the test set are each split into disjoint minibatches of
the training batch size, the noise is every minibatch gradient minus their mean
(:func:`sgnoise.noise.noise_pass`, which also gives the loss, accuracy and full
gradient), and
:func:`sgnoise.tail_index.summarise_layers` estimates α per layer and pooled over
all parameters (``layer = "all"``) in one pass.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from tqdm import tqdm

from sgnoise.data import Dataset, load
from sgnoise.mlp import MLP, all_finite
from sgnoise.noise import InFlightNoise, NoisePass, noise_pass, shuffled_minibatches
from sgnoise.optim import make_optimizer
from sgnoise.tail_index import estimate_alpha, summarise_layers

#: Most noise values kept per run for the histogram plot.
HISTOGRAM_SAMPLES = 200_000
#: Fewest minibatches per split: with two, each standardised noise column is exactly +-1
#: (discrete), which no tail-index estimate can describe.
MIN_MINIBATCHES = 3
#: Classes of every data set in :data:`sgnoise.data.DATASETS` (digits, clothing types).
N_CLASSES = 10
#: Where :func:`memory_mapped` puts the data when there is room (else the temporary directory).
SHARED_MEMORY = "/dev/shm"


def prepare(
    dataset: str | Dataset,
    data_dir: str | Path | None,
    n: int,
    batch_size: int,
    *,
    shared: bool = False,
) -> Dataset:
    """A study's data: loaded (unless given), cut by :func:`subset`, batch size checked.

    ``shared``: return it :func:`memory_mapped`, for runs in worker processes.
    """
    data = dataset if isinstance(dataset, Dataset) else load(dataset, data_dir)
    data = subset(data, n)
    check_batch_size(data, batch_size)
    return memory_mapped(data) if shared else data


def memory_mapped(data: Dataset) -> Dataset:
    """``data`` with its arrays in read-only memory-mapped files, in a temporary folder.

    The folder is in :data:`SHARED_MEMORY` if that has room for twice the
    data, else in the temporary directory (``$TMPDIR``).

    joblib hands a memory-mapped array to its worker processes as the file's
    name, so the workers and this process read one copy of the data instead
    of this process's copy plus the one joblib would dump for the workers:
    220 MB less for Fashion-MNIST. The folder is removed when the returned
    Dataset is garbage collected or the program exits (the maps stay valid
    until the arrays go); a process killed with SIGKILL leaves it behind, as
    ``sgnoise-data-*`` (in /dev/shm it holds memory until removed). Data
    already memory-mapped are returned as they are.
    """
    fields = ("x_train", "y_train", "x_test", "y_test")
    if all(isinstance(getattr(data, f), np.memmap) for f in fields):
        return data
    nbytes = sum(getattr(data, f).nbytes for f in fields)
    folder = tempfile.mkdtemp(prefix="sgnoise-data-", dir=_shared_memory_folder(nbytes))
    arrays = {}
    for field in fields:
        path = os.path.join(folder, f"{field}.npy")
        np.save(path, getattr(data, field))
        arrays[field] = np.load(path, mmap_mode="r")
    out = replace(data, **arrays)
    weakref.finalize(out, shutil.rmtree, folder, ignore_errors=True)
    return out


def grid(
    *,
    activations: Sequence[str],
    lrs: Sequence[float],
    seeds: Sequence[int],
    **common: Any,
) -> list[dict[str, Any]]:
    """One :func:`train_and_measure` config per (activation, lr, seed); ``common`` shared."""
    return [
        {"activation": a, "lr": lr, "seed": s, **common}
        for a in activations
        for lr in lrs
        for s in seeds
    ]


def _shared_memory_folder(nbytes: int) -> str | None:
    """``/dev/shm`` (memory, as joblib uses) if it has room for twice nbytes, else None.

    None: the default temporary directory. Writing Fashion-MNIST's 220 MB
    there took 0.8 s on disk, 0.14 s in /dev/shm.
    """
    try:
        stat = os.statvfs(SHARED_MEMORY)
    except OSError:  # no such file system (not Linux)
        return None
    return SHARED_MEMORY if stat.f_bavail * stat.f_frsize >= 2 * nbytes else None


def subset(data: Dataset, n: int) -> Dataset:
    """The first ``n`` training images and the first ``max(n // 4, 1)`` test images (0: all)."""
    if not n:
        return data
    return replace(
        data,
        x_train=data.x_train[:n],
        y_train=data.y_train[:n],
        x_test=data.x_test[: max(n // 4, 1)],
        y_test=data.y_test[: max(n // 4, 1)],
    )


def check_batch_size(data: Dataset, batch_size: int) -> None:
    """Raise ValueError unless both splits hold :data:`MIN_MINIBATCHES` minibatches."""
    for split, x in (("training", data.x_train), ("test", data.x_test)):
        if len(x) < MIN_MINIBATCHES * batch_size:
            raise ValueError(
                f"--batch-size must be at most 1/{MIN_MINIBATCHES} of the {split} set "
                f"({len(x)} images: the noise needs {MIN_MINIBATCHES} minibatches), got "
                f"{batch_size}: lower --batch-size or raise --subset"
            )


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
        ``{"split", "layer", **summary}`` for each split and layer (and ``"all"``),
        summaries from :func:`sgnoise.tail_index.summarise_layers`.
    train, test : NoisePass
        The two passes (noise, full gradient, loss and accuracy of each split).
    """
    train = noise_pass(model, data.x_train, data.y_train, batch_size)
    reference = train.gradient if train_reference else None
    test = noise_pass(model, data.x_test, data.y_test, batch_size, reference=reference)
    rows = []
    for split, measured in (("train", train), ("test", test)):
        summaries = summarise_layers(measured.matrix, measured.columns, seed=seed)
        rows += [{"split": split, "layer": layer, **s} for layer, s in summaries.items()]
    return rows, train, test


def train_and_measure(
    data: Dataset,
    *,
    activation: str = "relu",
    optimizer: str = "sgd",
    lr: float = 0.1,
    batch_size: int = 500,
    epochs: int = 10,
    seed: int = 0,
    hidden: Sequence[int] = (100,),
    checkpoint_every: int = 0,
    in_flight: bool = False,
    train_reference: bool = False,
    progress: Callable[[Mapping[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train one network from a fresh initialisation and measure its gradient noise.

    The initialisation and the minibatch order depend only on ``seed``: runs
    that differ only in ``lr`` (or ``optimizer``) start from identical weights.

    Parameters
    ----------
    data : Dataset
    activation, optimizer, lr, batch_size, epochs, seed
        The run (see :class:`sgnoise.mlp.MLP`, :func:`sgnoise.optim.make_optimizer`).
    hidden : sequence of int
        Hidden-layer widths: the network is ``784-<hidden>-10``.
    checkpoint_every : int
        Measure every this many iterations; 0: after every epoch; -1: only at
        the end. Iteration 0 (the initialisation) and the last iteration are
        always measured.
    in_flight : bool
        Also record, for every epoch, the original study's in-flight estimate
        (last layer, minibatch gradients taken while the weights move, minus
        the full gradient at the epoch's start, blocked row-major, plain
        Mohammadi), as rows with ``mode = "in_flight_row_major"``; the column
        ``alpha_shuffled`` holds the same estimate after a seeded shuffle.
    train_reference : bool
        See :func:`measure`.
    progress : callable, optional
        Called after every epoch with ``{"epoch", "loss", "alpha", "diverged"}``
        (loss and pooled train α of the last checkpoint).

    Returns
    -------
    dict
        ``records``: rows with ``mode = "frozen"`` (and in-flight rows);
        ``run``: the run's settings and status (``diverged``, ``diverged_iteration``,
        ``diverged_epoch``, ``reason``, ``noise_sample``: which
        layer, split and epoch ``noise_sample`` holds); ``noise_sample``: up to
        :data:`HISTOGRAM_SAMPLES` values of the last layer's train noise at the
        last checkpoint.

    Notes
    -----
    Divergence: if a minibatch loss or gradient, or a weight after a step, is
    NaN or inf, training stops there, the run is marked diverged with that
    iteration, and nothing non-finite reaches the estimator.
    """
    model = MLP((data.x_train.shape[1], *hidden, N_CLASSES), activation, seed=seed)
    opt = make_optimizer(optimizer, lr)
    rng = np.random.default_rng(seed)
    meta = {
        "activation": activation,
        "optimizer": optimizer,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
    }
    run: dict[str, Any] = {
        **meta,
        "diverged": False,
        "diverged_iteration": None,
        "diverged_epoch": None,
        "reason": "",
    }
    per_epoch = len(data.x_train) // batch_size
    last_layer = model.layer_names[-1]
    records: list[dict] = []
    sample: dict[str, Any] = {}
    latest: dict[str, Any] = {}  # the last checkpoint's iteration and full train gradient
    start = time.perf_counter()

    def checkpoint(iteration: int) -> None:
        rows, train, test = measure(model, data, batch_size, seed, train_reference=train_reference)
        sample["values"] = train.noise[last_layer].flatten()  # a copy: the matrix can go
        sample["epoch"] = iteration / per_epoch
        latest.update(iteration=iteration, gradient=train.gradient)
        common = {
            **meta,
            "mode": "frozen",
            "epoch": iteration / per_epoch,
            "iteration": iteration,
            "loss": train.loss,
            "train_acc": train.accuracy,
            "test_acc": test.accuracy,
            "elapsed_s": time.perf_counter() - start,
        }
        records.extend({**common, **row} for row in rows)

    def report(epoch: int) -> None:
        if progress is not None:
            last = [r for r in records if r["layer"] == "all" and r["split"] == "train"][-1]
            status = {"epoch": epoch, "loss": last["loss"], "alpha": last["alpha"]}
            progress({**status, "diverged": run["diverged"]})

    checkpoint(0)
    iteration, measured = 0, 0
    grads = [np.empty_like(p) for p in model.params]  # each step's gradients, written in place
    for epoch in range(1, epochs + 1):
        recorder = InFlightNoise() if in_flight else None
        if recorder is not None:  # the last checkpoint's full gradient, if taken at these weights
            known = latest["gradient"] if latest["iteration"] == iteration else None
            recorder.start(model, data.x_train, data.y_train, gradient=known)
        for xb, yb in shuffled_minibatches(data.x_train, data.y_train, batch_size, rng):
            loss, _ = model.batched_loss_and_grads(xb, yb, out=grads)
            iteration += 1
            ok, what = bool(np.isfinite(loss)), "loss"
            if ok:  # a NaN/inf gradient makes NaN/inf weights with every optimiser: checked there
                opt.step(model.params, grads)  # reads grads, does not change them
                ok = all(all_finite(p) for p in model.params)
                what = "gradient or weights after the step"
                if ok and recorder is not None:  # only finite gradients are recorded
                    recorder.add(grads)
            if not ok:
                run.update(
                    diverged=True,
                    diverged_iteration=iteration,
                    diverged_epoch=iteration / per_epoch,
                    reason=f"NaN/inf {what} at iteration {iteration} (lr={lr:g})",
                )
                report(epoch)
                return _finish(records, run, sample, last_layer)
            if checkpoint_every > 0 and iteration % checkpoint_every == 0:
                checkpoint(iteration)
                measured = iteration
        if recorder is not None:
            noise = recorder.result()
            records.append(_in_flight_row(noise, meta, epoch, iteration, last_layer, seed))
        if checkpoint_every == 0 or (epoch == epochs and measured != iteration):
            checkpoint(iteration)
            measured = iteration
        report(epoch)
    return _finish(records, run, sample, last_layer)


def _in_flight_row(
    noise: np.ndarray, meta: dict, epoch: int, iteration: int, layer: str, seed: int
) -> dict:
    """The original study's estimate: row-major blocks (no shuffle), plain Mohammadi."""
    return {
        **meta,
        "mode": "in_flight_row_major",
        "epoch": float(epoch),
        "iteration": iteration,
        "split": "train",
        "layer": layer,
        "alpha": estimate_alpha(noise, "mohammadi", shuffle=False),
        "alpha_shuffled": estimate_alpha(noise, "mohammadi", seed=seed),
        "n_samples": int(noise.size),
    }


def _finish(records: list[dict], run: dict, sample: dict, layer: str) -> dict[str, Any]:
    """Stamp the run's divergence status on every record; draw and describe the noise sample."""
    for r in records:
        r["diverged"], r["diverged_iteration"] = run["diverged"], run["diverged_iteration"]
    key = f"{run['activation']}_lr{run['lr']:g}_seed{run['seed']}_{layer}"
    run["noise_sample"] = {"key": key, "layer": layer, "split": "train", "epoch": sample["epoch"]}
    values = np.random.default_rng(run["seed"]).permutation(sample["values"])
    return {"records": records, "run": run, "noise_sample": values[:HISTOGRAM_SAMPLES]}


def _postfix(config: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, str]:
    return {
        "act": config.get("activation", "relu"),
        "lr": f"{config.get('lr', 0.1):g}",
        "seed": str(config.get("seed", 0)),
        "loss": f"{status['loss']:.3f}",
        "alpha": f"{status['alpha']:.2f}",
        **({"diverged": "yes"} if status["diverged"] else {}),
    }


def run_all(
    data: Dataset, configs: Sequence[Mapping[str, Any]], *, workers: int = 1
) -> list[dict[str, Any]]:
    """:func:`train_and_measure` for every config (keyword dict with ``epochs``), in order.

    With ``workers == 1`` the runs go one after the other in this process with a
    progress bar over epochs; otherwise ``workers`` processes (joblib) run them
    in parallel with a progress bar over runs. Either bar shows the pooled
    train-noise α and the loss of the latest checkpoint.
    """
    if workers == 1:
        outs = []
        total = sum(c["epochs"] for c in configs)
        with tqdm(total=total, desc="epochs", unit="epoch") as bar:
            for config in configs:
                done = bar.n

                def progress(status: Mapping[str, Any], config=config) -> None:
                    bar.set_postfix(_postfix(config, status))
                    bar.update(1)

                outs.append(train_and_measure(data, **config, progress=progress))
                bar.update(done + config["epochs"] - bar.n)  # the epochs a diverged run skipped
        return outs
    results: Iterator[dict] = Parallel(n_jobs=workers, return_as="generator")(
        delayed(train_and_measure)(data, **config) for config in configs
    )
    outs = []
    with tqdm(total=len(configs), desc="runs", unit="run") as bar:
        for config, out in zip(configs, results, strict=True):
            last = [r for r in out["records"] if r["layer"] == "all" and r["split"] == "train"]
            status = {**last[-1], "diverged": out["run"]["diverged"]}
            bar.set_postfix(_postfix(config, status))
            bar.update(1)
            outs.append(out)
    return outs


def gather(
    outs: Sequence[Mapping[str, Any]], keep_samples: Sequence[int], **columns: Any
) -> dict[str, Any]:
    """Merge runs into ``{"records", "runs", "noise_samples"}``.

    Parameters
    ----------
    outs : sequence
        What :func:`train_and_measure` returned, one per run.
    keep_samples : sequence of int
        Indices of the runs whose noise sample is kept for the histogram plot
        (the others' ``noise_sample`` entries are set to None).
    **columns
        Extra columns for every record, e.g. ``study="lr", dataset="mnist10k"``.
    """
    records, runs, samples = [], [], {}
    for i, out in enumerate(outs):
        records += [{**columns, **r} for r in out["records"]]
        run = dict(out["run"])
        if i in keep_samples:
            samples[run["noise_sample"]["key"]] = out["noise_sample"]
        else:
            run["noise_sample"] = None
        runs.append(run)
    return {"records": records, "runs": runs, "noise_samples": samples}
