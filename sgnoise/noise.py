"""Stochastic gradient noise (SGN): minibatch gradient minus full gradient.

Default measurement, as in Simsekli et al. 2019: at a checkpoint the weights
are frozen, the data are split into floor(n / b) disjoint minibatches of the
training batch size b (an incomplete last minibatch is dropped; see
:func:`n_minibatches`), every minibatch gradient g_k is computed, and the noise
is g_k - (1/K) sum_j g_j, which is the full gradient when the partition is
exact. The result is one matrix per layer of shape (K, n_params_of_layer).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from sgnoise.mlp import MLP

# Minibatches whose gradients are computed in one batched call (bounds memory).
CHUNK_ELEMENTS = 2**25


def n_minibatches(n: int, batch_size: int) -> int:
    """Number of disjoint minibatches of ``batch_size`` in n examples (the rest is dropped)."""
    if batch_size < 1 or batch_size > n:
        raise ValueError(f"batch_size must be in [1, n_examples={n}], got {batch_size}")
    return n // batch_size


def iterate_minibatches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays of one epoch's shuffled minibatches; the incomplete last one is dropped."""
    order = rng.permutation(n)
    for k in range(n_minibatches(n, batch_size)):
        yield order[k * batch_size : (k + 1) * batch_size]


def _layer_indices(model: MLP, layers: Sequence[str] | None) -> list[int]:
    names = model.layer_names if layers is None else list(layers)
    for name in names:
        model.layer_params(name)  # validates
    return [model.layer_names.index(name) for name in names]


def minibatch_gradients(
    model: MLP, x: np.ndarray, y: np.ndarray, batch_size: int, *, layers=None
) -> dict[str, np.ndarray]:
    """Every minibatch gradient at the current weights, per layer.

    Returns
    -------
    dict
        ``{layer_name: array of shape (K, n_params_of_layer)}``, W flattened
        row-major then b appended, K = ``n_minibatches(len(x), batch_size)``.
    """
    x, y = np.asarray(x), np.asarray(y)
    model.check_inputs(x, y)
    k = n_minibatches(len(x), batch_size)
    wanted = _layer_indices(model, layers)
    x3 = x[: k * batch_size].astype(model.dtype, copy=False).reshape(k, batch_size, -1)
    y2 = y[: k * batch_size].reshape(k, batch_size)
    out = {}
    for i in wanted:
        name = model.layer_names[i]
        size = sum(model.params[j].size for j in model.layer_params(name))
        out[name] = np.empty((k, size), model.dtype)
    widest = max(model.sizes[:-1]) * max(model.sizes[1:])
    step = max(1, CHUNK_ELEMENTS // widest)
    for start in range(0, k, step):
        stop = min(k, start + step)
        _, grads = model.batched_loss_and_grads(x3[start:stop], y2[start:stop], layers=wanted)
        for i in wanted:
            name = model.layer_names[i]
            parts = [grads[j].reshape(stop - start, -1) for j in model.layer_params(name)]
            np.concatenate(parts, axis=1, out=out[name][start:stop])
    return out


def full_gradient(model: MLP, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """The exact mean gradient over all of (x, y), aligned with ``model.params``."""
    return model.loss_and_grads(x, y)[1]


def gradient_noise(
    model: MLP,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    reference: list[np.ndarray] | None = None,
    layers: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Gradient noise at the current (frozen) weights, per layer.

    Parameters
    ----------
    model : MLP
    x, y : data to partition into minibatches, in the given order.
    batch_size : int
        Minibatch size b; floor(n / b) minibatches, an incomplete last one dropped.
    reference : list of ndarray, optional
        None (default): subtract the mean of the minibatch gradients (the
        full gradient of the data used). A list aligned with ``model.params``:
        subtract that instead. The original study's code subtracted the full
        *train* gradient from *test* minibatch gradients; that mixes the
        generalisation gap (train vs test gradient) into the "noise".
    layers : sequence of str, optional
        Layer names to compute (default all); one at a time keeps memory low.

    Returns
    -------
    dict
        ``{layer_name: noise of shape (K, n_params_of_layer)}``.
    """
    grads = minibatch_gradients(model, x, y, batch_size, layers=layers)
    for name, g in grads.items():
        if reference is None:
            g -= g.mean(axis=0, dtype=np.float64).astype(g.dtype)
        else:
            parts = [np.asarray(reference[j]).ravel() for j in model.layer_params(name)]
            g -= np.concatenate(parts).astype(g.dtype)
    return grads


class InFlightNoise:
    """The original study's measurement: last layer, weights moving during an epoch.

    At the epoch's start, :meth:`start` stores the full gradient of the last
    layer; during the epoch :meth:`add` receives each training minibatch's
    gradients (taken at the then-current weights); :meth:`result` returns
    their difference to the stored gradient, shape (n_steps, n_params_last_layer),
    in the order the steps were taken. Unlike :func:`gradient_noise` this mixes
    the weights' drift during the epoch into the noise; it is kept so users can
    reproduce and compare with the original figures.
    """

    def __init__(self, model: MLP):
        self.model = model
        self._layer = model.layer_names[-1]
        self._reference: np.ndarray | None = None
        self._rows: list[np.ndarray] = []

    def _flat(self, grads: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([grads[j].ravel() for j in self.model.layer_params(self._layer)])

    def start(self, x: np.ndarray, y: np.ndarray) -> None:
        """Store the last layer's full gradient on (x, y) at the current weights."""
        self._reference = self._flat(full_gradient(self.model, x, y))
        self._rows = []

    def add(self, grads: list[np.ndarray]) -> None:
        """Record one training step's minibatch gradients (aligned with model.params)."""
        if self._reference is None:
            raise RuntimeError("call start() at the epoch's start before add()")
        self._rows.append(self._flat(grads) - self._reference)

    def result(self) -> np.ndarray:
        """The recorded noise, shape (n_steps, n_params_last_layer)."""
        if not self._rows:
            raise RuntimeError("no steps were recorded since start()")
        return np.stack(self._rows)
