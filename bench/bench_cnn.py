"""Speed and memory of the conv net (sgnoise.cnn): an epoch against PyTorch and against its floor,
a checkpoint's noise pass and per-example tap against an epoch, a detailed checkpoint's memory.

The net: 28x28x1 -> conv 5x5 (6) -> ReLU -> 2x2 max pool -> conv 5x5 (16) -> ReLU -> pool
-> dense 120 -> ReLU -> 10, no biases, float32, batch 500, SGD (lr 0.1), THREADS threads,
on Fashion-MNIST's 60,000 training images (random data of that shape if it is not
installed). The numpy epoch is the study's training loop (``bench_epoch.numpy_epoch``'s,
with the conv net); PyTorch gets the same weights (conv kernels and the dense layer's
inputs permuted to its NCHW order), the same minibatches, ``conv2d``, ``max_pool2d``,
``linear``, ``cross_entropy``, ``backward`` and ``optim.SGD``. Timings of a kind are
interleaved, each the best of REPEATS and started after ``bench_epoch.SETTLE_S`` idle
seconds. Prints lines ``name value target PASS|FAIL``:

- ``numpy_over_torch``: numpy epoch / PyTorch epoch (target <= 1.5);
- ``floor_over_torch``: the floor / PyTorch epoch, the floor being the epoch's lowering
  copies and matrix products of the shapes the net uses (per conv layer the strip copy
  into R, R T, R^T delta and, below the first, delta T^T, T the banded block-Toeplitz
  kernel; the dense layers' products), timed alone on reused arrays: what a numpy epoch
  with no other work would take (building T, the folds, pooling, activations, the loss and
  the update are left out);
- ``numpy_over_floor``: numpy epoch / floor (target <= 1.2; the target when
  ``numpy_over_torch`` is out of numpy's reach, i.e. when the floor is above 1.5);
- ``loss_rel_diff``: the largest relative difference of the first LOSS_STEPS losses,
  numpy against PyTorch (target <= 1e-4);
- ``noise_pass_over_epoch``: a checkpoint's measurement (``sgnoise.measure.measure``
  without the per-coordinate part: the train and test noise passes, α per layer and
  pooled, calibrated) over an epoch timed just before it (target <= 1.5; calibration
  curves simulated before);
- ``tap_over_epoch``: what the per-example tap adds to the train noise pass at a
  detailed checkpoint (250 coordinates per layer: ``sgnoise.per_example.Recorder``
  filled by the pass), over an epoch (target <= 1);
- ``detailed_checkpoint_peak_mib``: the peak resident memory (VmHWM) of a fresh process
  (one BLAS thread, as a study's worker) that loads Fashion-MNIST (220 MB of it) and
  makes one detailed checkpoint (250 coordinates, M = 1,000, the batch scan)
  (target <= 1024).

The machine may be shared: the figures of a busy host are noisy; the ratios, measured
interleaved, less so.
Run: python bench/bench_cnn.py    (a few minutes; needs torch)
"""

from __future__ import annotations

import os

import _root  # noqa: F401, I001  (the project root on sys.path: runs without PYTHONPATH)

THREADS = 2  # as bench_epoch.py: set before numpy and torch load their thread pools
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_epoch import SETTLE_S, images, line, numpy_epoch, settled  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

from sgnoise.cnn import CNN, group_width  # noqa: E402
from sgnoise.data import load  # noqa: E402
from sgnoise.measure import measure  # noqa: E402
from sgnoise.noise import iterate_minibatches, noise_pass  # noqa: E402
from sgnoise.per_example import Recorder  # noqa: E402
from sgnoise.run_config import RunConfig  # noqa: E402

torch.set_num_threads(THREADS)

CHANNELS, KERNEL, DENSE = (6, 16), 5, (120,)
BATCH_SIZE, LR, SEED, REPEATS, LOSS_STEPS = 500, 0.1, 0, 2, 3
TORCH_TARGET, FLOOR_TARGET, NOISE_TARGET, TAP_TARGET, MEMORY_TARGET_MIB = 1.5, 1.2, 1.5, 1.0, 1024


def model() -> CNN:
    return CNN((28, 28, 1), "relu", channels=CHANNELS, kernel=KERNEL, dense=DENSE, seed=SEED)


