"""One training run: steps, checkpoints (measured by :mod:`sgnoise.measure`), divergence.

:func:`train_and_measure` trains one network from a fresh initialisation and
returns its records, one row per (checkpoint, split, layer) with the columns
of :data:`sgnoise.results.RECORD_COLUMNS`, its status and a noise sample for
the histogram. Runs are independent: :mod:`sgnoise.sweep` decides which to
make and where.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sgnoise.data import Dataset
from sgnoise.measure import Detail, measure, scan_sizes
from sgnoise.model import make_model
from sgnoise.noise import InFlightNoise, shuffled_minibatches
from sgnoise.optim import make_optimizer
from sgnoise.results import DEGENERATE, FROZEN, IN_FLIGHT, OK, last_pooled_train
from sgnoise.run_config import RunConfig
from sgnoise.tail_index import estimate_alpha

#: Most noise values kept per run for the histogram plot.
HISTOGRAM_SAMPLES = 200_000
#: Classes of every data set in :data:`sgnoise.data.DATASETS` (digits, clothing, objects).
N_CLASSES = 10
#: A run's memory besides its network (:func:`memory_estimate`): the imported engine, the
#: per-coordinate measurement (resampled noise of 1,000 minibatches at 250 coordinates a
#: layer, per-example gradients) and the noise pass's bounded chunks (bytes).
RUN_OVERHEAD = 200 * 2**20
#: Copies of the parameters a run holds at most: weights, step gradients, optimiser state
#: (Adam: two), the full gradient of each split in float64 (two values each).
PARAMETER_COPIES = 6
#: Copies of one split's (K x n_params) noise matrix a checkpoint holds at most: the matrix,
#: its standardised copy and a calibration subset's (tracemalloc of 784-2048-10 at K = 16,
#: 8,000 images: a 306 MB peak, where this estimate makes 551 MB).
NOISE_COPIES = 3
#: Workspaces of a minibatch a run holds at most: the training loop's and a noise pass's chunk
#: (at least one minibatch, beyond the chunks RUN_OVERHEAD counts); a conv net's (its strips,
#: patches, maps) can outweigh its parameters: --channels 6 100000 holds 12 GB at batch 500.
WORKSPACES = 2


def memory_estimate(params: int, activations: int, n_rows: int, batch_size: int) -> int:
    """An upper estimate of one run's peak memory in bytes (float32), for refusing a network
    that would not fit before it trains.

    ``params``, ``activations``: the network's parameters and the values its passes hold per
    example (:func:`sgnoise.model.footprint`); ``n_rows``: the larger split's examples,
    whose noise matrix has K = n_rows // batch_size rows of one value per parameter; the
    passes' buffers of a minibatch, :data:`WORKSPACES` of them.
    """
    k = n_rows // batch_size
    noise = 4 * params * (PARAMETER_COPIES + NOISE_COPIES * k)
    return noise + 4 * activations * batch_size * WORKSPACES + RUN_OVERHEAD


class _Run:
    """The state of one run: model, optimiser, minibatch order, records so far."""

    def __init__(self, data: Dataset, config: RunConfig):
        self.data, self.config = data, config
        self.batch_size = config.batch_size
        self.seed = config.seed
        self.model = make_model(
            config.model, data.image_shape, N_CLASSES, config.activation, hidden=config.hidden,
            channels=config.channels, kernel=config.kernel, init=config.init, loss=config.loss,
            seed=config.seed,
        )  # fmt: skip
        self.opt = make_optimizer(config.optimizer, config.lr)
        self.rng = np.random.default_rng(self.seed)
        self.meta = config.meta()
        self.status: dict[str, Any] = {
            **self.meta,
            "diverged": False,
            "diverged_iteration": None,
            "diverged_epoch": None,
            "reason": "",
        }
        self.per_epoch = len(data.x_train) // self.batch_size
        self.last_layer = self.model.layer_names[-1]
        self.records: list[dict] = []
        self.sample: dict[str, Any] = {}
        self.measured_at = -1  # iteration of the last checkpoint
        self.ends: set[int] = set()  # the first, middle and last checkpoint's iterations
        self.gradient: list | None = None  # full train gradient at that checkpoint
        self.start = time.perf_counter()

    def detail(self, iteration: int) -> Detail | None:
        """The per-coordinate measurement of this checkpoint (None: off)."""
        end = iteration in self.ends
        config = self.config
        if not config.coordinates or (config.detail == "ends" and not end):
            return None
        scan = scan_sizes(len(self.data.x_train)) if end and config.batch_scan else ()
        return Detail(config.coordinates, config.resampled, scan, sparse=config.sparse)

    def checkpoint(self, iteration: int) -> None:
        """Measure the noise at the current (frozen) weights and append the rows."""
        detail = self.detail(iteration)
        rows, train, test, coordinates = measure(self.model, self.data, self.config, detail)
        if coordinates is not None:  # the last detailed checkpoint's stays in the run's status
            self.status["coordinates"] = {"epoch": iteration / self.per_epoch, **coordinates}
        self.sample = {
            "values": train.noise[self.last_layer].ravel(),  # measure's copy of that layer
            "epoch": iteration / self.per_epoch,
        }
        self.measured_at, self.gradient = iteration, train.gradient
        common = {
            **self.meta,
            "mode": FROZEN,
            "epoch": iteration / self.per_epoch,
            "iteration": iteration,
            "loss": train.loss,
            "train_acc": train.accuracy,
            "test_acc": test.accuracy,
            "elapsed_s": time.perf_counter() - self.start,
        }
        self.records.extend({**common, **row} for row in rows)

    def in_flight_row(self, noise: np.ndarray, epoch: int, iteration: int) -> dict:
        """The original study's estimate: row-major blocks (no shuffle), plain Mohammadi."""
        row = {
            **self.meta,
            "mode": IN_FLIGHT,
            "epoch": float(epoch),
            "iteration": iteration,
            "split": "train",
            "layer": self.last_layer,
            "n_samples": int(noise.size),
        }
        try:
            alpha = estimate_alpha(noise, "mohammadi", shuffle=False)
            shuffled = estimate_alpha(noise, "mohammadi", seed=self.seed)
        except ValueError as err:  # zero noise of a dead network: recorded, not raised
            return {**row, "alpha": np.nan, "alpha_shuffled": np.nan,
                    "status": DEGENERATE, "reason": str(err)}  # fmt: skip
        return {**row, "alpha": alpha, "alpha_shuffled": shuffled, "status": OK, "reason": ""}

    def diverge(self, iteration: int, what: str) -> None:
        self.status.update(
            diverged=True,
            diverged_iteration=iteration,
            diverged_epoch=iteration / self.per_epoch,
            reason=f"NaN/inf {what} at iteration {iteration} (lr={self.config.lr:g})",
        )

    def latest(self) -> dict[str, Any]:
        """Loss and pooled train α of the last checkpoint, for progress bars."""
        last = last_pooled_train(self.records)
        return {"loss": last["loss"], "alpha": last["alpha"], "diverged": self.status["diverged"]}

    def result(self) -> dict[str, Any]:
        """Stamp the run's divergence status on every record; draw and describe the sample."""
        for r in self.records:
            r["diverged"] = self.status["diverged"]
            r["diverged_iteration"] = self.status["diverged_iteration"]
        key = f"{self.config.key}_{self.last_layer}"
        self.status["noise_sample"] = {
            "key": key, "layer": self.last_layer, "split": "train", "epoch": self.sample["epoch"],
        }  # fmt: skip
        values = np.random.default_rng(self.seed).permutation(self.sample["values"])
        return {"records": self.records, "run": self.status,
                "noise_sample": values[:HISTOGRAM_SAMPLES]}  # fmt: skip


