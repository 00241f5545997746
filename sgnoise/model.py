"""What the noise pass, the per-example recorder, the optimisers and training need of a network.

Both networks, :class:`sgnoise.mlp.MLP` and :class:`sgnoise.cnn.CNN`, are a
:class:`Model` (:class:`sgnoise.mlp.Network`); nothing outside :func:`make_model` asks
which one it has.

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

from collections.abc import Sequence

import numpy as np

from sgnoise import cnn
from sgnoise.mlp import MLP, Network, workspace_values

#: The networks a study can train (``MODEL`` / ``--model``).
MODELS = ("mlp", "cnn")

#: What the noise pass, the per-example recorder, the optimisers and training use of a network
#: (attributes and methods: :class:`sgnoise.mlp.Network`, the base of both networks).
Model = Network


def footprint(
    name: str,
    image_shape: tuple[int, int, int],
    n_classes: int,
    *,
    hidden: Sequence[int],
    channels: Sequence[int] = (6, 16),
    kernel: int = 5,
) -> tuple[int, int]:
    """(parameters, activations_per_example) of the network :func:`make_model` builds, without
    building it (no weights drawn): what a memory check needs before any training.

    Raises
    ------
    ValueError
        A conv geometry the images cannot hold (:func:`sgnoise.cnn.conv_geometry`'s line).
    """
    if name == "mlp":
        sizes = _mlp_sizes(image_shape, hidden, n_classes)
        shapes, values = list(zip(sizes[:-1], sizes[1:], strict=False)), workspace_values(sizes)
    elif name == "cnn":
        geometry = cnn.conv_geometry(image_shape, channels, kernel)
        sizes = cnn.dense_sizes(geometry, hidden, n_classes)
        shapes = cnn.layer_shapes(geometry, kernel, sizes)
        values = cnn.workspace_values(geometry, kernel, sizes)
    else:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {name!r}")
    return sum(a * b for a, b in shapes), values


def _mlp_sizes(image_shape: tuple[int, int, int], hidden: Sequence[int], n_classes: int):
    """The widths of the MLP :func:`make_model` builds: the image's values, hidden, classes."""
    return (int(np.prod(image_shape)), *hidden, n_classes)


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
    if name == "mlp":
        return MLP(_mlp_sizes(image_shape, hidden, n_classes), activation, init=init, loss=loss,
                   seed=seed)  # fmt: skip
    if name == "cnn":
        return cnn.CNN(
            image_shape, activation, channels=channels, kernel=kernel, dense=hidden,
            n_classes=n_classes, init=init, loss=loss, seed=seed,
        )  # fmt: skip
    raise ValueError(f"model must be one of {', '.join(MODELS)}, got {name!r}")
