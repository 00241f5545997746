"""Settings: every knob the studies know, parsed and validated once into one immutable object.

A driver keeps its settings as UPPER_CASE constants at the top of the file;
:func:`parse` reads them, lets the command line override any of them
(``LR_STEP`` -> ``--lr-step``, ``SEEDS`` -> ``--seeds 0 1 2``, a bool
``IN_FLIGHT`` -> ``--in-flight`` / ``--no-in-flight``) and returns
:class:`Settings`. Which knobs a study has, and their defaults, is the study's
row in :data:`sgnoise.studies.STUDIES`; this module holds what each knob means
(:data:`KNOBS`: help text, type, check). A constant or flag that is not a knob,
or a knob the study does not have, is an error that names it: nothing is
silently dropped. Values from the command line and from the constants are
validated alike, with one-line messages such as ``--lr-step must be > 0, got -0.1``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from sgnoise.data import DATASETS, IMAGE_SHAPES
from sgnoise.mlp import ACTIVATIONS, INITS, LOSSES
from sgnoise.model import MODELS, footprint
from sgnoise.optim import OPTIMIZERS
from sgnoise.results import run_name_problem

#: Settings that say where things are, not what is computed: left out of the saved
#: configuration (they are machine-specific) and free to change on ``--resume``.
LOCATION = (
    "data_dir",
    "out_root",
    "run_name",
    "overwrite",
    "resume",
    "workers",
    "backend",
    "scheduler",
)
#: Where the runs of a sweep go (:func:`sgnoise.sweep.execute`).
BACKENDS = ("local", "dask")


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


def _distinct_list(
    help: str, type: type = int, *, check: Callable[[Any], str | None] | None = None, low: int = 0
) -> Knob:
    """A list setting whose elements must not repeat: checked by ``check``, or integers >= low."""
    return Knob(help, type, many=True, check=check or _at_least(low), distinct=True)


def _count(help: str, low: int) -> Knob:
    """An integer setting, at least ``low``."""
    return Knob(help, int, check=_at_least(low))


#: Every setting any study may have, by constant name.
KNOBS: dict[str, Knob] = {
    "DATASET": Knob(
        "data set: mnist10k (embedded 8,000/2,000 MNIST sample, offline), mnist or "
        "fashion_mnist (60,000/10,000 28x28 grey images), cifar10 (50,000/10,000 32x32 colour "
        "images, cifar-10-binary.tar.gz); see --data-dir",
        str,
        check=_one_of(DATASETS),
    ),
    "MODEL": Knob(
        "network: mlp (fully connected hidden layers) or cnn (LeNet-style: per --channels a "
        "--kernel convolution, the activation and 2x2 max pooling, then the dense hidden "
        "layers)",
        str,
        check=_one_of(MODELS),
    ),
    "ACTIVATIONS": _distinct_list(
        "hidden-layer nonlinearities to compare", str, check=_one_of(ACTIVATIONS)
    ),
    "HIDDEN": Knob(
        "hidden-layer widths, e.g. 100 (a 784-100-10 net) or 256 128",
        int,
        many=True,
        check=_at_least(1),
    ),
    "CHANNELS": Knob(
        "with --model cnn: output channels of each convolution, e.g. 6 16 (LeNet-5's)",
        int,
        many=True,
        check=_at_least(1),
    ),
    "KERNEL": _count("with --model cnn: kernel size k of every (k x k) convolution", 1),
    "WIDTHS": _distinct_list(
        "size study: widths w of the networks with one hidden layer (784-w-10)", low=1
    ),
    "DEPTHS": _distinct_list(
        "size study: numbers of hidden layers d of the deep networks (784-w-...-w-10, d times "
        "--depth-width)",
        low=1,
    ),
    "DEPTH_WIDTH": _count("size study: the width w of every hidden layer of the deep networks", 1),
    "EPOCHS": _count("training epochs (per run)", 1),
    "BATCH_SIZE": _count("minibatch size, for training and for the noise partition", 1),
    "BATCH_SIZES": _distinct_list(
        "training batch sizes b of the sweep (each also the noise partition's minibatch size; "
        "every split needs 3 minibatches of the largest)",
        low=1,
    ),
    "REFERENCE_BATCH": _count(
        "the batch size at which the fixed-ratio runs use --lr: they keep η/b = "
        "lr / reference-batch at every b",
        1,
    ),
    "LR": Knob("learning rate η", float, check=_greater(0)),
    "LR_START": Knob("smallest learning rate of the sweep", float, check=_greater(0)),
    "LR_STOP": Knob("largest learning rate (always included)", float, check=_greater(0)),
    "LR_STEP": Knob(
        "learning-rate step (start, start + step, ..., then stop)", float, check=_greater(0)
    ),
    "SEEDS": _distinct_list(
        "seeds (initialisation, minibatch order, estimator), one run each; "
        "plots show the mean and the min-max band",
        low=0,
    ),
    "OPTIMIZER": Knob("optimiser: " + ", ".join(OPTIMIZERS), str, check=_one_of(OPTIMIZERS)),
    "INIT": Knob(
        "initial weights: paper (N(0, 0.1^2) whatever the width, the original study's), he "
        "(N(0, 2/fan_in), He et al. 2015), lecun (N(0, 1/fan_in), LeCun et al. 1998) or "
        "glorot (N(0, 2/(fan_in + fan_out)))",
        str,
        check=_one_of(INITS),
    ),
    "LOSS": Knob(
        "training loss: cross_entropy (softmax) or mse (half the squared error of the 10 "
        "outputs against one-hot targets, summed over classes, averaged over examples)",
        str,
        check=_one_of(LOSSES),
    ),
    "CHECKPOINT_EVERY": _count(
        "measure alpha every k iterations; 0: after every epoch; -1: only at the start and "
        "the end (iteration 0 is always measured)",
        -1,
    ),
    "SUBSET": _count(
        "use only the first n training images and n // 4 test images (0: all), for quick runs", 0
    ),
    "IN_FLIGHT": Knob(
        "also record the original study's in-flight alpha (last layer, weights moving "
        "during the epoch, row-major blocks)",
        bool,
    ),
    "TRAIN_REFERENCE": Knob(
        "test noise = test minibatch gradient minus the full TRAIN gradient (the original "
        "code's convention; mixes the generalisation gap into the noise; the frozen test "
        "rows only: resampled test noise is always minus its own mean)",
        bool,
    ),
    "COORDINATES": _count(
        "coordinates sampled per layer for the per-coordinate measurement (per-example "
        "gradients, resampled minibatches, calibrated α; when: --detail); 0: off, and "
        "--resampled, --detail, --batch-scan with it",
        0,
    ),
    "RESAMPLED": _count(
        "minibatches M drawn at random for the per-coordinate measurement (each coordinate "
        "gets M noise values; per-coordinate α needs >= 1000)",
        8,
    ),
    "SPARSE": Knob(
        "a coordinate is sparse when fewer than this share of the examples give it a "
        "non-zero per-example gradient (a pixel rarely lit, a unit rarely active); the "
        "per-coordinate rows give the share of sparse coordinates, and α of the dense and the "
        "sparse ones apart",
        float,
        check=lambda v: None if 0 < v < 1 else "must be in (0, 1)",
    ),
    "DETAIL": Knob(
        "when the per-coordinate measurement runs: every checkpoint, or the first, the "
        "middle and the last (ends)",
        str,
        check=_one_of(("every", "ends")),
    ),
    "BATCH_SCAN": Knob(
        "also measure α against the measured batch size B = 1, 2, 4, ..., 2048 at the "
        "start, middle and end of training (alpha_vs_measured_batch.png; about 1 s a scan "
        "of 60,000 images)",
        bool,
    ),
    "WORKERS": _count(
        "runs trained in parallel (processes); 1: in this process, a bar per epoch. "
        "The numbers do not depend on it (one BLAS thread per run). With --backend dask "
        "and no scheduler: the worker processes of the local cluster",
        1,
    ),
    "BACKEND": Knob(
        "where the runs go: local (this machine, --workers processes) or dask (one task per "
        "run on a dask.distributed cluster, see --scheduler; pip install -r "
        "requirements-dask.txt). The numbers do not depend on it",
        str,
        check=_one_of(BACKENDS),
    ),
    "SCHEDULER": Knob(
        "with --backend dask: the scheduler's address, e.g. tcp://host:8786 ('': "
        "$DASK_SCHEDULER_ADDRESS, else a local cluster of --workers processes for the sweep)",
        str,
    ),
    "DATA_DIR": Knob(
        "folder with the data files ('': $SGNOISE_DATA, keras cache, Debian package, download)",
        str,
    ),
    "OUT_ROOT": Knob(
        "folder in which the study's <Dataset>_<study>/ folder is made",
        str,
        check=lambda v: None if v else "must be a folder name",
    ),
    "RUN_NAME": Knob(
        "run folder name ('': run-<date>-<time>, never reused)",
        str,
        check=lambda v: v and run_name_problem(v),
    ),
    "OVERWRITE": Knob("allow reusing an existing --run-name (its old outputs are deleted)", bool),
    "RESUME": Knob(
        "a run folder to finish ('': start a new run): runs only its missing runs, with "
        "the settings saved there, and gives the numbers of an uninterrupted sweep",
        str,
    ),
}


def flag(name: str) -> str:
    """The command-line option of a constant: ``LR_STEP`` -> ``--lr-step``."""
    return "--" + name.lower().replace("_", "-")


def as_typed(name: str, value: Any) -> str:
    """A setting as it is typed: ``--epochs 5``, ``--seeds 0 1 2``, ``--no-in-flight``."""
    if isinstance(value, bool):
        return flag(name) if value else "--no-" + flag(name)[2:]
    if isinstance(value, tuple | list):
        return f"{flag(name)} {' '.join(map(str, value))}"
    return f"{flag(name)} {value}"


class Settings(Mapping[str, Any]):
    """A study's settings, validated, read-only: ``s["lr_step"]`` or ``s.lr_step``.

    Keys are the lower-case knob names of the study's row in
    :data:`sgnoise.studies.STUDIES`, and only those; list settings are tuples.
    ``typed``: the names given on the command line (:func:`parse`), which a
    resumed sweep checks against its saved settings even where they equal a default.
    """

    __slots__ = ("study", "_values", "typed")

    def __init__(self, study: str, values: Mapping[str, Any], typed: frozenset[str] = frozenset()):
        object.__setattr__(self, "study", study)
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "typed", frozenset(typed))

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Settings are read-only: make new ones with replace()")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"the {self.study} study has no setting {key!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Settings({self.study!r}, {self._values!r})"

    def __reduce__(self):
        return Settings, (self.study, self._values, self.typed)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed, validated like the rest."""
        return make(self.study, self._values, **changes)


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


