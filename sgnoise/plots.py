"""Plots drawn from saved results alone (``results.json`` + ``noise_samples.npz``).

Redraw a run's PNGs without retraining:  python -m sgnoise.plots MNIST_lr/run-...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sgnoise.results import load_results  # noqa: E402

DPI = 150
COLORS = {"relu": "tab:blue", "sigmoid": "tab:orange", "tanh": "tab:green"}


def _select(records, **where):
    return [r for r in records if all(r.get(k) == v for k, v in where.items())]


def _band(ax, x, ys, color, label, dashed=False, ci=None):
    """Mean over seeds as a line; min-max over seeds (or the CI for one seed) as a band."""
    ys = np.asarray(ys, float)
    mean = np.nanmean(ys, axis=0)
    ax.plot(x, mean, "--" if dashed else "-o", color=color, label=label, ms=3, lw=1.5)
    if dashed:
        return
    if ys.shape[0] > 1:
        ax.fill_between(x, np.nanmin(ys, axis=0), np.nanmax(ys, axis=0), color=color, alpha=0.2)
    elif ci is not None:
        lo, hi = (np.asarray(c, float)[0] for c in ci)
        ax.fill_between(x, lo, np.minimum(hi, 4), color=color, alpha=0.2)


def _finish(ax, xlabel, ylabel, title, gauss=True):
    if gauss:
        ax.axhline(2.0, color="k", lw=0.8, ls=":", label="Gaussian (α = 2)")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _series(rows, key, xkey):
    xs = sorted({r[xkey] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    table = np.full((len(seeds), len(xs)), np.nan)
    for r in rows:
        table[seeds.index(r["seed"]), xs.index(r[xkey])] = r[key]
    return np.array(xs), table


def _title(doc, what):
    c = doc["config"]
    return f"{what} — {c['dataset']}, {c['optimizer']}, batch {c['batch_size']}"


def plot_alpha_vs_epoch(doc: dict, path: str | Path) -> Path:
    """Pooled and standardised alpha of train/test noise over epochs, with surrogates."""
    recs = _select(doc["records"], layer="all", mode="frozen")
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    panels = [
        (axes[0, 0], "train", "alpha", "pooled α, train noise"),
        (axes[0, 1], "test", "alpha", "pooled α, test noise"),
        (axes[1, 0], "train", "alpha_std", "standardised α, train noise"),
    ]
    for ax, split, key, title in panels:
        for act in sorted({r["activation"] for r in recs}):
            rows = _select(recs, split=split, activation=act)
            x, ys = _series(rows, key, "epoch")
            ci = (_series(rows, key + "_lo", "epoch")[1], _series(rows, key + "_hi", "epoch")[1])
            _band(ax, x, ys, COLORS.get(act), f"{act}: SGN", ci=ci)
            _, sur = _series(rows, key + "_surrogate", "epoch")
            _band(ax, x, sur, COLORS.get(act), f"{act}: Gaussian surrogate", dashed=True)
        _finish(ax, "epoch", "tail index α", title)
    ax = axes[1, 1]
    for act in sorted({r["activation"] for r in recs}):
        rows = _select(recs, split="train", activation=act)
        x, loss = _series(rows, "loss", "epoch")
        _band(ax, x, loss, COLORS.get(act), f"{act}: training loss")
        _, acc = _series(rows, "test_acc", "epoch")
        _band(ax, x, acc, COLORS.get(act), f"{act}: test accuracy", dashed=True)
    _finish(ax, "epoch", "cross-entropy (nats) / accuracy (fraction)", "training", gauss=False)
    n_seeds = len({r["seed"] for r in recs})
    band = "band: min–max over seeds" if n_seeds > 1 else "band: 95% CI"
    fig.suptitle(_title(doc, f"SGN tail index over training ({n_seeds} seed(s); {band})"))
    return _save(fig, path)


def plot_alpha_vs_lr(doc: dict, path: str | Path) -> Path:
    """Final pooled and standardised alpha against the learning rate; diverged runs marked."""
    final = max(r["epoch"] for r in doc["records"])
    recs = _select(doc["records"], layer="all", mode="frozen", split="train", epoch=final)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, title in (
        (axes[0], "alpha", "pooled α"),
        (axes[1], "alpha_std", "standardised α"),
    ):
        for act in sorted({r["activation"] for r in doc["runs"]}):
            rows = _select(recs, activation=act)
            if rows:
                x, ys = _series(rows, key, "lr")
                ci = (_series(rows, key + "_lo", "lr")[1], _series(rows, key + "_hi", "lr")[1])
                _band(ax, x, ys, COLORS.get(act), f"{act}: SGN", ci=ci)
                _, sur = _series(rows, key + "_surrogate", "lr")
                _band(ax, x, sur, COLORS.get(act), f"{act}: Gaussian surrogate", dashed=True)
            bad = [r["lr"] for r in _select(doc["runs"], activation=act, diverged=True)]
            if bad:
                ax.plot(
                    bad,
                    [2.3] * len(bad),
                    "x",
                    color=COLORS.get(act),
                    ms=9,
                    label=f"{act}: diverged (NaN/inf)",
                )
        _finish(ax, "learning rate η", "tail index α", f"{title}, train noise, epoch {final:g}")
    fig.suptitle(_title(doc, "SGN tail index against the learning rate"))
    return _save(fig, path)


def plot_noise_histogram(noise: np.ndarray, label: str, path: str | Path) -> Path:
    """The paper's picture: SGN histogram on a log density scale against a Gaussian."""
    noise = np.asarray(noise, float)
    noise = noise[np.isfinite(noise)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sd = noise.std()
    lim = np.quantile(np.abs(noise), 0.9999)
    bins = np.linspace(-lim, lim, 201)
    ax.hist(noise, bins=bins, density=True, color="tab:blue", alpha=0.6, label="SGN")
    grid = np.linspace(-lim, lim, 400)
    ax.plot(
        grid,
        np.exp(-0.5 * (grid / sd) ** 2) / (sd * np.sqrt(2 * np.pi)),
        "k--",
        label="Gaussian, same variance",
    )
    ax.set_yscale("log")
    ax.set_ylim(bottom=1.0 / (len(noise) * (bins[1] - bins[0])))
    ax.set(
        xlabel="gradient noise value (minibatch − full gradient)",
        ylabel="density (log scale)",
        title=f"SGN histogram: {label}",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_run(folder: str | Path) -> list[Path]:
    """Redraw every PNG of a run folder from its saved results."""
    folder = Path(folder)
    doc = load_results(folder)
    study = doc["config"]["study"]
    out = [
        plot_alpha_vs_epoch(doc, folder / "alpha_vs_epoch.png")
        if study == "activation"
        else plot_alpha_vs_lr(doc, folder / "alpha_vs_lr.png")
    ]
    samples = folder / "noise_samples.npz"
    if samples.is_file():
        with np.load(samples) as f:
            for key in f.files:
                out.append(plot_noise_histogram(f[key], key, folder / f"histogram_{key}.png"))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Redraw a run's PNGs from its results.json.")
    parser.add_argument("folders", nargs="+", help="run folders, e.g. MNIST_lr/run-...")
    for folder in parser.parse_args(argv).folders:
        for path in plot_run(folder):
            print(path)


if __name__ == "__main__":
    main()
