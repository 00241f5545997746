"""Speed of one training epoch: the numpy path against PyTorch and against its own matrix products.

One epoch = 60,000 images (Fashion-MNIST if installed, else random data of
that shape), batch 500, forward + backward + SGD update (lr 0.1), float32,
THREADS threads, for the ReLU networks of NETS without biases (784-100-10,
784-1000-1000-10, and the size study's widest and deepest: 784-2048-10 and
784-128-128-128-128-10). The numpy epoch is the study's training loop (sgnoise.training): the
seeded minibatches gathered into reused buffers, gradients written into
reused arrays, the SGD step, the NaN/inf checks on the loss and on the
weights after the step (a NaN/inf gradient makes the weights NaN/inf).
PyTorch gets the same initial weights and the same minibatches (the same
index arrays, ``x[idx]``), ``nn.Linear`` layers, ``cross_entropy``,
``backward``, ``optim.SGD``. Prints lines ``name value target PASS|FAIL``:

- ``numpy_over_torch_<net>``: numpy epoch time / PyTorch epoch time (target <= 1.0);
- ``gemm_fraction_<net>``: achieved GFLOP/s / GEMM GFLOP/s, i.e. the time of the
  epoch's matrix products alone (numpy matmuls of exactly the epoch's shapes,
  one after the other, the images read in order from the data set) over the
  epoch time (target >= 0.85); ``epoch_gflops_<net>`` and ``gemm_gflops_<net>``
  are the two rates; ``gemm_and_gather_fraction_<net>``: the same products with
  each step's input gathered from the shuffled data set as the training loop
  gathers it (the random minibatch SGD needs, memory-bound) over the epoch time
  (information: what is left beyond the products and the gather is the loop's
  own elementwise work);
- ``gemm_only_over_torch_<net>``: the matrix products alone (the GEMM epoch) /
  PyTorch epoch time: the floor of ``numpy_over_torch``, what a numpy epoch
  with no work besides its matrix products would reach. PyTorch runs the same
  products on MKL, numpy on OpenBLAS; when this floor is above 1.0, no numpy
  code calling this BLAS can meet that target on this machine;
  ``gemm_numpy_over_torch_<net>``: the same GEMM epoch in numpy / in PyTorch
  (``torch.matmul``), i.e. the two BLAS libraries on the epoch's shapes;
- ``elementwise_floor_over_torch_<net>``: the step's unavoidable memory traffic
  besides the products, at this machine's copy bandwidth, over the PyTorch epoch:
  the gather's bytes (each step's rows copied in order from the data set into a
  reused buffer: the same bytes as the shuffled gather, without its random rows)
  plus, at the copy bandwidth measured on an array of the net's widest
  activation (b x widest hidden layer, in cache as the loop's are), the
  activations written and read (per hidden layer, ReLU reads z and writes h;
  its derivative reads delta and the slope and writes delta: 5 values a unit
  and example), the output error (2 values a class and example) and the
  SGD update (reads p and g, writes p: 3 values a parameter). One thread, as
  numpy's elementwise work runs (PyTorch splits its elementwise work over its threads);
  ``floor_over_torch_<net>``: ``gemm_only_over_torch`` + that, the floor of
  ``numpy_over_torch`` when the products alone are not the whole step: above 1.0,
  the target is below what this BLAS and this machine's memory allow numpy;
  ``numpy_over_floor_<net>``: numpy epoch / (products + elementwise floor), what the
  loop adds beyond both (Python calls, the random gather, extra passes); a line
  ``# <net>: ...`` says in words whether the target is met, missed above the floor, or
  below the floor (``floor_over_torch`` > 1.0: out of reach of any numpy loop on this BLAS);
- ``loss_rel_diff_<net>``: largest relative difference of the losses of the
  first LOSS_STEPS steps (forward, backward and update checked), numpy against
  PyTorch (target <= 1e-4). Later steps drift apart without anything being
  wrong: the two float32 computations round differently, and training
  amplifies that (the wide net's loss jumps from 11 to 82 at its second step
  with this initialisation), so by the end of the epoch its losses differ by
  about 1e-2, and by its tenth step by 1e-5 to 1e-3 (thread count dependent).

All timings of a network are interleaved and each is the best of REPEATS, so the
ratios compare like with like on a shared machine. Each starts after SETTLE_S
idle seconds: OpenBLAS's and OpenMP's worker threads spin for a while after a
call before they sleep, and a PyTorch epoch timed right after a numpy one
ran 10-30% slower (the numpy/torch ratio flattered numpy), a GEMM epoch right
after a PyTorch one ~6% slower.
Run: python bench/bench_epoch.py [NET ...]    (about a minute; needs torch; NET: names of
NETS to run, e.g. 784-128-128-128-128-10; default all)
"""

