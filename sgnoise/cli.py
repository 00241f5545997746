"""Driver settings: module constants, overridable from the shell, validated.

A driver declares ``SETTINGS = {"EPOCHS": (10, "help text"), ...}`` built from
its constants; :func:`parse` turns each NAME into ``--name`` (``LR_STEP`` ->
``--lr-step``), with the constant as default and the help text in ``--help``.
"""

from __future__ import annotations

import argparse

import numpy as np

from sgnoise.data import DATASETS
from sgnoise.mlp import ACTIVATIONS
from sgnoise.optim import OPTIMIZERS


def _type_of(default):
    if isinstance(default, bool):
        return None
    if isinstance(default, tuple | list):
        return type(default[0]) if default else str
    return type(default) if default is not None else str


def parse(description: str, settings: dict[str, tuple], argv=None) -> dict:
    """Parse the command line into {lower_case_name: value}; validated (SystemExit on error)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    for name, (default, help_text) in settings.items():
        flag = "--" + name.lower().replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
        elif isinstance(default, tuple | list):
            parser.add_argument(
                flag, nargs="+", type=_type_of(default), default=list(default), help=help_text
            )
        else:
            parser.add_argument(flag, type=_type_of(default), default=default, help=help_text)
    args = vars(parser.parse_args(argv))
    try:
        validate(args)
    except ValueError as err:
        parser.error(str(err))
    return args


def validate(s: dict) -> None:
    """Raise ValueError naming the setting and value for anything out of range."""

    def flag(name):
        return "--" + name.replace("_", "-")

    if "dataset" in s and s["dataset"] not in DATASETS:
        raise ValueError(f"--dataset must be one of {', '.join(DATASETS)}, got {s['dataset']!r}")
    for a in s.get("activations", []):
        if a not in ACTIVATIONS:
            raise ValueError(f"--activations must be among {ACTIVATIONS}, got {a!r}")
    if s.get("optimizer", "sgd") not in OPTIMIZERS:
        raise ValueError(f"--optimizer must be one of {OPTIMIZERS}, got {s['optimizer']!r}")
    for name in ("lr", "lr_start", "lr_stop", "lr_step"):
        if name in s and not (np.isfinite(s[name]) and s[name] > 0):
            raise ValueError(f"{flag(name)} must be > 0, got {s[name]}")
    if "lr_start" in s and s["lr_start"] > s["lr_stop"]:
        raise ValueError(f"--lr-start must be <= --lr-stop, got {s['lr_start']} > {s['lr_stop']}")
    for name in ("epochs", "batch_size", "workers"):
        if name in s and s[name] < 1:
            raise ValueError(f"{flag(name)} must be >= 1, got {s[name]}")
    for name in ("checkpoint_every", "subset"):
        if name in s and s[name] < 0:
            raise ValueError(f"{flag(name)} must be >= 0, got {s[name]}")
    if "seeds" in s and (not s["seeds"] or len(set(s["seeds"])) != len(s["seeds"])):
        raise ValueError(f"--seeds must be distinct integers, got {s['seeds']}")


def lr_grid(start: float, stop: float, step: float) -> list[float]:
    """start, start + step, ... up to stop, both ends included (stop added if off-grid).

    Rounded to 12 significant digits so that 0.001 + 3 * 0.005 prints as 0.016.
    """
    n = int(np.floor((stop - start) / step + 1e-9))
    grid = [float(f"{start + i * step:.12g}") for i in range(n + 1)]
    if not np.isclose(grid[-1], stop, rtol=1e-9, atol=0):
        grid.append(float(stop))
    return grid
