"""A fully connected network with softmax cross-entropy or squared error, derived by hand in numpy.

Notation (row-vector convention, one example per row; layer l = 1..L; n rows;
t_i = onehot(y_i), the one-hot target of row i):

    h_0 = x,   z_l = h_{l-1} W_l + b_l,   h_l = phi(z_l)  (l < L),   z_L = logits
    cross_entropy:  loss = (1/n) sum_i [ logsumexp(z_L,i) - z_L,i,y_i ]
    mse:            loss = (1/n) sum_i (1/2) sum_c (z_L,ic - t_ic)^2

The squared error is on the raw outputs z_L (no softmax), summed over the classes and
halved, then averaged over the rows: its output error z_L,i - t_i has the scale of the
cross-entropy's softmax(z_L,i) - t_i, so the same learning rates are comparable.

Backward pass (delta_l = d loss / d z_l):

    delta_L = (softmax(z_L) - onehot(y)) / n     (cross_entropy)
    delta_L = (z_L - onehot(y)) / n              (mse)
    dW_l = h_{l-1}^T delta_l,   db_l = sum_i delta_l,i
    delta_{l-1} = (delta_l W_l^T) * phi'(z_{l-1})     (l >= 2: d loss / d x is never computed)

with phi'(z) = 1[z > 0] (ReLU: written as 1.0 or 0.0 by the forward pass into
delta_l's buffer, unused until then), h (1 - h) (sigmoid), 1 - h^2 (tanh) (read
off h = phi(z)), so that z need not be kept. The log-sum-exp subtracts the row
maximum m first, so huge logits neither overflow nor lose the loss: with
e = exp(z_L - m) and s = sum_j e_j, the loss of a row is log s - (z_L,y - m)
and softmax(z_L) = e / s, one exponential per logit for both.

Every array may carry a leading "minibatch" axis: x of shape (B, b, d) gives
the B minibatch gradients at once, with one batched matmul per layer
(:func:`sgnoise.noise.noise_pass` uses this). ``loss_and_grads`` is the
unbatched case, on the same code.

Speed: the activations h_l and deltas live in buffers the model keeps per
input shape, the elementwise steps work in place (the only temporaries of a
step are the ReLU's boolean masks and a class-major copy of the logits), ReLU's
derivative costs the backward pass one multiplication (kept by the forward pass),
and the gradients can be written into caller-owned arrays (``out=``).
``bench/bench_epoch.py`` compares an epoch with PyTorch and with the bare
matrix products.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from numbers import Integral

import numpy as np

from sgnoise import threads

ACTIVATIONS = ("relu", "sigmoid", "tanh")
INITS = ("paper", "he", "lecun", "glorot")
LOSSES = ("cross_entropy", "mse")
#: Most values a model keeps in its reusable activation buffers (float32: 64 MiB).
WORKSPACE_ELEMENTS = 2**24
#: Values :func:`all_finite` checks at once.
FINITE_BLOCK = 2**20
#: Arrays of at least twice this many values are updated (:class:`sgnoise.optim.SGD`) and
#: checked (:func:`all_finite`) in pieces of this size on the worker threads as well.
PARALLEL_ELEMENTS = 2**18
#: ``tap(layer, h, delta)``: a layer's inputs (..., b, P, fan_in) and errors (..., b, P, fan_out)
#: (:meth:`Network.batched_loss_and_grads`).
Tap = Callable[[int, np.ndarray, np.ndarray], None]


def activate(z: np.ndarray, activation: str, slope: np.ndarray | None = None) -> np.ndarray:
    """phi(z), computed in place on z.

    For ReLU, ``slope`` (an array like z), if given, receives phi'(z) = 1[z > 0]
    as 1.0 or 0.0 on the way, and phi(z) = z * slope: the backward pass then
    multiplies by it (one pass, :func:`backprop_activation`) instead of recomputing
    it from h = phi(z) (1[h > 0]: two passes); the same bits.
    """
    if activation == "relu":
        # z * 1[z > 0]: twice as fast as np.maximum(z, 0) (numpy does not vectorise a scalar
        # operand of maximum), and a -inf in z becomes NaN instead of a silent 0.
        if slope is None:
            return np.multiply(z, z > 0, out=z)
        # float32 * float32 is 3x as fast as float32 * bool (a cast in a buffered loop)
        np.copyto(slope, z > 0)
        return np.multiply(z, slope, out=z)
    if activation == "tanh":
        return np.tanh(z, out=z)
    # sigmoid: 1 / (1 + exp(-z)); exp overflows to inf for z << 0 and gives exactly 0.
    with np.errstate(over="ignore"):
        np.negative(z, out=z)
        np.exp(z, out=z)
    z += 1
    return np.reciprocal(z, out=z)


def backprop_activation(
    delta: np.ndarray, h: np.ndarray | None, activation: str, slope: np.ndarray | None = None
) -> np.ndarray:
    """delta *= phi'(z), in place; returns delta.

    ReLU: times ``slope``, the phi'(z) = 1[z > 0] that :func:`activate` kept in the
    forward pass (one multiplication; h is not read). Sigmoid and tanh: h (1 - h) and
    1 - h^2 read off h = phi(z), h overwritten (it is not needed after).
    """
    if activation == "relu":
        return np.multiply(delta, slope, out=delta)
    if activation == "sigmoid":
        delta *= h
        np.subtract(1, h, out=h)
    else:
        np.square(h, out=h)
        np.subtract(1, h, out=h)
    delta *= h
    return delta


def all_finite(a: np.ndarray) -> bool:
    """Whether every value of ``a`` is finite, checked in blocks of :data:`FINITE_BLOCK` values.

    A block's boolean temporary (1 MiB) stays in cache: as fast as
    ``np.isfinite(a).all()`` up to a million values (twice as fast as a sum:
    10 against 21 us for 78,400 float32), and for large inputs as fast as one
    sum, without a temporary of a's size (12 ms for 47 million float32, where
    ``np.isfinite(a).all()`` takes 21 ms). Values are read in memory order: no
    copy unless ``a`` is neither C- nor F-contiguous. Arrays of 2 *
    :data:`PARALLEL_ELEMENTS` values or more are checked on the worker threads too.
    """
    flat = np.ravel(a, order="K")
    block = FINITE_BLOCK if flat.size < 2 * PARALLEL_ELEMENTS else PARALLEL_ELEMENTS
    checks = (
        functools.partial(_finite, flat[start : start + block])
        for start in range(0, flat.size, block)
    )
    if flat.size < 2 * PARALLEL_ELEMENTS:
        return all(check() for check in checks)
    return all(list(threads.in_order(checks)))


def _finite(a: np.ndarray) -> bool:
    return bool(np.isfinite(a).all())


def check_inputs(
    x: np.ndarray, y: np.ndarray | None, n_inputs: int, n_classes: int, *, finite: bool = True
) -> None:
    """Raise ValueError unless x is finite, (n >= 1, n_inputs), and y ints in [0, n_classes).

    ``finite=False`` skips the scan of x for NaN/inf (one pass over all of
    x), for data known to be finite: a :class:`sgnoise.data.Dataset` is
    checked once, when it is made, and measured at every checkpoint.
    """
    if x.ndim != 2 or x.shape[1] != n_inputs or x.shape[0] < 1:
        raise ValueError(f"x must have shape (n >= 1, {n_inputs}), got {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"x must hold real numbers, got dtype {x.dtype}")
    if finite and not all_finite(x):
        bad = x.size - np.count_nonzero(np.isfinite(x))
        raise ValueError(f"x must be finite, got {bad} NaN/inf values")
    if y is None:
        return
    if y.shape != x.shape[:1]:
        raise ValueError(f"y must have shape {x.shape[:1]}, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
    lo, hi = y.min(), y.max()
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"y must be in [0, {n_classes}), got values in [{lo}, {hi}]")


def cross_entropy(z: np.ndarray, y: np.ndarray, hits: np.ndarray | None = None) -> np.ndarray:
    """Mean softmax cross-entropy over the second-to-last axis; z (contiguous) becomes delta_L.

    With m = max z, e = exp(z - m), s = sum e (over the classes) and n rows:
    loss = log s - (z_y - m) and delta_L = (e / s - onehot(y)) / n.
    ``hits``, if given (shape of the losses), receives the number of rows
    whose largest logit is at y.

    The work is done on a class-major copy of z, shape (..., classes, n):
    the maximum and the sum over the (10) classes then run along contiguous
    rows of n values, several times faster than along the short last axis of z.
    """
    n = z.shape[-2]
    e = z.swapaxes(-1, -2).copy()
    e -= np.maximum.reduce(e, axis=-2, keepdims=True)
    # Flat position in e of (minibatch k, class y, row i): k * classes * n + y * n + i.
    at_y = np.multiply(y, n, dtype=np.intp)  # y may be uint8
    at_y += _row_positions(y.shape[:-1], e.shape[-2], n)
    at_y = at_y.reshape(-1)
    flat = e.reshape(-1)
    z_y = flat[at_y].reshape(y.shape)
    if hits is not None:
        np.sum(e.argmax(axis=-2) == y, axis=-1, out=hits)
    np.exp(e, out=e)
    total = np.add.reduce(e, axis=-2)
    e /= total[..., None, :]
    flat[at_y] -= 1  # softmax - onehot(y)
    np.divide(e.swapaxes(-1, -2), n, out=z)
    np.log(total, out=total)
    total -= z_y
    return np.add.reduce(total, axis=-1) / n


def workspace_values(sizes: Sequence[int]) -> int:
    """Values an MLP of layer widths ``sizes`` (input first) holds per example in a pass: its
    input and every layer's activations (:attr:`MLP.activations_per_example`)."""
    return sum(sizes)


