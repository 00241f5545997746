"""The table of studies: what each sweeps, its settings with their defaults, its runs, its plots.

A study is one row of :data:`STUDIES`. Adding one means a row here, a plot
function in :mod:`sgnoise.plots` and a driver script whose constants name the
row: everything else (settings, sweep, run folder, results, replot) reads the
table. Each default is written once, here; the shipped drivers declare the
same values as constants for the user to edit (a test keeps them equal).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sgnoise.run_config import MAX_KEY, RunConfig, hidden_name

if TYPE_CHECKING:  # settings reads the table (each study's knobs): this module must not import it
    from sgnoise.settings import Settings

#: Settings every study has, with their defaults, in the order ``--help`` lists them.
_COMMON_HEAD = {
    "DATASET": "mnist10k",
    "MODEL": "mlp",
    "ACTIVATIONS": ("relu", "sigmoid"),
    "HIDDEN": (100,),
    "CHANNELS": (6, 16),
    "KERNEL": 5,
}
_COMMON_TAIL = {
    "COORDINATES": 250,
    "RESAMPLED": 1000,
    "SPARSE": 0.05,
    "SEEDS": (0, 1, 2),
    "OPTIMIZER": "sgd",
    "INIT": "paper",
    "LOSS": "cross_entropy",
    "CHECKPOINT_EVERY": 0,
    "SUBSET": 0,
    "TRAIN_REFERENCE": False,
    "WORKERS": 2,
    "BACKEND": "local",
    "SCHEDULER": "",
    "DATA_DIR": "",
    "OUT_ROOT": ".",
    "RUN_NAME": "",
    "OVERWRITE": False,
    "RESUME": "",
}


#: Most values a sweep grid (:func:`lr_grid`) may make: a guard against a mistyped step.
MAX_GRID = 1000


def lr_grid(start: float, stop: float, step: float) -> list[float]:
    """Learning rates start, start + step, ... <= stop, then stop; both ends always included.

    If stop is not on the grid it is still added as the last rate (0.001 to
    0.1 by 0.005 ends ..., 0.091, 0.096, 0.1). Each rate is rounded to 12
    significant digits, so 0.001 + 3 * 0.005 is 0.016, not 0.016000000000000004,
    and a rate within that rounding of stop is stop itself.

    Raises
    ------
    ValueError
        A non-positive or non-finite bound or step, start > stop, or more
        than :data:`MAX_GRID` rates.
    """
    for name, value in (("--lr-start", start), ("--lr-stop", stop), ("--lr-step", step)):
        if not (value > 0 and (math.isfinite(value) or name == "--lr-step")):
            raise ValueError(f"{name} must be > 0, got {value!r}")
    if start > stop:
        raise ValueError(f"--lr-start must be <= --lr-stop, got {start!r} > {stop!r}")
    steps = (stop - start) / step * (1 + 1e-12)  # inf when the step is tiny beside the span
    if not steps + 1 <= MAX_GRID:
        raise ValueError(
            f"--lr-step {step!r} from {start!r} to {stop!r} makes {_count(steps + 1)} "
            f"learning rates, more than {MAX_GRID}: use a larger step"
        )
    n = math.floor(steps)
    grid = [float(f"{start + i * step:.12g}") for i in range(n + 1)]
    if grid[-1] != float(f"{stop:.12g}"):
        grid.append(float(stop))
    else:
        grid[-1] = float(stop)
    return grid


def _count(n: float) -> str:
    """A count written whole, or roughly beyond what an integer holds: "990001", "about inf"."""
    return str(math.floor(n)) if n < 1e18 else f"about {n:.3g}"


def scaled_lr(lr: float, reference: int, batch_size: int) -> float:
    """The rate at batch size b that keeps η/b = lr / reference, rounded to 12 digits."""
    return float(f"{lr * batch_size / reference:.12g}")


def batch_grid(batch_sizes: Sequence[int], lr: float, reference: int) -> list[tuple[float, int]]:
    """(lr, b) pairs of the batch study: every b at the fixed rate ``lr``, then every b at the
    fixed ratio η/b = lr / reference (:func:`scaled_lr`); a pair both rules make (b =
    reference) is run once.

    References
    ----------
    Gurbuzbalaban, Simsekli & Zhu, "The Heavy-Tail Phenomenon in SGD", ICML 2021: the tail
    index of SGD's iterates depends on η and b through η/b.
    """
    pairs = [(float(lr), b) for b in batch_sizes]
    pairs += [(scaled_lr(lr, reference, b), b) for b in batch_sizes]
    return list(dict.fromkeys(pairs))


@dataclass(frozen=True)
class Study:
    """One study: a row of :data:`STUDIES`.

    Attributes
    ----------
    name : str
        Its name; its output folder is ``<Dataset>_<name>``.
    question : str
        What it asks (shown in summaries).
    sweeps : str
        The record column it varies across runs besides activation and seed
        (``"lr"``, ``"batch_size"``), or ``"epoch"`` when it follows runs over training.
    defaults : mapping
        Its settings, ``{NAME: default}``: exactly the knobs it has.
    grid : callable
        ``settings -> list of (learning rate, batch size)`` of its runs, without repeats.
    plots : str
        The name of its function in :mod:`sgnoise.plots`, ``(results, folder, *, pool)
        -> list of PNG paths``, drawn from saved results alone
        (:func:`sgnoise.plots.draw_study`; this module does not import matplotlib: the
        worker processes import it to train).
    networks : callable
        ``settings -> list of hidden-layer widths`` of its networks, without repeats
        (default: the one network ``HIDDEN``).
    """

    name: str
    question: str
    sweeps: str
    defaults: Mapping[str, Any]
    grid: Callable[[Settings], list[tuple[float, int]]]
    plots: str
    networks: Callable[[Settings], list[tuple[int, ...]]] = lambda s: [tuple(s.hidden)]

    def batch_sizes(self, s: Settings) -> list[int]:
        """Every training batch size of the study's runs (the data must allow each)."""
        return sorted({b for _, b in self.grid(s)})

    def runs(self, s: Settings) -> list[RunConfig]:
        """The runs to make, in order: one :class:`RunConfig` per (activation, network, (lr,
        batch size), seed), each what :func:`sgnoise.training.train_and_measure` is given.

        The initialisation and minibatch order depend only on the seed, so runs
        that differ only in the learning rate start from identical weights.
        """
        configs = [
            RunConfig(
                activation=a,
                lr=lr,
                seed=seed,
                optimizer=s.optimizer,
                init=s.init,
                loss=s.loss,
                batch_size=b,
                epochs=s.epochs,
                model=s.model,
                hidden=hidden,
                channels=tuple(s.channels),
                kernel=s.kernel,
                checkpoint_every=s.checkpoint_every,
                in_flight=s.in_flight,
                train_reference=s.train_reference,
                coordinates=s.coordinates,
                resampled=s.resampled,
                sparse=s.sparse,
                detail=s.detail,
                batch_scan=s.batch_scan,
            )
            for a in s.activations
            for hidden in self.networks(s)
            for lr, b in self.grid(s)
            for seed in s.seeds
        ]
        keys = [c.key for c in configs]
        if len(set(keys)) != len(keys):  # rates closer than 12 digits: one name, two runs
            raise ValueError(
                f"the {self.name} study's runs must differ, got {len(keys)} runs "
                f"named {len(set(keys))} ways: widen the learning-rate step"
            )
        longest = max(configs, key=lambda c: len(c.key))
        if len(longest.key) > MAX_KEY:  # its file in runs/ could not be written after training
            fix = "--hidden" if "HIDDEN" in self.defaults else "--depths, --depth-width, --widths"
            raise ValueError(
                f"the network of {len(longest.hidden)} hidden layers "
                f"({hidden_name(longest.hidden)[:40]}...) names its run with {len(longest.key)} "
                f"characters, more than the {MAX_KEY} a run's file name can hold: use fewer or "
                f"narrower hidden layers ({fix})"
            )
        return configs

    def histogram_runs(self, configs: Sequence[RunConfig], diverged: Sequence[bool]) -> list[int]:
        """Indices of the runs whose noise sample the histogram shows: per activation, the
        first seed's run with the largest learning rate that did not diverge (the first
        such run in sweep order)."""
        keep = []
        for activation in dict.fromkeys(c.activation for c in configs):
            first = configs[0].seed
            ok = [
                i
                for i, c in enumerate(configs)
                if c.activation == activation and c.seed == first and not diverged[i]
            ]
            keep += [max(ok, key=lambda i: configs[i].lr)] if ok else []
        return keep


