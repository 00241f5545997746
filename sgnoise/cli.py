"""Driver settings: module constants, overridable from the shell, validated.

A driver keeps its settings as UPPER_CASE constants at the top of the file;
``cli.parse(__doc__, globals())`` (called by :func:`sgnoise.driver.main`) turns
them into settings. Each constant ``NAME`` becomes an option
``--name`` (``LR_STEP`` -> ``--lr-step``, ``SEEDS`` -> ``--seeds 0 1 2``, a bool
``IN_FLIGHT`` -> ``--in-flight`` / ``--no-in-flight``) whose default is the
constant; its help text, type and check come from :data:`KNOBS`, the one
catalogue of every setting the drivers know. Values from the command line and
the constants themselves are validated alike, with messages such as
``--lr-step must be > 0, got -0.1``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgnoise.data import DATASETS
from sgnoise.mlp import ACTIVATIONS
from sgnoise.optim import OPTIMIZERS

#: Most learning rates :func:`lr_grid` makes (a guard against a mistyped step).
MAX_GRID = 1000


def _greater(bound: float) -> Callable[[Any], str | None]:
    return lambda v: None if math.isfinite(v) and v > bound else f"must be > {bound:g}"


def _at_least(bound: int) -> Callable[[Any], str | None]:
    return lambda v: None if v >= bound else f"must be >= {bound}"


def _one_of(choices: Sequence[str]) -> Callable[[Any], str | None]:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


@dataclass(frozen=True)
class Knob:
    """One setting: help text, element type, list-ness and check.

    ``check(value)`` returns None if the value (each element, for a list) is
    good, else what it must be (``"must be > 0"``). ``distinct``: a list whose
    elements must not repeat.
    """

    help: str
    type: type
    many: bool = False
    check: Callable[[Any], str | None] = lambda v: None
    distinct: bool = False


#: Every setting a driver may declare, by constant name.
KNOBS: dict[str, Knob] = {
    "DATASET": Knob(
        "data set: mnist10k (embedded 8,000/2,000 MNIST sample, offline), mnist or "
        "fashion_mnist (60,000/10,000; see --data-dir)",
        str,
        check=_one_of(DATASETS),
    ),
    "ACTIVATIONS": Knob(
        "hidden-layer nonlinearities to compare",
        str,
        many=True,
        check=_one_of(ACTIVATIONS),
        distinct=True,
    ),
    "HIDDEN": Knob(
        "hidden-layer widths, e.g. 100 (a 784-100-10 net) or 256 128",
        int,
        many=True,
        check=_at_least(1),
    ),
    "EPOCHS": Knob("training epochs (per run)", int, check=_at_least(1)),
    "BATCH_SIZE": Knob(
        "minibatch size, for training and for the noise partition", int, check=_at_least(1)
    ),
    "LR": Knob("learning rate η", float, check=_greater(0)),
    "LR_START": Knob("smallest learning rate of the sweep", float, check=_greater(0)),
    "LR_STOP": Knob("largest learning rate (always included)", float, check=_greater(0)),
    "LR_STEP": Knob(
        "learning-rate step (start, start + step, ..., then stop)", float, check=_greater(0)
    ),
    "SEEDS": Knob(
        "seeds (initialisation, minibatch order, estimator), one run each; "
        "plots show the mean and the min-max band",
        int,
        many=True,
        check=_at_least(0),
        distinct=True,
    ),
    "OPTIMIZER": Knob("optimiser: " + ", ".join(OPTIMIZERS), str, check=_one_of(OPTIMIZERS)),
    "CHECKPOINT_EVERY": Knob(
        "measure alpha every k iterations; 0: after every epoch; -1: only at the start and "
        "the end (iteration 0 is always measured)",
        int,
        check=_at_least(-1),
    ),
    "SUBSET": Knob(
        "use only the first n training images and n // 4 test images (0: all), for quick runs",
        int,
        check=_at_least(0),
    ),
    "IN_FLIGHT": Knob(
        "also record the original study's in-flight alpha (last layer, weights moving "
        "during the epoch, row-major blocks)",
        bool,
    ),
    "TRAIN_REFERENCE": Knob(
        "test noise = test minibatch gradient minus the full TRAIN gradient (the original "
        "code's convention; mixes the generalisation gap into the noise)",
        bool,
    ),
    "WORKERS": Knob("configurations trained in parallel (processes)", int, check=_at_least(1)),
    "DATA_DIR": Knob(
        "folder with the data files ('': $SGNOISE_DATA, keras cache, Debian package, download)",
        str,
    ),
    "OUT_ROOT": Knob(
        "folder in which <Dataset>_activation/ and <Dataset>_lr/ are made",
        str,
        check=lambda v: None if v else "must be a folder name",
    ),
    "RUN_NAME": Knob("run folder name ('': run-<date>-<time>, never reused)", str),
    "OVERWRITE": Knob("allow reusing an existing --run-name (its old outputs are deleted)", bool),
}


def flag(name: str) -> str:
    """The command-line option of a constant: ``LR_STEP`` -> ``--lr-step``."""
    return "--" + name.lower().replace("_", "-")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in every option's help; the driver's docstring kept as written."""