def _not_a_setting(name: str, study: str, where: str) -> str:
    """The message for a constant or flag that the study does not have."""
    from sgnoise.studies import STUDIES  # noqa: PLC0415  (the table imports this module)

    if name in KNOBS:
        others = [s for s, row in STUDIES.items() if name in row.defaults]
        which = "study has" if len(others) == 1 else "studies have"
        return (
            f"{where} is not a setting of the {study} study (only the {', '.join(others)} "
            f"{which} it): remove it"
        )
    known = ", ".join(sorted(STUDIES[study].defaults))
    return (
        f"{where} is not a setting of the {study} study: check the spelling; "
        f"its settings are {known}"
    )


def make(study: str, values: Mapping[str, Any] | None = None, **changes: Any) -> Settings:
    """Settings of ``study``: its defaults, then ``values`` and ``changes`` (lower-case names).

    Raises
    ------
    ValueError
        A name the study does not have, or a bad value: one line naming it.
    """
    from sgnoise.studies import STUDIES  # noqa: PLC0415

    if study not in STUDIES:
        raise ValueError(f"study must be one of {', '.join(STUDIES)}, got {study!r}")
    defaults = STUDIES[study].defaults
    given = {**(values or {}), **changes}
    for key in given:
        if key.upper() not in defaults:
            raise ValueError(_not_a_setting(key.upper(), study, f"setting {key!r}"))
    merged = {name: given.get(name.lower(), default) for name, default in defaults.items()}
    for name, value in merged.items():
        check_setting(name, value)
    _check_together(merged)
    return Settings(study, {n.lower(): tuple(v) if KNOBS[n].many else v for n, v in merged.items()})


