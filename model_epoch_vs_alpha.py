"""Trainer: the SGN tail index α over training, one network per activation and seed.

``run`` trains and measures and returns numbers only (records, runs, noise
samples), saving nothing; the driver ``test_epoch_alpha_relu.py`` runs the same
study and saves and plots it. At iteration 0 and after every epoch (or every k
iterations) it records, for the train and the test noise, per layer and pooled
over all parameters: the pooled α with its confidence interval and
Gaussian-surrogate α, the same for the per-coordinate standardised noise, the
training loss, the train and test accuracy and the elapsed time (see
:mod:`sgnoise.measure`). Settings and their defaults: the ``activation`` row of
:data:`sgnoise.studies.STUDIES` (``python test_epoch_alpha_relu.py --help``).

Run it directly for a quick look without saving anything:
    python model_epoch_vs_alpha.py
"""

from __future__ import annotations

from typing import Any

from sgnoise import settings, sweep


def run(**values: Any) -> dict[str, Any]:
    """Train one network per (activation, seed) and measure α at every checkpoint.

    Parameters are the study's settings in lower case (``epochs=2, seeds=(0,)``);
    an unknown one raises ValueError naming it.

    Returns
    -------
    dict
        ``{"records", "runs", "noise_samples"}`` (see :func:`sgnoise.sweep.gather`).
    """
    return sweep.compute(settings.make("activation", values))


if __name__ == "__main__":
    out = run(epochs=2, seeds=(0,), workers=1)
    for r in out["records"]:
        if r["layer"] == "all" and r["split"] == "train" and r["mode"] == "frozen":
            print(
                f"{r['activation']:8s} epoch {r['epoch']:g}: pooled α {r['alpha']:.3f} "
                f"(Gaussian surrogate {r['alpha_surrogate']:.3f}), loss {r['loss']:.3f}"
            )
