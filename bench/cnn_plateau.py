"""Why the sigmoid conv net does not train at η = 0.1: how much of the image reaches its output.

For the conv net of the studies (28x28 -> conv 5x5 (6) -> pool -> conv 5x5 (16) -> pool ->
120 -> 10, no biases), each activation and initialisation, at initialisation on the first
2,000 mnist10k training images: per layer, the share of its output that varies with the image
(the standard deviation over the images, averaged over units, over the RMS) and the relative
gradient |g| / |W| of the full-batch loss. Then EPOCHS epochs of plain SGD at LR, batch 500,
as the studies train, printing the training loss (on those 2,000 images) and the test
accuracy after each epoch. docs/findings.md quotes it ("Why the sigmoid conv net does not
train"). Wall clock: about 5 s an epoch and net at a load of 7.
python bench/cnn_plateau.py [--activations relu sigmoid tanh] [--inits paper he] [--lr 0.1]
    [--epochs 6]
"""

import _root  # noqa: F401, I001  (the project root on sys.path: runs without PYTHONPATH)

import argparse

import numpy as np

from sgnoise.cnn import CNN
from sgnoise.data import load
from sgnoise.mlp import INITS
from sgnoise.noise import shuffled_minibatches
from sgnoise.optim import SGD

N_PROBE = 2000  # training images of the measurement at initialisation and of the loss
BATCH_SIZE = 500


def image_share(net: CNN, x: np.ndarray) -> list[float]:
    """Per layer (conv1 and conv2 after pooling, the dense layers, the logits): the standard
    deviation over the images of each unit's output, averaged over units, over the RMS."""
    blocks, dense = net._forward(x, {})  # the network's own forward pass, kept per layer
    outputs = [block[-1] for block in blocks] + list(dense[1:])  # a block ends with its a_l
    return [
        float(o.reshape(len(x), -1).std(axis=0).mean() / np.sqrt(np.mean(o**2))) for o in outputs
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--activations", nargs="+", default=["relu", "sigmoid", "tanh"])
    parser.add_argument("--inits", nargs="+", default=["paper"], choices=INITS)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load("mnist10k")
    probe_x, probe_y = data.x_train[:N_PROBE], data.y_train[:N_PROBE]
    for activation in args.activations:
        for init in args.inits:
            net = CNN(data.image_shape, activation, init=init, seed=args.seed)
            _, grads = net.loss_and_grads(probe_x, probe_y)
            share = image_share(net, probe_x)
            ratio = [
                np.linalg.norm(g) / np.linalg.norm(w)
                for g, w in zip(grads, net.params, strict=True)
            ]
            print(f"== {activation}, init {init}, lr {args.lr:g}, seed {args.seed}")
            print("  at initialisation: image-dependent share of the output / |g|/|W|:")
            rows = zip(net.layer_names, share, ratio, strict=True)
            print("   ", ", ".join(f"{name} {s:.3f} / {r:.4f}" for name, s, r in rows))
            optimizer, rng = SGD(args.lr), np.random.default_rng(args.seed)
            for epoch in range(1, args.epochs + 1):
                for xb, yb in shuffled_minibatches(data.x_train, data.y_train, BATCH_SIZE, rng):
                    optimizer.step(net.params, net.loss_and_grads(xb, yb)[1])
                print(
                    f"  epoch {epoch} (step {epoch * len(data.x_train) // BATCH_SIZE}): "
                    f"training loss {net.loss(probe_x, probe_y):.4f}, "
                    f"test accuracy {net.accuracy(data.x_test, data.y_test):.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
