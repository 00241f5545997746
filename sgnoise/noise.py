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
written straight into one (K, n_params) matrix whose column blocks are the
layers (the pooled "all" noise is that matrix, no copy). The same forward pass
gives the loss and accuracy on (x, y), and the mean of the g_k the full
gradient: :func:`noise_pass` returns them all, so a checkpoint needs no other
pass over the data. ``bench/bench_noise.py`` times a pass against a training
epoch.

References
----------
Simsekli, Sagun & Gurbuzbalaban, "A Tail-Index Analysis of Stochastic Gradient
Noise in Deep Neural Networks", ICML 2019.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import threadpoolctl

from sgnoise import threads
from sgnoise.model import Model
from sgnoise.per_example import Recorder

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


def shuffled_minibatches(
    x: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator | int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch's minibatches (x_b, y_b), those of :func:`iterate_minibatches`, gathered in place.

    Each minibatch is copied with ``np.take(..., out=)`` into two buffers that
    are reused at every step, so an epoch allocates nothing: **a yielded pair
    is overwritten by the next one** (copy it to keep it).

    Parameters
    ----------
    x : ndarray, shape (n, d)
    y : ndarray, shape (n,)
    batch_size : int
        Minibatch size b; the incomplete last minibatch is dropped.
    rng : numpy Generator or int
        Source of the shuffle; the same state gives the same minibatches as
        :func:`iterate_minibatches`.

    Yields
    ------
    x_b : ndarray, shape (batch_size, d), dtype of x
    y_b : ndarray, shape (batch_size,), dtype of y
    """
    xb = np.empty((batch_size, *x.shape[1:]), x.dtype)
    yb = np.empty(batch_size, y.dtype)
    for idx in iterate_minibatches(len(x), batch_size, rng):
        # The indices are valid by construction; mode="raise" would copy through a temporary.
        np.take(x, idx, axis=0, out=xb, mode="clip")
        np.take(y, idx, out=yb, mode="clip")
        yield xb, yb


def _layer_indices(model: Model, layers: Sequence[str] | None) -> list[int]:
    if isinstance(layers, str):
        raise ValueError(f"layers must be a sequence of layer names, got {layers!r}")
    names = model.layer_names if layers is None else list(layers)
    if not names:
        raise ValueError(f"layers must name at least one of {model.layer_names}, got {layers}")
    for name in names:
        model.layer_params(name)  # raises ValueError naming the layer
    return [model.layer_names.index(name) for name in names]


@dataclass(frozen=True)
class NoisePass:
    """What one pass over (x, y) at frozen weights gives (see :func:`noise_pass`).

    Attributes
    ----------
    noise : dict
        ``{layer_name: (K, n_params_of_layer)}``, views of column blocks of ``matrix``.
    matrix : ndarray, shape (K, total n_params of the measured layers)
        The layers side by side, in the order measured: the pooled noise.
        (:func:`sgnoise.measure.measure` returns passes that hold their last layer
        only, its noise being the whole ``matrix``.)
    gradient : list
        The full gradient (1/n) sum_i grad loss_i over all n rows (the dropped
        rest included), aligned with ``model.params``; None for the layers
        not measured.
    loss : float
        Mean loss (the model's, cross-entropy or squared error) over all n rows.
    accuracy : float
        Fraction of the n rows classified correctly.
    """

    noise: dict[str, np.ndarray]
    matrix: np.ndarray
    gradient: list[np.ndarray | None]
    loss: float
    accuracy: float

    @property
    def columns(self) -> dict[str, slice]:
        """``{layer_name: its columns of matrix}`` (the blocks of ``noise``, side by side)."""
        columns, start = {}, 0
        for layer, block in self.noise.items():
            columns[layer] = slice(start, start + block.shape[1])
            start += block.shape[1]
        return columns


def _columns(model: Model, wanted: list[int]) -> list[tuple[int, slice]]:
    """(parameter index, its columns) of the gradient matrix of the layers ``wanted``, in order."""
    columns, start = [], 0
    for i in wanted:
        for j in model.layer_params(model.layer_names[i]):
            columns.append((j, slice(start, start + model.params[j].size)))
            start += model.params[j].size
    return columns


def _minibatch_pass(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    wanted: list[int],
    per_example: Recorder | None = None,
) -> tuple[np.ndarray, float, int]:
    """Every minibatch gradient of the K complete minibatches, as one (K, n_params) matrix.

    Columns as :func:`_columns`. Also returns the summed loss and the
    number of correct predictions over the K * b rows used; ``per_example``
    receives every used example's layer inputs and errors on the way.
    """
    k = n_minibatches(len(x), batch_size)
    columns = _columns(model, wanted)
    matrix = np.empty((k, columns[-1][1].stop), model.dtype)
    views: list[np.ndarray | None] = [None] * len(model.params)
    for j, cols in columns:
        views[j] = matrix[:, cols].reshape(k, *model.params[j].shape)
    most = max(1, CHUNK_ELEMENTS // (batch_size * model.activations_per_example))
    n_chunks = max(-(-k // most), min(k, 2 * (threads.WORKERS + 1)))  # >= 2 per thread
    step = -(-k // n_chunks)  # chunks of equal size (the last one smaller): one workspace
    losses, hits = np.empty(k, model.dtype), np.empty(k, np.int64)

    def chunk(first: int) -> None:
        last = min(k, first + step)
        rows = slice(first * batch_size, last * batch_size)
        xc = x[rows].astype(model.dtype, copy=False).reshape(last - first, batch_size, -1)
        yc = y[rows].reshape(last - first, batch_size)
        out = [None if v is None else v[first:last] for v in views]
        tap = None
        if per_example is not None:

            def tap(i, h, delta, row=first * batch_size):
                per_example.record(i, h, delta, row, scale=batch_size)

        losses[first:last], _ = model.batched_loss_and_grads(
            xc, yc, layers=wanted, out=out, hits=hits[first:last], tap=tap
        )

    with _one_blas_thread():  # the chunks run on all cores, one BLAS thread each
        for _ in threads.in_order(functools.partial(chunk, f) for f in range(0, k, step)):
            pass
    return matrix, float(losses.sum(dtype=np.float64)) * batch_size, int(hits.sum())


def _subtract_by_columns(matrix: np.ndarray, row: np.ndarray) -> None:
    """matrix -= row, by blocks of columns on the worker threads (elementwise: the same
    numbers whatever the blocks)."""
    blocks = threads.column_chunks(matrix.shape[1])
    tasks = (functools.partial(np.subtract, matrix[:, b], row[b], out=matrix[:, b]) for b in blocks)
    for _ in threads.in_order(tasks):
        pass


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """One BLAS thread while the minibatch chunks run on the worker threads (if there are any).

    The minibatches are independent: a chunk per thread, each with one BLAS
    thread, uses both cores better than BLAS's own threads on these small
    products (500 x 784 x 100: 1.4x faster on 2 threads than on 1, against
    ~1.9x), and gives the same numbers at any thread count (BLAS's own
    threads round some products differently).
    """
    if not threads.WORKERS:
        return contextlib.nullcontext()
    if not _BLAS:
        _BLAS.append(threadpoolctl.ThreadpoolController())  # inspecting the libraries: ~1.5 ms
    return _BLAS[0].limit(limits=1, user_api="blas")


_BLAS: list = []


def _per_layer(model: Model, matrix: np.ndarray, wanted: list[int]) -> dict[str, np.ndarray]:
    """``{layer_name: its column block of matrix}`` (views), columns as :func:`_columns`."""
    blocks, start = {}, 0
    for i in wanted:
        name = model.layer_names[i]
        size = sum(model.params[j].size for j in model.layer_params(name))
        blocks[name] = matrix[:, start : start + size]
        start += size
    return blocks


def minibatch_gradients(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    layers: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Every minibatch gradient g_k at the current weights, per layer.

    Parameters
    ----------
    model : Model
    x : ndarray, shape (n, n_inputs)
    y : ndarray of int, shape (n,)
        Split in the given order into K = floor(n / batch_size) minibatches.
    batch_size : int
    layers : sequence of str, optional
        Names of the layers to compute (default all of ``model.layer_names``).

    Returns
    -------
    dict
        ``{layer_name: array of shape (K, n_params_of_layer)}`` in ``model.dtype``,
        W flattened row-major then b appended (column blocks of one matrix).
    """
    x, y = np.asarray(x), np.asarray(y)
    model.check_inputs(x, y)
    wanted = _layer_indices(model, layers)
    return _per_layer(model, _minibatch_pass(model, x, y, batch_size, wanted)[0], wanted)


def full_gradient(
    model: Model, x: np.ndarray, y: np.ndarray, batch_size: int = 10_000
) -> list[np.ndarray]:
    """The exact mean gradient (1/n) sum_i grad loss_i over all n rows of (x, y).

    Parameters
    ----------
    model : Model
    x : ndarray, shape (n, n_inputs)
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


def _check_reference(model: Model, reference: Sequence[np.ndarray]) -> None:
    shapes = [p.shape for p in model.params]
    got = [np.shape(r) for r in reference]
    if got != shapes:
        raise ValueError(f"reference must be arrays aligned with model.params {shapes}, got {got}")


def noise_pass(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    reference: Sequence[np.ndarray] | None = None,
    layers: Sequence[str] | None = None,
    per_example: Recorder | None = None,
    check_finite: bool = True,
) -> NoisePass:
    """Gradient noise at the current (frozen) weights, with the loss, accuracy and full gradient.

    One forward and backward pass over the K complete minibatches (and the
    n - K*b dropped rows, for the loss, accuracy and full gradient only).

    Parameters
    ----------
    model : Model
    x : ndarray, shape (n, n_inputs)
    y : ndarray of int, shape (n,)
        Split in the given order into K = floor(n / batch_size) disjoint
        minibatches; an incomplete last minibatch is dropped from the noise.
    batch_size : int
        Minibatch size b (the training batch size).
    reference : list of ndarray, optional
        What is subtracted from each minibatch gradient g_k.

        - None (default): the mean of the K minibatch gradients, i.e. the
          full gradient of the K*b examples used: u_k = g_k - mean_j g_j.
          Each noise coordinate then has mean zero.
        - A list aligned with ``model.params``, e.g. the full gradient of the
          train set while (x, y) is the test set: **the original study's
          test-noise convention**. It subtracts the train gradient from test
          minibatch gradients, so the "noise" also contains the
          generalisation gap (test minus train full gradient) as a constant
          offset; use it only to compare with the original results.
    layers : sequence of str, optional
        Names of the layers to compute (default all). Computing one layer
        per call bounds memory for wide networks.
    per_example : sgnoise.per_example.Recorder, optional
        Also fill it with the per-example gradients of its sampled coordinates,
        for the K * b examples used (the noise pass computes every example's
        layer inputs and errors anyway: one product per coordinate more).
    check_finite : bool
        Scan x for NaN/inf (default). ``False`` for data known to be finite,
        such as a :class:`sgnoise.data.Dataset` (checked when it was made):
        the scan reads all of x (about 4% of a pass of the 784-100-10 net).

    Returns
    -------
    NoisePass
        ``noise`` per layer (K, n_params_of_layer) in ``model.dtype``, W
        flattened row-major then b appended; ``matrix`` (all of them side by
        side), ``gradient``, ``loss``, ``accuracy``.
    """
    x, y = np.asarray(x), np.asarray(y)
    model.check_inputs(x, y, finite=check_finite)
    wanted = _layer_indices(model, layers)
    columns = _columns(model, wanted)
    if reference is not None:
        _check_reference(model, reference)
    matrix, total, hits = _minibatch_pass(model, x, y, batch_size, wanted, per_example)
    n, used = len(x), len(matrix) * batch_size
    mean = threads.column_means(matrix)
    full = mean * (used / n)
    if used < n:  # the dropped rows count in the loss, accuracy and full gradient
        rest_hits = np.zeros((), np.int64)
        loss, grads = model.batched_loss_and_grads(
            x[used:].astype(model.dtype, copy=False), y[used:], layers=wanted, hits=rest_hits
        )
        total, hits = total + float(loss) * (n - used), hits + int(rest_hits)
        full += np.concatenate([grads[j].ravel() for j, _ in columns]) * ((n - used) / n)
    if reference is None:
        subtract = mean.astype(matrix.dtype)
    else:
        subtract = np.concatenate([np.ravel(reference[j]) for j, _ in columns]).astype(matrix.dtype)
    _subtract_by_columns(matrix, subtract)
    gradient: list[np.ndarray | None] = [None] * len(model.params)
    for j, cols in columns:
        gradient[j] = full[cols].astype(model.dtype).reshape(model.params[j].shape)
    return NoisePass(_per_layer(model, matrix, wanted), matrix, gradient, total / n, hits / n)


def gradient_noise(
    model: Model, x: np.ndarray, y: np.ndarray, batch_size: int, **options: Any
) -> dict[str, np.ndarray]:
    """Gradient noise at the current (frozen) weights, per layer.

    The ``noise`` of :func:`noise_pass` (see there for the parameters and the
    keyword ``options``: ``reference``, ``layers``).

    Returns
    -------
    dict
        ``{layer_name: noise of shape (K, n_params_of_layer)}`` in
        ``model.dtype``, W flattened row-major then b appended.
    """
    return noise_pass(model, x, y, batch_size, **options).noise


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

    def start(
        self,
        model: Model,
        x: np.ndarray,
        y: np.ndarray,
        *,
        gradient: Sequence[np.ndarray | None] | None = None,
    ) -> None:
        """Store the last layer's full gradient on (x, y) at the current weights; clear rows.

        ``gradient``, if given, is that full gradient (aligned with
        ``model.params``, e.g. :attr:`NoisePass.gradient` of a noise pass at
        these weights), which saves a pass over the data.
        """
        self._index = model.layer_params(model.layer_names[-1])
        self._reference = self._flat(full_gradient(model, x, y) if gradient is None else gradient)
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
