"""Peak memory of sgnoise.torch.record on a model of a million parameters.

A CNN of 1.02 million parameters (conv 1->32->64, 3x3, max-pool, 9216->108->10)
at its initialisation, the embedded MNIST sample's 8,000 training images,
B = 500 (16 disjoint minibatches), 4,096 coordinates per parameter tensor.
Prints lines ``name value target PASS|FAIL``:

- ``record_peak_rss_gb``: the process's peak resident memory (getrusage) after
  importing torch and recording, GB (target <= 1.5);
- ``snippet_matrix_gb``: what the README's former snippet would have held, the
  full per-example matrix n x P in float32, GB (information: not run);
- ``record_over_backward_epoch``: record's time over one epoch of plain
  minibatch backward passes of the same model (information: vmap's per-example
  gradients against batched ones).

Run: python bench/bench_torch_record.py    (about 1-2 min on 2 cores; needs torch)
"""

from __future__ import annotations

import resource
import time

import _root  # noqa: F401, I001  (the project root on sys.path: runs without PYTHONPATH)
import torch
import torch.nn.functional as F
from bench_epoch import line

from sgnoise.data import load
from sgnoise.torch import record

BATCH_SIZE, COORDINATES, SEED, TARGET_GB = 500, 4096, 0, 1.5


def model() -> torch.nn.Module:
    torch.manual_seed(SEED)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 12 * 12, 108),
        torch.nn.ReLU(),
        torch.nn.Linear(108, 10),
    )


def main() -> None:
    torch.set_num_threads(1)
    data = load("mnist10k")
    x = torch.from_numpy(data.x_train.reshape(-1, 1, 28, 28).copy())
    y = torch.from_numpy(data.y_train.copy())
    net = model()
    n_params = sum(p.numel() for p in net.parameters())
    print(f"# {n_params:,} parameters, {len(x):,} examples, B = {BATCH_SIZE}, torch 1 thread")

    start = time.perf_counter()
    for b in range(len(x) // BATCH_SIZE):
        net.zero_grad()
        part = slice(b * BATCH_SIZE, (b + 1) * BATCH_SIZE)
        F.cross_entropy(net(x[part]), y[part]).backward()
    epoch = time.perf_counter() - start

    start = time.perf_counter()
    rec = record(net, (x, y), F.cross_entropy, batch_size=BATCH_SIZE, coordinates=COORDINATES)
    took = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    columns = sum(c.size for c in rec.coordinates.values())
    print(f"# {columns:,} sampled columns; record {took:.1f} s, backward epoch {epoch:.2f} s")
    line("record_peak_rss_gb", peak_gb, f"<={TARGET_GB}", peak_gb <= TARGET_GB)
    line("snippet_matrix_gb", len(x) * n_params * 4 / 1e9, "information", True)
    line("record_over_backward_epoch", took / epoch, "information", True)


if __name__ == "__main__":
    main()
