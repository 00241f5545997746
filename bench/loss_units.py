"""Why the squared error has more sparse coordinates and lighter per-example tails: its ReLU units.

python bench/loss_units.py [--epochs 10] [--seeds 0 1] [--init paper] [--hidden 100] [--lr 0.1]
                           [--losses cross_entropy mse]

Trains the ReLU MLP 784-<hidden>-10 on mnist10k with each loss (SGD at --lr, b = 500) and
prints, after 0, 1, 2, 5 and the last epoch, what docs/findings.md quotes for the
squared-error loss: how many training images the median hidden unit is active on; the share
of units active on fewer than 5% of them (their output-layer coordinates h_p e_q are then
sparse); the share never active; the mean output on the nine wrong classes; the largest of
an image's ten output errors e = softmax(z) - t (cross-entropy) or z - t (mse), as the
share of images where it is below 0.05 (fitted) and its 10/50/90/99% quantiles; and the
training accuracy.
"""

import _root  # noqa: F401, I001  (the project root on sys.path: runs without PYTHONPATH)

import argparse

import numpy as np

from sgnoise.data import load
from sgnoise.mlp import LOSSES, MLP, output_loss
from sgnoise.noise import shuffled_minibatches
from sgnoise.optim import SGD

BATCH_SIZE, RARE = 500, 0.05


def describe(model: MLP, x: np.ndarray, y: np.ndarray) -> str:
    """The hidden units' activity and the output errors of ``model`` (under its own loss) on
    (x, y), one line."""
    _, h, z = model._forward(x, model._workspace(x.shape[:-1])[0])  # the network's own pass
    target = np.eye(z.shape[1], dtype=z.dtype)[y]
    error = z.copy()  # the loss's own output error: delta_L = error / n (sgnoise.mlp)
    output_loss(model.loss_name, error, y)
    error *= len(y)
    active = (h > 0).mean(axis=0)
    largest = np.abs(error).max(axis=1)
    q = " ".join(f"{v:.3f}" for v in np.quantile(largest, (0.1, 0.5, 0.9, 0.99)))
    return (
        f"median unit active on {np.median(active):.2f} of the images, rarely active "
        f"{np.mean(active < RARE):.2f}, never {np.mean(active == 0):.2f}; wrong outputs "
        f"{z[target == 0].mean():+.2f}; largest error < 0.05: {np.mean(largest < 0.05):.2f}, "
        f"10/50/90/99%: {q}; train accuracy {np.mean(z.argmax(axis=1) == y):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--init", default="paper", help="paper (N(0, 0.1^2)), he, lecun")
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--losses", nargs="+", choices=LOSSES, default=list(LOSSES))
    args = parser.parse_args()
    data = load("mnist10k")
    x = data.x_train.reshape(len(data.x_train), -1).astype(np.float32)
    y = data.y_train.astype(np.intp)
    shown = sorted({0, 1, 2, 5, args.epochs} & set(range(args.epochs + 1)))
    for loss in args.losses:
        for seed in args.seeds:
            model = MLP((x.shape[1], args.hidden, 10), "relu", init=args.init, loss=loss, seed=seed)
            optimizer, rng = SGD(args.lr), np.random.default_rng(seed)
            print(f"== {loss}, 784-{args.hidden}-10, init {args.init}, lr {args.lr:g}, seed {seed}")
            for epoch in range(args.epochs + 1):
                if epoch in shown:
                    print(f"  epoch {epoch}: {describe(model, x, y)}")
                if epoch < args.epochs:
                    for xb, yb in shuffled_minibatches(x, y, BATCH_SIZE, rng):
                        optimizer.step(model.params, model.loss_and_grads(xb, yb)[1])


if __name__ == "__main__":
    main()
