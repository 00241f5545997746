"""Cost of a noise checkpoint against a training epoch.

One fixed-weight gradient-noise pass over the 60,000 training images
(``sgnoise.noise.gradient_noise``, batch 500: 120 minibatch gradients of the
784-100-10 ReLU network, minus their mean) against one training epoch of the
study's loop on the same data (``bench_epoch.numpy_epoch``), THREADS threads,
interleaved, best of REPEATS. Prints lines ``name value target PASS|FAIL``:

- ``noise_pass_over_epoch_784-100-10``: pass time / epoch time (target <= 1.1);
- ``noise_pass_gemm_fraction_784-100-10``: the time of the pass's matrix
  products alone (the epoch's, see ``bench_epoch.gemm_epoch``) over the pass time.

Run: python bench/bench_noise.py    (about 15 s)
"""

from __future__ import annotations

import time

import _root  # noqa: F401, I001  (the project root on sys.path: runs without PYTHONPATH)
import numpy as np
from bench_epoch import THREADS, gemm_epoch, images, line, numpy_epoch

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


if __name__ == "__main__":
    main()
