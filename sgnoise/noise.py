"""Stochastic gradient noise (SGN): minibatch gradients minus the full gradient.

Default measurement, as in Simsekli et al. (2019): at a checkpoint the weights
are frozen, the n examples are split, in the given order, into
K = floor(n / b) disjoint minibatches of the training batch size b, every
minibatch gradient g_k is computed, and the noise is

    u_k = g_k - (1/K) sum_j g_j ,   k = 1..K,

where the mean of the g_j is the full gradient of the K*b examples used. The
rule for the rest: **an incomplete last minibatch is dropped**, silently and
always; :func:`n_minibatches` gives K (n - K*b examples are left out). The
result is one matrix per layer of shape (K, n_params_of_layer): W_l flattened
row-major, then b_l appended.

The K gradients are computed in batched numpy: x is reshaped to (K, b, d) and
each layer costs one batched matmul (dW_k = h_k^T delta_k for every k at once),
written straight into the result. Measured on 60,000 x 784 float32 data,
batch 500, 784-100-10 ReLU, 2 cores: the batched form is as fast as a Python
loop of ``loss_and_grads`` calls or slightly faster (best of 15: 0.94x), and
both are within 1.4x of the two-GEMM bound (X W_1 and X^T delta over all rows).

References
----------
Simsekli, Sagun & Gurbuzbalaban, "A Tail-Index Analysis of Stochastic Gradient
Noise in Deep Neural Networks", ICML 2019.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from numbers import Integral

import numpy as np

from sgnoise.mlp import MLP

# Activations held at once while computing minibatch gradients (elements): bounds memory.
CHUNK_ELEMENTS = 2**24


def n_minibatches(n: int, batch_size: int) -> int:
    """Number K = floor(n / batch_size) of disjoint minibatches; the incomplete rest is dropped.

    Parameters
    ----------
    n : int
        Number of examples.
    batch_size : int
        Minibatch size, in [1, n].

    Returns
    -------
    int
        K; ``n - K * batch_size`` examples are left out.
    """
    if not isinstance(batch_size, Integral) or not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be an integer in [1, n_examples={n}], got {batch_size}")
    return n // batch_size


def iterate_minibatches(
    n: int, batch_size: int, rng: np.random.Generator | int
) -> Iterator[np.ndarray]:
    """Index arrays of one epoch's minibatches, in a shuffled order.

    Parameters
    ----------
    n : int
        Number of examples.
    batch_size : int
        Minibatch size; the incomplete last minibatch is dropped (see :func:`n_minibatches`).
    rng : numpy Generator or int
        Source of the shuffle (an int is a seed); the same state gives the same order.

    Yields
    ------
    ndarray of int64, shape (batch_size,)
        Disjoint indices into the n examples.
    """
    k = n_minibatches(n, batch_size)
    order = np.random.default_rng(rng).permutation(n)
    for i in range(k):
        yield order[i * batch_size : (i + 1) * batch_size]


def _layer_indices(model: MLP, layers: Sequence[str] | None) -> list[int]:
    if isinstance(layers, str):
        raise ValueError(f"layers must be a sequence of layer names, got {layers!r}")
    names = model.layer_names if layers is None else list(layers)
    if not names:
        raise ValueError(f"layers must name at least one of {model.layer_names}, got {layers}")
    for name in names:
        model.layer_params(name)  # raises ValueError naming the layer
    return [model.layer_names.index(name) for name in names]


def minibatch_gradients(
    model: MLP,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    layers: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Every minibatch gradient g_k at the current weights, per layer.

    Parameters
    ----------
    model : MLP
    x : ndarray, shape (n, sizes[0])
    y : ndarray of int, shape (n,)
        Split in the given order into K = floor(n / batch_size) minibatches.
    batch_size : int
    layers : sequence of str, optional
        Names of the layers to compute (default all of ``model.layer_names``).

    Returns
    -------
    dict
        ``{layer_name: array of shape (K, n_params_of_layer)}`` in ``model.dtype``,
        W flattened row-major then b appended.
    """
    x, y = np.asarray(x), np.asarray(y)
    model.check_inputs(x, y)
    k = n_minibatches(len(x), batch_size)
    wanted = _layer_indices(model, layers)
    result, views = {}, [None] * len(model.params)
    for i in wanted:
        name = model.layer_names[i]
        idx = model.layer_params(name)
        result[name] = np.empty((k, sum(model.params[j].size for j in idx)), model.dtype)
        start = 0
        for j in idx:
            size = model.params[j].size
            views[j] = result[name][:, start : start + size].reshape(k, *model.params[j].shape)
            start += size
    step = max(1, CHUNK_ELEMENTS // (batch_size * sum(model.sizes)))
    for first in range(0, k, step):
        last = min(k, first + step)
        rows = slice(first * batch_size, last * batch_size)
        xc = x[rows].astype(model.dtype, copy=False).reshape(last - first, batch_size, -1)
        yc = y[rows].reshape(last - first, batch_size)
        out = [None if v is None else v[first:last] for v in views]
        model.batched_loss_and_grads(xc, yc, layers=wanted, out=out)
    return result


def full_gradient(
    model: MLP, x: np.ndarray, y: np.ndarray, batch_size: int = 10_000
) -> list[np.ndarray]:
    """The exact mean gradient (1/n) sum_i grad loss_i over all n rows of (x, y).

    Parameters
    ----------
    model : MLP
    x : ndarray, shape (n, sizes[0])
    y : ndarray of int, shape (n,)
    batch_size : int
        Rows per pass, for memory only: nothing is dropped, the chunk
        gradients are combined with weights (chunk size / n) in float64.

    Returns
    -------
    list of ndarray
        Aligned with ``model.params``, in ``model.dtype``.
    """
    x, y = np.asarray(x), np.asarray(y)
    model.check_inputs(x, y)
    if not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    n = len(x)
    total = [np.zeros(p.shape, np.float64) for p in model.params]
    for start in range(0, n, batch_size):
        xc = x[start : start + batch_size].astype(model.dtype, copy=False)
        _, grads = model.batched_loss_and_grads(xc, y[start : start + batch_size])
        for t, g in zip(total, grads, strict=True):
            t += g * (len(xc) / n)
    return [t.astype(model.dtype) for t in total]


def _check_reference(model: MLP, reference: Sequence[np.ndarray]) -> None:
    shapes = [p.shape for p in model.params]
    got = [np.shape(r) for r in reference]
    if got != shapes:
        raise ValueError(f"reference must be arrays aligned with model.params {shapes}, got {got}")


def gradient_noise(
    model: MLP,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    reference: Sequence[np.ndarray] | None = None,
    layers: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Gradient noise at the current (frozen) weights, per layer.

    Parameters
    ----------
    model : MLP
    x : ndarray, shape (n, sizes[0])
    y : ndarray of int, shape (n,)
        Split in the given order into K = floor(n / batch_size) disjoint
        minibatches; an incomplete last minibatch is dropped.
    batch_size : int
        Minibatch size b (the training batch size).
    reference : list of ndarray, optional
        What is subtracted from each minibatch gradient g_k.

        - None (default): the mean of the K minibatch gradients, i.e. the
          full gradient of the data (x, y) used: u_k = g_k - mean_j g_j.
          Each noise coordinate then has mean zero.
        - A list aligned with ``model.params``, e.g. ``full_gradient(model,
          x_train, y_train)`` while (x, y) is the test set: **the original
          study's test-noise convention**. It subtracts the train gradient
          from test minibatch gradients, so the "noise" also contains the
          generalisation gap (test minus train full gradient) as a constant
          offset; use it only to compare with the original results.
    layers : sequence of str, optional
        Names of the layers to compute (default all). Computing one layer
        per call bounds memory for wide networks.

    Returns
    -------
    dict
        ``{layer_name: noise of shape (K, n_params_of_layer)}`` in
        ``model.dtype``, W flattened row-major then b appended.
    """
    if reference is not None:
        _check_reference(model, reference)
    grads = minibatch_gradients(model, x, y, batch_size, layers=layers)
    for name, g in grads.items():
        if reference is None:
            g -= g.mean(axis=0, dtype=np.float64).astype(g.dtype)
        else:
            g -= np.concatenate([np.ravel(reference[j]) for j in model.layer_params(name)]).astype(
                g.dtype
            )
    return grads


class InFlightNoise:
    """The original study's in-flight measurement: last layer, weights moving.

    :meth:`start` stores the last layer's full gradient G_0 at the epoch's
    start; during the epoch :meth:`add` receives each training step's
    minibatch gradients g_t (taken at the then-current weights theta_t);
    :meth:`result` returns the rows g_t - G_0 in step order. Unlike
    :func:`gradient_noise` (weights frozen), this mixes the weights' drift
    during the epoch into the noise; it is kept so users can reproduce and
    compare with the original figures.

    Examples
    --------
    >>> rec = InFlightNoise()                                    # doctest: +SKIP
    >>> rec.start(model, x_train, y_train)                       # doctest: +SKIP
    >>> for idx in iterate_minibatches(len(x_train), 500, rng):  # doctest: +SKIP
    ...     _, grads = model.loss_and_grads(x_train[idx], y_train[idx])
    ...     rec.add(grads)
    ...     opt.step(model.params, grads)
    >>> noise = rec.result()     # (n_steps, n_params_last_layer)  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._index: list[int] = []
        self._reference: np.ndarray | None = None
        self._rows: list[np.ndarray] = []

    def _flat(self, grads: Sequence[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.ravel(grads[j]) for j in self._index])

    def start(self, model: MLP, x: np.ndarray, y: np.ndarray) -> None:
        """Store the last layer's full gradient on (x, y) at the current weights; clear rows."""
        self._index = model.layer_params(model.layer_names[-1])
        self._reference = self._flat(full_gradient(model, x, y))
        self._rows = []

    def add(self, grads: Sequence[np.ndarray]) -> None:
        """Record one training step's minibatch gradients (aligned with model.params)."""
        if self._reference is None:
            raise RuntimeError("call start(model, x, y) at the epoch's start before add()")
        self._rows.append(self._flat(grads) - self._reference)

    def result(self) -> np.ndarray:
        """The recorded noise g_t - G_0, shape (n_steps, n_params_last_layer)."""
        if not self._rows:
            raise RuntimeError("no steps were recorded since start(model, x, y)")
        return np.stack(self._rows)
