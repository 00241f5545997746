"""Cost of a noise checkpoint against a training epoch.

One fixed-weight gradient-noise pass over the 60,000 training images
(``sgnoise.noise.gradient_noise``, batch 500: 120 minibatch gradients of the
784-100-10 ReLU network, minus their mean) against one training epoch of the
study's loop on the same data (``bench_epoch.numpy_epoch``), THREADS threads,
interleaved, best of REPEATS. Prints lines ``name value target PASS|FAIL``:

- ``noise_pass_over_epoch_784-100-10``: pass time / epoch time (target <= 1.1);
- ``noise_pass_gemm_fraction_784-100-10``: the time of the pass's matrix
  products alone (the epoch's, see ``bench_epoch.gemm_epoch``) over the pass time;
- ``measurement_over_epoch_784-100-10``: one checkpoint as the studies record it
  without the per-coordinate part (``sgnoise.measure.measure``: train and test
  noise passes, pooled, standardised and calibrated α, surrogates, intervals),
  over an epoch (target <= 1.5, issue #18);
- ``per_coordinate_over_epoch_784-100-10``: what the per-coordinate measurement
  adds to a checkpoint with its defaults (250 coordinates a layer, M = 1,000
  resampled minibatches, per-example tails), over an epoch (target <= 0.5);
- ``batch_scan_over_epoch_784-100-10``: what the scan of the measured batch size
  B = 1 ... 2,048 adds on top (target with the per-example tails <= 2).
Calibration curves are simulated once, before the timing (they are cached).

Run: python bench/bench_noise.py    (about 15 s)
"""

from __future__ import annotations

import time

import _root  # noqa: F401, I001  (the project root on sys.path: runs without PYTHONPATH)
import numpy as np
from bench_epoch import THREADS, gemm_epoch, images, line, numpy_epoch

from sgnoise.data import DataError, load
from sgnoise.measure import Detail, measure, scan_sizes
from sgnoise.mlp import MLP
from sgnoise.noise import gradient_noise

SIZES, BATCH_SIZE, REPEATS = (784, 100, 10), 500, 7


def main() -> None:
    x, y, source = images()
    print(f"# data: {source}; {THREADS} threads")
    model = MLP(SIZES, seed=0)
    t_pass, t_epoch, t_gemm = [], [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        noise = gradient_noise(model, x, y, BATCH_SIZE)
        t_pass.append(time.perf_counter() - start)
        del noise
        t_epoch.append(numpy_epoch(SIZES, x, y)[0])
        t_gemm.append(gemm_epoch(SIZES, x)[0])
    ratio = min(t_pass) / min(t_epoch)
    line("noise_pass_over_epoch_784-100-10", ratio, "<=1.1", ratio <= 1.1)
    line("noise_pass_gemm_fraction_784-100-10", min(t_gemm) / min(t_pass), "(info)", True)
    print(
        f"# best seconds: pass {min(t_pass):.3f}, epoch {min(t_epoch):.3f}, "
        f"matmuls {min(t_gemm):.3f}; median pass/epoch {np.median(t_pass) / np.median(t_epoch):.3f}"
    )
    checkpoints(model, min(t_epoch))


def _best(call, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def checkpoints(model: MLP, epoch: float) -> None:
    """The measurement lines: a checkpoint, and what the per-coordinate parts add."""
    try:
        data = load("fashion_mnist", download=False)
    except DataError as error:
        print(f"measurement_over_epoch_784-100-10 nan <=1.5 SKIP (needs Fashion-MNIST: {error})")
        return
    detail = Detail()
    scan = Detail(batch_scan=scan_sizes(len(data.x_train)))
    for d in (None, detail, scan):  # simulate (or read) the calibration curves first
        measure(model, data, BATCH_SIZE, 0, detail=d)
    plain = _best(lambda: measure(model, data, BATCH_SIZE, 0))
    per_coordinate = _best(lambda: measure(model, data, BATCH_SIZE, 0, detail=detail)) - plain
    scanned = _best(lambda: measure(model, data, BATCH_SIZE, 0, detail=scan)) - plain
    line("measurement_over_epoch_784-100-10", plain / epoch, "<=1.5", plain / epoch <= 1.5)
    ratio = per_coordinate / epoch
    line("per_coordinate_over_epoch_784-100-10", ratio, "<=0.5", ratio <= 0.5)
    ratio = scanned / epoch
    line("batch_scan_over_epoch_784-100-10", ratio, "<=2 (with the tails)", ratio <= 2)
    print(f"# best seconds: checkpoint {plain:.3f}, + per coordinate {per_coordinate:.3f}, "
          f"+ per coordinate and scan {scanned:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