@functools.lru_cache(maxsize=16)
def _row_positions(lead: tuple[int, ...], classes: int, n: int) -> np.ndarray:
    """k * classes * n + i, the flat position of (minibatch k, class 0, row i) in an array of
    shape (*lead, classes, n), shape (*lead, n); read-only, kept for the next call."""
    minibatches = int(np.prod(lead, dtype=np.int64))
    first = np.arange(0, minibatches * classes * n, classes * n).reshape(*lead, 1)
    positions = first + np.arange(n)
    positions.flags.writeable = False
    return positions


def squared_error(z: np.ndarray, y: np.ndarray, hits: np.ndarray | None = None) -> np.ndarray:
    """Mean over the second-to-last axis of half the squared error against onehot(y);
    z (contiguous) becomes delta_L = (z - onehot(y)) / n. ``hits`` as :func:`cross_entropy`."""
    n, classes = z.shape[-2:]
    if hits is not None:
        np.sum(z.argmax(axis=-1) == y, axis=-1, out=hits)
    at_y = np.arange(0, z.size, classes) + y.reshape(-1).astype(np.intp)  # y may be uint8
    z.reshape(-1)[at_y] -= 1  # z - onehot(y)
    losses = np.add.reduce(np.square(z).sum(axis=-1), axis=-1) / (2 * n)
    z /= n
    return losses


