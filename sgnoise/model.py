"""What the noise pass, the per-example recorder, the optimisers and training need of a network.

Both networks, :class:`sgnoise.mlp.MLP` and :class:`sgnoise.cnn.CNN`, follow
:class:`Model`; nothing outside :func:`make_model` asks which one it has.

A model is a list of parameter arrays grouped into named layers. A layer's
weight is a 2-D array W of shape (fan_in, fan_out) (a convolution's is its
kernel as a matrix, one row per (kernel row, kernel column, input channel)),
its optional bias a 1-D array of fan_out values, and every layer's output is
its input times W at each of P positions (P = 1 for a dense layer, the output
pixels for a convolution):

    z[k, p, :] = h[k, p, :] W (+ b),    d loss / d W = sum_k sum_p outer(h[k, p], delta[k, p]),

with h the layer's input rows (a dense layer's input, a convolution's
patches) and delta = d loss / d z. ``batched_loss_and_grads``'s ``tap`` hands
out h and delta with that position axis, which is all :mod:`sgnoise.per_example`
needs for each example's own gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

#: The networks a study can train (``MODEL`` / ``--model``).
MODELS = ("mlp", "cnn")

#: ``tap(layer, h, delta)``: a layer's inputs (..., b, P, fan_in) and errors (..., b, P, fan_out).
Tap = Callable[[int, np.ndarray, np.ndarray], None]


@runtime_checkable
class Model(Protocol):
    """A network with softmax cross-entropy loss, as the rest of sgnoise uses it.

    Attributes
    ----------
    params : list of ndarray
        Every parameter array, layer by layer (W, then b if the layer has one);
        weights are 2-D (fan_in, fan_out), biases 1-D. Updated in place by the optimisers.
    layer_names : list of str
        The layers, input first.
    dtype : numpy dtype
        float32 or float64: of the parameters, activations and gradients.
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

    @property
    def n_inputs(self) -> int: ...

    @property
    def n_classes(self) -> int: ...

    @property
    def activations_per_example(self) -> int: ...

    @property
    def architecture(self) -> str:
        """The layers in one line, e.g. ``784-100-10``."""
        ...

    def layer_params(self, layer: str) -> list[int]:
        """Indices into ``params`` of one layer's arrays: [W] or [W, b]."""
        ...

    def check_inputs(
        self, x: np.ndarray, y: np.ndarray | None = None, *, finite: bool = True
    ) -> None:
        """Raise ValueError unless x is finite, (n >= 1, n_inputs), and y ints in [0, n_classes)."""
        ...

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
        """Loss and gradients of B minibatches at once, x of shape (B, b, n_inputs) or
        (b, n_inputs), without input checks (see :meth:`sgnoise.mlp.MLP.batched_loss_and_grads`)."""
        ...

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Mean loss on (x, y) and its gradient for every parameter, inputs checked."""
        ...

    def loss(self, x: np.ndarray, y: np.ndarray) -> float: ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float: ...

    def copy(self) -> Model: ...


def make_model(
    name: str,
    image_shape: tuple[int, int, int],
    n_classes: int,
    activation: str,
    *,
    hidden: Sequence[int],
    channels: Sequence[int] = (6, 16),
    kernel: int = 5,
    init: str = "paper",
    loss: str = "cross_entropy",
    seed: int = 0,
) -> Model:
    """The network ``name`` for images of ``image_shape`` (height, width, channels).

    ``"mlp"``: :class:`~sgnoise.mlp.MLP` with layers n_inputs-hidden-n_classes (the
    images flattened); ``"cnn"``: :class:`~sgnoise.cnn.CNN` with ``channels``,
    ``kernel`` and ``hidden`` as its dense widths. Both without biases, with the
    initialisation ``init`` and the loss ``loss`` (:class:`~sgnoise.mlp.MLP`).
    """
    from sgnoise.cnn import CNN  # noqa: PLC0415  (cnn imports this module)
    from sgnoise.mlp import MLP  # noqa: PLC0415

    if name == "mlp":
        sizes = (int(np.prod(image_shape)), *hidden, n_classes)
        return MLP(sizes, activation, init=init, loss=loss, seed=seed)
    if name == "cnn":
        return CNN(
            image_shape, activation, channels=channels, kernel=kernel, dense=hidden,
            n_classes=n_classes, init=init, loss=loss, seed=seed,
        )  # fmt: skip
    raise ValueError(f"model must be one of {', '.join(MODELS)}, got {name!r}")