from __future__ import annotations

import os

import _root  # noqa: F401, I001  (the project root on sys.path: runs without PYTHONPATH)

THREADS = 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sgnoise.data import DataError, load  # noqa: E402
from sgnoise.mlp import MLP, Network  # noqa: E402
from sgnoise.noise import iterate_minibatches, shuffled_minibatches  # noqa: E402
from sgnoise.optim import SGD  # noqa: E402

torch.set_num_threads(THREADS)

NETS = {
    "784-100-10": ((784, 100, 10), 7),
    "784-1000-1000-10": ((784, 1000, 1000, 10), 3),
    # the size study's widest and deepest networks
    "784-2048-10": ((784, 2048, 10), 3),
    "784-128-128-128-128-10": ((784, 128, 128, 128, 128, 10), 5),
}
BATCH_SIZE, LR, SEED, N_IMAGES = 500, 0.1, 0, 60_000
LOSS_STEPS = 3
TORCH_TARGET, GEMM_TARGET = 1.0, 0.85  # numpy epoch / PyTorch epoch; GEMM time / epoch time
SETTLE_S = 0.3  # idle seconds before each timed epoch (OpenBLAS spins ~0.1 s after a call)


def line(name: str, value: float, target: str, ok: bool) -> None:
    print(f"{name} {value:.4g} {target} {'PASS' if ok else 'FAIL'}", flush=True)


def images() -> tuple[np.ndarray, np.ndarray, str]:
    """Fashion-MNIST's training set, or random data of its shape and type."""
    try:
        data = load("fashion_mnist", download=False)
        return data.x_train, data.y_train, f"fashion_mnist ({data.source})"
    except (DataError, OSError):
        rng = np.random.default_rng(0)
        x = rng.random((N_IMAGES, 784), dtype=np.float32)
        return x, rng.integers(0, 10, N_IMAGES), "random (Fashion-MNIST not installed)"


