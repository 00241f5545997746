"""Plots drawn from saved results alone (``results.json`` + ``noise_samples.npz``).

Every function takes the loaded results (``{"config", "records", "runs"}`` as
returned by :func:`sgnoise.results.load_results`, or built in memory) and writes
one PNG (Agg backend, 150 dpi). Conventions in every α plot:

- one colour per activation; solid line: the SGN tail index α, mean over seeds;
- shaded band: min-max over seeds, or, with one seed, the estimator's 95%
  confidence interval (the caption says which);
- dashed line, same colour: the same estimator on a Gaussian surrogate with the
  same per-coordinate variances (the level pooling alone produces);
- dotted black line: α = 2, the Gaussian;
- x at the top of a panel: a run that diverged (NaN/inf loss or gradient) there.
- open circle with a short arrow (up or down, a fixed length in points, inside its
  panel): a calibrated reading outside its calibration curve, a bound, not an estimate.

NaN values (diverged or undefined) leave gaps; they are never drawn as numbers.
Each study's set of PNGs is one function (:func:`activation_plots`,
:func:`lr_plots`), named by its row in :data:`sgnoise.studies.STUDIES`.
Redraw a run's PNGs without retraining: ``python replot.py MNIST_lr/run-...``.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial, wraps
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.transforms import offset_copy  # noqa: E402
from scipy import stats  # noqa: E402

from sgnoise.pool import Pool  # noqa: E402
from sgnoise.results import (  # noqa: E402
    BATCH_SCAN,
    COMPLETE,
    DEGENERATE,
    FROZEN,
    IN_FLIGHT,
    PER_EXAMPLE,
    POOLED,
    POOLED_TRAIN,
    RESAMPLED,
    UNTRAINED_ACCURACY,
    atomic_write,
    load_noise_samples,
    load_results,
    read_status,
    select,
    untrained,
    write_status,
)
from sgnoise.run_config import RUN_KEYS  # noqa: E402
from sgnoise.studies import STUDIES  # noqa: E402
from sgnoise.tail_index import MIN_COLUMN_ROWS  # noqa: E402

DPI = 150
COLORS = {"relu": "tab:blue", "sigmoid": "tab:orange", "tanh": "tab:green"}
STYLE = {"font.size": 10, "axes.titlesize": 11, "legend.fontsize": 9, "figure.titlesize": 12}
STATISTICS = (("alpha", "pooled α"), ("alpha_std", "standardised α (per coordinate)"))
SPLITS = (("train", "train noise"), ("test", "test noise"))


def _styled(plot: Callable[..., Path]) -> Callable[..., Path]:
    """Draw under :data:`STYLE` (readable font sizes) and close the figure afterwards."""

    @wraps(plot)
    def wrapper(*args: Any, **kwargs: Any) -> Path:
        with plt.rc_context(STYLE):
            return plot(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class XAxis:
    """What the plots put on the x axis: one column of the records (and runs).

    Attributes
    ----------
    label : str
        Axis label (``{loss}``: the loss's unit); its last word is the quantity's symbol.
    ticks : {"epochs", "linear", "log2", "values", "decreasing"}
        Ticks at whole epochs; linear (log beyond three decades); log-2 with a tick at
        each value; a tick at each value; linear, decreasing to the right.
    over_training : bool
        True: a plot shows every checkpoint. False (a swept quantity): the last
        checkpoint's rows only, one point per run.
    diverged_at : str
        The runs' key that places a diverged run's marker.
    """

    label: str
    ticks: str
    over_training: bool
    diverged_at: str

    @property
    def symbol(self) -> str:
        return self.label.split()[-1]


#: Every x axis of the plots, by the records' column it shows.
XAXES = {
    "epoch": XAxis("epoch", "epochs", over_training=True, diverged_at="diverged_epoch"),
    "loss": XAxis("training loss at the checkpoint ({loss})", "decreasing", over_training=True,
                  diverged_at="diverged_epoch"),
    "lr": XAxis("learning rate η", "linear", over_training=False, diverged_at="lr"),
    "batch_size": XAxis("training batch size b", "log2", over_training=False,
                        diverged_at="batch_size"),
    "width": XAxis("hidden width w", "log2", over_training=False, diverged_at="width"),
    "depth": XAxis("number of hidden layers d", "values", over_training=False,
                   diverged_at="depth"),
    "measured_batch": XAxis("measured batch size B", "log2", over_training=False,
                            diverged_at="measured_batch"),
}  # fmt: skip


def _x_axis(ax, results: Mapping, x: str, values: Sequence[float] | None = None) -> None:
    """Label ``ax``'s x axis for ``x`` (:data:`XAXES`), with its scale and ticks at
    ``values`` (by default the runs' values of ``x``)."""
    axis = XAXES[x]
    if values is None:
        values = [r[x] for r in results["runs"] if x in r]
    values = sorted({v for v in values if v > 0})
    if axis.ticks == "epochs":
        steps = [1, 2, 5, 10]
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, steps=steps))
    elif axis.ticks == "decreasing":
        ax.invert_xaxis()
    elif axis.ticks == "values":
        ax.set_xticks(values, [f"{v:g}" for v in values])
    elif axis.ticks == "log2":
        ax.set_xscale("log", base=2)
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    elif values and values[-1] / values[0] > 1e3:
        ax.set_xscale("log")
    ax.set_xlabel(axis.label.format(loss=_loss_unit(results)))


def _color(activation: str) -> str:
    return COLORS.get(activation, "tab:gray")


def _activations(results: Mapping) -> list[str]:
    names = {r["activation"] for r in results["runs"]} | {
        r["activation"] for r in results["records"]
    }
    return sorted(names, key=lambda a: (list(COLORS).index(a) if a in COLORS else 99, a))


def _n_seeds(results: Mapping) -> int:
    return len({r["seed"] for r in results["runs"]}) or len({r["seed"] for r in results["records"]})


