"""Run folders with provenance; results as strict JSON and CSV, written so nothing is lost.

A study's numbers are one long ("tidy") table, one row per (run, checkpoint,
split, layer) with the columns :data:`RECORD_COLUMNS`, plus one status entry
per run. A run folder ``<root>/<name>/`` holds

``status.json``
    Written first and kept up to date: the study, its settings, the state
    (``running``, ``interrupted``, ``failed`` or ``complete``), the runs done and
    the runs missing, and what happened. ``--resume FOLDER`` reads it.
``runs/<run>.json``, ``runs/<run>.npy``
    Each run's records, status and noise sample, saved as soon as the run
    finishes; removed once the combined files below are written.
``results.json``
    ``{"config": ..., "provenance": ..., "records": [...], "runs": [...]}``.
    Strict JSON: NaN and +-inf are written as ``null`` (no ``NaN`` tokens, so
    any JSON reader accepts the file); :func:`load_results` turns ``null`` in
    the records back into NaN. No absolute path of the machine is stored.
``results.csv``
    Exactly the records: one header line with the columns, one line per
    record; NaN, inf and missing values are empty cells.
``noise_samples.npz``
    Raw noise vectors for the histogram plots (see :func:`save_noise_samples`).
``*.png``
    The plots, redrawn from the three files above by ``python replot.py FOLDER``.

Every file is written atomically (a temporary file in the same folder, then a
rename), so a crash or a full disk never leaves a truncated file. Nothing is
silently overwritten: :func:`new_run_dir` makes a fresh folder, and refuses a
user-given name that exists unless asked to overwrite. Every reader names the
file in its error and says what to do.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sgnoise.tail_index import QUANTILES

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "sgnoise-results/1"
RESULTS_JSON, RESULTS_CSV, NOISE_SAMPLES = "results.json", "results.csv", "noise_samples.npz"
STATUS_JSON, RUNS_DIR = "status.json", "runs"
_OUTPUTS = (RESULTS_JSON, RESULTS_CSV, NOISE_SAMPLES, STATUS_JSON)

#: Values of the record columns ``mode``, ``layer``, ``split`` and ``status``.
FROZEN, IN_FLIGHT = "frozen", "in_flight_row_major"
RESAMPLED, PER_EXAMPLE, BATCH_SCAN = "resampled", "per_example", "batch_scan"
POOLED = "all"
SPLITS = ("train", "test")
#: The frozen train-noise records of all parameters pooled (the paper's quantity): what
#: progress bars and summaries show, ``select(records, **POOLED_TRAIN)``.
POOLED_TRAIN = {"mode": FROZEN, "split": "train", "layer": POOLED}
OK, DEGENERATE = "ok", "degenerate"
#: Train accuracy at the last checkpoint below this (twice chance for the 10 classes): the
#: network did not train (e.g. the sigmoid conv net at η = 0.1: its noise is an untrained
#: network's); the summary says so and the plots against a swept x mark it.
UNTRAINED_ACCURACY = 0.2
#: Values of ``state`` in ``status.json``.
RUNNING, INTERRUPTED, FAILED, COMPLETE = "running", "interrupted", "failed", "complete"

#: Keys of :func:`sgnoise.tail_index.summarise_noise`, in table order.
ALPHA_COLUMNS = (
    "alpha",
    "alpha_lo",
    "alpha_hi",
    "alpha_surrogate",
    "alpha_std",
    "alpha_std_lo",
    "alpha_std_hi",
    "alpha_std_surrogate",
    "n_samples",
    "n_dropped",
)
#: Columns of the per-coordinate rows (modes resampled, per_example, batch_scan).
DETAIL_COLUMNS = (
    "measured_batch",  # B of the resampled minibatches
    *(f"col_alpha_{q}" for q in QUANTILES),  # quantiles over coordinates of each one's own α
    *(f"col_alpha_gauss_{q}" for q in QUANTILES),  # the same for Gaussian columns of M rows
    *(f"tail_{q}" for q in QUANTILES),  # quantiles of the per-example tail exponents (Hill)
    "frac_inf_var",  # fraction of coordinates whose exponent is credibly below 2
    "frac_inf_var_lo",
    "frac_inf_var_hi",
    # the same at the Hill thresholds k = f sqrt(m), f = 1/4, 1/2, 2, 4 (f = 1: the above)
    *(f"tail_{q}{k}" for k in ("_k025", "_k05", "_k2", "_k4") for q in QUANTILES),
    *(f"frac_inf_var{k}" for k in ("_k025", "_k05", "_k2", "_k4")),
    "variance_call",  # the per-example call of most coordinates at k = sqrt(m)
    "k_holds_lo",  # ... which holds for k = f sqrt(m) from this f ...
    "k_holds_hi",  # ... to this one (of 1/4 ... 4, without a break)
    "frac_inf_var_csn",  # share called infinite-variance by the threshold-free power-law fit
    "frac_inf_var_csn_lo",
    "frac_inf_var_csn_hi",
    "frac_power_law",  # share whose tail is a plausible power law (bootstrap p >= 0.1)
    "frac_lognormal",  # share where a lognormal tail is favoured (Vuong)
    "tail_50_csn",  # median exponent at the x_min the fit chose
    "k_csn_50",  # median tail size it chose, in units of sqrt(m)
    "sparse_share",  # share of sparse coordinates (non-zero for < SPARSE of the examples)
    "below_grid",  # the standardised reading lies below the calibration curve: alpha_cal is
    "above_grid",  # an upper bound (alpha_cal_lo empty) / above it: alpha_cal = 2 (_hi empty)
    # the resampled rows' calibrated α and per-column α of the dense and the sparse ones
    *(f"alpha_cal_{kind}{end}" for kind in ("dense", "sparse") for end in ("", "_lo", "_hi")),
    *(f"col_alpha_{kind}_{q}" for kind in ("dense", "sparse") for q in QUANTILES),
)
#: The columns of the records table (CSV header), in order; extra keys a trainer
#: adds (e.g. ``alpha_shuffled`` of in-flight rows) follow, in first-seen order.
RECORD_COLUMNS = (
    "study",  # a name in sgnoise.studies.STUDIES
    "dataset",
    "activation",
    "optimizer",
    "lr",
    "batch_size",
    "seed",
    "mode",  # "frozen" (weights fixed during the measurement) or "in_flight_row_major"
    "epoch",  # float: iteration / iterations per epoch
    "iteration",
    "split",  # "train" or "test" noise
    "layer",  # "layer1", "layer2", ... or "all" (pooled over every parameter)
    *ALPHA_COLUMNS,
    "alpha_cal",  # the calibrated standardised α: the SaS(α) that reads alpha_std at this shape
    "alpha_cal_lo",
    "alpha_cal_hi",
    "loss",  # mean training loss (--loss) on the full training set
    "train_acc",
    "test_acc",
    "elapsed_s",  # seconds since the run started
    "diverged",  # whether this run diverged (at any time)
    "diverged_iteration",
    "status",  # "ok", or "degenerate": noise no stable law describes (alpha is NaN)
    "reason",  # why, when the status is not "ok"
    *DETAIL_COLUMNS,
)


def run_name_problem(name: str) -> str | None:
    """What a run folder's name must be, if ``name`` is not that (else None)."""
    if name.strip() != name or name in ("", ".", "..") or any(c in name for c in "/\\"):
        return "must be a plain folder name (not blank, no slash, no space at either end)"
    return None