def numpy_epoch(model: Network, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """(seconds, per-step losses) of one epoch of the study's training loop, from ``model``'s
    weights (trained in place: pass a fresh one; bench_cnn.py times its conv net with it)."""
    opt = SGD(LR)
    grads = [np.empty_like(p) for p in model.params]
    losses = []
    start = time.perf_counter()
    for xb, yb in shuffled_minibatches(x, y, BATCH_SIZE, SEED):
        loss, _ = model.batched_loss_and_grads(xb, yb, out=grads)
        if not np.isfinite(loss):
            raise FloatingPointError("non-finite loss")
        if not opt.step(model.params, grads):
            raise FloatingPointError("non-finite gradient or weights after the step")
        losses.append(float(loss))
    return time.perf_counter() - start, np.array(losses)


def torch_epoch(
    sizes: tuple[int, ...], x: torch.Tensor, y: torch.Tensor
) -> tuple[float, np.ndarray]:
    """(seconds, per-step losses) of the same epoch in PyTorch: same weights, same minibatches."""
    layers = []
    for w in MLP(sizes, seed=SEED).params:
        linear = torch.nn.Linear(*w.shape, bias=False)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T))
        layers += [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    batches = [torch.from_numpy(i) for i in iterate_minibatches(len(x), BATCH_SIZE, SEED)]
    losses = []
    start = time.perf_counter()
    for idx in batches:
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    seconds = time.perf_counter() - start
    return seconds, torch.stack(losses).numpy()


def gemm_epoch(
    sizes: tuple[int, ...], x: np.ndarray, lib: Any = np, y: np.ndarray | None = None
) -> tuple[float, float]:
    """(seconds, flops) of the epoch's matrix products alone, on reused outputs.

    Per step: h_l = h_{l-1} W_l (l = 1..L), then dW_l = h_{l-1}^T delta_l and
    delta_{l-1} = delta_l W_l^T (l >= 2), h_0 = the next BATCH_SIZE images.
    ``lib``: numpy (OpenBLAS), or torch (MKL) given x as a tensor. With labels ``y``
    (numpy), h_0 is instead the training loop's own shuffled minibatch, gathered as
    it gathers it (``shuffled_minibatches``): the products and the gather SGD needs.
    """
    rng = np.random.default_rng(0)
    pairs = zip(sizes[:-1], sizes[1:], strict=True)
    ws = [lib.asarray(rng.standard_normal(s, dtype=np.float32)) for s in pairs]
    hs = [lib.ones((BATCH_SIZE, s), dtype=lib.float32) for s in sizes]
    deltas = [lib.ones((BATCH_SIZE, s), dtype=lib.float32) for s in sizes]
    grads = [lib.empty_like(w) for w in ws]
    steps = len(x) // BATCH_SIZE
    start = time.perf_counter()
    if y is None:
        inputs = (x[k * BATCH_SIZE : (k + 1) * BATCH_SIZE] for k in range(steps))
    else:
        inputs = (xb for xb, _ in shuffled_minibatches(x, y, BATCH_SIZE, SEED))
    for h0 in inputs:
        hs[0] = h0
        for i, w in enumerate(ws):
            lib.matmul(hs[i], w, out=hs[i + 1])
        for i in range(len(ws) - 1, -1, -1):
            lib.matmul(hs[i].T, deltas[i + 1], out=grads[i])
            if i > 0:
                lib.matmul(deltas[i + 1], ws[i].T, out=deltas[i])
    seconds = time.perf_counter() - start
    layer = [2 * BATCH_SIZE * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    per_step = 2 * sum(layer) + sum(layer[1:])  # h_l and dW_l of each layer, delta_{l-1} (l >= 2)
    return seconds, steps * per_step


def elementwise_floor(sizes: tuple[int, ...], x: np.ndarray) -> float:
    """Seconds of an epoch's unavoidable elementwise memory traffic at this machine's copy
    bandwidth (one thread): each step's rows copied in order from ``x`` into a reused buffer
    (the gather's bytes), plus the activations', output error's and SGD update's values
    (module docstring) at the copy bandwidth of an array of b x the widest hidden layer."""
    steps = len(x) // BATCH_SIZE
    xb = np.empty((BATCH_SIZE, x.shape[1]), x.dtype)
    start = time.perf_counter()
    for k in range(steps):
        np.copyto(xb, x[k * BATCH_SIZE : (k + 1) * BATCH_SIZE])
    gather = time.perf_counter() - start
    hidden, classes = sizes[1:-1], sizes[-1]
    params = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    values = BATCH_SIZE * (5 * sum(hidden) + 2 * classes) + 3 * params  # read + written
    a = np.ones((BATCH_SIZE, max(hidden)), np.float32)
    b = np.empty_like(a)
    copies = max(1, 2**27 // a.size)  # 0.5 GB of float32 read and written
    np.copyto(b, a)
    start = time.perf_counter()
    for _ in range(copies):
        np.copyto(b, a)
    per_value = (time.perf_counter() - start) / (2 * a.size * copies)  # one read or write
    return gather + steps * values * per_value


def verdict(ratio: float, floor: float, products: float, blas: float) -> str:
    """numpy_over_torch against its floor, in words."""
    said = (
        f"numpy {ratio:.2f}x PyTorch; floor {floor:.2f}x (products {products:.2f}x, run"
        f" {blas:.2f}x as long by OpenBLAS as by MKL, + elementwise {floor - products:.2f}x)"
    )
    if ratio <= TORCH_TARGET:  # whatever the floor's estimate says: the PASS line agrees
        return f"{said}: the target is met"
    if floor > TORCH_TARGET:
        return f"{said}: the <= {TORCH_TARGET} target is below this BLAS's floor on this machine"
    return f"{said}: the target is above the floor; the loop adds {ratio / floor:.2f}x to it"


def settled(epoch: Callable[..., tuple[float, Any]], *args: Any) -> tuple[float, Any]:
    """epoch(*args), started after SETTLE_S idle seconds (the previous library's threads asleep)."""
    time.sleep(SETTLE_S)
    return epoch(*args)


def bench(name: str, sizes: tuple[int, ...], repeats: int, x: np.ndarray, y: np.ndarray) -> None:
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    t_numpy, t_torch, t_gemm, t_torch_gemm, t_gathered, t_floor = [], [], [], [], [], []
    for _ in range(repeats):
        seconds, loss_numpy = settled(numpy_epoch, MLP(sizes, seed=SEED), x, y)
        t_numpy.append(seconds)
        seconds, loss_torch = settled(torch_epoch, sizes, xt, yt)
        t_torch.append(seconds)
        seconds, flops = settled(gemm_epoch, sizes, x)
        t_gemm.append(seconds)
        t_torch_gemm.append(settled(gemm_epoch, sizes, xt, torch)[0])
        t_gathered.append(settled(gemm_epoch, sizes, x, np, y)[0])
        time.sleep(SETTLE_S)
        t_floor.append(elementwise_floor(sizes, x))
    best_numpy, best_torch, best_gemm = min(t_numpy), min(t_torch), min(t_gemm)
    ratio = best_numpy / best_torch
    line(f"numpy_over_torch_{name}", ratio, f"<={TORCH_TARGET}", ratio <= TORCH_TARGET)
    line(f"gemm_only_over_torch_{name}", best_gemm / best_torch, "(floor of the above)", True)
    floor = min(t_floor)
    line(f"elementwise_floor_over_torch_{name}", floor / best_torch, "(gather + passes)", True)
    line(f"floor_over_torch_{name}", (best_gemm + floor) / best_torch, "(products + that)", True)
    line(f"numpy_over_floor_{name}", best_numpy / (best_gemm + floor), "(what the loop adds)", True)
    gemms = best_gemm / min(t_torch_gemm)
    line(f"gemm_numpy_over_torch_{name}", gemms, "(OpenBLAS / MKL, same products)", True)
    line(f"epoch_gflops_{name}", flops / best_numpy / 1e9, "(numpy epoch)", True)
    line(f"gemm_gflops_{name}", flops / best_gemm / 1e9, "(its matmuls alone)", True)
    fraction = best_gemm / best_numpy
    line(f"gemm_fraction_{name}", fraction, f">={GEMM_TARGET}", fraction >= GEMM_TARGET)
    fraction = min(t_gathered) / best_numpy
    line(f"gemm_and_gather_fraction_{name}", fraction, "(the same with SGD's gather)", True)
    words = verdict(ratio, (best_gemm + floor) / best_torch, best_gemm / best_torch, gemms)
    print(f"# {name}: {words}")
    first = slice(0, LOSS_STEPS)
    diff = float(np.max(np.abs(loss_numpy[first] - loss_torch[first]) / loss_torch[first]))
    line(f"loss_rel_diff_{name}", diff, "<=1e-4", diff <= 1e-4)


def main(names: list[str]) -> None:
    unknown = sorted(set(names) - set(NETS))
    if unknown:
        print(f"bench_epoch: unknown net {unknown[0]} on the command line; use one of {list(NETS)}",
              file=sys.stderr)  # fmt: skip
        sys.exit(2)
    x, y, source = images()
    print(f"# data: {source}; {THREADS} threads; numpy {np.__version__}, torch {torch.__version__}")
    for name, (sizes, repeats) in NETS.items():
        if not names or name in names:
            bench(name, sizes, repeats, x, y)


if __name__ == "__main__":
    main(sys.argv[1:])