def output_loss(
    loss: str, z: np.ndarray, y: np.ndarray, hits: np.ndarray | None = None
) -> np.ndarray:
    """The loss ``loss`` (one of :data:`LOSSES`) of each minibatch; z (contiguous logits)
    becomes delta_L (:func:`cross_entropy`, :func:`squared_error`)."""
    if loss == "mse":
        return squared_error(z, y, hits)
    return cross_entropy(z, y, hits)


def init_std(init: str, init_scale: float, fan_in: int, fan_out: int) -> float:
    """Standard deviation of a weight's normal initialisation (see :class:`MLP`'s ``init``)."""
    return {
        "paper": init_scale,
        "he": np.sqrt(2.0 / fan_in),
        "lecun": np.sqrt(1.0 / fan_in),
        "glorot": np.sqrt(2.0 / (fan_in + fan_out)),
    }[init]


class Network:
    """What the noise pass, the per-example recorder, the optimisers and training need of a
    network, and the methods :class:`MLP` and :class:`sgnoise.cnn.CNN` share.

    A network is a list of parameter arrays grouped into named layers (the
    layout of :mod:`sgnoise.model`). A subclass sets its structure, calls
    :meth:`_setup` and :meth:`_draw_weights`, and provides ``n_inputs``,
    ``activations_per_example``, ``architecture``, ``_workspace``, ``_logits``
    and ``_backward`` (:meth:`batched_loss_and_grads`).

    Attributes
    ----------
    params : list of ndarray
        Every parameter array, layer by layer (W, then b if the layer has one);
        weights are 2-D (fan_in, fan_out), biases 1-D. Updated in place by the optimisers.
    layer_names : list of str
        The layers, input first.
    dtype : numpy dtype
        float32 or float64: of the parameters, activations and gradients.
    sizes : tuple of int
        The dense layers' widths, their input first, classes last.
    n_inputs, n_classes : int
        Values per example (a row of x) and classes.
    activations_per_example : int
        Values a forward and backward pass holds per example (callers size
        their chunks of examples with it).
    architecture : str
        The layers in one line (plot titles, the saved configuration).
    """

    params: list[np.ndarray]
    layer_names: list[str]
    dtype: np.dtype
    sizes: tuple[int, ...]

    def _setup(
        self, activation: str, bias: bool, init: str, init_scale: float, loss: str, dtype, seed
    ) -> None:
        """Check and keep the settings both networks take (see :class:`MLP`)."""
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if not (np.isfinite(init_scale) and init_scale > 0):
            raise ValueError(f"init_scale must be a finite number > 0, got {init_scale}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.activation, self.bias = activation, bool(bias)
        self.init, self.init_scale, self.seed = init, float(init_scale), seed
        self.loss_name = loss
        self._workspaces: dict[tuple, object] = {}
        self._workspaces_lock = threading.Lock()

    def _draw_weights(
        self, shapes: Sequence[tuple[int, int]], init_fan_outs: Sequence[int]
    ) -> None:
        """:attr:`params` drawn layer by layer from the seed: W of each of ``shapes``
        (fan_in, fan_out), with ``init_fan_outs`` the fan-outs :func:`init_std` reads,
        then b at zero."""
        rng = np.random.default_rng(self.seed)
        self.params = []
        for (fan_in, fan_out), init_out in zip(shapes, init_fan_outs, strict=True):
            std = init_std(self.init, self.init_scale, fan_in, init_out)
            self.params.append((rng.standard_normal((fan_in, fan_out)) * std).astype(self.dtype))
            if self.bias:
                self.params.append(np.zeros(fan_out, self.dtype))

    # -- structure ---------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        """Number of classes (width of the last layer)."""
        return self.sizes[-1]

    def layer_params(self, layer: str) -> list[int]:
        """Indices into :attr:`params` of one layer's arrays: [W] or [W, b]."""
        if layer not in self.layer_names:
            raise ValueError(f"layer must be one of {self.layer_names}, got {layer!r}")
        per = 2 if self.bias else 1
        i = self.layer_names.index(layer) * per
        return list(range(i, i + per))

    def __getstate__(self) -> dict:
        """Pickled without the buffers and their lock."""
        state = {**self.__dict__, "_workspaces": {}}
        del state["_workspaces_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._workspaces_lock = threading.Lock()

    def copy(self):
        """A deep copy (same configuration, copied parameters, no buffers)."""
        new = object.__new__(type(self))
        new.__setstate__(self.__getstate__())
        new.params = [p.copy() for p in self.params]
        new.layer_names = list(self.layer_names)
        return new

    # -- validation --------------------------------------------------------------
    def check_inputs(
        self, x: np.ndarray, y: np.ndarray | None = None, *, finite: bool = True
    ) -> None:
        """Raise ValueError unless x is finite, (n >= 1, n_inputs), and y ints in [0, n_classes).

        ``finite=False`` skips the scan of x for NaN/inf (see :func:`check_inputs`).
        """
        check_inputs(x, y, self.n_inputs, self.n_classes, finite=finite)

    def _checked(self, x, y=None) -> tuple[np.ndarray, np.ndarray | None]:
        """x and y as arrays, validated by :meth:`check_inputs`."""
        x = np.asarray(x)
        y = None if y is None else np.asarray(y)
        self.check_inputs(x, y)
        return x, y

    # -- loss, gradients, predictions (on batched_loss_and_grads and _logits) ----
    def batched_loss_and_grads(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        layers: Sequence[int] | None = None,
        out: Sequence[np.ndarray | None] | None = None,
        hits: np.ndarray | None = None,
        tap: Tap | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """Loss and gradients of every minibatch at once, without input checks.

        Parameters
        ----------
        x : ndarray, shape (B, b, n_inputs) or (b, n_inputs)
            B minibatches of b examples (validated by the caller), in :attr:`dtype`.
        y : ndarray of int, shape (B, b) or (b,)
        layers : sequence of int, optional
            Layer indices (0-based) whose gradients are wanted (default all);
            the others are returned as None, and the backward pass stops at
            the first wanted layer.
        out : sequence aligned with :attr:`params`, optional
            Arrays of shape (B, *param.shape) to write the wanted gradients
            into (None entries: allocate): a training loop reuses its own, a
            noise pass writes straight into its larger result.
        hits : ndarray of int, shape (B,) or (), optional
            Receives the number of correctly classified examples per minibatch
            (largest logit at y, as :meth:`predict`).
        tap : callable, optional
            ``tap(i, h, delta)`` for each wanted layer i (0-based), with its
            input rows h (..., b, P, fan_in) and its errors delta (..., b, P, fan_out)
            for the mean loss of each minibatch at its P positions (1 for a dense
            layer; a conv layer's output pixels, h its patches, :mod:`sgnoise.model`):
            example k's own gradient of W is b * sum_p outer(h[k, p], delta[k, p])
            (:mod:`sgnoise.per_example` samples it). Both arrays are reused
            afterwards: copy what you keep.

        Returns
        -------
        losses : ndarray, shape (B,) or ()
        grads : list aligned with :attr:`params`, each of shape (B, *param.shape) or None
        """
        wanted = set(range(len(self.layer_names))) if layers is None else set(layers)
        out = [None] * len(self.params) if out is None else out
        grads: list[np.ndarray | None] = [None] * len(self.params)
        losses = self._backward(x, y, wanted, out, grads, hits, tap)
        return losses, grads

    def _weight_grads(
        self,
        i: int,
        rows_h: np.ndarray,
        rows_d: np.ndarray,
        grads: list,
        out: Sequence[np.ndarray | None],
        tap: Tap | None,
    ) -> None:
        """Layer i's dW = sum over rows and positions of outer(h, delta) per minibatch (and
        db = the sum of delta) into ``grads`` (``out``'s arrays where given), after ``tap``
        is handed rows_h (..., b, P, fan_in) and rows_d (..., b, P, fan_out)."""
        if tap is not None:
            tap(i, rows_h, rows_d)
        j = (2 if self.bias else 1) * i
        flat_h = rows_h.reshape(*rows_h.shape[:-3], -1, rows_h.shape[-1])
        flat_d = rows_d.reshape(*rows_d.shape[:-3], -1, rows_d.shape[-1])
        grads[j] = np.matmul(flat_h.swapaxes(-1, -2), flat_d, out=out[j])
        if self.bias:
            grads[j + 1] = np.sum(flat_d, axis=-2, out=out[j + 1])

    def _w(self, layer: int) -> np.ndarray:
        """Layer ``layer``'s weight W (0-based)."""
        return self.params[(2 if self.bias else 1) * layer]

    def _b(self, layer: int) -> np.ndarray:
        """Layer ``layer``'s bias b (0-based; with biases only)."""
        return self.params[2 * layer + 1]

    def _dense_forward(
        self,
        h: np.ndarray,
        first: int,
        buffers: Sequence[np.ndarray],
        slopes: Sequence[np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """[h, h_1, ..., z_L]: the dense layers from layer ``first`` (0-based) on, fed h,
        z_l = h_{l-1} W_l (+ b_l) into ``buffers`` and h_l = phi(z_l) in place but for the
        logits z_L; for ReLU phi'(z_l) into ``slopes`` (one per hidden layer) if given
        (:func:`activate`), for :meth:`_backprop`."""
        hs, last = [h], first + len(buffers) - 1
        for i, z in enumerate(buffers, start=first):
            np.matmul(hs[-1], self._w(i), out=z)
            if self.bias:
                z += self._b(i)
            if i < last:
                activate(z, self.activation, None if slopes is None else slopes[i - first])
            hs.append(z)
        return hs

    def _backprop(
        self, product: Callable[[np.ndarray], np.ndarray], h: np.ndarray, spare: np.ndarray
    ) -> np.ndarray:
        """delta_{l-1} = (d loss / d h_{l-1}) * phi'(z_{l-1}), the error of a layer's input.

        ``product(out)`` writes d loss / d h_{l-1} (a dense layer's delta_l W_l^T, a conv
        layer's folded strips) into out and returns it; h = h_{l-1} = phi(z_{l-1}); ``spare``
        an array of h's shape. ReLU: spare holds the slope phi'(z_{l-1}) the forward pass kept
        (:func:`activate`), the product goes into h's buffer (h is read for the last time by
        then) and is multiplied by it: one pass. Sigmoid, tanh: the product goes into spare,
        phi' is read off h (overwritten). :func:`backprop_activation` either way.
        """
        if self.activation == "relu":
            return backprop_activation(product(h), None, "relu", spare)
        return backprop_activation(product(spare), h, self.activation)

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Mean loss on (x, y) and its gradient for every parameter.

        Parameters
        ----------
        x : ndarray, shape (n, n_inputs)
        y : ndarray of int, shape (n,), values in [0, n_classes)

        Returns
        -------
        loss : float
        grads : list of ndarray aligned with :attr:`params` (dtype :attr:`dtype`)
        """
        x, y = self._checked(x, y)
        losses, grads = self.batched_loss_and_grads(x.astype(self.dtype, copy=False), y)
        return float(losses), grads

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean loss on (x, y)."""
        x, y = self._checked(x, y)
        return float(output_loss(self.loss_name, self._logits(x), y))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted class of each row of x (int64)."""
        x, _ = self._checked(x)
        return self._logits(x).argmax(axis=-1).astype(np.int64)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Fraction of rows of x classified as y."""
        x, y = self._checked(x, y)
        return float(np.mean(self._logits(x).argmax(axis=-1) == y))


class MLP(Network):
    """Fully connected network with softmax cross-entropy or squared-error loss.

    The forward and backward equations are in the module docstring.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first, classes last. Default 784-100-10, the
        network of Simsekli et al. (2019).
    activation : {"relu", "sigmoid", "tanh"}
        Hidden-layer nonlinearity phi.
    bias : bool
        Add biases b_l. Default False: the original study's networks had none.
    init : {"paper", "he", "lecun", "glorot"}
        ``"paper"``: W ~ N(0, init_scale^2), the original study's choice
        with init_scale = 0.1, whatever the width; ``"he"``: N(0, 2 / fan_in)
        (He et al. 2015: keeps a ReLU layer's second moment through depth);
        ``"lecun"``: N(0, 1 / fan_in) (LeCun et al. 1998: keeps a linear or
        tanh layer's variance); ``"glorot"``: N(0, 2 / (fan_in + fan_out))
        (Glorot & Bengio 2010). Biases start at zero.
    init_scale : float
        Standard deviation of the ``"paper"`` initialisation.
    loss : {"cross_entropy", "mse"}
        Softmax cross-entropy, or half the squared error of the outputs against
        one-hot targets (summed over classes, averaged over rows; module docstring).
    dtype : numpy float dtype
        float32 (default, fast) or float64 (gradient checks).
    seed : int
        Seed of the initialisation; the same seed gives the same weights.

    Attributes
    ----------
    params : list of ndarray
        W1, [b1], W2, [b2], ... ; W_l has shape (fan_in, fan_out).
    layer_names : list of str
        ``["layer1", ..., "layerL"]``; layer l holds W_l and b_l.

    References
    ----------
    Simsekli, Sagun & Gurbuzbalaban, "A Tail-Index Analysis of Stochastic
    Gradient Noise in Deep Neural Networks", ICML 2019.
    He, Zhang, Ren & Sun, "Delving Deep into Rectifiers", ICCV 2015.
    Glorot & Bengio, "Understanding the difficulty of training deep
    feedforward neural networks", AISTATS 2010.
    LeCun, Bottou, Orr & Muller, "Efficient BackProp", Neural Networks:
    Tricks of the Trade, 1998.
    """

    def __init__(
        self,
        sizes: Sequence[int] = (784, 100, 10),
        activation: str = "relu",
        *,
        bias: bool = False,
        init: str = "paper",
        init_scale: float = 0.1,
        loss: str = "cross_entropy",
        dtype: type | np.dtype = np.float32,
        seed: int = 0,
    ):
        sizes = tuple(sizes)
        if len(sizes) < 2 or not all(isinstance(s, Integral) and s >= 1 for s in sizes):
            raise ValueError(f"sizes must list >= 2 positive integer layer widths, got {sizes}")
        self._setup(activation, bias, init, init_scale, loss, dtype, seed)
        self.sizes = tuple(int(s) for s in sizes)
        shapes = list(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        self._draw_weights(shapes, [fan_out for _, fan_out in shapes])
        self.layer_names = [f"layer{i + 1}" for i in range(len(self.sizes) - 1)]

    # -- structure ---------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        """Values per example (width of the first layer)."""
        return self.sizes[0]

    @property
    def activations_per_example(self) -> int:
        """Values a forward pass holds per example (the callers' chunks of examples)."""
        return workspace_values(self.sizes)

    @property
    def architecture(self) -> str:
        """The layer widths, e.g. ``784-100-10``."""
        return "-".join(map(str, self.sizes))

    def _workspace(self, lead: tuple[int, ...]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Buffers for inputs of shape ``(*lead, sizes[0])``: [h_1, ..., z_L], [delta_1, ...].

        The first list holds h_1, ..., h_{L-1} and z_L; the second delta_1, ...,
        delta_{L-1} (delta_L is computed in z_L's buffer), or for ReLU the slopes
        phi'(z_l), delta_l being then computed in h_l's buffer (:meth:`_backward`).
        The buffers of the most recent shapes are kept, up to :data:`WORKSPACE_ELEMENTS` values in
        all (larger ones are allocated per call), so that a training loop or a
        noise pass allocates nothing per minibatch. Each thread has its own
        (a noise pass runs chunks of minibatches on several).
        """
        key = (threading.get_ident(), lead)
        with self._workspaces_lock:
            found = self._workspaces.pop(key, None)
            if found is not None:  # kept: nothing to trim
                self._workspaces[key] = found  # the most recently used last
                return found
        found = (
            [np.empty((*lead, s), self.dtype) for s in self.sizes[1:]],
            [np.empty((*lead, s), self.dtype) for s in self.sizes[1:-1]],
        )
        with self._workspaces_lock:
            self._workspaces[key] = found
            self._trim_workspaces()
        return found

    def _trim_workspaces(self) -> None:
        """Forget the least recently used buffers beyond WORKSPACE_ELEMENTS values (lock held)."""
        kept = 0
        for key in reversed(list(self._workspaces)):
            kept += sum(a.size for a in self._workspaces[key][0] + self._workspaces[key][1])
            if kept > WORKSPACE_ELEMENTS:
                del self._workspaces[key]

    # -- forward / backward ------------------------------------------------------
    def _forward(
        self, x: np.ndarray, buffers: list[np.ndarray], slopes: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """Activations [h_0 = x, h_1, ..., h_{L-1}, z_L], written into ``buffers`` (h_1 on);
        for ReLU, phi'(z_l) into ``slopes`` if given (:meth:`Network._dense_forward`)."""
        return self._dense_forward(x, 0, buffers, slopes)

    def _backward(self, x, y, wanted: set[int], out, grads: list, hits, tap) -> np.ndarray:
        """The forward pass, the losses (returned) and the backward pass of the module
        docstring down to the first wanted layer, dW_l = h_{l-1}^T delta_l (and db_l)
        into ``grads`` (:meth:`Network.batched_loss_and_grads`)."""
        buffers, deltas = self._workspace(x.shape[:-1])
        hs = self._forward(x, buffers, deltas if self.activation == "relu" else None)
        delta = hs.pop()
        losses = output_loss(self.loss_name, delta, y, hits)
        first = min(wanted)
        for i in range(len(self.sizes) - 2, first - 1, -1):
            h = hs[i]
            if i in wanted:  # one position: h[..., None, :]
                self._weight_grads(i, h[..., None, :], delta[..., None, :], grads, out, tap)
            if i > first:  # delta_{l-1} = (delta_l W_l^T) * phi'(z_{l-1})
                product = functools.partial(np.matmul, delta, self._w(i).T)
                delta = self._backprop(product, h, deltas[i - 1])
        return losses

    def _logits(self, x: np.ndarray) -> np.ndarray:
        """z_L for validated x."""
        return self._forward(x.astype(self.dtype, copy=False), self._workspace(x.shape[:-1])[0])[-1]
