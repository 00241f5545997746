"""A LeNet-style convolutional network with softmax cross-entropy, derived by hand in numpy.

Layers: [conv(k x k, c_l) -> phi -> 2 x 2 max pooling] for each of the
``channels`` c_1, c_2, ..., then dense hidden layers -> logits, as in LeCun et
al. (1998) with max pooling. Channels-last throughout: an image is (H, W, C),
flattened row by row, channel fastest ((y * W + x) * C + c), as the data sets
store it.

Notation (one example; conv block l = 1..L with input a_{l-1} of H x W x C_{l-1}, a_0 =
the image; k the kernel size; o_l x o_l' the output pixels of conv l, P_l of them; W_l of
shape (k k C_{l-1}, C_l), row (i k + j) C + c for kernel row i, column j, input channel c):

    conv:    z_l[y, x, d] = sum_{i, j, c} a_{l-1}[y + i, x + j, c] W_l[(i k + j) C + c, d]
             (+ b_l[d]),   h_l = phi(z_l)
    pool:    a_l[y, x, c] = max_{u, v in {0, 1}} h_l[2y + u, 2x + v, c]   (a last odd row or
             column of h_l is dropped, as PyTorch's max_pool2d does); for ReLU computed as
             phi(max z_l), the same numbers on a map 4 times smaller: ReLU is monotone and
             makes no ties but at 0, where phi' = 0 (a -inf in z_l, which ReLU makes NaN, then
             only shows if its whole window is -inf)
    dense:   f = a_L flattened;  then the MLP of :mod:`sgnoise.mlp` on f (hidden layers, logits)

The convolution is one matrix product per layer, its input lowered by strips: the outputs
x = g o_g .. g o_g + o_g - 1 of output row y (strip g of G = o_l' / o_g) read input rows
y..y+k-1 over o_g + k - 1 columns, k runs of (o_g + k - 1) C contiguous values
(channels-last), copied as row (y, g) of

    R_l[(y, g), (i, x', c)] = a_{l-1}[y + i, g o_g + x', c]      (o_l G x k (o_g + k - 1) C)
    T_l[(i, x + j, c), (x, d)] = W_l[(i k + j) C + c, d]          (k (o_g + k - 1) C x o_g C_l,
                                                                  0 elsewhere)
    z_l = R_l T_l   (all examples' strips at once: (N o_l G) x o_g C_l, which is z_l (N, o_l,
                     o_l', C_l) channels-last: no copy back)

T_l is block-Toeplitz (block (i, x') and column block x depend on x' - x only) and banded,
the same for every strip; it is rebuilt from W_l at each forward pass by one strided-view
assignment. o_g = 1 would be im2col (R_l its patches), o_g = o_l' whole rows; wider strips
mean fewer, longer copies but (o_g + k - 1)/k times im2col's multiplications (the zeros of
T_l). :func:`group_width` takes the narrowest strips whose products OpenBLAS still runs at
speed: LeNet-5's conv1 in strips of 8 columns, conv2 of 4 (conv1's copy 1.1 ms where
im2col's took 16 ms, one thread, batch 500).

Backward pass (delta = d loss / d z, the dense layers' as in :mod:`sgnoise.mlp`):

    d loss / d a_L = (delta_dense1 W_dense1^T) reshaped to (o, o, C_L)
    delta_l[2y + u, 2x + v, c] = d loss / d a_l[y, x, c] * [(u, v) is the first position of
                                 the window's maximum] * phi'(z_l)
    dT_l = R_l^T delta_l  (summed over the strips of all examples of a minibatch)
    dW_l[(i k + j) C + c, d] = sum_x dT_l[(i, x + j, c), (x, d)],   db_l = sum delta_l
    dR_l = delta_l T_l^T,  d loss / d a_{l-1}[y + i, g o_g + x'] += dR_l[(y, g), (i, x')]
                                 (l >= 2: the strips' gradient added back where they were
                                 copied from)

dT_l's band summed over x is a strided view of it; the fold is k G additions of strips.
A conv weight's gradient for example e alone is sum_p outer(X_l[e, p], delta_l[e, p]) with
the patches X_l[p, (i k + j) C + c] = a_{l-1}[y_p + i, x_p + j, c] (im2col): ``tap`` hands
out X_l and delta_l per example and pixel (:mod:`sgnoise.model`), X_l copied only for a tap
(whole patch rows at once, as records of k C values). At the position a pooling window
routes to, h is the window's maximum a_l, so delta_l is d loss / d a_l * phi'(a_l) there
and a zero of its sign at the window's other positions: phi' is applied on the pooled map,
as in the MLP's layers (ReLU's slope 1[a_l > 0] kept by the forward pass, sigmoid's and
tanh's read off a_l; :meth:`sgnoise.mlp.Network._backprop`), then routed. Ties in a pooling
window send the gradient to its first maximum in row-major order, as PyTorch does (a ReLU's
zeros tie, but their phi' is 0; a saturated float32 sigmoid's ones tie too); the forward
pass keeps each window's index of it (:meth:`CNN._pool`). Non-finite values spread further
than in a direct convolution: 0 * inf = NaN through the zeros of T_l, so a non-finite input
value reaches every output of the strips that read it (all o_g C_l values of each), and a
non-finite value of delta_l every value of its strip's row of dR_l; a diverging run is
flagged non-finite either way.

Every array may carry a leading "minibatch" axis: x of shape (B, b, n_inputs) gives the B
minibatch gradients at once; the forward products and dR_l run over all examples at once,
dT_l is one batched product (B, k (o_g + k - 1) C, b o G) x (B, b o G, o_g C_l), folded per
minibatch. Speed: the strip copies and every activation and error live in buffers kept
per input shape and thread (as the MLP's); all products are 2-D (or batched 2-D) matrix
products over all the strips of all the examples. ``bench/bench_cnn.py`` compares an epoch
with PyTorch and with the bare strip copies and products of the same shapes.

References
----------
LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), 1998.
Chellapilla, Puri & Simard, "High performance convolutional neural networks
for document processing", 2006 (im2col: convolution as one matrix product).
Goodfellow, Bengio & Courville, "Deep Learning", MIT Press, 2016, section 9.1
(a 2-D convolution as multiplication by a doubly block-Toeplitz matrix).
Cho & Brand, "MEC: memory-efficient convolution for deep neural network", ICML 2017
(a lowering with fewer copies than im2col: MEC copies k-column strips of full height and
makes one small product per output row over shifted views of them; we copy strips of k rows
and o_g + k - 1 columns and make a single product with the kernel expanded into the banded
block-Toeplitz T_l).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from numbers import Integral

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from sgnoise.mlp import Network, activate, output_loss

#: Most values a model keeps in its reusable buffers (float32: 256 MiB): the workspace of one
#: batch of 500 LeNet-5 inputs holds about 13 million (25 million with the tap's patches,
#: 93 MiB), and a noise pass uses one per thread besides the training loop's (fewer would
#: free and allocate them at every minibatch).
WORKSPACE_ELEMENTS = 2**26

#: Output values (o_g columns x C_out channels) of a conv layer's strip, at least
#: (:func:`group_width`): one thread, batch 500, the strips' copies and products of LeNet-5's
#: conv1 took 5.8 ms with o_g = 8 (48 values), 6.6 and 7.2 ms with 12 and 4, 8.6 ms with
#: whole rows (24); conv2's 7.2 ms with o_g = 4 (64 values), 7.0 with 2, 9.1 with 8.
GROUP_VALUES = 48

#: Values of a conv layer's output h that max pooling and its backward pass take at a time (a
#: block of examples): the block's copies (1 MiB of buffers in float32, 0.5 MiB of h) stay
#: in a core's L2 cache (at batch 500 both layers' pooling took 3.1 ms against 5.2 ms over
#: whole maps, best of 30 steps under load; 2**16 to 2**18 alike).
POOL_CHUNK = 2**17


class CNN(Network):
    """LeNet-style convolutional network: [conv -> phi -> 2x2 max pool] x L -> dense -> logits.

    The forward and backward equations are in the module docstring.

    Parameters
    ----------
    image_shape : (height, width, channels)
        Of an input image; a row of x is one image flattened channels-last.
    activation : {"relu", "sigmoid", "tanh"}
        Nonlinearity phi of every conv and hidden dense layer.
    channels : sequence of int
        Output channels of each conv layer (default (6, 16), LeNet-5's).
    kernel : int
        Kernel size k of every conv layer (k x k, stride 1, no padding).
    dense : sequence of int
        Widths of the hidden dense layers (default (120,)).
    n_classes : int
    bias : bool
        Add biases. Default False, as the MLP of the studies.
    init : {"paper", "he", "lecun", "glorot"}
        As :class:`sgnoise.mlp.MLP`'s, with a conv layer's fan-in k k C_in and
        fan-out k k C_out (PyTorch's convention). Default ``"paper"``,
        N(0, init_scale^2), as the MLP's (after 3 epochs on mnist10k at lr 0.1,
        ReLU: 80.8% test accuracy, 88.5% with ``"he"``).
    init_scale : float
        Standard deviation of the ``"paper"`` initialisation.
    loss : {"cross_entropy", "mse"}
        As :class:`sgnoise.mlp.MLP`'s.
    dtype : numpy float dtype
        float32 (default) or float64 (gradient checks).
    seed : int
        Seed of the initialisation, drawn layer by layer (W, then b at zero).

    Attributes
    ----------
    params : list of ndarray
        Per layer W (fan_in, fan_out) [and b]: conv l's W has one row per
        (kernel row i, kernel column j, input channel c), (i k + j) C + c.
    layer_names : list of str
        ``conv1, ..., convL, dense1, ..., output``.

    Raises
    ------
    ValueError
        A kernel larger than its input, zero channels, or a pooling that leaves
        no pixels: the message names the setting (``--kernel``, ``--channels``)
        and the fix.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (28, 28, 1),
        activation: str = "relu",
        *,
        channels: Sequence[int] = (6, 16),
        kernel: int = 5,
        dense: Sequence[int] = (120,),
        n_classes: int = 10,
        bias: bool = False,
        init: str = "paper",
        init_scale: float = 0.1,
        loss: str = "cross_entropy",
        dtype: type | np.dtype = np.float32,
        seed: int = 0,
    ):
        self._setup(activation, bias, init, init_scale, loss, dtype, seed)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.channels, self.kernel = tuple(channels), kernel
        self.dense = tuple(dense)
        self.geometry = conv_geometry(self.image_shape, self.channels, kernel)
        if not all(isinstance(w, Integral) and w >= 1 for w in (*self.dense, n_classes)):
            raise ValueError(
                f"--hidden (the dense widths) must be integers >= 1, got {list(self.dense)}"
            )
        self.sizes = dense_sizes(self.geometry, self.dense, n_classes)  # the dense layers' widths
        shapes = layer_shapes(self.geometry, kernel, self.sizes)
        # a conv layer's fan-out for the initialisation is k k C_out (PyTorch's convention)
        fan_outs = [kernel * kernel * g[5] for g in self.geometry] + list(self.sizes[1:])
        self._draw_weights(shapes, fan_outs)
        # ReLU is monotone and makes no ties but at 0 (where phi' = 0): the maximum of
        # phi(z) over a window is phi of the maximum of z, so it runs on the pooled map
        self.relu_after_pooling = activation == "relu"
        self.layer_names = [f"conv{i + 1}" for i in range(len(self.geometry))]
        self.layer_names += [f"dense{i + 1}" for i in range(len(self.dense))] + ["output"]

    # -- structure ---------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        """Values per example: height x width x channels."""
        return int(np.prod(self.image_shape))

    @property
    def activations_per_example(self) -> int:
        """Values the forward and backward passes hold per example (:func:`workspace_values`)."""
        return workspace_values(self.geometry, self.kernel, self.sizes)

    @property
    def architecture(self) -> str:
        """The layers in one line: ``28x28x1-conv5x5x6-pool-conv5x5x16-pool-120-10``."""
        k = self.kernel
        convs = [f"conv{k}x{k}x{c}-pool" for c in self.channels]
        return "-".join(["x".join(map(str, self.image_shape)), *convs, *map(str, self.sizes[1:])])

    def _workspace(self, lead: tuple[int, ...]) -> dict[str, np.ndarray]:
        """A dict of buffers for inputs of shape ``(*lead, n_inputs)``, per thread.

        :meth:`_buffer` fills it on first use; the dicts of the most recent
        shapes are kept, up to :data:`WORKSPACE_ELEMENTS` values in all, so that a
        training loop or a noise pass allocates nothing per minibatch.
        """
        key = (threading.get_ident(), lead)
        with self._workspaces_lock:
            found = self._workspaces.pop(key, {})
            self._workspaces[key] = found  # the most recently used last
            kept = 0
            for old in reversed(list(self._workspaces)):
                kept += sum(a.size for a in self._workspaces[old].values())
                if kept > WORKSPACE_ELEMENTS and old != key:
                    del self._workspaces[old]
        return found

    def _buffer(self, space: dict, name: str, shape: tuple[int, ...], dtype=None) -> np.ndarray:
        """The workspace's array ``name`` of ``shape``, allocated on first use. It is added
        under the lock: :meth:`_workspace` sums every thread's workspace under it (a dict
        that gains a key while iterated raises RuntimeError)."""
        dtype = self.dtype if dtype is None else dtype
        a = space.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = np.empty(shape, dtype)
            with self._workspaces_lock:
                space[name] = a
        return a

    # -- forward / backward ------------------------------------------------------
    def _forward(
        self, x: np.ndarray, space: dict, slopes: bool = False
    ) -> tuple[list, list[np.ndarray]]:
        """The conv blocks' (input a_{l-1}, strips R_l, T_l, h_l, a_l) and the dense inputs
        [f, h_dense1, ..., z_logits]. ``slopes``: for ReLU, keep phi' of every pooled map
        a_l (``s{l}``) and dense hidden layer (``e{i}``) in the workspace for the backward
        pass (:meth:`~sgnoise.mlp.Network._backprop`).

        x: (*lead, n_inputs). a_{l-1}: (N, H, W, C_in), R_l: (N, o, G, k, (o_g + k - 1) C_in)
        the strips of the module docstring, T_l: (k, o_g + k - 1, C_in, o_g, C_l) the banded
        kernel, h_l: (N, o, o, C_l) after phi (z_l for ReLU, applied to a_l), a_l: (N, p, p,
        C_l) pooled, N the examples of all leading axes.
        """
        n = int(np.prod(x.shape[:-1]))
        k = self.kernel
        a = np.ascontiguousarray(x).reshape(n, *self.image_shape)
        blocks = []
        for layer, (_, _, c_in, o_h, o_w, c, p_h, p_w) in enumerate(self.geometry):
            o_g = group_width(o_w, c)
            strip = (o_g + k - 1) * c_in  # the values of a strip's row
            a_in = a
            lowered = self._buffer(space, f"R{layer}", (n, o_h, o_w // o_g, k, strip))
            _strips(a, lowered)
            toeplitz = self._buffer(space, f"T{layer}", (k, o_g + k - 1, c_in, o_g, c))
            _toeplitz(self._w(layer), toeplitz)
            z = self._buffer(space, f"h{layer}", (n, o_h, o_w, c))
            np.matmul(
                lowered.reshape(-1, k * strip),
                toeplitz.reshape(-1, o_g * c),
                out=z.reshape(-1, o_g * c),
            )
            if self.bias:
                z += self._b(layer)
            if not self.relu_after_pooling:
                activate(z, self.activation)
            a = self._buffer(space, f"a{layer}", (n, p_h, p_w, c))
            self._pool(z, a, space, layer)
            if self.relu_after_pooling:
                activate(a, "relu", self._buffer(space, f"s{layer}", a.shape) if slopes else None)
            blocks.append((a_in, lowered, toeplitz, z, a))
        lead, widths = x.shape[:-1], self.sizes[1:]
        buffers = [self._buffer(space, f"d{i}", (*lead, s)) for i, s in enumerate(widths)]
        kept = None
        if slopes and self.activation == "relu":
            kept = [self._buffer(space, f"e{i}", (*lead, s)) for i, s in enumerate(widths[:-1])]
        hs = self._dense_forward(a.reshape(*lead, -1), len(self.geometry), buffers, kept)
        return blocks, hs

    def _conv_grads(
        self, layer: int, block: tuple, delta: np.ndarray, lead: tuple, grads, out, tap, space
    ) -> None:
        """Conv layer's dW = fold(R^T delta) and db = sum of delta, per minibatch, into
        ``grads`` (``out``'s arrays where given), after ``tap`` is handed the patches
        X (..., b, P, k k C_in), copied only then, and delta (..., b, P, C_out).

        R^T delta is one product per minibatch (dT of T's shape); the fold
        dW[i, j, c, d] = sum_x dT[(i, x + j, c), (x, d)] sums a strided view of it over x.
        """
        a_in, lowered, toeplitz, h, _ = block
        k, (n, o_h, o_w, c) = self.kernel, h.shape
        if tap is not None:
            patches = self._buffer(space, f"X{layer}", (n, o_h, o_w, k, k, a_in.shape[-1]))
            _patches(a_in, patches)
            tap(layer, patches.reshape(*lead, o_h * o_w, -1), delta.reshape(*lead, o_h * o_w, c))
        batches, o_g = lead[:-1], toeplitz.shape[3]  # the minibatch axes, a strip's columns
        d_t = self._buffer(space, f"dT{layer}", (*batches, *toeplitz.shape))
        np.matmul(
            lowered.reshape(*batches, -1, lowered[0, 0, 0].size).swapaxes(-1, -2),
            delta.reshape(*batches, -1, o_g * c),
            out=d_t.reshape(*batches, -1, o_g * c),
        )
        j = (2 if self.bias else 1) * layer
        shape = (*batches, k * k * a_in.shape[-1], c)
        grads[j] = np.empty(shape, self.dtype) if out[j] is None else out[j]
        np.sum(_band(d_t), axis=-2, out=grads[j].reshape(*batches, k, k, -1, c, copy=False))
        if self.bias:
            grads[j + 1] = np.sum(delta.reshape(*batches, -1, c), axis=-2, out=out[j + 1])

    def _fold(self, delta: np.ndarray, block: tuple, space: dict, layer: int, out: np.ndarray):
        """d loss / d a for the conv layer's input a into out (N, H, W, C): the strips'
        gradient dR = delta T^T, shaped as R, folded back (:func:`_fold_strips`)."""
        _, lowered, toeplitz, _, _ = block
        t = toeplitz.reshape(-1, toeplitz.shape[3] * toeplitz.shape[4])
        d_rows = self._buffer(space, f"dR{layer}", lowered.shape)
        np.matmul(delta.reshape(-1, t.shape[1]), t.T, out=d_rows.reshape(-1, t.shape[0]))
        return _fold_strips(d_rows, out)

    def _pool(self, h: np.ndarray, a: np.ndarray, space: dict, layer: int) -> None:
        """a: the maximum of each 2x2 window of h (N, o_h, o_w, C); and, kept in the workspace
        for :meth:`_unpool`, first (N, p_h, p_w, C) uint8: the row-major index u 2 + v of the
        window's first value equal to its maximum (3 if none: a NaN's window).

        A block of examples at a time (:data:`POOL_CHUNK` values of h), so that its copies stay
        in a core's cache: the window's four positions copied out of h to four contiguous maps
        (one copy of whole pixels, a void view of C values; an operation on the positions in
        place would loop over runs of only C values), then a = max(max(h_00, h_10),
        max(h_01, h_11)) (np.maximum returns its second argument of two equal ones: this
        order fixes the sign of a zero maximum, the same as the code before) and
        first = n_0 + n_0 n_1 + n_0 n_1 n_2, n_i the i-th position not equal to a.
        """
        n, p_h, p_w, c = a.shape
        step = max(1, POOL_CHUNK // (4 * p_h * p_w * c))
        corners = self._buffer(space, f"corners{layer}", (2, 2, step, p_h, p_w, c))
        columns = self._buffer(space, f"columns{layer}", (2, step, p_h, p_w, c))
        misses = self._buffer(space, f"hits{layer}", (2, 2, step, p_h, p_w, c), bool)
        first = self._buffer(space, f"first{layer}", a.shape, np.uint8)
        windows, copies = _pixels(_windows(h, p_h, p_w)), _pixels(corners)
        for start in range(0, n, step):
            e = slice(start, min(n, start + step))
            k, a_e, first_e = e.stop - e.start, a[e], first[e]
            window, miss = corners[:, :, :k], misses[:, :, :k].reshape(4, k, p_h, p_w, c)[:3]
            np.copyto(copies[:, :, :k], windows[:, :, e])
            np.maximum(window[0], window[1], out=columns[:, :k])
            np.maximum(columns[0, :k], columns[1, :k], out=a_e)
            np.not_equal(window.reshape(4, k, p_h, p_w, c)[:3], a_e, out=miss)
            np.logical_and(miss[0], miss[1], out=miss[1])
            np.logical_and(miss[1], miss[2], out=miss[2])
            np.add(miss[0], miss[1], out=first_e, dtype=np.uint8)
            np.add(first_e, miss[2], out=first_e)

    def _unpool(self, q: np.ndarray, h: np.ndarray, space: dict, layer: int) -> np.ndarray:
        """delta_l: q = d loss / d a_l phi'(a_l) (:meth:`~sgnoise.mlp.Network._backprop`)
        routed to the first maximum of each window of h (N, o_h, o_w, C); a last odd row or
        column of h gets 0.

        Position (u, v) of each window gets q [first == u 2 + v] (:meth:`_pool`): q, or a
        zero of q's sign elsewhere, as d_a [hit] phi'(h) gave, bit for bit. A block of
        examples at a time, the four positions written by one product. A NaN in a window (a
        diverged run): ReLU's phi'(NaN) is 0, the window's delta a zero; sigmoid's and
        tanh's NaN at all four positions.
        """
        n, p_h, p_w, c = q.shape
        delta = self._buffer(space, f"D{layer}", h.shape)
        delta[:, 2 * p_h :] = 0
        delta[:, :, 2 * p_w :] = 0
        step = max(1, POOL_CHUNK // (4 * p_h * p_w * c))
        hits = self._buffer(space, f"hits{layer}", (2, 2, step, p_h, p_w, c), bool)
        first, windows = space[f"first{layer}"], _windows(delta, p_h, p_w)
        for start in range(0, n, step):
            e = slice(start, min(n, start + step))
            hit = hits[:, :, : e.stop - e.start]
            np.equal(first[e], _POSITIONS, out=hit)
            np.multiply(q[e], hit, out=windows[:, :, e])
        return delta

    def _backward(self, x, y, wanted: set[int], out, grads: list, hits, tap) -> np.ndarray:
        """The forward pass, the losses (returned) and the backward pass of the module
        docstring down to the first wanted layer, the gradients into ``grads``
        (:meth:`sgnoise.mlp.Network.batched_loss_and_grads`; ``tap`` gets a conv layer's
        patches X (..., b, P, k k C_in) and errors delta (..., b, P, C_out), P its pixels)."""
        lead = x.shape[:-1]
        n_conv, n_layers = len(self.geometry), len(self.layer_names)
        space = self._workspace(lead)
        blocks, hs = self._forward(x, space, slopes=True)
        delta = hs.pop()
        losses = output_loss(self.loss_name, delta, y, hits)
        first = min(wanted)
        for i in range(n_layers - 1, first - 1, -1):
            if i >= n_conv:  # a dense layer: one position
                h = hs[i - n_conv]
                if i in wanted:
                    self._weight_grads(i, h[..., None, :], delta[..., None, :], grads, out, tap)
            elif i in wanted:  # dW_l = fold(R_l^T delta_l), summed over pixels and examples
                self._conv_grads(i, blocks[i], delta, lead, grads, out, tap, space)
            if i <= first:
                continue
            if i > n_conv:  # into the hidden dense layer whose output is this layer's input h
                spare = self._buffer(space, f"e{i - n_conv - 1}", h.shape)
                product = functools.partial(np.matmul, delta, self._w(i).T)
                delta = self._backprop(product, h, spare)
                continue
            # into the pooled map a below: times phi'(a) as into a dense layer, then unpooled
            below = min(i, n_conv) - 1
            *_, h_below, a = blocks[below]
            spare = self._buffer(space, f"s{below}", a.shape)
            if i == n_conv:  # delta W^T, a flattened as the dense layer reads it
                product = functools.partial(np.matmul, delta, self._w(i).T)
                q = self._backprop(product, hs[0], spare.reshape(hs[0].shape))
            else:  # delta_i T_i^T folded
                product = functools.partial(self._fold, delta, blocks[i], space, i)
                q = self._backprop(product, a, spare)
            delta = self._unpool(q.reshape(a.shape), h_below, space, below)
        return losses

    def _logits(self, x: np.ndarray) -> np.ndarray:
        """The logits for validated x."""
        x = x.astype(self.dtype, copy=False)
        return self._forward(x, self._workspace(x.shape[:-1]))[1][-1]


#: The window positions (u, v) as u 2 + v, compared with :meth:`CNN._pool`'s first.
_POSITIONS = np.arange(4, dtype=np.uint8).reshape(2, 2, 1, 1, 1, 1)


def _windows(h: np.ndarray, p_h: int, p_w: int) -> np.ndarray:
    """The view (2, 2, N, p_h, p_w, C) of h (N, o_h, o_w, C) whose element [u, v, e, y, x]
    is the pixel h[e, 2 y + u, 2 x + v] (a last odd row or column left out)."""
    n, _, _, c = h.shape
    return h[:, : 2 * p_h, : 2 * p_w].reshape(n, p_h, 2, p_w, 2, c).transpose(2, 4, 0, 1, 3, 5)


def _pixels(a: np.ndarray) -> np.ndarray:
    """a's last axis (contiguous) as one void value of its numbers (a pixel's C, a patch row's
    k C): copies of the view move whole records rather than loop over runs of numbers."""
    return a.view(np.dtype((np.void, a.shape[-1] * a.itemsize)))[..., 0]


def group_width(o: int, c_out: int) -> int:
    """Output columns o_g of a conv layer's strips: the smallest divisor of its o output
    columns with o_g C_out >= :data:`GROUP_VALUES` (or o).

    o_g = o lowers whole rows (the fewest, longest copies, but W/k times im2col's
    multiplications), o_g = 1 is im2col (k C-value runs, k^2 C multiplications per output);
    in between, (o_g + k - 1)/k times im2col's multiplications in products of o_g C_out
    columns, which OpenBLAS runs slowly below about 48 columns.
    """
    return next(g for g in range(1, o + 1) if o % g == 0 and (g * c_out >= GROUP_VALUES or g == o))


def _strips(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The strips R of a (N, H, W, C) into out (N, o_h, G, k, (o_g + k - 1) C):
    R[n, y, g, i] = a[n, y + i, g o_g : g o_g + o_g + k - 1] (output row y's strip g: the k
    input rows it reads, over the o_g + k - 1 input columns its o_g outputs read; one copy
    of a strided view, each run of (o_g + k - 1) C values one record of a void view,
    :func:`_pixels`: conv1's copy 1.5 ms against 2.0 ms as numbers, batch 500)."""
    n, h, w, c = a.shape
    k, strip = out.shape[3:]
    o_g = strip // c - k + 1
    windows = sliding_window_view(a.reshape(n, h, w * c), (k, strip), axis=(1, 2))
    np.copyto(_pixels(out), _pixels(windows[:, :, :: o_g * c]))
    return out


def _toeplitz(w: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The banded kernel T of w (k k C_in, C_out) into out (k, o_g + k - 1, C_in, o_g, C_out):
    T[i, x + j, c, x, d] = w[(i k + j) C_in + c, d], zero off the band."""
    k, _, c_in, _, c_out = out.shape
    out[:] = 0
    _band(out)[:] = w.reshape(k, k, c_in, 1, c_out)
    return out


def _fold_strips(d_rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The adjoint of :func:`_strips`: d_rows (N, o_h, G, k, (o_g + k - 1) C) added back where
    it was copied from, into out (N, H, W, C) (k G additions over runs of (o_g + k - 1) C
    values, in the order g = 0, 1, ..., i = 0, 1, ...)."""
    n, o_h, groups, k, strip = d_rows.shape
    step = strip - (k - 1) * out.shape[3]  # o_g C
    flat = out.reshape(n, out.shape[1], -1)
    flat[:] = 0
    for g in range(groups):
        for i in range(k):
            flat[:, i : i + o_h, g * step : g * step + strip] += d_rows[:, :, g, i]
    return out


def _band(t: np.ndarray) -> np.ndarray:
    """The view (..., k, k, C_in, o, C_out) of t (..., k, W, C_in, o, C_out) on its band,
    W = o + k - 1: element [..., i, j, c, x, d] is t[..., i, x + j, c, x, d]."""
    *lead, k, w, c_in, o, c_out = t.shape
    s = t.strides
    band = (*s[:-4], s[-4], s[-3], s[-4] + s[-2], s[-1])
    return as_strided(t, (*lead, k, w - o + 1, c_in, o, c_out), band)


def _patches(a: np.ndarray, out: np.ndarray) -> None:
    """The patches of a (N, H, W, C), rows contiguous, copied into out (N, o_h, o_w, k, k, C):
    out[n, y, x, i, j, c] = a[n, y + i, x + j, c]. Each patch row's k C values are one
    record of a void view (:func:`_pixels`: one copy of whole runs, not loops over k C
    values)."""
    k, s = out.shape[3], a.strides
    rows = as_strided(a, (*out.shape[:4], k * a.shape[-1]), (*s[:3], s[1], s[3]))
    np.copyto(_pixels(out.reshape(*out.shape[:4], -1)), _pixels(rows))


def dense_sizes(geometry: list[tuple], dense: Sequence[int], n_classes: int) -> tuple[int, ...]:
    """The dense layers' widths: the last pooled map's values (the first dense layer's fan-in),
    ``dense``, ``n_classes``."""
    *_, c, p_h, p_w = geometry[-1]
    return (p_h * p_w * c, *dense, int(n_classes))


def layer_shapes(geometry: list[tuple], kernel: int, sizes: Sequence[int]) -> list[tuple[int, int]]:
    """Every layer's weight shape (fan_in, fan_out): conv layers' (k k C_in, C_out), then the
    dense layers' of ``sizes`` (:func:`dense_sizes`)."""
    shapes = [(kernel * kernel * g[2], g[5]) for g in geometry]
    return shapes + list(zip(sizes[:-1], sizes[1:], strict=True))


def workspace_values(geometry: list[tuple], kernel: int, sizes: Sequence[int]) -> int:
    """Values the forward and backward passes hold per example (the workspace), at most: per
    conv layer the strips R and their gradient dR, a map of its input's size, the tap's
    patches (made only for a tap), z and delta, the pooled map and its kept slope (ReLU) or
    gradient; twice the dense layers' widths, their input f included. A bound, not the
    count: conv1 makes no dR, and the gradient of a pooled map goes into that map's own
    buffers (no map of an input's size, no second f): LeNet-5 (dense 120, 84) with a tap
    holds 89% of it. The noise pass and the per-example recorder size their chunks with it,
    the memory check its estimate (:func:`sgnoise.model.footprint`): a tighter count would
    move both."""
    k, total = kernel, sum(sizes) * 2
    for h_in, w_in, c_in, o_h, o_w, c, p_h, p_w in geometry:
        o_g = group_width(o_w, c)
        strips = o_h * o_w // o_g * k * (o_g + k - 1) * c_in
        total += 2 * strips + h_in * w_in * c_in + o_h * o_w * k * k * c_in
        total += 2 * o_h * o_w * c + 2 * p_h * p_w * c
    return total


def conv_geometry(
    image_shape: tuple[int, ...], channels: Sequence[int], kernel: int
) -> list[tuple[int, int, int, int, int, int, int, int]]:
    """Per conv block: (H_in, W_in, C_in, H_out, W_out, C_out, H_pooled, W_pooled).

    Raises
    ------
    ValueError
        One line naming the setting and the fix: zero (or non-integer) channels,
        a kernel below 1 or larger than its input, a pooling that leaves no pixels.
    """
    if len(image_shape) != 3 or not all(isinstance(s, Integral) and s >= 1 for s in image_shape):
        raise ValueError(f"image_shape must be (height, width, channels) >= 1, got {image_shape}")
    if not channels or not all(isinstance(c, Integral) and c >= 1 for c in channels):
        raise ValueError(
            f"--channels must list conv layers' output channels, each >= 1, got "
            f"{list(channels)}: e.g. --channels 6 16"
        )
    if not isinstance(kernel, Integral) or kernel < 1:
        raise ValueError(f"--kernel must be an integer >= 1, got {kernel!r}: e.g. --kernel 5")
    h, w, c_in = image_shape
    geometry = []
    for layer, c in enumerate(channels):
        o_h, o_w = h - kernel + 1, w - kernel + 1
        if o_h < 2 or o_w < 2:
            what = (
                f"--kernel {kernel} is larger than conv{layer + 1}'s {h}x{w} input ("
                if o_h < 1 or o_w < 1
                else f"conv{layer + 1}'s {o_h}x{o_w} output leaves no pixels after 2x2 pooling "
                f"(--kernel {kernel}, "
            )
            largest = _largest_kernel(image_shape, len(channels))
            fix = (
                f"use --kernel {largest}{' or less' if largest > 1 else ''}, or fewer --channels"
                if largest
                else f"use fewer --channels (a {image_shape[0]}x{image_shape[1]} image holds "
                f"{_most_layers(image_shape)} conv layers at --kernel 1)"
            )
            raise ValueError(
                f"{what}image {image_shape[0]}x{image_shape[1]}, "
                f"--channels {' '.join(map(str, channels))}): {fix}"
            )
        geometry.append((h, w, c_in, o_h, o_w, int(c), o_h // 2, o_w // 2))
        h, w, c_in = o_h // 2, o_w // 2, int(c)
    return geometry


def _fits(image_shape: tuple[int, ...], layers: int, kernel: int) -> bool:
    """Whether ``layers`` conv blocks of ``kernel`` each leave at least one pooled pixel."""
    h, w = image_shape[:2]
    for _ in range(layers):
        h, w = (h - kernel + 1) // 2, (w - kernel + 1) // 2
        if h < 1 or w < 1:
            return False
    return True


def _largest_kernel(image_shape: tuple[int, ...], layers: int) -> int:
    """The largest kernel with which ``layers`` conv blocks fit the image (0: none does; a
    smaller kernel leaves every layer a larger output, so every smaller one fits too)."""
    return next((k for k in range(min(image_shape[:2]), 0, -1) if _fits(image_shape, layers, k)), 0)


def _most_layers(image_shape: tuple[int, ...]) -> int:
    """The most conv blocks of kernel 1 that leave the image a pooled pixel."""
    layers = 0
    while _fits(image_shape, layers + 1, 1):
        layers += 1
    return layers
