"""Cost of a noise checkpoint against a training epoch.

One fixed-weight gradient-noise pass over the 60,000 training images
(``sgnoise.noise.gradient_noise``, batch 500: 120 minibatch gradients of the
784-100-10 ReLU network, minus their mean) and one checkpoint's whole
measurement as the study records it (``sgnoise.measure.measure``: the train
and test noise passes, then pooled and standardised alpha per layer and
pooled, with intervals and surrogates) against one training epoch of the
study's loop on the same data (``bench_epoch.numpy_epoch``), THREADS threads,
interleaved, best of REPEATS (after one warm-up measurement), each started
after ``bench_epoch.SETTLE_S`` idle seconds (``bench_epoch.settled``: OpenBLAS's
threads spin for a while after a call, and took a core from whatever ran next
here: ~15% of a pass timed right after an epoch). Prints lines
``name value target PASS|FAIL``:

- ``noise_pass_over_epoch_784-100-10``: pass time / epoch time (target <= 1.1);
- ``noise_pass_gemm_fraction_784-100-10``: the time of the pass's matrix
  products alone (the epoch's, see ``bench_epoch.gemm_epoch``) over the pass time;
- ``measurement_over_epoch_784-100-10``: one checkpoint's measurement as issue #18
  defines it (the train and test noise passes, ``sgnoise.noise.noise_pass``, and
  pooled and standardised α per layer and pooled with their surrogates and
  intervals, ``sgnoise.tail_index.summarise_layers``), over an epoch (target <= 1.5).
  Its floor is about 1.2: the two passes run the matrix products of 70,000
  images against the epoch's 60,000;
- ``calibration_over_epoch_784-100-10``: what the calibrated α (issue #16) adds to
  that, i.e. ``sgnoise.measure.measure`` without the per-coordinate part minus the
  above (information);
- ``per_coordinate_over_epoch_784-100-10``: what the per-coordinate measurement
  adds to a checkpoint with its defaults (250 coordinates a layer, M = 1,000
  resampled minibatches, per-example tails), over an epoch (target <= 0.5);
- ``batch_scan_over_epoch_784-100-10``: what the scan of the measured batch size
  B = 1 ... 2,048 adds on top (target with the per-example tails <= 2).
Calibration curves are simulated once, before the timing (they are cached).

Run: python bench/bench_noise.py [--coordinates N]    (about 1.5 min; needs
Fashion-MNIST installed for the measurement lines, see sgnoise.data)
"""

from __future__ import annotations

import argparse
import functools
import time

import _root  # noqa: F401, I001  (the project root on sys.path: runs without PYTHONPATH)
import numpy as np
from bench_epoch import THREADS, gemm_epoch, images, line, numpy_epoch, settled

from sgnoise.data import DataError, load
from sgnoise.measure import Detail, measure, scan_sizes
from sgnoise.mlp import MLP
from sgnoise.noise import gradient_noise, noise_pass
from sgnoise.tail_index import summarise_layers

SIZES, BATCH_SIZE, REPEATS, SEED = (784, 100, 10), 500, 7, 0
PER_COORDINATE_REPEATS = 5  # the measurements with the per-coordinate part (seconds each)
MEASUREMENT_TARGET = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--coordinates",
        type=int,
        default=Detail.coordinates,
        help="coordinates sampled per layer by the per-coordinate lines (the studies' "
        "--coordinates; the cost is about linear in it)",
    )
    coordinates = parser.parse_args().coordinates
    x, y, source = images()
    print(f"# data: {source}; {THREADS} threads")
    model = MLP(SIZES, seed=0)
    t_pass, t_epoch, t_gemm = [], [], []
    for _ in range(REPEATS):
        t_pass.append(settled(timed, gradient_noise, model, x, y, BATCH_SIZE)[0])
        t_epoch.append(settled(numpy_epoch, SIZES, x, y)[0])
        t_gemm.append(settled(gemm_epoch, SIZES, x)[0])
    ratio = min(t_pass) / min(t_epoch)
    line("noise_pass_over_epoch_784-100-10", ratio, "<=1.1", ratio <= 1.1)
    line("noise_pass_gemm_fraction_784-100-10", min(t_gemm) / min(t_pass), "(info)", True)
    print(
        f"# best seconds: pass {min(t_pass):.3f}, epoch {min(t_epoch):.3f}, "
        f"matmuls {min(t_gemm):.3f}; median pass/epoch {np.median(t_pass) / np.median(t_epoch):.3f}"
    )
    checkpoints(model, coordinates)


def timed(fn, *args) -> tuple[float, None]:
    """(seconds, None) of fn(*args), its result dropped (a noise matrix is 38 MB)."""
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start, None


def checkpoints(model: MLP, coordinates: int = Detail.coordinates) -> None:
    """The measurement lines: a checkpoint against an epoch on the same training set
    (interleaved), and what the per-coordinate parts add to it (``coordinates`` a layer)."""
    try:
        data = load("fashion_mnist", download=False)
    except DataError as error:
        print(f"measurement_over_epoch_784-100-10 nan <={MEASUREMENT_TARGET} SKIP ({error})")
        return
    details = {"recorded": "summaries", "plain": None, "detail": Detail(coordinates)}
    details["scan"] = Detail(coordinates, batch_scan=scan_sizes(len(data.x_train)))
    if coordinates != Detail.coordinates:
        print(f"# per-coordinate lines with {coordinates} coordinates a layer (default 250)")
    runs = {
        name: functools.partial(measure, detail=d) if d != "summaries" else passes_and_summaries
        for name, d in details.items()
    }
    for run in runs.values():  # warm-up: first-call caches, calibration curves simulated
        run(model, data, BATCH_SIZE, SEED)
    times: dict[str, list[float]] = {name: [] for name in [*details, "epoch"]}
    for r in range(REPEATS):
        times["epoch"].append(settled(numpy_epoch, SIZES, data.x_train, data.y_train)[0])
        for name, run in runs.items():
            if name in ("recorded", "plain") or r < PER_COORDINATE_REPEATS:
                times[name].append(settled(timed, run, model, data, BATCH_SIZE, SEED)[0])
    best = {name: min(t) for name, t in times.items()}
    epoch, plain = best["epoch"], best["plain"]
    ratio = best["recorded"] / epoch
    target = f"<={MEASUREMENT_TARGET}"
    line("measurement_over_epoch_784-100-10", ratio, target, ratio <= MEASUREMENT_TARGET)
    ratio = (plain - best["recorded"]) / epoch
    line("calibration_over_epoch_784-100-10", ratio, "(info)", True)
    ratio = (best["detail"] - plain) / epoch
    line("per_coordinate_over_epoch_784-100-10", ratio, "<=0.5", ratio <= 0.5)
    ratio = (best["scan"] - plain) / epoch
    line("batch_scan_over_epoch_784-100-10", ratio, "<=2 (with the tails)", ratio <= 2)
    print(
        f"# best seconds: epoch {epoch:.3f}, passes and summaries {best['recorded']:.3f}, "
        f"checkpoint {plain:.3f}, "
        f"+ per coordinate {best['detail'] - plain:.3f}, + per coordinate and scan "
        f"{best['scan'] - plain:.3f}; median checkpoint/epoch "
        f"{np.median(times['plain']) / np.median(times['epoch']):.3f}"
    )


def passes_and_summaries(model: MLP, data, batch_size: int, seed: int) -> None:
    """Issue #18's checkpoint: both noise passes, and summarise_layers of each."""
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        measured = noise_pass(model, x, y, batch_size, check_finite=False)
        summarise_layers(measured.matrix, measured.columns, seed=seed)


if __name__ == "__main__":
    main()
