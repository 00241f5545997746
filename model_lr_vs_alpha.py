"""Trainer: the SGN tail index α against the learning rate.

For learning rates from ``lr_start`` to ``lr_stop`` by ``lr_step`` (both ends
included, see :func:`sgnoise.studies.lr_grid`), ``run`` trains each activation
and seed for ``epochs`` epochs and records the same measurements as
``model_epoch_vs_alpha.py``, saving nothing (the driver ``test_lr_alpha.py``
runs the same study and saves and plots it). Every learning rate starts from the
same fresh initialisation (the original code carried the weights over from one
rate to the next, which confounds the sweep with training time). A run that
diverges (NaN/inf) is stopped and recorded as such; the sweep goes on. Settings
and their defaults: the ``lr`` row of :data:`sgnoise.studies.STUDIES`.

Run it directly for a quick look without saving anything:
    python model_lr_vs_alpha.py
"""

from __future__ import annotations

from typing import Any

from sgnoise import settings, sweep


def run(**values: Any) -> dict[str, Any]:
    """Train every (activation, learning rate, seed) from the seed's initialisation.

    Parameters are the study's settings in lower case (``lr_step=0.05``); an
    unknown one raises ValueError naming it.

    Returns
    -------
    dict
        ``{"records", "runs", "noise_samples"}`` (see :func:`sgnoise.sweep.gather`);
        the histogram samples are those of the largest learning rate that did
        not diverge, first seed, for each activation.
    """
    return sweep.compute(settings.make("lr", values))


if __name__ == "__main__":
    out = run(epochs=1, seeds=(0,), lr_step=0.05)
    for r in out["records"]:
        if (
            r["mode"] == "frozen"
            and r["layer"] == "all"
            and r["split"] == "train"
            and r["epoch"] == 1
        ):
            print(
                f"{r['activation']:8s} lr {r['lr']:<6g}: pooled α {r['alpha']:.3f} "
                f"(Gaussian surrogate {r['alpha_surrogate']:.3f}), loss {r['loss']:.3f}"
            )