def new_run_dir(root: str | Path, name: str | None = None, *, overwrite: bool = False) -> Path:
    """Create a fresh run folder inside ``root`` (created if missing).

    Parameters
    ----------
    root : str or Path
        Output root, e.g. ``MNIST_activation``.
    name : str, optional
        Folder name. Default ``run-YYYYmmdd-HHMMSS``, with ``-2``, ``-3``, ...
        appended if that exists (folders are created atomically, so two runs
        started in the same second get different folders).
    overwrite : bool
        Allow a user-given ``name`` that exists: the folder is reused and the
        files sgnoise writes there (results, noise samples, PNGs) are deleted
        first, so no stale plot survives; other files are left alone.

    Returns
    -------
    Path
        The new (empty of sgnoise outputs) folder.

    Raises
    ------
    FileExistsError
        ``name`` exists and ``overwrite`` is False.
    ValueError
        ``name`` is empty or not a plain folder name.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if name is not None:
        problem = run_name_problem(name)
        if problem:
            raise ValueError(f"run name {problem}, got {name!r}")
        folder = root / name
        try:
            folder.mkdir()  # atomic: of two jobs given one name, exactly one makes it
        except FileExistsError:
            if not overwrite:
                raise FileExistsError(
                    f"{folder} already exists (made by an earlier run, or by another job "
                    "started with this run name): choose another run name, or pass --overwrite"
                ) from None
            for old in [*folder.glob("*.png"), *(folder / f for f in _OUTPUTS)]:
                old.unlink(missing_ok=True)
            shutil.rmtree(folder / RUNS_DIR, ignore_errors=True)
        return folder
    base = "run-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1, 1000):
        folder = root / (base if i == 1 else f"{base}-{i}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"could not create a new run folder {base}-N in {root}")


def _git(*args: str) -> str | None:
    """Output of a git command run in the sgnoise checkout, or None (no git, not a checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _blas() -> str | None:
    """BLAS library numpy was built with, e.g. "scipy-openblas 0.3.31" (None if unknown)."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # older numpy or a custom build: provenance must not fail
        return None
    return f"{blas.get('name', '?')} {blas.get('version', '?')}"


def _program() -> str:
    """How the program was called: the script's name (``test_lr_alpha.py``, ``sgnoise``), or
    ``python -m PACKAGE`` for a package's ``__main__``."""
    script = Path(sys.argv[0])
    return f"python -m {script.parent.name}" if script.name == "__main__.py" else script.name


def git_state() -> dict[str, Any]:
    """The sgnoise checkout's ``git_commit`` and ``git_dirty`` now (both None when sgnoise
    does not run from a git checkout or git is missing; dirty means tracked files differ
    from the commit). A run reads it when it starts (:func:`provenance`'s ``git``): the
    checkout may move while it runs."""
    import sgnoise

    toplevel = _git("rev-parse", "--show-toplevel")
    in_checkout = toplevel is not None and Path(toplevel) == Path(sgnoise.__file__).parents[1]
    status = _git("status", "--porcelain", "--untracked-files=no") if in_checkout else None
    return {
        "git_commit": _git("rev-parse", "HEAD") if in_checkout else None,
        "git_dirty": bool(status) if status is not None else None,
    }


def provenance(
    started: dt.datetime | None = None, git: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Where the numbers came from: versions, platform, git state, command line, times.

    Parameters
    ----------
    started : datetime, optional
        When the run started (default: now).
    git : mapping, optional
        :func:`git_state` when the run started (default: now). If the checkout is in
        another state now (a commit or an edit landed while the run ran), that state is
        recorded too, as ``git_at_finish``.

    Returns
    -------
    dict
        ``format``, package versions (``sgnoise``, ``python``, ``numpy``, ``scipy``,
        ``matplotlib``, ``joblib``, ``tqdm``), ``blas``, ``platform``,
        ``cpu_count``, ``git_commit`` and ``git_dirty`` (:func:`git_state`, at the
        start), ``git_at_finish`` (only when that state changed during the run),
        ``command`` (the command line), ``started`` and ``finished`` (ISO 8601 with
        time zone).
    """
    import joblib
    import matplotlib
    import scipy
    import tqdm

    import sgnoise

    now = dt.datetime.now().astimezone()
    finish = git_state()
    start = dict(git) if git is not None else finish
    return {
        "format": FORMAT,
        "sgnoise": sgnoise.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__,
        "joblib": joblib.__version__,
        "tqdm": tqdm.__version__,
        "blas": _blas(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        **start,
        **({"git_at_finish": finish} if finish != start else {}),
        "command": " ".join([_program(), *sys.argv[1:]]),
        "started": (started or now).astimezone().isoformat(timespec="seconds"),
        "finished": now.isoformat(timespec="seconds"),
    }


def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def record_columns(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """:data:`RECORD_COLUMNS`, then any other keys of ``records`` in first-seen order."""
    columns = list(RECORD_COLUMNS)
    for row in records:
        columns += [k for k in row if k not in columns]
    return columns


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write via a temporary file in the same folder, then rename: never a half-written file.

    On any error (a full disk, say) the temporary file is removed and the
    error raised; an earlier file of that name is left as it was.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, doc: Mapping[str, Any]) -> Path:
    """Strict JSON (NaN/inf as null, numpy scalars as numbers), written atomically."""
    path = Path(path)
    atomic_write(path, json.dumps(_clean(doc), indent=1, allow_nan=False) + "\n")
    return path


def read_json(path: str | Path, what: str = "sgnoise file") -> Any:
    """A JSON file; ValueError naming the file and the fix if it is missing or damaged."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):  # the latter: a file named as the folder
        raise FileNotFoundError(f"{path} not found: is {path.parent} a run folder?") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path} is damaged ({err}): it is not a readable {what}; restore it, "
            "or rerun the study (--resume FOLDER keeps the runs already saved)"
        ) from None


