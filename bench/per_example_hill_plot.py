"""Is a per-example gradient's tail a power law? Hill exponents against k, after training.

A power tail gives the same Hill exponent for every k in its range; a law that
only looks heavy over part of its range (bounded, lognormal-like) gives
exponents that change with k. Trains the 784-100-10 MLP for EPOCHS epochs, takes
the per-example gradients of one layer (as bench/per_example_tails.py) and prints,
for k = sqrt(n) times 1/8 ... 8 (the same k for every column), the median
exponent over the columns, over the columns called "infinite variance" at the
default k, and the fraction called. Then, for the called columns: the share of
the column's sum of squared deviations held by its sqrt(n) largest values, the
share of misclassified examples among them, and how many of them a minibatch
of BATCH_SIZE holds on average.
Run: python bench/per_example_hill_plot.py [dataset]   (default fashion_mnist)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.per_example_tails import train_epoch  # noqa: E402
from sgnoise.data import DATASETS as ALL_DATASETS
from sgnoise.data import load  # noqa: E402
from sgnoise.mlp import MLP  # noqa: E402
from sgnoise.optim import make_optimizer  # noqa: E402
from sgnoise.per_example import (  # noqa: E402
    COORDS_PER_LAYER,
    per_example_gradients,
    tail_exponents,
)

DATASET, ACTIVATION, LAYER = "fashion_mnist", "relu", "layer2"
EPOCHS, LR, BATCH_SIZE, SEED = 5, 0.1, 500, 0
K_FACTORS = (1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8)


def main(dataset: str) -> None:
    data = load(dataset)
    x, y = data.x_train, data.y_train
    model, opt = MLP(activation=ACTIVATION, seed=SEED), make_optimizer("sgd", LR)
    rng = np.random.default_rng(SEED)
    for _ in range(EPOCHS):
        train_epoch(model, opt, x, y, rng)
    pe = per_example_gradients(model, x, y, coords_per_layer=COORDS_PER_LAYER, seed=SEED)
    grads = pe.matrix[:, pe.layers[LAYER]]
    n = grads.shape[0]
    called = tail_exponents(grads).infinite_variance
    print(
        f"{dataset}, {ACTIVATION}, after {EPOCHS} epochs, {LAYER}: {grads.shape[1]} columns, "
        f"{called.sum()} called infinite-variance at the default k = floor(sqrt(non-zero))"
    )
    print(f"{'k':>6} {'median xi':>10} {'median xi, called':>18} {'fraction called':>16}")
    for factor in K_FACTORS:
        k = int(factor * np.sqrt(n))
        tails = tail_exponents(grads, k=k)
        print(
            f"{k:>6} {np.nanmedian(tails.exponent):>10.2f} "
            f"{np.nanmedian(tails.exponent[called]):>18.2f} "
            f"{np.mean(tails.infinite_variance[tails.kept]):>16.3f}"
        )
    top = int(np.sqrt(n))
    deviations = np.square(grads[:, called] - grads[:, called].mean(axis=0))
    order = np.argsort(deviations, axis=0)[-top:]
    share = np.take_along_axis(deviations, order, axis=0).sum(axis=0) / deviations.sum(axis=0)
    wrong = model.predict(x) != y
    print(
        f"called columns: their {top} largest values ({top / n:.2%} of the examples) hold a "
        f"median {np.median(share):.1%} of the sum of squared deviations; "
        f"{wrong[order].mean():.1%} of them are misclassified (all examples: {wrong.mean():.1%}); "
        f"a minibatch of {BATCH_SIZE} holds {BATCH_SIZE * top / n:.1f} of them on average"
    )


if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else DATASET
    if len(sys.argv) > 2 or name not in ALL_DATASETS:
        sys.exit(f"usage: python {sys.argv[0]} [DATASET] (one of {', '.join(ALL_DATASETS)})")
    main(name)
