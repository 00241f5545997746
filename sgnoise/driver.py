"""What the two drivers share: parse settings, run the trainer, save results and plots."""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from sgnoise import cli, plots, results
from sgnoise.data import DataError


def main(study: str, description: str, settings: dict, argv=None) -> None:
    """Run one study ("activation" or "lr") as configured, save into <Dataset>_<study>/<run>/."""
    s = cli.parse(description, settings, argv)
    if study == "activation":
        import model_epoch_vs_alpha as trainer
    else:
        import model_lr_vs_alpha as trainer
    start = time.time()
    try:
        out = trainer.run(**{**s, "data_dir": s["data_dir"] or None})
    except (DataError, ValueError) as err:
        sys.exit(f"error: {err}")
    root = f"{out['dataset'].display_name}_{study}"
    folder = results.new_run_dir(root, s["run_name"] or None, overwrite=s["overwrite"])
    config = {
        **s,
        "study": study,
        "dataset": out["dataset"].name,
        "data_source": out["dataset"].source,
        "wall_time_s": round(time.time() - start, 1),
    }
    results.save_results(folder, config, out["records"], out["runs"])
    np.savez_compressed(folder / "noise_samples.npz", **out["noise_samples"])
    paths = plots.plot_run(folder)
    for run in out["runs"]:
        if run["diverged"]:
            print(
                f"diverged: {run['activation']} lr={run['lr']} seed={run['seed']} at "
                f"iteration {run['diverged_iteration']} ({run['reason']})"
            )
    final = [r for r in out["records"] if r["layer"] == "all" and r["split"] == "train"]
    if final:
        last = final[-1]
        print(
            f"last measurement: {last['activation']} epoch {last['epoch']:g}: pooled alpha "
            f"{last['alpha']:.3f} (Gaussian surrogate {last['alpha_surrogate']:.3f}), "
            f"standardised {last['alpha_std']:.3f} (surrogate {last['alpha_std_surrogate']:.3f})"
            if math.isfinite(last["alpha"])
            else ""
        )
    print(f"results: {folder}/results.json, results.csv")
    for p in paths:
        print(f"plot:    {p}")