def _check_together(settings: Mapping[str, Any]) -> None:
    """Checks across settings: a scheduler only for the dask backend; a learning-rate
    grid of at most :data:`MAX_GRID` rates; a conv net that fits the data set's images."""
    if settings.get("SCHEDULER") and settings.get("BACKEND") != "dask":
        raise ValueError(
            f"--scheduler {settings['SCHEDULER']!r} needs --backend dask, got --backend "
            f"{settings.get('BACKEND')!r}"
        )
    if "LR_START" in settings:
        from sgnoise.studies import lr_grid  # noqa: PLC0415  (the table imports this module)

        lr_grid(settings["LR_START"], settings["LR_STOP"], settings["LR_STEP"])
    if "MODEL" in settings:  # built once here: a kernel or pooling the images cannot hold
        from sgnoise.training import N_CLASSES  # noqa: PLC0415  (training imports the engine)

        # its size, not built (the memory check comes with the data): a geometry's line; the
        # size study's hidden widths leave the convolutions as they are (one unit stands in)
        footprint(
            settings["MODEL"], IMAGE_SHAPES[settings["DATASET"]], N_CLASSES,
            hidden=settings.get("HIDDEN", (1,)), channels=settings["CHANNELS"],
            kernel=settings["KERNEL"],
        )  # fmt: skip


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``<script>: error: <what> (see --help)``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in every option's help; the driver's docstring kept as written."""


def build_parser(
    description: str, defaults: Mapping[str, Any], prog: str | None = None
) -> argparse.ArgumentParser:
    """An argparse parser with one option per setting ``{NAME: default}``."""
    parser = _Parser(
        prog=prog, description=description, formatter_class=_Formatter, allow_abbrev=False
    )
    for name, default in defaults.items():
        knob = KNOBS[name]
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


def parse(study: str, constants: Mapping[str, Any], argv: Sequence[str] | None = None) -> Settings:
    """A driver's settings: its constants, overridden from the command line, validated.

    Parameters
    ----------
    study : str
        A name in :data:`sgnoise.studies.STUDIES`.
    constants : mapping
        The driver's ``globals()``: every UPPER_CASE name is a setting of the
        study (a study's setting that the driver does not declare takes the
        study's default); ``__doc__`` is the top of ``--help``.
    argv : sequence of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Raises
    ------
    SystemExit
        Exit code 2 with one line on stderr for an unknown or inapplicable
        constant or flag, or a bad value: it names the setting, what it must
        be, what it got, and where the value came from.
    """
    from sgnoise.studies import STUDIES  # noqa: PLC0415

    defaults = STUDIES[study].defaults
    script = Path(constants.get("__file__", "the driver")).name
    argv = list(sys.argv[1:] if argv is None else argv)
    names = [n for n in constants if n.isupper() and not n.startswith("_")]
    parser = build_parser(
        constants.get("__doc__") or "",
        {n: constants.get(n, d) for n, d in defaults.items()},
        script,
    )
    for name in names:
        if name not in defaults:
            parser.exit(
                2, f"{script}: error: {_not_a_setting(name, study, f'{name} in {script}')}\n"
            )
    tokens = {t.split("=", 1)[0] for t in argv if t.startswith("--")}
    for name in KNOBS:
        for opt in (flag(name), "--no-" + flag(name)[2:]):
            if opt in tokens and name not in defaults:
                parser.error(_not_a_setting(name, study, opt))
    args = vars(parser.parse_args(argv))
    values = {n: args[n.lower()] for n in defaults}
    for name, value in values.items():
        try:
            check_setting(name, value)
        except ValueError as err:
            typed = flag(name) in tokens
            where = (
                "command line"
                if typed
                else (f"constant {name} in {script}" if name in names else "default")
            )
            parser.error(f"{err} (from the {where})")
    try:
        made = make(study, {n.lower(): v for n, v in values.items()})
    except ValueError as err:
        parser.error(str(err))
    typed = {n.lower() for n in defaults if {flag(n), "--no-" + flag(n)[2:]} & tokens}
    return Settings(study, made, typed)