def records_csv(records: Sequence[Mapping[str, Any]]) -> str:
    """The records as CSV text: :func:`record_columns`, NaN/inf/None as empty cells."""
    columns = record_columns(records)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    for row in _clean([{c: r.get(c) for c in columns} for r in records]):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def save_results(
    folder: str | Path,
    config: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    runs: Sequence[Mapping[str, Any]],
    *,
    started: dt.datetime | None = None,
    git: Mapping[str, Any] | None = None,
    extra_provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``results.json`` and ``results.csv`` into ``folder`` (atomically).

    Parameters
    ----------
    folder : str or Path
        A run folder (see :func:`new_run_dir`).
    config : mapping
        The full configuration (every setting, seeds included).
    records : sequence of mapping
        The tidy table, one row per (run, checkpoint, split, layer); missing
        columns are filled with ``null``/empty so JSON and CSV hold the same table.
    runs : sequence of mapping
        Per-run status (``diverged``, ``diverged_iteration``, ``reason``, ...).
    started : datetime, optional
        Start time for the provenance.
    git : mapping, optional
        :func:`git_state` at the start, for the provenance.
    extra_provenance : mapping, optional
        More provenance entries (e.g. the number of worker processes).

    Returns
    -------
    Path
        The JSON file.
    """
    folder = Path(folder)
    columns = record_columns(records)
    doc = {
        "config": config,
        "provenance": {**provenance(started, git), **(extra_provenance or {})},
        "records": [{c: row.get(c) for c in columns} for row in records],
        "runs": list(runs),
    }
    write_json(folder / RESULTS_JSON, doc)
    atomic_write(folder / RESULTS_CSV, records_csv(records))
    return folder / RESULTS_JSON


def load_results(folder: str | Path) -> dict[str, Any]:
    """Read a run folder's ``results.json``; ``null`` in the records becomes NaN.

    Raises
    ------
    FileNotFoundError
        No ``results.json`` in ``folder`` (the message says if the run was
        interrupted, from its ``status.json``).
    ValueError
        The file is damaged or not sgnoise results; the message names it.
    """
    path = Path(folder) / RESULTS_JSON
    if not path.is_file() and (Path(folder) / STATUS_JSON).is_file():
        state = read_json(Path(folder) / STATUS_JSON, "status file")
        raise FileNotFoundError(
            f"{path} not found: the run is {state.get('state', 'unfinished')} "
            f"({len(state.get('missing', []))} run(s) missing); finish it with --resume {folder}"
        )
    doc = read_json(path, "results file")
    missing = {"config", "provenance", "records", "runs"} - set(
        doc if isinstance(doc, dict) else ()
    )
    if missing:
        raise ValueError(f"{path} is not an sgnoise results file: missing {sorted(missing)}")
    doc["records"] = _nan_for_null(doc["records"])
    return doc


def save_noise_samples(folder: str | Path, samples: Mapping[str, np.ndarray]) -> Path:
    """Write raw noise vectors (for the histograms) to ``noise_samples.npz`` (atomically).

    ``samples`` maps a key to a 1-d array; a run's ``noise_sample`` entry in
    ``runs`` names its key and says which layer, split and checkpoint it is.
    """
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v).ravel() for k, v in samples.items()})
    path = Path(folder) / NOISE_SAMPLES
    atomic_write(path, buf.getvalue())
    return path


@contextlib.contextmanager
def open_npz(path: str | Path) -> Iterator[Any]:
    """``np.load(path)`` of an .npz archive (no pickles), its file closed on leaving, also
    when the archive is damaged: ``np.load(path)`` itself leaves the file open when NpzFile
    raises (a ResourceWarning at some later garbage collection, wherever that happens)."""
    with open(path, "rb") as fid, np.load(fid, allow_pickle=False) as npz:
        yield npz


def load_noise_samples(folder: str | Path) -> dict[str, np.ndarray]:
    """The arrays of ``noise_samples.npz`` ({} if the folder has none); ValueError if damaged."""
    path = Path(folder) / NOISE_SAMPLES
    if not path.is_file():
        return {}
    try:
        with open_npz(path) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{path} is damaged ({err}): delete it to redraw the plots without histograms"
        ) from None


def save_run(folder: str | Path, key: str, out: Mapping[str, Any]) -> None:
    """Save one finished run (records, status, noise sample) into ``runs/`` (atomically)."""
    runs = Path(folder) / RUNS_DIR
    runs.mkdir(exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, np.asarray(out["noise_sample"]), allow_pickle=False)
    atomic_write(runs / f"{key}.npy", buf.getvalue())
    write_json(runs / f"{key}.json", {"records": out["records"], "run": out["run"]})


def load_run(folder: str | Path, key: str) -> dict[str, Any] | None:
    """A run saved by :func:`save_run`, as it was returned (NaN restored); None if absent."""
    runs = Path(folder) / RUNS_DIR
    if not (runs / f"{key}.json").is_file() or not (runs / f"{key}.npy").is_file():
        return None
    doc = read_json(runs / f"{key}.json", "saved run")
    try:
        sample = np.load(runs / f"{key}.npy", allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{runs / key}.npy is damaged ({err}): delete it to rerun that run"
        ) from None
    return {"records": _nan_for_null(doc["records"]), "run": doc["run"], "noise_sample": sample}


def _nan_for_null(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Records read from JSON with ``null`` (NaN, inf or missing when written) as NaN."""
    return [{k: float("nan") if v is None else v for k, v in r.items()} for r in records]


def write_status(folder: str | Path, **status: Any) -> Path:
    """Write ``status.json`` (atomically): the state of the run folder and why."""
    return write_json(Path(folder) / STATUS_JSON, status)


def read_status(folder: str | Path) -> dict[str, Any]:
    """The run folder's ``status.json``; errors name the file and the fix."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: give a run folder to --resume")
    path = folder / STATUS_JSON
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {folder} is not a run folder made by this version of sgnoise"
        )
    doc = read_json(path, "status file")
    if not isinstance(doc, dict) or not {"study", "settings", "state"} <= set(doc):
        raise ValueError(f"{path} is not an sgnoise status file: restore it or start a new run")
    return doc


def remove_runs(folder: str | Path) -> None:
    """Remove ``runs/`` once the combined results hold everything in it."""
    shutil.rmtree(Path(folder) / RUNS_DIR, ignore_errors=True)


#: Columns of results.csv that hold text; every other column of :data:`RECORD_COLUMNS`
#: holds numbers (empty: NaN), and ``diverged`` True or False.
_TEXT_COLUMNS = (
    "study", "dataset", "activation", "optimizer", "mode", "split", "layer", "status", "reason",
    "hidden",  # the hidden widths, "128-128": text, also when one width reads as a number
    "variance_call",
)  # fmt: skip
#: Settings of a run folder that :func:`load` adds to every row, ``{setting: column}``, so
#: that tables of several folders concatenate safely (a setting a study has not, or a folder
#: from before the setting existed, takes the study's default; NaN if it has none).
FOLDER_SETTINGS = {
    "hidden": "hidden",
    "epochs": "epochs",
    "init": "init",
    "loss": "loss_function",  # the record column "loss" is the loss's value
    "model": "model",
    "channels": "channels",
    "kernel": "kernel",
    "subset": "subset",
    "train_reference": "train_reference",
    "checkpoint_every": "checkpoint_every",
}


def _folder_columns(folder: Path, config: Mapping[str, Any]) -> dict[str, Any]:
    """``run`` (the folder as ``<parent>/<name>``) and the :data:`FOLDER_SETTINGS` of its
    configuration (lists as text: ``hidden`` ``"256-128"``, ``channels`` ``"6-16"``)."""
    from sgnoise.studies import STUDIES  # noqa: PLC0415 (studies imports this module)

    study = STUDIES.get(config.get("study"))
    defaults = {k.lower(): v for k, v in study.defaults.items()} if study else {}
    folder = folder.resolve()
    out: dict[str, Any] = {"run": f"{folder.parent.name}/{folder.name}"}
    for setting, column in FOLDER_SETTINGS.items():
        value = config.get(setting, defaults.get(setting, np.nan))
        out[column] = "-".join(map(str, value)) if isinstance(value, list | tuple) else value
    return out


#: True/False columns ("diverged" always has a value; the others may be empty).
_BOOL_COLUMNS = ("diverged", "below_grid", "above_grid")


def load(folder: str | Path) -> pd.DataFrame:
    """A run folder's ``results.csv`` as a pandas DataFrame, one row per record.

    pandas is needed here and nowhere else in sgnoise; :func:`load_results`
    reads the same records (and the configuration) without it.

    Parameters
    ----------
    folder : str or Path
        A run folder, e.g. ``MNIST_activation/reference``.

    Returns
    -------
    pandas.DataFrame
        ``run`` (the folder, ``<parent>/<name>``) and the folder's settings
        :data:`FOLDER_SETTINGS` (the same on every row: tables of several folders
        concatenate safely, ``pd.concat([load(a), load(b)])``), then the columns
        :data:`RECORD_COLUMNS` in order, then any a trainer added
        (``alpha_shuffled`` on in-flight rows); empty cells (NaN, inf, not
        measured, an empty ``reason``) are NaN. Text columns are strings,
        ``diverged`` is boolean, the others are numbers.

    Raises
    ------
    ImportError
        pandas is not installed.
    FileNotFoundError
        ``folder`` or its ``results.csv`` does not exist.
    ValueError
        ``results.csv`` cannot be parsed, lacks columns, or holds a value of the
        wrong kind (the message names the line and the column).
    """
    try:
        import pandas as pd
    except ImportError as err:
        raise ImportError(
            "sgnoise.results.load returns a pandas DataFrame and pandas is not installed: "
            "pip install pandas (or read the same records with sgnoise.results.load_results)"
        ) from err
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} is not a folder: pass a run folder, e.g. MNIST_activation/reference"
        )
    path = folder / RESULTS_CSV
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: is {folder} a run folder? A run writes it when it finishes"
        )
    fix = "restore it (e.g. git checkout) or rerun the study"
    try:
        table = pd.read_csv(path, dtype={c: "str" for c in _TEXT_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is damaged ({err}): {fix}") from err
    if "status" not in table.columns:  # written before degenerate noise was recorded
        table = table.assign(status=OK, reason=np.nan)
    later = [c for c in DETAIL_COLUMNS if c not in table.columns]
    if later:  # written before these were measured: empty, in their place
        table = table.assign(**dict.fromkeys(later, np.nan))
        known = [c for c in RECORD_COLUMNS if c in table.columns]
        table = table[known + [c for c in table.columns if c not in RECORD_COLUMNS]]
    missing = [c for c in RECORD_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} is not an sgnoise results table (no columns {missing}): {fix}")
    for column in (c for c in RECORD_COLUMNS if c not in _TEXT_COLUMNS):
        values = table[column]
        if column in _BOOL_COLUMNS:
            bad = ~values.isin([True, False, "True", "False"])
            if column != "diverged":
                bad &= values.notna()
            expected = "True or False"
        else:
            bad = values.notna() & pd.to_numeric(values, errors="coerce").isna()
            expected = "a number or empty"
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise ValueError(
                f"{path} is damaged: line {row + 2}, column {column!r} must be {expected}, "
                f"got {values.iloc[row]!r}: {fix}"
            )
    config = load_results(folder)["config"] if (folder / RESULTS_JSON).is_file() else {}
    added = _folder_columns(folder, config)
    for column in [c for c in added if c in table.columns]:  # a row's own value wins (the
        added[column] = table.pop(column)  # size study's hidden: one network per run)
    return pd.concat([pd.DataFrame(added, index=table.index), table], axis=1)


def untrained(record: Mapping[str, Any]) -> bool:
    """Whether a record's network did not train: train accuracy below
    :data:`UNTRAINED_ACCURACY` (a NaN or missing accuracy is not flagged), unless the run
    diverged (flagged as that instead)."""
    return not record.get("diverged") and record.get("train_acc", math.nan) < UNTRAINED_ACCURACY


def select(records: Sequence[Mapping[str, Any]], **where: Any) -> list[Mapping[str, Any]]:
    """The records whose columns hold the given values, in order (e.g. ``mode=FROZEN``)."""
    return [r for r in records if all(r.get(k) == v for k, v in where.items())]


def last_pooled_train(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The last of the :data:`POOLED_TRAIN` records (None without one)."""
    rows = select(records, **POOLED_TRAIN)
    return rows[-1] if rows else None