def build_parser(description: str, spec: Mapping[str, tuple[Any, Knob]]) -> argparse.ArgumentParser:
    """An argparse parser with one option per setting.

    Parameters
    ----------
    description : str
        Shown at the top of ``--help`` (the driver's docstring).
    spec : mapping
        ``{NAME: (default, knob)}``; ``NAME`` becomes ``--name``.
    """
    parser = argparse.ArgumentParser(
        description=description, formatter_class=_Formatter, allow_abbrev=False
    )
    for name, (default, knob) in spec.items():
        opt = flag(name)
        if knob.type is bool:
            parser.add_argument(
                opt, action=argparse.BooleanOptionalAction, default=default, help=knob.help
            )
        elif knob.many:
            shown = list(default) if isinstance(default, tuple) else default
            parser.add_argument(opt, nargs="+", type=knob.type, default=shown, help=knob.help)
        else:
            parser.add_argument(opt, type=knob.type, default=default, help=knob.help)
    return parser


def check_setting(name: str, value: Any) -> None:
    """Validate one setting against its :data:`KNOBS` entry; ValueError names option and value."""
    knob = KNOBS[name]
    if knob.many and (isinstance(value, str) or not isinstance(value, Sequence) or not value):
        raise ValueError(f"{flag(name)} must be a non-empty list, got {value!r}")
    values = list(value) if knob.many else [value]
    for v in values:
        ok_type = isinstance(v, knob.type) or (knob.type is float and isinstance(v, int))
        if not ok_type or (knob.type is not bool and isinstance(v, bool)):
            raise ValueError(f"{flag(name)} must be of type {knob.type.__name__}, got {v!r}")
        problem = knob.check(v)
        if problem:
            raise ValueError(f"{flag(name)} {problem}, got {v!r}")
    if knob.distinct and len(set(values)) != len(values):
        raise ValueError(f"{flag(name)} must not repeat a value, got {values}")


def check_settings(settings: Mapping[str, Any]) -> None:
    """Validate settings ``{NAME: value}``: each with :func:`check_setting`, then together.

    Together: ``LR_START <= LR_STOP`` and a learning-rate grid of at most
    :data:`MAX_GRID` rates (see :func:`lr_grid`).
    """
    for name, value in settings.items():
        check_setting(name, value)
    if "LR_START" in settings and "LR_STOP" in settings:
        lr_grid(settings["LR_START"], settings["LR_STOP"], settings.get("LR_STEP", math.inf))


def parse(
    description: str, constants: Mapping[str, Any], argv: Sequence[str] | None = None
) -> dict[str, Any]:
    """The driver's settings: its constants, overridden from the command line, validated.

    Parameters
    ----------
    description : str
        The driver's docstring (top of ``--help``).
    constants : mapping
        The driver's ``globals()``: every UPPER_CASE name is a setting and
        must be in :data:`KNOBS`.
    argv : sequence of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    dict
        ``{lower_case_name: value}``, lists for list settings.

    Raises
    ------
    SystemExit
        Exit code 2 with a message on stderr for a bad value, whether from the
        command line or from a constant: the message names the option, what
        it must be, what it got, and where the value came from.
    ValueError
        An UPPER_CASE constant that is not a known setting (a driver bug).
    """
    names = [n for n in constants if n.isupper() and not n.startswith("_")]
    unknown = [n for n in names if n not in KNOBS]
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}: known are {sorted(KNOBS)}")
    parser = build_parser(description, {n: (constants[n], KNOBS[n]) for n in names})
    args = vars(parser.parse_args(argv))
    settings = {n: args[n.lower()] for n in names}
    script = Path(constants.get("__file__", "the driver")).name
    tokens = {t.split("=", 1)[0] for t in (sys.argv[1:] if argv is None else argv)}
    for name in names:
        try:
            check_setting(name, settings[name])
        except ValueError as err:
            typed = flag(name) in tokens
            parser.error(
                f"{err} (from the {'command line' if typed else f'constant {name} in {script}'})"
            )
    try:
        check_settings(settings)
    except ValueError as err:
        parser.error(str(err))
    return {n.lower(): list(v) if KNOBS[n].many else v for n, v in settings.items()}


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
    n = math.floor((stop - start) / step * (1 + 1e-12))
    if n + 1 > MAX_GRID:
        raise ValueError(
            f"--lr-step {step!r} from {start!r} to {stop!r} makes {n + 1} learning rates, "
            f"more than {MAX_GRID}: use a larger step"
        )
    grid = [float(f"{start + i * step:.12g}") for i in range(n + 1)]
    if grid[-1] != float(f"{stop:.12g}"):
        grid.append(float(stop))
    else:
        grid[-1] = float(stop)
    return grid
