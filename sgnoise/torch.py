"""Gradient noise of a PyTorch model, at sampled coordinates: ``record(model, data, loss_fn)``.

Install with ``pip install "sgnoise[torch]"``; the rest of sgnoise never imports
PyTorch, and this module imports it only when :func:`record` is called.

At frozen weights theta, the n examples are put in a seeded random order and cut
into K = floor(n / B) disjoint minibatches S_1 ... S_K of B examples (the
remainder is left out of the noise, as ``drop_last=True`` does). For each
parameter tensor (named as in ``model.named_parameters()``) a seeded sample of
``coordinates`` of its entries is kept (all of a smaller tensor), and

    g_i = d loss(f(x_i; theta), y_i) / d theta          (per example, at those entries)
    u_k = (1/B) sum_{i in S_k} g_i - (1/(K B)) sum_{j <= K} sum_{i in S_j} g_i

is the disjoint-minibatch noise of Simsekli, Sagun & Gurbuzbalaban (2019, Section
2): the minibatch gradient minus the full gradient of the examples used, the same
matrix as the README's backward-pass snippet gives at those entries.

Per-example gradients come from ``torch.func.vmap(torch.func.grad(...))`` over
chunks of examples: one chunk's gradients (chunk x P values, P the parameter
count) exist at a time, and only the sampled entries (n x C values, C the
sampled columns) are kept, so memory grows with chunk x P + n x C, not n x P.
``chunk`` is chosen so that chunk x P <= :data:`CHUNK_VALUES` unless given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHUNK_VALUES = 1 << 24  # per-example gradient values of one chunk (64 MB in float32)
INSTALL = 'sgnoise.torch needs PyTorch: pip install "sgnoise[torch]" (torch==2.13.0)'


@dataclass(frozen=True)
class Recording:
    """What :func:`record` measured, one entry per parameter tensor (by name).

    Attributes
    ----------
    noise : dict of str to ndarray, shape (K, C_layer), float32
        The disjoint-minibatch noise u_k at the sampled entries.
    per_example : dict of str to ndarray, shape (n, C_layer), float32
        The per-example gradients g_i at the sampled entries, rows in ``order``.
    coordinates : dict of str to ndarray of int64
        The sampled entries, as indices into the flattened tensor (ascending).
    order : ndarray of int64, shape (n,)
        The examples in the order used: minibatch k is ``order[k*B:(k+1)*B]``.
    batch_size, seed : int
        B and the seed of the order and of the sampled entries.
    """

    noise: dict[str, np.ndarray]
    per_example: dict[str, np.ndarray]
    coordinates: dict[str, np.ndarray]
    order: np.ndarray
    batch_size: int
    seed: int

    def save(self, path: str | Path, *, overwrite: bool = False) -> tuple[Path, Path, Path]:
        """Write the noise to ``path``, the per-example gradients and the provenance beside it.

        ``path`` (an ``.npz``) holds one array per parameter tensor, by name,
        which ``python -m sgnoise.analyse path`` reads layer by layer;
        ``<stem>_per_example.npz`` the per-example gradients, for
        ``--per-example``; ``<stem>.json`` the settings (B, seed, the sampled
        entries' counts, n), the example order and the provenance (versions of
        sgnoise, PyTorch and numpy, git state, command line, time). Refuses to
        replace an existing file unless ``overwrite``. Returns the three paths.
        """
        from sgnoise.results import provenance, write_json

        noise_path = Path(path).with_suffix(".npz")
        example_path = noise_path.with_name(noise_path.stem + "_per_example.npz")
        json_path = noise_path.with_suffix(".json")
        for p in (noise_path, example_path, json_path):
            if p.exists() and not overwrite:
                raise FileExistsError(f"{p}: exists; pass overwrite=True or another path")
        np.savez(noise_path, **self.noise)
        np.savez(example_path, **self.per_example)
        config = {
            "batch_size": self.batch_size,
            "seed": self.seed,
            "n_examples": len(self.order),
            "n_minibatches": len(self.order) // self.batch_size,
            "coordinates": {k: len(c) for k, c in self.coordinates.items()},
            "order": self.order.tolist(),
        }
        versions = {"torch": _torch().__version__}
        write_json(json_path, {"config": config, "provenance": provenance() | versions})
        return noise_path, example_path, json_path


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError(INSTALL) from None
    return torch


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _dataset(data, torch):
    """A map-style dataset of (input, target) pairs from a Dataset or an (X, Y) pair."""
    if (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(t, torch.Tensor) for t in data)
    ):
        return torch.utils.data.TensorDataset(*data)
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise TypeError(
            "data must be a map-style torch Dataset of (input, target) pairs or a pair of "
            f"tensors (X, Y), got {type(data).__name__}"
        )
    return data


def record(
    model,
    data,
    loss_fn: Callable,
    *,
    batch_size: int,
    coordinates: int = 4096,
    seed: int = 0,
    chunk: int | None = None,
    path: str | Path | None = None,
    overwrite: bool = False,
) -> Recording:
    """Disjoint-minibatch gradient noise and per-example gradients of a PyTorch model.

    Parameters
    ----------
    model : torch.nn.Module
        At the weights to measure; put in eval mode while recording (batch
        norm uses its running statistics, dropout is off), then restored.
    data : torch Dataset or (X, Y) tensors
        n examples, each an (input, target) pair without a batch dimension.
    loss_fn : callable
        ``loss_fn(output, target)`` -> mean loss of a batch, e.g.
        ``torch.nn.functional.cross_entropy``; called on batches of one example.
    batch_size : int
        B, the minibatch size; needs K = n // B >= 2 minibatches.
    coordinates : int
        Entries sampled per parameter tensor (all of a tensor with fewer).
    seed : int
        Seed of the example order and of the sampled entries.
    chunk : int, optional
        Examples per vmap call (default: chunk x P <= :data:`CHUNK_VALUES`).
    path : str or Path, optional
        If given, :meth:`Recording.save` writes the ``.npz`` files there.
    overwrite : bool
        Let ``path`` replace existing files.

    Returns
    -------
    Recording
        ``noise`` (K x C per tensor), ``per_example`` (n x C), the sampled
        ``coordinates``, the example ``order``, ``batch_size`` and ``seed``.

    References
    ----------
    U. Simsekli, L. Sagun, M. Gurbuzbalaban. A Tail-Index Analysis of Stochastic
    Gradient Noise in Deep Neural Networks. ICML 2019, Section 2.
    """
    torch = _torch()
    from torch.func import functional_call, grad, vmap

    batch_size = _positive_int(batch_size, "batch_size")
    coordinates = _positive_int(coordinates, "coordinates")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    dataset = _dataset(data, torch)
    n = len(dataset)
    if n // batch_size < 2:
        raise ValueError(
            f"batch_size {batch_size} leaves {n // batch_size} minibatches of {n} examples; "
            "the noise needs at least 2 (use a smaller batch_size)"
        )
    params = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("the model has no parameters that require a gradient")
    buffers = {k: b.detach() for k, b in model.named_buffers()}
    n_params = sum(p.numel() for p in params.values())
    chunk = (
        max(1, min(n, CHUNK_VALUES // n_params)) if chunk is None else _positive_int(chunk, "chunk")
    )

    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    columns = {
        k: np.sort(rng.choice(p.numel(), size=min(coordinates, p.numel()), replace=False))
        for k, p in params.items()
    }
    index = {k: torch.as_tensor(c, device=params[k].device) for k, c in columns.items()}
    per_example = {k: np.empty((n, len(c)), dtype=np.float32) for k, c in columns.items()}

    def loss(p, x, y):
        out = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return loss_fn(out, y.unsqueeze(0))

    per_example_grad = vmap(grad(loss), in_dims=(None, 0, 0))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, order.tolist()), batch_size=chunk, shuffle=False
    )
    device = next(iter(params.values())).device
    was_training = model.training
    model.eval()
    try:
        start = 0
        for x, y in loader:
            grads = per_example_grad(params, x.to(device), y.to(device))
            stop = start + len(x)
            for k, g in grads.items():
                per_example[k][start:stop] = g.flatten(1)[:, index[k]].cpu().numpy()
            start = stop
    finally:
        model.train(was_training)

    noise = {k: _disjoint_noise(g, batch_size) for k, g in per_example.items()}
    out = Recording(noise, per_example, columns, order, batch_size, int(seed))
    if path is not None:
        out.save(path, overwrite=overwrite)
    return out


def _disjoint_noise(per_example: np.ndarray, batch_size: int) -> np.ndarray:
    """u_k of the first K B rows: minibatch means minus their mean (float64 sums)."""
    k = len(per_example) // batch_size
    means = per_example[: k * batch_size].reshape(k, batch_size, -1).mean(axis=1, dtype=np.float64)
    return (means - means.mean(axis=0)).astype(np.float32)
