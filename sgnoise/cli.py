"""The console scripts of an installed sgnoise: ``sgnoise`` and ``sgnoise-analyse``.

``sgnoise activation|lr|batch|size [flags]`` runs a study as its driver at the top
of the checkout does (``test_epoch_alpha_relu.py``, ``test_lr_alpha.py``,
``test_batch_alpha.py``): the same parser, settings (the study's defaults, a
row of :data:`sgnoise.studies.STUDIES`), errors and exit codes, with results
under the current directory (``--out-root``). ``sgnoise replot FOLDER ...``
redraws saved runs (``replot.py``). ``sgnoise-analyse`` is ``python -m
sgnoise.analyse``. ``python -m sgnoise ...`` is ``sgnoise ...``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sgnoise.studies import STUDIES

PROG = "sgnoise"
COMMANDS = {
    **{name: f"study: {study.question}" for name, study in STUDIES.items()},
    "replot": "redraw the PNGs of run folders from their saved results, without training",
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}s}  {what}" for name, what in COMMANDS.items()]
    return (
        f"usage: {PROG} {{{','.join(COMMANDS)}}} [flags]\n\n"
        "Is stochastic gradient noise Gaussian or heavy-tailed? Commands:\n"
        + "\n".join(lines)
        + f"\n\n{PROG} COMMAND --help lists a command's flags; results go under the current "
        "directory.\nYour own noise: sgnoise-analyse NOISE.npy (see its --help).\n"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``sgnoise COMMAND [flags]``: exits 0 when done, 2 on a bad command or setting."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), end="", file=sys.stdout if argv else sys.stderr)
        sys.exit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command == "replot":
        from sgnoise.plots import replot

        replot(rest, prog=f"{PROG} replot")
    elif command in STUDIES:
        from sgnoise import sweep

        study = STUDIES[command]
        doc = (
            f"{PROG} {command}: {study.question}\n\n"
            f"Every setting below has the default of the driver in the checkout; results go "
            f"to <OUT_ROOT>/<Dataset>_{command}/<run>/ (OUT_ROOT: the current directory)."
        )
        sweep.main(command, {"__file__": f"{PROG} {command}", "__doc__": doc}, rest)
    else:
        print(
            f"{PROG}: error: unknown command {command!r}: use one of {', '.join(COMMANDS)} "
            f"(see {PROG} --help)",
            file=sys.stderr,
        )
        sys.exit(2)


def analyse_main() -> None:
    """``sgnoise-analyse``: ``python -m sgnoise.analyse`` under its installed name."""
    from sgnoise.analyse import main as analyse

    sys.exit(analyse(prog="sgnoise-analyse"))