def size_networks(s: Settings) -> list[tuple[int, ...]]:
    """The size study's networks: one hidden layer of each width, then 1, 2, ... hidden layers
    of ``depth_width`` units (a network both arms make is run once)."""
    nets = [(w,) for w in s.widths] + [(s.depth_width,) * d for d in s.depths]
    return list(dict.fromkeys(nets))


STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            name="activation",
            question="how does α evolve over training, ReLU vs sigmoid?",
            sweeps="epoch",
            defaults={
                **_COMMON_HEAD,
                "EPOCHS": 20,
                "BATCH_SIZE": 500,
                "LR": 0.1,
                "IN_FLIGHT": True,
                "DETAIL": "ends",
                "BATCH_SCAN": True,
                **_COMMON_TAIL,
            },
            grid=lambda s: [(s.lr, s.batch_size)],
            plots="activation_plots",
        ),
        Study(
            name="lr",
            question="does α depend on the learning rate?",
            sweeps="lr",
            defaults={
                **_COMMON_HEAD,
                "LR_START": 0.001,
                "LR_STOP": 0.1,
                "LR_STEP": 0.01,
                "EPOCHS": 5,
                "BATCH_SIZE": 500,
                "IN_FLIGHT": False,
                "DETAIL": "ends",
                "BATCH_SCAN": False,
                **_COMMON_TAIL,
            },
            grid=lambda s: [(lr, s.batch_size) for lr in lr_grid(s.lr_start, s.lr_stop, s.lr_step)],
            plots="lr_plots",
        ),
        Study(
            name="batch",
            question="how do the training batch size b, at a fixed η and at a fixed η/b, move α?",
            sweeps="batch_size",
            defaults={
                **_COMMON_HEAD,
                "BATCH_SIZES": (64, 128, 256, 512),
                "LR": 0.1,
                "REFERENCE_BATCH": 128,
                "EPOCHS": 5,
                "IN_FLIGHT": False,
                "DETAIL": "ends",
                "BATCH_SCAN": False,
                **_COMMON_TAIL,
                # two seeds: a small b's checkpoints hold n/b noise rows each (slow), and
                # `make demo` stays under 4 minutes
                "SEEDS": (0, 1),
            },
            grid=lambda s: batch_grid(s.batch_sizes, s.lr, s.reference_batch),
            plots="batch_plots",
        ),
        Study(
            name="size",
            question="does α move with the network's width and depth?",
            sweeps="hidden",
            defaults={
                **{k: v for k, v in _COMMON_HEAD.items() if k != "HIDDEN"},
                "WIDTHS": (32, 128, 512, 2048),
                "DEPTHS": (1, 2, 3, 4),
                "DEPTH_WIDTH": 128,
                "EPOCHS": 5,
                "BATCH_SIZE": 500,
                "LR": 0.1,
                "IN_FLIGHT": False,
                "DETAIL": "ends",
                "BATCH_SCAN": False,
                **_COMMON_TAIL,
                # He's scale (2 / fan_in): every width and depth starts with activations of
                # one size, where N(0, 0.1^2) would scale them with sqrt(width)
                "INIT": "he",
                # two seeds: the reference stays within 10 minutes on 2 cores
                "SEEDS": (0, 1),
            },
            grid=lambda s: [(s.lr, s.batch_size)],
            plots="size_plots",
            networks=size_networks,
        ),
    )
}