def _finite_stats(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over rows of the finite entries (NaN where a column has none)."""
    ok = np.isfinite(table)
    count = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, table, 0).sum(axis=0) / count
    lo = np.where(ok, table, np.inf).min(axis=0, initial=np.inf)
    hi = np.where(ok, table, -np.inf).max(axis=0, initial=-np.inf)
    none = count == 0
    return np.where(none, np.nan, mean), np.where(none, np.nan, lo), np.where(none, np.nan, hi)


def _table(rows: Sequence[Mapping], x: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """xs (sorted) and a (seed x xs) table of ``key``; NaN where a seed has no value."""
    xs = sorted({r[x] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    table = np.full((len(seeds), len(xs)), np.nan)
    for r in rows:
        value = r.get(key)
        table[seeds.index(r["seed"]), xs.index(r[x])] = np.nan if value is None else value
    return np.asarray(xs, float), table


def _curve(
    ax, rows: Sequence[Mapping], x: str, key: str, color: str, *, band: bool = True, ls="-"
) -> None:
    """Mean over seeds of ``key`` against ``x``; band: min-max over seeds, or the CI for one."""
    if not rows:
        return
    xs, table = _table(rows, x, key)
    mean, lo, hi = _finite_stats(table)
    marker = "o" if ls == "-" else ("_" if len(xs) == 1 else None)  # one x: a line draws nothing
    ax.plot(xs, mean, ls, color=color, marker=marker, ms=3.5 if ls == "-" else 14, lw=1.6)
    if key == "alpha_cal":
        _mark_bounds(ax, rows, x, xs, mean, color)
    if not band:
        return
    if table.shape[0] == 1:
        if key + "_lo" not in rows[0]:
            return
        lo, hi = (_table(rows, x, key + end)[1][0] for end in ("_lo", "_hi"))
        hi = np.where(np.isfinite(hi), hi, np.nan)
    _band(ax, xs, lo, hi, color, alpha=0.2)


def _band(ax, xs, lo, hi, color: str, **style) -> None:
    """A band from ``lo`` to ``hi`` over ``xs``; over one x (a study of one network, one rate),
    where a filled area has no width, a broad vertical bar."""
    if len(xs) == 1:
        ax.vlines(xs, lo, hi, colors=color, lw=8, alpha=style.get("alpha", 0.2))
        return
    ax.fill_between(xs, lo, hi, color=color, lw=0, **style)


#: Arrow of a calibrated reading outside the curve: (flag, direction, label).
_BOUNDS = (
    ("below_grid", -1, "reading below the curve: α at or below the grid's edge (a bound)"),
    ("above_grid", 1, "reading at or above the Gaussian's: α = 2 (a bound)"),
)


def _mark_bounds(ax, rows: Sequence[Mapping], x: str, xs, mean, color) -> None:
    """An open marker with an arrow where a seed's calibrated reading lies outside the
    calibration curve (``below_grid``: the true α is at or below the point; ``above_grid``:
    at the Gaussian): the point is a bound, not an estimate. The arrow is
    :data:`BOUND_ARROW` points long whatever the panel's y range; :func:`_save` widens
    that range where an arrow would leave its panel."""
    for flag, direction, _ in _BOUNDS:
        at = sorted({r[x] for r in rows if r.get(flag) is True})
        for value in at:
            y = mean[list(xs).index(value)]
            if not np.isfinite(y):
                continue
            ax.plot([value], [y], marker="o", ms=7, mfc="none", mec=color, ls="", zorder=4)
            tip = offset_copy(ax.transData, ax.figure, y=direction * BOUND_ARROW, units="points")
            ax.annotate(
                "", xy=(value, y), xycoords=tip, xytext=(value, y), textcoords="data",
                arrowprops={"arrowstyle": "->", "color": color, "lw": 1.2},
                gid=_BOUND_GID[direction],
            )  # fmt: skip


#: Length of a bound's arrow (points); gid of the arrows, by direction (:func:`_room_for_bounds`).
BOUND_ARROW = 18.0
_BOUND_GID = {1: "bound-arrow-up", -1: "bound-arrow-down"}


def _room_for_bounds(fig) -> None:
    """Widen the y range of each panel whose bound arrows (:func:`_mark_bounds`) would
    leave it, so that every arrow ends inside its own panel, 2 points from the edge."""
    tails = {}  # panel -> direction -> the data y of its arrows' tails
    for ax in fig.axes:
        for arrow in ax.texts:
            for direction, gid in _BOUND_GID.items():
                if arrow.get_gid() == gid:
                    tails.setdefault(ax, {1: [], -1: []})[direction].append(arrow.xyann[1])
    moved = bool(tails)
    for _ in range(4):  # the layout, hence a panel's height, moves a little with its ticks
        if not moved:
            return
        fig.draw_without_rendering()
        moved = False
        for ax, ends in tails.items():
            # the arrow with its margin, as a share of the panel's height
            reach = (BOUND_ARROW + 2) * fig.dpi / 72 / ax.get_window_extent().height
            lo, hi = old = ax.get_ylim()
            if ends[1]:
                hi = max(hi, lo + (max(ends[1]) - lo) / (1 - reach))
            if ends[-1]:
                lo = min(lo, hi - (hi - min(ends[-1])) / (1 - reach))
            if not np.allclose((lo, hi), old, rtol=0, atol=1e-6 * (old[1] - old[0])):
                ax.set_ylim(lo, hi)
                moved = True


def _bound_handles() -> list[Line2D]:
    """Legend entries of :func:`_mark_bounds`."""
    arrows = {"below_grid": "↓", "above_grid": "↑"}
    return [
        Line2D([], [], color="k", marker="o", mfc="none", ls="", label=f"{arrows[f]} {text}")
        for f, _, text in _BOUNDS
    ]


def _alpha_panel(ax, rows: Sequence[Mapping], x: str, key: str, activations: Sequence[str]):
    """SGN α (mean, band) and its Gaussian-surrogate α (dashed), one colour per activation."""
    for act in activations:
        sub = select(rows, activation=act)
        _curve(ax, sub, x, key, _color(act))
        _curve(ax, sub, x, key + "_surrogate", _color(act), band=False, ls="--")
    ax.axhline(2.0, color="k", lw=1, ls=":")
    ax.set_ylabel("tail index α")
    ax.grid(alpha=0.3)


def _mark_failures(
    ax, results: Mapping, x: str, activations: Sequence[str], **where: Any
) -> set[str]:
    """Markers at the top of a panel, at the ``x`` (epoch or lr) where runs failed: an x for
    a run that diverged, an o where the noise of the panel's records (``where``: split,
    layer) was degenerate (α not estimated), and against a swept x a triangle where a seed's
    network did not train (train accuracy below :data:`UNTRAINED_ACCURACY` at the last
    checkpoint: its α is an untrained network's). Returns the kinds drawn."""
    drawn = set()
    where_kind = []
    for run in results["runs"]:
        if run.get("diverged") and run["activation"] in activations:
            at = run.get(XAXES[x].diverged_at)
            if at is not None:
                where_kind.append((at, run["activation"], "diverged"))
    for r in _frozen(results, status=DEGENERATE, **where):
        if r["activation"] in activations:
            where_kind.append((r[x], r["activation"], "degenerate"))
    if not XAXES[x].over_training:
        for r in _shown(select(results["records"], **POOLED_TRAIN), x)[0]:
            if r["activation"] in activations and untrained(r):
                where_kind.append((r[x], r["activation"], "untrained"))
    for at, activation, kind in dict.fromkeys(where_kind):
        transform = ax.get_xaxis_transform()
        if kind == "untrained":  # the activations side by side, not on top of one another
            shift = 8 * (list(activations).index(activation) - (len(activations) - 1) / 2)
            transform = offset_copy(transform, ax.figure, x=shift, units="points")
        ax.plot(
            [at],
            [_MARK_HEIGHTS[kind]],
            **_MARKERS[kind],
            color=_color(activation),
            transform=transform,
            clip_on=False,
        )
        drawn.add(kind)
    return drawn


#: How :func:`_mark_failures` draws each kind, and its legend text.
_MARKERS = {
    "diverged": {"marker": "x", "ls": "", "ms": 9, "mew": 2},
    "degenerate": {"marker": "o", "ls": "", "ms": 7, "mew": 1.5, "mfc": "none"},
    "untrained": {"marker": "v", "ls": "", "ms": 7, "mew": 1.5, "mfc": "none"},
}
_MARK_LABELS = {
    "diverged": "diverged (NaN/inf)",
    "degenerate": "degenerate noise (zeros): α not estimated",
    "untrained": f"a seed did not train (train accuracy < {UNTRAINED_ACCURACY:g}): untrained α",
}
#: Where each marker sits, in axes fractions (untrained: on the top spine, above the margin
#: that keeps the curves off it).
_MARK_HEIGHTS = {"diverged": 0.96, "degenerate": 0.9, "untrained": 1.0}


def _mark_handles(marks: set[str]) -> list[Line2D]:
    """Legend entries for the markers drawn."""
    return [
        Line2D([], [], color="k", label=_MARK_LABELS[k], **_MARKERS[k])
        for k in _MARKERS
        if k in marks
    ]


def _band_caption(results: Mapping) -> str:
    n = _n_seeds(results)
    if n > 1:
        return f"shaded: min–max over {n} seeds"
    return "shaded: 95% CI of the estimate (1 seed)"


def _legend(fig, activations: Sequence[str], band: str, *, marks: set[str], extra=()) -> None:
    """One legend for the whole figure, below the panels: colours, line styles, band, markers."""
    handles = [Line2D([], [], color=_color(a), lw=3, label=a) for a in activations]
    handles += [
        Line2D([], [], color="k", marker="o", ms=3.5, label="SGN α (mean over seeds)"),
        Line2D([], [], color="k", ls="--", label="Gaussian surrogate α (same variances)"),
        Patch(color="k", alpha=0.2, label=band),
        Line2D([], [], color="k", ls=":", label="Gaussian (α = 2)"),
        *extra,
        *_mark_handles(marks),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=-(-len(handles) // 2))


def _title(results: Mapping, what: str) -> str:
    c = results.get("config", {})
    net = c.get("net") or "-".join(str(s) for s in c.get("sizes", ())) or None
    lr = f"lr {c['lr']:g}" if isinstance(c.get("lr"), int | float) else None
    parts = [
        c.get("dataset"),
        f"{c['optimizer']}" if c.get("optimizer") else None,
        lr,
        f"batch {c['batch_size']}" if c.get("batch_size") else None,
        f"net {net}" if net else None,
    ]
    return f"{what}\n" + ", ".join(p for p in parts if p)


def _frozen(results: Mapping, **where: Any) -> list[Mapping]:
    return select(results["records"], mode=FROZEN, **where)


def _save(fig, path: str | Path) -> Path:
    """Draw fig to ``path`` (PNG) in one atomic write: a full disk leaves no truncated PNG and
    a redraw keeps the earlier one."""
    path = Path(path)
    try:
        _room_for_bounds(fig)
        png = io.BytesIO()
        fig.savefig(png, dpi=DPI, format="png")
        atomic_write(path, png.getvalue())
    finally:
        plt.close(fig)
    return path


def _alpha_grid(results: Mapping, rows: Sequence[Mapping], x: str, layer: str):
    """2 x 2 α panels against ``x``: pooled, standardised (rows) x train, test noise (columns).

    Draws the SGN α and its surrogate per activation, diverged-run markers and
    the shared legend; the caller labels the x axes, titles and saves.
    """
    acts = _activations(results)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), sharex=True, layout="constrained")
    marks: set[str] = set()
    for (key, stat), row in zip(STATISTICS, axes, strict=True):
        for (split, noise), ax in zip(SPLITS, row, strict=True):
            _alpha_panel(ax, select(rows, split=split), x, key, acts)
            marks |= _mark_failures(ax, results, x, acts, split=split, layer=layer)
            ax.set_title(f"{stat}, {noise}")
    _legend(fig, acts, _band_caption(results), marks=marks)
    return fig, axes


@_styled
def plot_alpha_vs_epoch(results: Mapping, path: str | Path, *, layer: str = POOLED) -> Path:
    """α of the train and test noise over training: pooled (top) and standardised (bottom).

    Parameters
    ----------
    results : mapping
        Loaded results (``records``, ``runs``, ``config``).
    path : str or Path
        PNG to write.
    layer : str
        Which layer's noise: ``"all"`` (pooled over every parameter, default)
        or ``"layer1"``, ``"layer2"``, ...
    """
    fig, axes = _alpha_grid(results, _frozen(results, layer=layer), "epoch", layer)
    for ax in axes[-1]:
        _x_axis(ax, results, "epoch")
    where = "all parameters" if layer == POOLED else layer
    fig.suptitle(_title(results, f"SGN tail index over training ({where})"))
    return _save(fig, path)


@_styled
def plot_alpha_by_layer(results: Mapping, path: str | Path, *, split: str = "train") -> Path:
    """Pooled and standardised α of one split's noise over training, one row per layer."""
    acts = _activations(results)
    records = _frozen(results, split=split)
    layers = sorted({r["layer"] for r in records} - {POOLED})
    fig, axes = plt.subplots(
        len(layers), 2, figsize=(12, 3.4 * len(layers) + 1), sharex=True, layout="constrained"
    )
    axes = np.atleast_2d(axes)
    marks: set[str] = set()
    for layer, row in zip(layers, axes, strict=True):
        for (key, stat), ax in zip(STATISTICS, row, strict=True):
            _alpha_panel(ax, select(records, layer=layer), "epoch", key, acts)
            marks |= _mark_failures(ax, results, "epoch", acts, split=split, layer=layer)
            ax.set_title(f"{layer}: {stat}, {split} noise")
    for ax in axes[-1]:
        _x_axis(ax, results, "epoch")
    fig.suptitle(_title(results, "SGN tail index per layer"))
    _legend(fig, acts, _band_caption(results), marks=marks)
    return _save(fig, path)


@_styled
def plot_in_flight(results: Mapping, path: str | Path) -> Path:
    """The original study's in-flight estimate against the frozen-weights one, last layer.

    In-flight: minibatch gradients taken while the weights move during an
    epoch, minus the full gradient at the epoch's start, blocked row-major
    (the original code) or after a shuffle; frozen: this package's default
    measurement of the same layer's train noise (pooled α).
    """
    acts = _activations(results)
    inflight = select(results["records"], mode=IN_FLIGHT)
    layer = inflight[0]["layer"] if inflight else POOLED
    fig, ax = plt.subplots(figsize=(10, 5.5), layout="constrained")
    for act in acts:
        rows = select(inflight, activation=act)
        _curve(ax, rows, "epoch", "alpha", _color(act), band=False, ls="-.")
        _curve(ax, rows, "epoch", "alpha_shuffled", _color(act), band=False, ls="--")
        _curve(ax, _frozen(results, activation=act, split="train", layer=layer), "epoch",
               "alpha", _color(act), band=False)  # fmt: skip
    ax.axhline(2.0, color="k", lw=1, ls=":")
    top = max((r["alpha"] for r in inflight if np.isfinite(r["alpha"])), default=2.0)
    if top > 4:  # row-major blocking can give α far above 2: a log axis keeps both readable
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_yticks([t for t in (1, 1.5, 2, 3, 5, 10, 20, 50, 100) if t <= 1.5 * top])
    _x_axis(ax, results, "epoch")
    ax.set(ylabel="tail index α", title=f"{layer}, train noise")
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=_color(a), lw=3, label=a) for a in acts]
    handles += [
        Line2D([], [], color="k", ls="-.", label="in-flight, row-major blocks (original code)"),
        Line2D([], [], color="k", ls="--", label="in-flight, shuffled before blocking"),
        Line2D([], [], color="k", marker="o", ms=3.5, label="frozen weights, pooled (default)"),
        Line2D([], [], color="k", ls=":", label="Gaussian (α = 2)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=-(-len(handles) // 2))
    fig.suptitle(_title(results, "The original in-flight measurement against frozen weights"))
    return _save(fig, path)


@_styled
def plot_alpha_vs_sweep(
    results: Mapping, path: str | Path, *, x: str = "lr", layer: str = POOLED, note: str = ""
) -> Path:
    """α at the end of training against the swept ``x`` (``"lr"`` or ``"batch_size"``);
    diverged runs marked at the top; ``note`` ends the title."""
    frozen = _frozen(results, layer=layer)
    final = max((r["epoch"] for r in frozen), default=0.0)
    fig, axes = _alpha_grid(results, select(frozen, epoch=final), x, layer)
    for ax in axes[-1]:
        _x_axis(ax, results, x)
    what = f"SGN tail index against the {XAXES[x].label}, epoch {final:g}{note}"
    fig.suptitle(_title(results, what))
    return _save(fig, path)


def _mean_by_epoch(rows: Sequence[Mapping], key: str) -> np.ndarray:
    """Mean over seeds of ``key`` at each epoch (sorted), NaN-safe."""
    return _finite_stats(_table(rows, "epoch", key)[1])[0]


@_styled
def plot_alpha_vs_epoch_by_lr(
    results: Mapping, path: str | Path, *, layer: str = POOLED, x: str = "epoch"
) -> Path:
    """Train-noise α over training, one line per learning rate (mean over seeds), per activation.

    Parameters
    ----------
    x : {"epoch", "loss"}
        What measures training progress on the x axis: the epoch, or the
        training loss at the checkpoint (decreasing to the right).
        Against the loss, learning rates whose lines fall on one curve change
        α only by how far they have trained, not by their step size.
    """
    if x not in ("epoch", "loss"):
        raise ValueError(f"x must be 'epoch' or 'loss', got {x!r}")
    acts = _activations(results)
    frozen = _frozen(results, split="train", layer=layer)
    lrs = sorted({r["lr"] for r in results["runs"]})
    log = len(lrs) > 1 and lrs[0] > 0 and lrs[-1] / lrs[0] > 1e3
    norm = (matplotlib.colors.LogNorm if log else matplotlib.colors.Normalize)(lrs[0], lrs[-1])
    cmap = plt.get_cmap("viridis")
    width = 6 * len(acts) + 1
    fig, axes = plt.subplots(
        2, len(acts), figsize=(width, 8.5), sharex="col", squeeze=False, layout="constrained"
    )
    for act, col in zip(acts, axes.T, strict=True):
        for (key, stat), ax in zip(STATISTICS, col, strict=True):
            for lr in lrs:
                rows = select(frozen, activation=act, lr=lr)
                if rows:
                    progress, alpha = _mean_by_epoch(rows, x), _mean_by_epoch(rows, key)
                    ax.plot(progress, alpha, "-o", color=cmap(norm(lr)), ms=3.5, lw=1.6)
            ax.axhline(2.0, color="k", lw=1, ls=":")
            ax.set(title=f"{act}: {stat}, train noise", ylabel="tail index α")
            ax.grid(alpha=0.3)
        _x_axis(col[-1], results, x)
    fig.colorbar(
        plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, label="learning rate η", shrink=0.8
    )
    what = {"epoch": "over training", "loss": "against the training loss"}[x]
    fig.suptitle(_title(results, f"SGN tail index {what}, per learning rate"))
    handles = [
        Line2D([], [], color="k", marker="o", ms=3.5, label="SGN α (mean over seeds)"),
        Line2D([], [], color="k", ls=":", label="Gaussian (α = 2)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=2)
    return _save(fig, path)


def _loss_unit(results: Mapping) -> str:
    """What the records' ``loss`` column measures, for an axis label."""
    if results["config"].get("loss") == "mse":
        return "½ squared error to one-hot targets"
    return "cross-entropy, nats"


@_styled
def plot_training(results: Mapping, path: str | Path, *, x: str = "epoch") -> Path:
    """Training loss and train/test accuracy: over epochs (``x="epoch"``), or at the end
    against the swept ``x`` (``"lr"``, ``"batch_size"``)."""
    acts = _activations(results)
    rows, when = _shown(select(results["records"], **POOLED_TRAIN), x)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    marks: set[str] = set()
    for act in acts:
        sub = select(rows, activation=act)
        _curve(left, sub, x, "loss", _color(act))
        _curve(right, sub, x, "train_acc", _color(act))
        _curve(right, sub, x, "test_acc", _color(act), ls="--")
    for ax in (left, right):
        marks |= _mark_failures(ax, results, x, acts, split="train", layer=POOLED)
        ax.grid(alpha=0.3)
        _x_axis(ax, results, x)
    left.set(
        ylabel=f"training loss ({_loss_unit(results)})", title="training loss (full train set)"
    )
    right.set(ylabel="accuracy (fraction correct)", title="accuracy", ylim=(0, 1.02))
    fig.suptitle(_title(results, f"Training{when}"))
    handles = [Line2D([], [], color=_color(a), lw=3, label=a) for a in acts]
    handles += [
        Line2D([], [], color="k", marker="o", ms=3.5, label="loss / train accuracy"),
        Line2D([], [], color="k", ls="--", label="test accuracy"),
    ]
    if _n_seeds(results) > 1:
        handles.append(Patch(color="k", alpha=0.2, label=_band_caption(results)))
    handles += _mark_handles(marks)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6))
    return _save(fig, path)


def _histogram_range(x: np.ndarray) -> float:
    """Half-width of the histogram: every value, unless the most extreme lie beyond ten
    times the 99.9% quantile of |x| (heavy tails), which would squash the bulk into a few bins."""
    top = float(np.max(np.abs(x)))
    q = float(np.quantile(np.abs(x), 0.999))
    return (min(top, 10 * q) if q > 0 else top) * 1.02 or 1.0


def _stable_pdf(grid: np.ndarray, noise: np.ndarray, alpha: float) -> np.ndarray:
    """Symmetric α-stable density (scipy's S1, β = 0) with the sample's median |x|."""
    alpha = float(np.clip(alpha, 0.5, 2.0))
    scale = np.median(np.abs(noise)) / stats.levy_stable.ppf(0.75, alpha, 0.0)
    return stats.levy_stable.pdf(grid, alpha, 0.0, scale=scale)


def _histogram_panel(ax, label: str, noise: np.ndarray, alpha: float | None, xlabel: str) -> None:
    """One histogram on a log density scale, against a Gaussian of the same variance and,
    with ``alpha``, the symmetric α-stable density of the sample's median |x|."""
    noise = np.asarray(noise, float).ravel()
    finite = noise[np.isfinite(noise)]
    if not finite.size:
        finite = np.zeros(1)
    lim = _histogram_range(finite)
    bins = np.linspace(-lim, lim, 201)
    shown = finite[np.abs(finite) <= lim]
    # density of all finite values (bins beyond +-lim hold the rest)
    heights, _ = np.histogram(shown, bins=bins)
    density = heights / (finite.size * (bins[1] - bins[0]))
    ax.stairs(density, bins, fill=True, color="tab:blue", alpha=0.6, label="SGN")
    grid = np.linspace(-lim, lim, 241)
    sd = finite.std()
    gauss = stats.norm.pdf(grid, scale=sd) if sd > 0 else np.zeros_like(grid)
    ax.plot(grid, gauss, "k--", lw=1.5, label=f"Gaussian, same variance (σ = {sd:.2g})")
    peak = max(density.max(), gauss.max())
    if alpha is not None and np.isfinite(alpha) and np.median(np.abs(finite)) > 0:
        pdf = _stable_pdf(grid[::2], finite, alpha)
        label_stable = f"α-stable, α = {alpha:.2f} (estimated), same median |x|"
        ax.plot(grid[::2], pdf, color="tab:red", lw=1.5, label=label_stable)
        peak = max(peak, pdf.max())
    floor = 0.5 / (finite.size * (bins[1] - bins[0]))
    ax.set_yscale("log")
    ax.set_ylim(floor, 30 * max(peak, floor))  # head room for the legend
    ax.set_xlim(-lim, lim)
    notes = [f"{finite.size:,} values"]
    if finite.size > shown.size:
        notes.append(f"{finite.size - shown.size:,} beyond ±{lim:.2g} not shown")
    if noise.size > finite.size:
        notes.append(f"{noise.size - finite.size:,} non-finite left out")
    ax.set(title=f"{label}\n({'; '.join(notes)})", xlabel=xlabel, ylabel="density (log scale)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")


@_styled
def plot_noise_histograms(
    samples: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    alphas: Mapping[str, float] | None = None,
    title: str = "Gradient noise against a Gaussian of the same variance",
) -> Path:
    """The paper's picture: histograms of SGN on a log density scale against Gaussians.

    Parameters
    ----------
    samples : mapping
        ``{panel title: raw noise values}`` (any shape, flattened; non-finite
        values are left out and counted in the panel).
    path : str or Path
        PNG to write.
    alphas : mapping, optional
        ``{panel title: estimated α}``: also draw the symmetric α-stable
        density with that α and the sample's median |x| (scipy.stats.levy_stable).
    title : str
        Figure title.

    References
    ----------
    Simsekli, Sagun & Gurbuzbalaban, ICML 2019, Figure 1.
    """
    alphas = alphas or {}
    fig, axes = plt.subplots(
        1, len(samples), figsize=(6.5 * len(samples), 5), squeeze=False, layout="constrained"
    )
    for (label, noise), ax in zip(samples.items(), axes[0], strict=True):
        _histogram_panel(
            ax, label, noise, alphas.get(label), "noise value (minibatch − full gradient)"
        )
    fig.suptitle(title)
    return _save(fig, path)


def _histogram_inputs(results: Mapping, folder: Path, *, swept: Sequence[str]) -> tuple[dict, dict]:
    """Noise samples of a run folder with panel titles and the matching recorded α."""
    arrays = load_noise_samples(folder)
    samples, alphas = {}, {}
    for run in results["runs"]:
        meta = run.get("noise_sample")
        if not meta or meta["key"] not in arrays:
            continue
        names = {"lr": "η = ", "batch_size": "b = ", "hidden": "hidden "}
        lr = "".join(
            f", {names[k]}{run[k] if isinstance(run[k], str) else format(run[k], 'g')}"
            for k in swept
        )
        label = (
            f"{run['activation']}{lr}, seed {run['seed']}: {meta['layer']}, "
            f"{meta['split']} noise, epoch {meta['epoch']:g}"
        )
        samples[label] = arrays[meta["key"]]
        match = _frozen(
            results,
            **{k: run[k] for k in (*RUN_KEYS, "hidden") if k in run},
            epoch=meta["epoch"],
            split=meta["split"],
            layer=meta["layer"],
        )
        if match:
            alphas[label] = match[0]["alpha"]
    return samples, alphas


def _histograms(results: Mapping, folder: Path, *, swept: Sequence[str] = ()) -> list[Path]:
    samples, alphas = _histogram_inputs(results, folder, swept=swept)
    if not samples:
        return []
    return [plot_noise_histograms(samples, folder / "noise_histogram.png", alphas=alphas)]


def activation_plots(results: Mapping, folder: Path, *, pool: Pool | None = None) -> list[Path]:
    """The activation study's PNGs: α over training (pooled, per layer), training, in-flight,
    histograms (``pool``: worker processes that draw them, see :func:`draw`)."""
    figures = [
        partial(plot_alpha_vs_epoch, results, folder / "alpha_vs_epoch.png"),
        partial(plot_alpha_by_layer, results, folder / "alpha_by_layer.png"),
        partial(plot_training, results, folder / "training.png"),
    ]
    if select(results["records"], mode=IN_FLIGHT):
        figures.append(partial(plot_in_flight, results, folder / "alpha_in_flight.png"))
    figures += _detail_plots(results, folder, "epoch")
    return draw([*figures, partial(_histograms, results, folder)], pool)


def lr_plots(results: Mapping, folder: Path, *, pool: Pool | None = None) -> list[Path]:
    """The learning-rate study's PNGs: α and training against η, α over training per η,
    histograms (``pool``: worker processes that draw them, see :func:`draw`)."""
    figures = [
        partial(plot_alpha_vs_sweep, results, folder / "alpha_vs_lr.png", x="lr"),
        partial(plot_training, results, folder / "training_vs_lr.png", x="lr"),
    ]
    if len({r["epoch"] for r in _frozen(results)}) > 2:
        by_lr = partial(plot_alpha_vs_epoch_by_lr, results)
        figures.append(partial(by_lr, folder / "alpha_vs_epoch_by_lr.png"))
        figures.append(partial(by_lr, folder / "alpha_vs_loss_by_lr.png", x="loss"))
    figures += _detail_plots(results, folder, "lr")
    return draw([*figures, partial(_histograms, results, folder, swept=("lr",))], pool)


def _rule(results: Mapping, rule: str) -> dict:
    """The batch study's runs made by one rule: ``"lr"`` (η fixed) or ``"ratio"`` (η/b fixed)."""
    c = results["config"]

    def made(r: Mapping) -> bool:  # the grid's other runs are at η/b; b = reference at both
        at_lr = r["lr"] == c["lr"]
        return at_lr if rule == "lr" else not at_lr or r["batch_size"] == c["reference_batch"]

    return {
        **results,
        "records": [r for r in results["records"] if made(r)],
        "runs": [r for r in results["runs"] if made(r)],
    }


def batch_plots(results: Mapping, folder: Path, *, pool: Pool | None = None) -> list[Path]:
    """The batch study's PNGs: α and training against b, at a fixed η and at a fixed η/b;
    histograms (``pool``: worker processes that draw them, see :func:`draw`)."""
    c = results["config"]
    figures = []
    for rule, name, note in (
        ("lr", "fixed_lr", f" (η = {c['lr']:g} at every b)"),
        ("ratio", "fixed_ratio", f" (η/b = {c['lr']:g}/{c['reference_batch']} at every b)"),
    ):
        sub = _rule(results, rule)
        path = folder / f"alpha_vs_batch_{name}.png"
        figures.append(partial(plot_alpha_vs_sweep, sub, path, x="batch_size", note=note))
        path = folder / f"training_vs_batch_{name}.png"
        figures.append(partial(plot_training, sub, path, x="batch_size"))
        figures += _detail_plots(sub, folder, "batch_size", f"_{name}")
    swept = ("lr", "batch_size")
    return draw([*figures, partial(_histograms, results, folder, swept=swept)], pool)


def _arm(results: Mapping, x: str) -> dict:
    """The size study's runs of one arm, each record and run given its ``x``: ``"width"``
    (the networks of one hidden layer) or ``"depth"`` (those of ``depth_width`` units a
    layer, 784-128-10 included as depth 1)."""
    c = results["config"]

    def position(r: Mapping) -> int | None:
        widths = [int(w) for w in str(r.get("hidden", "")).split("-") if w]
        if x == "width":
            return widths[0] if len(widths) == 1 and widths[0] in c["widths"] else None
        same = widths and set(widths) == {c["depth_width"]} and len(widths) in c["depths"]
        return len(widths) if same else None

    def keep(rows: Sequence[Mapping]) -> list[dict]:
        return [{**r, x: position(r)} for r in rows if position(r) is not None]

    return {**results, "records": keep(results["records"]), "runs": keep(results["runs"])}


@_styled
def plot_alpha_by_layer_vs_sweep(results: Mapping, path: str | Path, *, x: str) -> Path:
    """Per layer at the end of training against ``x`` (width or depth), train noise: pooled
    α, standardised α (with their Gaussian surrogates, dashed) and the calibrated α of the
    resampled noise; one row per activation, one line per layer counted from the input,
    the output layer (its 10 columns) apart."""
    acts = _activations(results)
    final = max((r["epoch"] for r in _frozen(results)), default=0.0)
    rows = select(results["records"], split="train", epoch=final)
    rows = [{**r, "role": _role(r)} for r in rows if r["layer"] != "all"]
    roles = sorted({r["role"] for r in rows}, key=lambda n: (n == "output", n))
    colors = dict(zip(roles, plt.cm.viridis(np.linspace(0, 0.9, len(roles))), strict=True))
    panels = (
        ("frozen", "alpha", "pooled α"),
        ("frozen", "alpha_std", "standardised α"),
        ("resampled", "alpha_cal", "calibrated α, M resampled minibatches"),
    )
    fig, axes = plt.subplots(
        len(acts), 3, figsize=(15, 3.8 * len(acts) + 1.2), sharex=True, squeeze=False,
        layout="constrained",
    )  # fmt: skip
    for act, row in zip(acts, axes, strict=True):
        for (mode, key, title), ax in zip(panels, row, strict=True):
            for role in roles:
                sub = select(rows, mode=mode, activation=act, role=role)
                _curve(ax, sub, x, key, colors[role])
                if mode == "frozen":
                    _curve(ax, sub, x, key + "_surrogate", colors[role], band=False, ls="--")
            if mode == "resampled" and results["config"].get("coordinates") == 0:
                ax.text(0.5, 0.5, "not measured: the per-coordinate\nmeasurement is off "
                        "(--coordinates 0)", transform=ax.transAxes, ha="center",
                        va="center", color="0.3", bbox={"fc": "white", "ec": "none"},
                        zorder=5)  # fmt: skip
            ax.axhline(2.0, color="k", lw=1, ls=":")
            ax.set(title=f"{act}: {title}", ylabel="tail index α")
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        _x_axis(ax, results, x)
    handles = [Line2D([], [], color=colors[r], lw=3, label=_ROLES.get(r, r)) for r in roles]
    handles += [
        Line2D([], [], color="k", ls="--", label="Gaussian surrogate α"),
        Patch(color="k", alpha=0.2, label=_band_caption(results)),
        Line2D([], [], color="k", ls=":", label="Gaussian (α = 2)"),
        *_bound_handles(),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=4)
    fig.suptitle(_title(results, f"Per layer against the {XAXES[x].label}, epoch {final:g}"))
    return _save(fig, path)


_ROLES = {"output": "output layer (hidden → 10)", "layer1": "layer1 (784 → hidden)"}


def _role(record: Mapping) -> str:
    """A layer's place in its network: ``"output"`` for the last, else its name."""
    depth = len(str(record.get("hidden", "")).split("-"))
    return "output" if record["layer"] == f"layer{depth + 1}" else record["layer"]


def size_plots(results: Mapping, folder: Path, *, pool: Pool | None = None) -> list[Path]:
    """The size study's PNGs, against the width and against the depth: α (pooled and
    standardised, with surrogates), per layer, per coordinate (calibrated α, per-example
    tails), training; histograms (``pool``: worker processes that draw them, see :func:`draw`)."""
    c = results["config"]
    figures = []
    for x, note in (
        ("width", " (one hidden layer)"),
        ("depth", f" (hidden layers of {c['depth_width']})"),
    ):
        sub = _arm(results, x)
        if not sub["runs"]:
            continue
        figures += [
            partial(plot_alpha_vs_sweep, sub, folder / f"alpha_vs_{x}.png", x=x, note=note),
            partial(plot_alpha_by_layer_vs_sweep, sub, folder / f"alpha_by_layer_vs_{x}.png", x=x),
            partial(plot_training, sub, folder / f"training_vs_{x}.png", x=x),
            *_detail_plots(sub, folder, x, f"_vs_{x}"),
        ]
    return draw([*figures, partial(_histograms, results, folder, swept=("hidden",))], pool)


def draw(figures: Sequence[Callable[[], Path | list[Path]]], pool: Pool | None = None) -> list:
    """Draw the figures (calls that each save a PNG, or a list of them), in order, and
    return the paths. With a ``pool`` they are shared among its worker processes (a
    sweep's, idle after its runs): each figure costs about half a second of Agg
    rendering, and a study's driver would otherwise draw its seven or more on one core
    while the others idle."""
    drawn = [f() for f in figures] if pool is None else pool.map(_call, figures)
    return [p for d in drawn for p in (d if isinstance(d, list) else [d])]


def _call(figure: Callable[[], Any]) -> Any:
    return figure()


#: Panels of :func:`plot_per_coordinate`: (mode, key, title).
_PER_COORDINATE = (
    (FROZEN, "alpha_cal", "calibrated α, the paper's partition (K = n/b rows)"),
    (RESAMPLED, "alpha_cal", "calibrated α, M resampled minibatches: all, dense, sparse"),
    (RESAMPLED, "col_alpha_50", "each coordinate's own α (M rows): median, 5-95%"),
    (RESAMPLED, "sparse_share", "share of sparse coordinates (few non-zero per-example values)"),
    (PER_EXAMPLE, "frac_inf_var", "per-example gradients: share with infinite variance"),
    (PER_EXAMPLE, "tail_50", "per-example gradients: median tail exponent"),
)
#: The Hill thresholds of the per-example rows: (factor f of k = f sqrt(m), column suffix).
HILL_K = ((0.25, "_k025"), (0.5, "_k05"), (1.0, ""), (2.0, "_k2"), (4.0, "_k4"))


def _shown(rows: Sequence[Mapping], x: str) -> tuple[list[Mapping], str]:
    """The rows a plot against ``x`` shows, and when they are from for its title: over
    training (x = epoch) every row and ""; against a swept x the last checkpoint's rows
    and " at epoch E"."""
    if XAXES[x].over_training or not rows:
        return list(rows), ""
    final = max(r["epoch"] for r in rows)
    return select(rows, epoch=final), f" at epoch {final:g}"


def _quantile_band(ax, rows: Sequence[Mapping], x: str, prefix: str, color: str, **style) -> None:
    """The 5-95% quantiles of ``prefix`` (mean over seeds) as a band."""
    xs, lo = _table(rows, x, f"{prefix}_5")
    _, hi = _table(rows, x, f"{prefix}_95")
    _band(ax, xs, _finite_stats(lo)[0], _finite_stats(hi)[0], color, **style)


def _over_k_band(ax, rows: Sequence[Mapping], x: str, key: str, color: str) -> None:
    """The range over the Hill thresholds k = sqrt(m)/4 ... 4 sqrt(m) of ``key`` (mean over
    seeds at each k), as a light band: how much the number depends on k."""
    means = []
    for _, suffix in HILL_K:
        xs, table = _table(rows, x, key + suffix)
        means.append(_finite_stats(table)[0])
    means = np.array(means)
    ok = np.isfinite(means)
    lo = np.where(ok, means, np.inf).min(axis=0)
    hi = np.where(ok, means, -np.inf).max(axis=0)
    none = ~ok.any(axis=0)
    lo[none], hi[none] = np.nan, np.nan
    _band(ax, xs, lo, hi, color, alpha=0.1, hatch="//")


@_styled
def plot_per_coordinate(results: Mapping, path: str | Path, *, x: str = "epoch") -> Path:
    """How heavy the tails are per coordinate, train noise, all parameters pooled.

    Calibrated α (the SaS(α) that gives the same standardised reading at the
    matrix's shape, :mod:`sgnoise.calibration`) of the paper's partition and of M
    resampled minibatches, the latter also for the dense and the sparse
    coordinates apart (per-example values non-zero in at least / fewer than the
    ``sparse`` share of examples); the distribution of each coordinate's own α
    against that of Gaussian columns of as many rows (grey: the estimator's own
    spread); the share of sparse coordinates; the share of coordinates whose
    per-example gradients have infinite variance, by Hill at k = sqrt(m) (its
    range over k = sqrt(m)/4 ... 4 sqrt(m) hatched) and by the threshold-free
    power-law fit (dashed); the median per-example tail exponent likewise.
    Against ``x``: the epoch, or the swept quantity at the last checkpoint.
    """
    acts = _activations(results)
    fig, axes = plt.subplots(2, 3, figsize=(17, 9), sharex=True, layout="constrained")
    marks: set[str] = set()
    for (mode, key, title), ax in zip(_PER_COORDINATE, axes.flat, strict=True):
        rows = _shown(select(results["records"], mode=mode, split="train", layer=POOLED), x)[0]
        for act in acts:
            sub, color = select(rows, activation=act), _color(act)
            if key == "col_alpha_50":
                _quantile_band(ax, sub, x, "col_alpha", color, alpha=0.2)
                _quantile_band(ax, sub, x, "col_alpha_gauss", "k", alpha=0.08)
                _curve(ax, sub, x, key, color, band=False)
                _curve(ax, sub, x, "col_alpha_dense_50", color, band=False, ls="--")
                _curve(ax, sub, x, "col_alpha_gauss_50", "k", band=False, ls=":")
            elif mode == RESAMPLED and key == "alpha_cal":
                _curve(ax, sub, x, key, color)
                _curve(ax, sub, x, "alpha_cal_dense", color, band=False, ls="--")
                _curve(ax, sub, x, "alpha_cal_sparse", color, band=False, ls=":")
            elif mode == PER_EXAMPLE:
                _over_k_band(ax, sub, x, key, color)
                _curve(ax, sub, x, key, color)
                _curve(ax, sub, x, f"{key}_csn", color, band=False, ls="--")
            else:
                _curve(ax, sub, x, key, color)
        resampled = results["config"].get("resampled", MIN_COLUMN_ROWS)
        if key == "col_alpha_50" and resampled < MIN_COLUMN_ROWS:
            ax.text(0.5, 0.5, f"no coordinate's own α: it needs M >= {MIN_COLUMN_ROWS} resampled\n"
                    f"minibatches (--resampled), got {resampled}",
                    transform=ax.transAxes, ha="center", va="center", color="0.3",
                    bbox={"fc": "white", "ec": "none"})  # fmt: skip
        if key in ("frac_inf_var", "sparse_share"):
            ax.set(ylabel="share of coordinates", ylim=(0, None))
        elif key == "tail_50":
            ax.axhline(2.0, color="k", lw=1, ls=":")
            ax.set(ylabel="tail exponent ξ (variance finite iff ξ > 2)", yscale="log")
        else:
            ax.axhline(2.0, color="k", lw=1, ls=":")
            ax.set_ylabel("tail index α")
        if not XAXES[x].over_training:  # which networks' readings are untrained ones
            marks |= _mark_failures(ax, results, x, acts, split="train", layer=POOLED)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        _x_axis(ax, results, x)
    handles = [Line2D([], [], color=_color(a), lw=3, label=a) for a in acts]
    handles += [
        Line2D([], [], color="k", marker="o", ms=3.5, label="mean over seeds (all coordinates)"),
        Patch(color="k", alpha=0.2, label=_band_caption(results) + "; per-coordinate: 5-95%"),
        Line2D([], [], color="k", ls="--", label="dense coordinates; per-example: power-law fit"),
        Line2D([], [], color="k", ls=":", label="sparse coordinates; Gaussian (α = 2, ξ = 2)"),
        Patch(color="k", alpha=0.08, label="Gaussian columns, same rows: 5-95%"),
        Patch(color="k", alpha=0.1, hatch="//", label="Hill: range over k = √m/4 ... 4√m"),
        *_bound_handles(),
        *_mark_handles(marks),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=4)
    fig.suptitle(_title(results, "Per coordinate: calibrated α, its spread, per-example tails"))
    return _save(fig, path)


def _seed_mean(rows: Sequence[Mapping], key: str) -> float:
    """Mean of ``key`` over the rows (seeds) that have a finite value, else NaN."""
    values = np.array([r.get(key) for r in rows], float)
    ok = np.isfinite(values)
    return float(values[ok].mean()) if ok.any() else np.nan


@_styled
def plot_hill(results: Mapping, path: str | Path) -> Path:
    """Hill plot of the per-example gradients: tail exponent against the threshold k.

    Top: the median exponent over coordinates (line), its 25-75% and 5-95% quantiles
    (bands), at k = f sqrt(m) for f = 1/4 ... 4 (m: a coordinate's non-zero values),
    at the last detailed checkpoint (the first one dotted), one panel per layer; a
    power tail gives the same exponent at every k. Bottom: the share of coordinates
    credibly below 2 (infinite variance) at each k, and (dashed) the share the
    threshold-free power-law fit calls infinite.
    """
    acts = _activations(results)
    rows = select(results["records"], mode=PER_EXAMPLE, split="train")
    layers = sorted({r["layer"] for r in rows} - {"all"}) + ["all"]
    epochs = sorted({r["epoch"] for r in rows})
    fig, axes = plt.subplots(
        2, len(layers), figsize=(5 * len(layers) + 1, 8), sharex=True, sharey="row",
        squeeze=False, layout="constrained",
    )  # fmt: skip
    factors = np.array([f for f, _ in HILL_K])

    def mean_at(sub: Sequence[Mapping], key: str) -> np.ndarray:
        """Mean over seeds of ``key`` at each k (NaN where no seed has it)."""
        return np.array([_seed_mean(sub, key + suffix) for _, suffix in HILL_K])

    for j, layer in enumerate(layers):
        top, bottom = axes[0, j], axes[1, j]
        for act in acts:
            color = _color(act)
            for epoch, ls in ((epochs[-1], "-"), (epochs[0], ":")) if epochs else ():
                sub = select(rows, activation=act, layer=layer, epoch=epoch)
                last = epoch == epochs[-1]
                top.plot(factors, mean_at(sub, "tail_50"), ls, color=color, marker="o", ms=3.5)
                bottom.plot(factors, mean_at(sub, "frac_inf_var"), ls, color=color, marker="o",
                            ms=3.5)  # fmt: skip
                if last:
                    for lo, hi, alpha in (("tail_25", "tail_75", 0.25), ("tail_5", "tail_95", 0.1)):
                        top.fill_between(factors, mean_at(sub, lo), mean_at(sub, hi),
                                         color=color, alpha=alpha, lw=0)  # fmt: skip
                    csn = _seed_mean(sub, "frac_inf_var_csn")
                    if np.isfinite(csn):
                        bottom.axhline(csn, color=color, ls="--", lw=1.2)
        top.axhline(2.0, color="k", lw=1, ls=":")
        top.set(title="all parameters" if layer == "all" else layer, yscale="log")
        bottom.set(xlabel="Hill threshold k / √m", xscale="log", ylim=(0, None))
        bottom.set_xticks(factors, ["1/4", "1/2", "1", "2", "4"])
        bottom.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("per-example tail exponent ξ")
    axes[1, 0].set_ylabel("share with infinite variance")
    handles = [Line2D([], [], color=_color(a), lw=3, label=a) for a in acts]
    if epochs:
        handles += [
            Line2D([], [], color="k", marker="o", ms=3.5, label=f"epoch {epochs[-1]:g}: median"),
            Line2D([], [], color="k", ls=":", marker="o", ms=3.5, label=f"epoch {epochs[0]:g}"),
        ]
    handles += [
        Patch(color="k", alpha=0.25, label="25-75% of coordinates"),
        Patch(color="k", alpha=0.1, label="5-95%"),
        Line2D([], [], color="k", ls="--", label="threshold-free power-law fit (share)"),
        Line2D([], [], color="k", lw=1, ls=":", label="ξ = 2 (finite variance above)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=4)
    fig.suptitle(_title(results, "Hill plot of the per-example gradients (mean over seeds)"))
    return _save(fig, path)


@_styled
def plot_alpha_vs_activity(results: Mapping, path: str | Path) -> Path:
    """Each sampled coordinate's own α (M resampled minibatches of the training batch size)
    against its activity, the share of examples whose gradient there is not zero, at the
    last detailed checkpoint; one panel per activation, every seed, one colour per layer.
    Grey: the 5-95% of Gaussian columns of as many rows; dashed: the sparse threshold."""
    acts = _activations(results)
    fig, axes = plt.subplots(
        1, len(acts), figsize=(6 * len(acts), 5), sharey=True, squeeze=False, layout="constrained"
    )
    layer_colors: dict[str, str] = {}
    for act, ax in zip(acts, axes[0], strict=True):
        xs, ys, rhos, level = [], [], [], []
        for run in results["runs"]:
            c = run.get("coordinates")
            if run["activation"] != act or not c:
                continue
            share, alpha = np.array(c["nonzero_share"], float), np.array(c["alpha"], float)
            for layer in dict.fromkeys(c["layer"]):
                mine = np.array(c["layer"]) == layer
                color = layer_colors.setdefault(layer, f"C{len(layer_colors) + 2}")
                ax.scatter(share[mine], alpha[mine], s=6, color=color, alpha=0.4, lw=0)
            ok = np.isfinite(alpha) & (share > 0)
            xs.append(share[ok])
            ys.append(alpha[ok])
            # a rank correlation needs 3 coordinates and shares (and alphas) that differ
            flat = ok.sum() > 2 and (np.ptp(share[ok]) == 0 or np.ptp(alpha[ok]) == 0)
            level.append(flat)
            read = ok.sum() > 2 and not flat
            rhos.append(stats.spearmanr(share[ok], alpha[ok]).statistic if read else np.nan)
            ax.axvline(c["sparse"], color="k", ls="--", lw=1)
            gauss = c.get("gaussian")
            if gauss:
                ax.axhspan(gauss["5"], gauss["95"], color="k", alpha=0.08, lw=0)
            epoch = c["epoch"]
        finite = [r for r in rhos if np.isfinite(r)]
        if finite:
            spearman = f"Spearman ρ = {np.mean(finite):.2f}"
        elif any(level):  # e.g. sigmoid: every coordinate non-zero on every example
            spearman = "every coordinate as active: no ρ"
        else:
            spearman = "too few α for a ρ"
        title = f"{act}" + (f", epoch {epoch:g}: {spearman}" if rhos else ": no data")
        ax.set(xscale="log", xlabel="share of examples with a non-zero gradient", title=title)
        ax.axhline(2.0, color="k", lw=1, ls=":")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("the coordinate's own α (M resampled minibatches)")
    handles = [
        Line2D([], [], color=color, marker="o", ls="", label=layer)
        for layer, color in layer_colors.items()
    ]
    handles += [
        Patch(color="k", alpha=0.08, label="Gaussian columns, same rows: 5-95%"),
        Line2D([], [], color="k", ls="--", label="sparse threshold"),
        Line2D([], [], color="k", ls=":", label="α = 2"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
    fig.suptitle(_title(results, "Which coordinates are heavy: α against activity"))
    return _save(fig, path)


@_styled
def plot_alpha_vs_measured_batch(results: Mapping, path: str | Path, *, note: str = "") -> Path:
    """Calibrated α of resampled train noise against the measured batch size B, per layer.

    At frozen weights, at the first, middle and last checkpoint (lighter to
    darker). If the per-example gradients have finite variance, the central
    limit theorem drives α to 2 as B grows; α-stable noise (infinite
    variance) keeps it below 2 at every B.
    """
    acts = _activations(results)
    rows = select(results["records"], mode=BATCH_SCAN, split="train")
    layers = sorted({r["layer"] for r in rows} - {POOLED}) + [POOLED]
    epochs = sorted({r["epoch"] for r in rows})
    fig, axes = plt.subplots(
        1, len(layers), figsize=(5 * len(layers) + 1, 5), sharey=True, squeeze=False,
        layout="constrained",
    )  # fmt: skip
    shades = np.linspace(0.35, 1.0, len(epochs)) if epochs else []
    for layer, ax in zip(layers, axes[0], strict=True):
        for act in acts:
            for epoch, shade in zip(epochs, shades, strict=True):
                sub = select(rows, activation=act, layer=layer, epoch=epoch)
                color = matplotlib.colors.to_rgba(_color(act), shade)
                _curve(ax, sub, "measured_batch", "alpha_cal", color, band=epoch == epochs[-1])
        ax.axhline(2.0, color="k", lw=1, ls=":")
        _x_axis(ax, results, "measured_batch", [r["measured_batch"] for r in rows])
        where = "all parameters" if layer == POOLED else layer
        ax.set(title=where, ylabel="calibrated tail index α")
        ax.tick_params(axis="x", labelrotation=45)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=_color(a), lw=3, label=a) for a in acts]
    handles += [
        Line2D([], [], color=(0, 0, 0, s), marker="o", ms=3.5, label=f"epoch {e:g}")
        for e, s in zip(epochs, shades, strict=True)
    ]
    handles += [
        Patch(color="k", alpha=0.2, label=_band_caption(results) + " (last checkpoint)"),
        Line2D([], [], color="k", ls=":", label="Gaussian: the CLT limit if variances are finite"),
        *_bound_handles(),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4))
    what = f"α against the measured batch size (resampled, weights frozen){note}"
    fig.suptitle(_title(results, what))
    return _save(fig, path)


def _detail_plots(
    results: Mapping, folder: Path, x: str, suffix: str = ""
) -> list[Callable[[], Path]]:
    """The per-coordinate figures a run folder has data for (calls that draw them, see
    :func:`draw`). In a sweep (x is the lr or the batch size) the batch scan is drawn for
    the largest swept value scanned only, so that each line is one run per seed."""
    figures: list[Callable[[], Path]] = []
    over_training = XAXES[x].over_training
    if select(results["records"], mode=RESAMPLED):
        path = folder / f"per_coordinate{suffix}.png"
        figures.append(partial(plot_per_coordinate, results, path, x=x))
    if over_training and select(results["records"], mode=PER_EXAMPLE):
        figures.append(partial(plot_hill, results, folder / "hill_plot.png"))
    if over_training and any(run.get("coordinates") for run in results["runs"]):
        figures.append(partial(plot_alpha_vs_activity, results, folder / "alpha_vs_activity.png"))
    scans = select(results["records"], mode=BATCH_SCAN)
    if scans:
        note = ""
        if not over_training:
            top = max(r[x] for r in scans)
            scans = select(scans, **{x: top})
            note = f", {XAXES[x].symbol} = {top:g}"
        sub = {**results, "records": scans}
        path = folder / f"alpha_vs_measured_batch{suffix}.png"
        figures.append(partial(plot_alpha_vs_measured_batch, sub, path, note=note))
    return figures


#: Most layers :func:`analysis_figure` draws one by one (beyond, only all layers together).
FIGURE_LAYERS = 4
#: Columns :func:`analysis_figure` estimates each column's α of (a seeded subset beyond).
FIGURE_COLUMNS = 2048


def _standardised_values(matrix: np.ndarray, per_example: bool) -> np.ndarray:
    """Each non-constant column minus its mean over its standard deviation, flattened (exact
    zeros of per-example gradients left out: their atom is not the tail)."""
    x = np.asarray(matrix, float)
    sd = x.std(axis=0)
    kept = sd > 0
    z = (x[:, kept] - x[:, kept].mean(axis=0)) / sd[kept]
    return z[x[:, kept] != 0] if per_example else z.ravel()


def _per_column_panel(ax, matrix: np.ndarray, seed: int) -> None:
    """Histograms of each column's α (:func:`sgnoise.tail_index.column_alpha`) and of
    Gaussian columns' of as many rows: the estimator's own spread."""
    from sgnoise.tail_index import MIN_COLUMN_ROWS, column_alpha

    n, c = matrix.shape
    ax.set(xlabel="α of one column (its rows through the estimator)", ylabel="columns")
    if n < MIN_COLUMN_ROWS:
        ax.set_title("each column's α against Gaussian columns")
        ax.text(
            0.5,
            0.5,
            f"needs >= {MIN_COLUMN_ROWS} rows, got {n}\n(resample minibatches "
            "from per-example gradients\nfor more rows)",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set(xticks=[], yticks=[])
        return
    rng = np.random.default_rng(seed)
    cols = np.sort(rng.choice(c, min(c, FIGURE_COLUMNS), replace=False))
    alphas = column_alpha(np.asarray(matrix)[:, cols], seed=seed)
    gauss = column_alpha(rng.standard_normal((n, cols.size)), seed=seed)
    alphas, gauss = alphas[np.isfinite(alphas)], gauss[np.isfinite(gauss)]
    both = np.concatenate([alphas, gauss])
    bins = np.linspace(min(both.min(), 1.0), max(both.max(), 2.2), 50)
    ax.hist(gauss, bins, color="0.6", alpha=0.6, label=f"Gaussian columns ({gauss.size})")
    ax.hist(alphas, bins, color="tab:blue", alpha=0.6, label=f"these columns ({alphas.size})")
    ax.axvline(2, color="k", ls=":", lw=1, label="α = 2 (Gaussian)")
    ax.set_title(f"each column's α against Gaussian columns ({n} rows)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")


def _hill_panel(ax, result: Mapping) -> None:
    """The Hill plot: tail exponent quantiles over coordinates against k = f sqrt(m), with the
    share of coordinates credibly of infinite variance on the right axis."""
    rows = [row for row in result["by_k"] if row["n_kept"]]
    f = np.array([row["k_factor"] for row in rows])
    q = {
        p: np.array([row["tail_exponent_quantiles"][p] for row in rows], float)
        for p in "5 25 50 75 95".split()
    }
    ax.fill_between(f, q["5"], q["95"], color="tab:blue", alpha=0.15, label="5-95% of coordinates")
    ax.fill_between(f, q["25"], q["75"], color="tab:blue", alpha=0.3, label="25-75%")
    ax.plot(f, q["50"], "o-", color="tab:blue", label="median tail exponent")
    ax.axhline(2, color="k", ls=":", lw=1, label="2: finite variance above")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")  # bounded tails read in the hundreds, the question is near 2
    ax.set(
        title="Hill plot: tail exponent against the threshold",
        xlabel="k / sqrt(m)   (m: a column's non-zero values; k = sqrt(m) is the default)",
        ylabel="tail exponent ξ (Hill)",
    )
    share = ax.twinx()
    share.plot(f, [row["fraction_infinite_variance"] for row in rows], "s--", color="tab:red")
    share.set_ylim(0, 1)
    share.set_ylabel("share credibly of infinite variance (red)", color="tab:red")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")


@_styled
def analysis_figure(
    matrices: Mapping[str, np.ndarray], doc: Mapping, path: str | Path, *, title: str = ""
) -> Path:
    """``python -m sgnoise.analyse --plot``: one row of panels per matrix analysed.

    Noise: each column's α against Gaussian columns', and the histogram of the
    standardised values with the symmetric α-stable density at the calibrated α.
    Per-example gradients (a result with ``by_k``): the Hill plot, and the same
    histogram, with the stable density at the median tail exponent when it is below 2
    (the law a mean of such gradients is attracted to). With several layers, each
    layer's row (up to :data:`FIGURE_LAYERS` layers) and all layers together.

    Parameters
    ----------
    matrices : mapping
        ``{layer: matrix}`` as analysed.
    doc : mapping
        :func:`sgnoise.analyse.analyse`'s result for them.
    path : str or Path
        PNG to write.
    title : str
        Figure title (the command line: the file's name).
    """
    if "layers" in doc:
        rows = (
            [(k, matrices[k], r) for k, r in doc["layers"].items() if "skipped" not in r]
            if len(matrices) <= FIGURE_LAYERS
            else []
        )
        if doc["all"] is not None:
            rows.append(("all layers", np.concatenate(list(matrices.values()), axis=1), doc["all"]))
    else:
        ((name, matrix),) = matrices.items()
        rows = [(name, matrix, doc)]
    fig, axes = plt.subplots(
        len(rows), 2, figsize=(13, 5 * len(rows)), squeeze=False, layout="constrained"
    )
    for (name, matrix, result), (left, right) in zip(rows, axes, strict=True):
        per_example = "by_k" in result
        if per_example:
            _hill_panel(left, result)
            median = result["tail_exponent_quantiles"]["50"]  # a stable law only below 2
            alpha = median if median is not None and median < 2 else None
        else:
            _per_column_panel(left, matrix, result["seed"])
            alpha = result["alpha_calibrated"]
        values = _standardised_values(matrix, per_example)
        bound = "" if per_example else f"; |value| <= sqrt(n - 1) = {np.sqrt(len(matrix) - 1):.2g}"
        _histogram_panel(
            right,
            f"{name}: {result['verdict']['conclusion']}",
            values,
            alpha,
            f"value / its column's standard deviation (centred{bound})",
        )
        left.set_title(f"{name}: {left.get_title()}")
    fig.suptitle(title)
    return _save(fig, path)


def draw_study(
    study: str, results: Mapping, folder: Path, *, pool: Pool | None = None
) -> list[Path]:
    """The PNGs of a run folder's results by its study's plot function
    (:attr:`sgnoise.studies.Study.plots`), drawn here or by ``pool``'s workers (:func:`draw`)."""
    return getattr(sys.modules[__name__], STUDIES[study].plots)(results, folder, pool=pool)


def plot_run(folder: str | Path) -> list[Path]:
    """Redraw every PNG of a run folder from its saved results, with its study's plots."""
    folder = Path(folder)
    results = load_results(folder)
    name = results["config"].get("study")
    if name not in STUDIES:
        raise ValueError(
            f"{folder / 'results.json'}: unknown study {name!r} (known: {', '.join(STUDIES)}); "
            "was it written by a newer sgnoise?"
        )
    paths = draw_study(name, results, folder)
    _plots_drawn(folder)
    return paths


def _plots_drawn(folder: Path) -> None:
    """Clear a complete folder's status message: the only one it carries says its plots could
    not be drawn (:func:`sgnoise.sweep.run`), which they now are. Folders without a status
    file (older ones) are left as they are."""
    try:
        status = read_status(folder)
    except (OSError, ValueError):
        return
    if status["state"] == COMPLETE and status.get("message"):
        write_status(folder, **{**status, "message": ""})


def replot(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """Command line: redraw the PNGs of one or more run folders (``python replot.py FOLDER``,
    ``sgnoise replot FOLDER``: ``prog``)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Redraw a run's PNGs from its results.json and noise_samples.npz."
    )
    parser.add_argument("folders", nargs="+", help="run folders, e.g. MNIST_lr/run-...")
    for folder in parser.parse_args(argv).folders:
        try:
            paths = plot_run(folder)
        except (OSError, ValueError) as err:
            parser.exit(1, f"error: {err}\n")
        for path in paths:
            print(path)
