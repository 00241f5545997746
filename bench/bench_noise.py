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
- ``measurement_over_epoch_784-100-10``: measurement time / epoch time
  (target <= 1.5). Its floor is about 1.2: the two passes run the matrix
  products of 70,000 images against the epoch's 60,000.

Run: python bench/bench_noise.py    (about 30 s; needs Fashion-MNIST installed for
the measurement line, see sgnoise.data)
"""

from __future__ import annotations

import time

import _root  # noqa: F401, I001  (the project root on sys.path: runs without PYTHONPATH)
import numpy as np
from bench_epoch import THREADS, gemm_epoch, images, line, numpy_epoch, settled

from sgnoise.data import DataError, load
from sgnoise.measure import measure
from sgnoise.mlp import MLP
from sgnoise.noise import gradient_noise

SIZES, BATCH_SIZE, REPEATS, SEED = (784, 100, 10), 500, 7, 0
MEASUREMENT_TARGET = 1.5


def main() -> None:
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
    bench_measurement(model)


def timed(fn, *args) -> tuple[float, None]:
    """(seconds, None) of fn(*args), its result dropped (a noise matrix is 38 MB)."""
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start, None


def bench_measurement(model: MLP) -> None:
    """measure() of one checkpoint against an epoch on the same training set, interleaved."""
    try:
        data = load("fashion_mnist", download=False)
    except DataError as error:
        print(f"measurement_over_epoch_784-100-10 nan <={MEASUREMENT_TARGET} SKIP ({error})")
        return
    measure(model, data, BATCH_SIZE, SEED)  # warm-up: first-call caches
    t_measure, t_epoch = [], []
    for _ in range(REPEATS):
        t_measure.append(settled(timed, measure, model, data, BATCH_SIZE, SEED)[0])
        t_epoch.append(settled(numpy_epoch, SIZES, data.x_train, data.y_train)[0])
    ratio = min(t_measure) / min(t_epoch)
    target = f"<={MEASUREMENT_TARGET}"
    line("measurement_over_epoch_784-100-10", ratio, target, ratio <= MEASUREMENT_TARGET)
    print(
        f"# best seconds: measurement {min(t_measure):.3f}, epoch {min(t_epoch):.3f}; "
        f"median measurement/epoch {np.median(t_measure) / np.median(t_epoch):.3f}"
    )


if __name__ == "__main__":
    main()
