"""Do per-example gradients have finite variance? Tail exponents at init and after training.

Trains the paper's 784-100-10 MLP (no biases, N(0, 0.1^2) initialisation, SGD)
and, at initialisation and after EPOCHS epochs, computes the per-example
gradients of the training set at a seeded sample of COORDS_PER_LAYER
coordinates per layer (:func:`sgnoise.per_example.per_example_gradients`) and
summarises their tails per layer and pooled (:func:`sgnoise.per_example.summarise`).
Prints one row per (dataset, activation, epoch, layer), then the cost of one
measurement against one training epoch (wall clock: noisy on a shared machine).
Edit the constants, or name data sets on the command line:
python bench/per_example_tails.py mnist10k fashion_mnist
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from sgnoise.data import DATASETS as ALL_DATASETS
from sgnoise.data import load  # noqa: E402
from sgnoise.mlp import MLP  # noqa: E402
from sgnoise.noise import shuffled_minibatches  # noqa: E402
from sgnoise.optim import make_optimizer  # noqa: E402
from sgnoise.per_example import COORDS_PER_LAYER, per_example_gradients, summarise  # noqa: E402

DATASETS = ("mnist10k",)
ACTIVATIONS = ("relu", "sigmoid")
EPOCHS, LR, BATCH_SIZE, SEED = 5, 0.1, 500, 0
REPEATS = 5  # the cost table reports the fastest of this many runs of each step


def train_epoch(model: MLP, opt, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
    """One epoch of minibatch SGD, as sgnoise.training trains."""
    grads = [np.empty_like(p) for p in model.params]
    for xb, yb in shuffled_minibatches(x, y, BATCH_SIZE, rng):
        model.batched_loss_and_grads(xb, yb, out=grads)
        opt.step(model.params, grads)


def summaries(model: MLP, x: np.ndarray, y: np.ndarray) -> dict[str, dict]:
    """{"all" or layer: summary} of the per-example gradients of (x, y)."""
    pe = per_example_gradients(model, x, y, coords_per_layer=COORDS_PER_LAYER, seed=SEED)
    out = {"all": summarise(pe.matrix, seed=SEED)}
    return out | {
        layer: summarise(pe.matrix[:, cols], seed=SEED) for layer, cols in pe.layers.items()
    }


def row(dataset: str, activation: str, epoch: int, loss: float, layer: str, s: dict) -> str:
    q = s["tail_exponent_quantiles"]
    low, high = s["fraction_infinite_variance_ci"]
    return (
        f"{dataset:<14}{activation:<8}{epoch:>5} {loss:>6.3f}  {layer:<7}"
        f"{s['n_kept']:>5}/{s['n_columns']:<5}"
        f"{q['5']:>6.2f}{q['25']:>6.2f}{q['50']:>6.2f}{q['75']:>6.2f}{q['95']:>6.2f}  "
        f"{s['fraction_infinite_variance']:>5.3f} [{low:.3f}, {high:.3f}]  "
        f"{s['fraction_moment_gamma_negative']:>5.2f}"
    )


def fastest(step) -> float:
    """Seconds of the fastest of REPEATS runs of step()."""
    seconds = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def cost(name: str) -> None:
    """One measurement's two steps against one training epoch, ReLU net at initialisation."""
    data = load(name)
    x, y = data.x_train, data.y_train
    model = MLP(seed=SEED)
    pe = per_example_gradients(model, x, y, coords_per_layer=COORDS_PER_LAYER, seed=SEED)
    epoch = fastest(
        lambda: train_epoch(model.copy(), make_optimizer("sgd", LR), x, y, np.random.default_rng(0))
    )
    gradients = fastest(
        lambda: per_example_gradients(model, x, y, coords_per_layer=COORDS_PER_LAYER, seed=SEED)
    )
    summarised = fastest(lambda: summarise(pe.matrix))
    print(
        f"\n{name}, ReLU at init, {pe.matrix.shape[0]:,} x {pe.matrix.shape[1]:,} per-example "
        f"matrix; fastest of {REPEATS} (wall clock, shared 2-core machine: noisy):"
    )
    print(
        f"  one epoch {epoch:.3f} s, per_example_gradients {gradients:.3f} s, summarise "
        f"{summarised:.3f} s: the measurement costs {(gradients + summarised) / epoch:.1f} epochs"
    )


def main(datasets: tuple[str, ...]) -> None:
    print(
        f"784-100-10 MLP, SGD lr {LR}, batch {BATCH_SIZE}, seed {SEED}; per-example gradients of "
        f"the training set at {COORDS_PER_LAYER} sampled coordinates per layer (all if fewer);"
    )
    print("Hill exponent of |g - mean| per coordinate, k = floor(sqrt(non-zero values)), 95% CIs")
    header = (
        f"{'dataset':<14}{'act':<8}{'epoch':>5} {'loss':>6}  {'layer':<7}{'kept':>11}"
        f"{'q5':>6}{'q25':>6}{'q50':>6}{'q75':>6}{'q95':>6}  {'inf.var [95% CI]':<22} "
        f"{'gM<0':>5}"
    )
    print(header)
    print("-" * len(header))
    for name in datasets:
        data = load(name)
        x, y = data.x_train, data.y_train
        for activation in ACTIVATIONS:
            model, opt = MLP(activation=activation, seed=SEED), make_optimizer("sgd", LR)
            rng = np.random.default_rng(SEED)
            for epoch in range(EPOCHS + 1):
                if epoch:
                    train_epoch(model, opt, x, y, rng)
                if epoch in (0, EPOCHS):
                    loss = model.loss(x, y)
                    for layer, s in summaries(model, x, y).items():
                        print(row(name, activation, epoch, loss, layer, s))
    for name in datasets:
        cost(name)


if __name__ == "__main__":
    names = tuple(sys.argv[1:]) or DATASETS
    if set(names) - set(ALL_DATASETS):
        sys.exit(f"usage: python {sys.argv[0]} [DATASET ...] (any of {', '.join(ALL_DATASETS)})")
    main(names)
