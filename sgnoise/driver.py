"""What the two drivers share: settings, data, run folder, trainer, results, plots.

A driver (``test_epoch_alpha_relu.py``, ``test_lr_alpha.py``) declares its
settings as constants and calls :func:`main` with its trainer's ``run``. The
data flow one way: settings -> data -> trainer (numbers) -> results.json/.csv
with provenance -> PNGs, which :func:`sgnoise.plots.plot_run` can redraw from
the saved files alone.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sgnoise import cli, plots, results, study
from sgnoise.data import DataError


def main(
    name: str,
    constants: Mapping[str, Any],
    trainer: Callable[..., dict],
    argv: Sequence[str] | None = None,
) -> Path:
    """Run one study as configured and save it into ``<OUT_ROOT>/<Dataset>_<name>/<run>/``.

    Parameters
    ----------
    name : {"activation", "lr"}
        The study; names the output folder ``<Dataset>_<name>``.
    constants : mapping
        The driver's ``globals()`` (its UPPER_CASE settings and docstring).
    trainer : callable
        The trainer's ``run`` (keyword settings -> records, runs, noise samples).
    argv : sequence of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    Path
        The run folder. Bad settings exit with status 2, unusable data or
        run folder with status 1, each with a message saying what to change.
    """
    s = cli.parse(constants.get("__doc__") or "", constants, argv)
    started = dt.datetime.now().astimezone()
    clock = time.perf_counter()
    try:
        data = study.prepare(  # memory-mapped for worker processes: one copy in all
            s["dataset"],
            s["data_dir"] or None,
            s["subset"],
            s["batch_size"],
            shared=s.get("workers", 1) > 1,
        )
        root = Path(s["out_root"]) / f"{data.display_name}_{name}"
        folder = results.new_run_dir(root, s["run_name"] or None, overwrite=s["overwrite"])
    except (DataError, ValueError, FileExistsError) as err:
        sys.exit(f"error: {err}")
    accepted = inspect.signature(trainer).parameters
    kwargs = {k: v for k, v in s.items() if k in accepted and k not in ("dataset", "subset")}
    try:
        out = trainer(dataset=data, **kwargs)
    except BaseException:
        if not any(folder.iterdir()):
            folder.rmdir()  # no empty run folder left behind
        raise
    config = {
        **s,
        "study": name,
        "dataset": data.name,
        "data_source": data.source,
        "n_train": len(data.x_train),
        "n_test": len(data.x_test),
        "sizes": [data.x_train.shape[1], *s["hidden"], study.N_CLASSES],
        "wall_time_s": round(time.perf_counter() - clock, 1),
    }
    results.save_results(folder, config, out["records"], out["runs"], started=started)
    results.save_noise_samples(folder, out["noise_samples"])
    paths = plots.plot_run(folder)
    _print_summary(out)
    print(f"results: {folder / results.RESULTS_JSON}, {folder / results.RESULTS_CSV}")
    for path in paths:
        print(f"plot:    {path}")
    return folder


def _print_summary(out: Mapping[str, Any]) -> None:
    """Diverged runs, then the last pooled train-noise α per activation and lr (mean over seeds)."""
    for run in out["runs"]:
        if run["diverged"]:
            print(
                f"diverged: {run['activation']} lr={run['lr']:g} seed={run['seed']} at "
                f"iteration {run['diverged_iteration']} ({run['reason']})"
            )
    last: dict[tuple, dict] = {}
    for r in out["records"]:
        if r["mode"] == "frozen" and r["split"] == "train" and r["layer"] == "all":
            last[(r["activation"], r["lr"], r["seed"])] = r
    groups: dict[tuple, list[dict]] = {}
    for (activation, lr, _), r in last.items():
        groups.setdefault((activation, lr), []).append(r)
    for (activation, lr), rows in groups.items():

        def mean(key: str, rows=rows) -> float:
            values = [r[key] for r in rows if math.isfinite(r[key])]
            return float(np.mean(values)) if values else float("nan")

        print(
            f"{activation:8s} lr {lr:<8g} last checkpoint (epoch {rows[0]['epoch']:g}, "
            f"{len(rows)} seed(s)): pooled α {mean('alpha'):.3f} (Gaussian surrogate "
            f"{mean('alpha_surrogate'):.3f}), standardised α {mean('alpha_std'):.3f} "
            f"(surrogate {mean('alpha_std_surrogate'):.3f}), loss {mean('loss'):.3f}"
        )