def torch_net() -> torch.nn.Module:
    """The same network in PyTorch, with the numpy net's initial weights."""
    net = model()
    k, layers, c_in = KERNEL, [], 1
    for w, c in zip(net.params[: len(CHANNELS)], CHANNELS, strict=True):
        conv = torch.nn.Conv2d(c_in, c, k, bias=False)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w.reshape(k, k, c_in, c).transpose(3, 2, 0, 1)))
        layers += [conv, torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
        c_in = c
    layers.append(torch.nn.Flatten())
    _, _, _, _, _, c, p_h, p_w = net.geometry[-1]
    dense = net.params[len(CHANNELS) :]
    for i, w in enumerate(dense):
        t = w.T
        if i == 0:  # our features are (y, x, c), PyTorch's (c, y, x)
            t = t.reshape(-1, p_h, p_w, c).transpose(0, 3, 1, 2).reshape(t.shape[0], -1)
        linear = torch.nn.Linear(*w.shape, bias=False)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(t)))
        layers += [linear, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def torch_epoch(x: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray]:
    """(seconds, per-step losses) of the same epoch in PyTorch: same weights, same minibatches."""
    net = torch_net()
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    batches = [torch.from_numpy(i) for i in iterate_minibatches(len(x), BATCH_SIZE, SEED)]
    losses = []
    start = time.perf_counter()
    for idx in batches:
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return time.perf_counter() - start, torch.stack(losses).numpy()


def floor_epoch(x: np.ndarray) -> float:
    """Seconds of the epoch's strip copies and matrix products alone, on reused arrays.

    Per step, for each conv layer with input a (b, H, W, C), k x k kernels and output
    (b, o, o', C_out) in strips of o_g columns (``sgnoise.cnn.group_width``), as the net
    lowers it: the copy of a's strips into R (b o o'/o_g, k (o_g + k - 1) C) (one copy of
    a strided view), z = R T, dT = R^T delta with T the banded kernel
    (k (o_g + k - 1) C, o_g C_out) and, for the second, dR = delta T^T; for each dense
    layer the MLP's three products. The first layer's input is the next minibatch of
    images in order; the other inputs, T and the errors are arrays of ones or small
    constants (no overflow). Building T, folding dT into dW and dR into d a, pooling,
    routing, activations, the loss and the update are left out.
    """
    net = model()
    ws = [np.full(p.shape, 1e-3, np.float32) for p in net.params]
    b, k = BATCH_SIZE, KERNEL
    convs = []
    for h_in, w_in, c_in, o_h, o_w, c, _, _ in net.geometry:
        o_g = group_width(o_w, c)
        strip = (o_g + k - 1) * c_in
        a = np.ones((b, h_in, w_in * c_in), np.float32)
        strips = np.empty((b, o_h, o_w // o_g, k, strip), np.float32)
        band = np.full((k * strip, o_g * c), 1e-3, np.float32)
        rows = b * o_h * o_w // o_g
        z, delta = np.empty((rows, o_g * c), np.float32), np.ones((rows, o_g * c), np.float32)
        d_strips = np.empty(strips.shape, np.float32)
        convs.append((a, o_g * c_in, strips, band, z, delta, np.empty_like(band), d_strips))
    hs = [np.ones((b, s), np.float32) for s in net.sizes]
    deltas = [np.ones((b, s), np.float32) for s in net.sizes]
    grads = [np.empty_like(w) for w in ws]
    n_conv, steps = len(convs), len(x) // b
    start = time.perf_counter()
    for step in range(steps):
        convs[0][0][:] = x[step * b : (step + 1) * b].reshape(convs[0][0].shape)
        for layer, (a, step_x, strips, band, z, delta, d_band, d_strips) in enumerate(convs):
            windows = sliding_window_view(a, strips.shape[-2:], axis=(1, 2))
            np.copyto(strips, windows[:, :, ::step_x])
            flat = strips.reshape(len(z), -1)
            np.matmul(flat, band, out=z)
            np.matmul(flat.T, delta, out=d_band)
            if layer > 0:
                np.matmul(delta, band.T, out=d_strips.reshape(len(z), -1))
        for i in range(len(net.sizes) - 1):
            np.matmul(hs[i], ws[n_conv + i], out=hs[i + 1])
        for i in range(len(net.sizes) - 2, -1, -1):
            np.matmul(hs[i].T, deltas[i + 1], out=grads[n_conv + i])
            np.matmul(deltas[i + 1], ws[n_conv + i].T, out=deltas[i])
    return time.perf_counter() - start


def checkpoint_ratios(data) -> tuple[float, float]:
    """(a checkpoint's measurement / an epoch, what the per-example tap adds to the train
    noise pass / an epoch), each the best of REPEATS, every measurement timed right after
    an epoch of its own (a shared host's load drifts), after a warm-up (calibration curves)."""
    net = model()
    config = RunConfig(activation="relu", optimizer="sgd", lr=LR, batch_size=BATCH_SIZE,
                       epochs=1, seed=SEED, hidden=DENSE, model="cnn")  # fmt: skip
    measure(net, data, config, None)
    used = len(data.x_train) // BATCH_SIZE * BATCH_SIZE
    x, y = data.x_train, data.y_train
    checkpoint, tap = [], []
    for _ in range(REPEATS):
        epoch = settled(numpy_epoch, model(), x, y)[0]
        time.sleep(SETTLE_S)
        start = time.perf_counter()
        measure(net, data, config, None)
        checkpoint.append((time.perf_counter() - start) / epoch)
        time.sleep(SETTLE_S)
        start = time.perf_counter()
        noise_pass(net, x, y, BATCH_SIZE, check_finite=False)
        plain = time.perf_counter() - start
        time.sleep(SETTLE_S)
        start = time.perf_counter()
        recorder = Recorder(net, used, coords_per_layer=250, seed=SEED)
        noise_pass(net, x, y, BATCH_SIZE, per_example=recorder, check_finite=False)
        tap.append((time.perf_counter() - start - plain) / epoch)
    return min(checkpoint), min(tap)


#: The child process of the memory line: one BLAS thread, as a study's worker has.
_PEAK = """
from sgnoise.cnn import CNN
from sgnoise.data import load
from sgnoise.measure import Detail, measure, scan_sizes
from sgnoise.run_config import RunConfig
data = load("fashion_mnist", download=False)
config = RunConfig(activation="relu", optimizer="sgd", lr=0.1, batch_size=500, epochs=1, seed=0,
                   hidden=(120,), model="cnn")
net = CNN((28, 28, 1), "relu", channels=(6, 16), kernel=5, dense=(120,), seed=0)
measure(net, data, config, Detail(250, 1000, scan_sizes(len(data.x_train))))
with open("/proc/self/status") as f:  # this process's own peak (ru_maxrss counts the parent's)
    print(next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024)
"""


def main() -> None:
    print(f"threads {THREADS}; the host may be shared with other jobs: figures are noisy")
    x, y, source = images()
    print(f"data {source}")
    xt, yt = torch.from_numpy(x).reshape(-1, 1, 28, 28), torch.from_numpy(y)
    t_numpy, t_torch, t_floor = [], [], []
    for _ in range(REPEATS):
        seconds, loss_numpy = settled(numpy_epoch, model(), x, y)
        t_numpy.append(seconds)
        seconds, loss_torch = settled(torch_epoch, xt, yt)
        t_torch.append(seconds)
        time.sleep(SETTLE_S)
        t_floor.append(floor_epoch(x))
    epoch, peer, floor = min(t_numpy), min(t_torch), min(t_floor)
    print(f"epoch numpy {epoch:.2f} s, PyTorch {peer:.2f} s, floor {floor:.2f} s")
    line("numpy_over_torch", epoch / peer, f"<={TORCH_TARGET}", epoch / peer <= TORCH_TARGET)
    line("floor_over_torch", floor / peer, "(the floor of the above)", True)
    line("numpy_over_floor", epoch / floor, f"<={FLOOR_TARGET}", epoch / floor <= FLOOR_TARGET)
    steps = slice(0, LOSS_STEPS)
    diff = np.max(np.abs(loss_numpy[steps] - loss_torch[steps]) / np.abs(loss_torch[steps]))
    line("loss_rel_diff", diff, "<=1e-4", diff <= 1e-4)
    try:
        data = load("fashion_mnist", download=False)
    except Exception as err:  # noqa: BLE001  (the remaining lines need the real data)
        print(f"no Fashion-MNIST ({err}): the checkpoint and memory lines are left out")
        return
    checkpoint, tap = checkpoint_ratios(data)
    line("noise_pass_over_epoch", checkpoint, f"<={NOISE_TARGET}", checkpoint <= NOISE_TARGET)
    line("tap_over_epoch", tap, f"<={TAP_TARGET}", tap <= TAP_TARGET)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    env.update({v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    out = subprocess.run([sys.executable, "-c", _PEAK], env=env, capture_output=True, text=True,
                         check=True)  # fmt: skip
    peak = float(out.stdout.split()[-1])
    line("detailed_checkpoint_peak_mib", peak, f"<={MEMORY_TARGET_MIB}",
         peak <= MEMORY_TARGET_MIB)  # fmt: skip


if __name__ == "__main__":
    main()