def train_and_measure(
    data: Dataset,
    config: RunConfig,
    *,
    progress: Callable[[Mapping[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train one network from a fresh initialisation and measure its gradient noise.

    Parameters
    ----------
    data : Dataset
    config : RunConfig
        The run's settings.
    progress : callable, optional
        Called after every epoch with ``{"epoch", "loss", "alpha", "diverged"}``
        (loss and pooled train α of the last checkpoint).

    Returns
    -------
    dict
        ``records``: rows with ``mode = "frozen"`` (and in-flight rows);
        ``run``: the run's settings and status (``diverged``, ``diverged_iteration``,
        ``diverged_epoch``, ``reason``, ``noise_sample``: which layer, split
        and epoch ``noise_sample`` holds; ``coordinates``: each sampled
        coordinate's layer, non-zero share and own α at the last detailed
        checkpoint, see :func:`sgnoise.measure.measure`); ``noise_sample``: up to
        :data:`HISTOGRAM_SAMPLES` values of the last layer's train noise at the
        last checkpoint.

    Notes
    -----
    Divergence: if a minibatch loss, or a weight after a step, is NaN or inf,
    training stops there, the run is marked diverged with that iteration, and
    nothing non-finite reaches the estimator. Every optimiser turns a NaN/inf
    gradient into NaN/inf weights, so checking the weights covers the gradients.
    """
    run = _Run(data, config)
    epochs, checkpoint_every = config.epochs, config.checkpoint_every
    run.ends = _ends(run.per_epoch * epochs, checkpoint_every, run.per_epoch)
    run.checkpoint(0)
    iteration = 0
    grads = [np.empty_like(p) for p in run.model.params]  # each step's gradients, in place
    for epoch in range(1, epochs + 1):
        recorder = InFlightNoise() if config.in_flight else None
        if recorder is not None:  # the last checkpoint's full gradient, if taken at these weights
            known = run.gradient if run.measured_at == iteration else None
            recorder.start(run.model, data.x_train, data.y_train, gradient=known)
        for xb, yb in shuffled_minibatches(data.x_train, data.y_train, config.batch_size, run.rng):
            with np.errstate(over="ignore", invalid="ignore"):  # a diverging step: reported below
                loss, _ = run.model.batched_loss_and_grads(xb, yb, out=grads)
            iteration += 1
            if not np.isfinite(loss):
                run.diverge(iteration, "loss")
            else:
                # The step reads grads (does not change them) and checks the weights after it.
                if not run.opt.step(run.model.params, grads):
                    run.diverge(iteration, "gradient or weights after the step")
                elif recorder is not None:  # only finite gradients are recorded
                    recorder.add(grads)
            if run.status["diverged"]:
                if progress is not None:
                    progress({"epoch": epoch, **run.latest()})
                return run.result()
            if checkpoint_every > 0 and iteration % checkpoint_every == 0:
                run.checkpoint(iteration)
        if recorder is not None:
            run.records.append(run.in_flight_row(recorder.result(), epoch, iteration))
        if checkpoint_every == 0 or (epoch == epochs and run.measured_at != iteration):
            run.checkpoint(iteration)
        if progress is not None:
            progress({"epoch": epoch, **run.latest()})
    return run.result()


def _ends(total: int, every: int, per_epoch: int) -> set[int]:
    """The first checkpoint, the one nearest the middle of training, and the last."""
    grid = every if every > 0 else per_epoch if every == 0 else total
    middle = grid * round(total / 2 / grid)
    return {0, middle, total} if 0 < middle < total else {0, total}


def failed_result(config: RunConfig, error: BaseException) -> dict[str, Any]:
    """What a run that raised leaves: no records, its status with the error and traceback."""
    status = {
        **config.meta(),
        "diverged": False,
        "diverged_iteration": None,
        "diverged_epoch": None,
        "failed": True,
        "reason": f"{type(error).__name__}: {error}",
        "traceback": "".join(traceback.format_exception(error)),
        "noise_sample": None,
    }
    return {"records": [], "run": status, "noise_sample": np.zeros(0, np.float32)}
