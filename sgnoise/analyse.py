"""Tail indices of anyone's gradient noise: ``python -m sgnoise.analyse NOISE.npy``.

NOISE is a 2-D array saved with ``np.save`` (``.npy``) or ``np.savez``
(``.npz``: its one array, or the one named by ``--key``): one row per
minibatch (or sample), one column per coordinate. Printed: the pooled alpha
of Simsekli et al. (2019) and its Gaussian surrogate, the standardised
alpha and its surrogate (:func:`sgnoise.tail_index.summarise_noise`), the
calibrated per-coordinate alpha with its interval
(:func:`sgnoise.calibration.calibrated_alpha`) and, with at least
:data:`~sgnoise.calibration.MIN_COLUMN_ROWS` rows, the quantiles of the
per-column alpha beside those of Gaussian columns
(:func:`sgnoise.calibration.per_column_alpha`). A bad input gets one line on
stderr and exit status 2.

Each mode is a function of the loaded matrix and the seed that returns a
JSON-ready dict, and one that turns that dict into the printed lines
(:data:`MODES`); ``main`` picks the mode from the arguments, loads its
matrix and handles every error the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgnoise import per_example
from sgnoise.calibration import (
    MAX_VALUES,
    MIN_COLUMN_ROWS,
    MIN_ROWS,
    calibrated_alpha,
    per_column_alpha,
)
from sgnoise.tail_index import MIN_SAMPLES, summarise_noise

EXIT_BAD_INPUT = 2
_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"


class InputError(ValueError):
    """A problem with the user's file, told in one line."""


def load_matrix(path: str | Path, key: str | None = None) -> np.ndarray:
    """The 2-D array of finite real numbers in a .npy or .npz file.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` file, or a ``.npz`` file with one array (or several and
        ``key``). Pickled Python objects are never loaded.
    key : str, optional
        Name of the array in a ``.npz`` file.

    Returns
    -------
    ndarray
        float32 or float64 (integers become float64).

    Raises
    ------
    InputError
        With one line that names the file and the problem.
    """
    try:
        with open(path, "rb") as f:
            magic = f.read(len(_NPY_MAGIC))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a .npy or .npz file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror})") from None
    if magic == _NPY_MAGIC:
        if key is not None:
            raise InputError(f"{path}: --key applies to .npz files, this is a .npy file")
        array = _read(path, lambda: np.load(path, allow_pickle=False))
    elif magic.startswith(_ZIP_MAGIC):
        array = _read(path, lambda: _npz_member(path, key))
    else:
        raise InputError(f"{path}: not a .npy or .npz file (it starts with neither's signature)")
    return _checked(array, path)


def _read(path, load: Callable[[], np.ndarray]) -> np.ndarray:
    """load(), its errors told as one line about path."""
    try:
        return load()
    except InputError:
        raise
    except ValueError as e:
        if "pickle" in str(e):
            raise InputError(
                f"{path}: holds Python objects (pickled data), which are not loaded: "
                "save a numeric array with np.save"
            ) from None
        raise InputError(f"{path}: corrupt or unreadable ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise InputError(f"{path}: corrupt or unreadable ({e})") from None


def _npz_member(path, key: str | None) -> np.ndarray:
    with np.load(path, allow_pickle=False) as npz:
        names = list(npz.files)
        if key is None:
            if len(names) != 1:
                raise InputError(
                    f"{path}: holds {len(names)} arrays ({', '.join(names) or 'none'}): "
                    "name one with --key NAME"
                )
            key = names[0]
        if key not in names:
            raise InputError(f"{path}: has no array {key!r} (it has {', '.join(names)})")
        return npz[key]


def _checked(array: np.ndarray, path) -> np.ndarray:
    kind = array.dtype.kind
    if kind not in "iuf":
        raise InputError(f"{path}: holds {array.dtype} values, expected real numbers")
    if array.ndim != 2:
        raise InputError(
            f"{path}: must hold a 2-D array (rows = minibatches or samples, columns = "
            f"coordinates), got shape {array.shape}"
        )
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    finite = np.isfinite(array)
    if not finite.all():
        n_nan = int(np.count_nonzero(np.isnan(array)))
        n_inf = array.size - int(np.count_nonzero(finite)) - n_nan
        raise InputError(
            f"{path}: holds {n_nan} NaN and {n_inf} inf values of {array.size}; "
            "drop those rows (a diverged run?) and try again"
        )
    return array


def analyse_noise(noise: np.ndarray, seed: int) -> dict:
    """Pooled, standardised, calibrated and per-column alpha of a noise matrix (JSON-ready).

    Parameters
    ----------
    noise : ndarray, shape (n_rows, n_columns)
        Finite floats, n_rows >= :data:`~sgnoise.calibration.MIN_ROWS`.
    seed : int
        Seed of every estimate.

    Returns
    -------
    dict
        ``n_rows, n_columns, n_dropped, alpha_pooled, alpha_pooled_ci,
        surrogate_pooled, alpha_standardised, alpha_standardised_ci,
        surrogate_standardised, alpha_calibrated, alpha_calibrated_ci,
        at_gaussian, below_grid, n_columns_calibrated,
        alpha_per_column_quantiles, alpha_per_column_gaussian_quantiles,
        n_columns_per_column, seed``; the per-column entries are None with
        fewer than :data:`~sgnoise.calibration.MIN_COLUMN_ROWS` rows.
    """
    n_rows, n_columns = noise.shape
    if n_rows < MIN_ROWS:
        raise ValueError(
            f"has {n_rows} rows, the calibration needs at least {MIN_ROWS} "
            "(rows are minibatches or samples: transpose if they are the columns)"
        )
    s = summarise_noise(noise, seed=seed)
    if math.isnan(s["alpha"]):
        raise ValueError(
            f"has {s['n_samples']} usable values, the estimator needs at least {MIN_SAMPLES} "
            f"({s['n_dropped']} of {n_columns} columns are constant; exact zeros are left out)"
        )
    whole = n_rows * (n_columns - s["n_dropped"]) <= MAX_VALUES
    c = calibrated_alpha(noise, summary=s if whole else None, seed=seed)
    per_column = per_column_alpha(noise, seed=seed)
    return {
        "n_rows": n_rows,
        "n_columns": n_columns,
        "n_dropped": s["n_dropped"],
        "alpha_pooled": s["alpha"],
        "alpha_pooled_ci": [s["alpha_lo"], s["alpha_hi"]],
        "surrogate_pooled": s["alpha_surrogate"],
        "alpha_standardised": s["alpha_std"],
        "alpha_standardised_ci": [s["alpha_std_lo"], s["alpha_std_hi"]],
        "surrogate_standardised": s["alpha_std_surrogate"],
        "alpha_calibrated": c["alpha_calibrated"],
        "alpha_calibrated_ci": [c["alpha_calibrated_lo"], c["alpha_calibrated_hi"]],
        "at_gaussian": c["at_gaussian"],
        "below_grid": c["below_grid"],
        "n_columns_calibrated": c["n_columns_calibrated"],
        "alpha_per_column_quantiles": per_column and per_column["quantiles"],
        "alpha_per_column_gaussian_quantiles": per_column and per_column["gaussian_quantiles"],
        "n_columns_per_column": per_column and per_column["n_columns"],
        "seed": seed,
    }


def report_noise(r: dict) -> list[str]:
    """The printed lines of :func:`analyse_noise`'s result."""

    def ci(pair: list[float]) -> str:
        return f"[{pair[0]:.3f}, {pair[1]:.3f}]"

    lines = [
        f"{r['n_rows']} rows x {r['n_columns']} columns ({r['n_dropped']} constant, left out)",
        f"pooled alpha        {r['alpha_pooled']:.3f} {ci(r['alpha_pooled_ci'])}"
        f"   Gaussian surrogate {r['surrogate_pooled']:.3f}",
        f"standardised alpha  {r['alpha_standardised']:.3f} {ci(r['alpha_standardised_ci'])}"
        f"   Gaussian surrogate {r['surrogate_standardised']:.3f}",
        f"calibrated alpha    {r['alpha_calibrated']:.3f} {ci(r['alpha_calibrated_ci'])}"
        "   per coordinate (the SaS alpha that reads the same)",
    ]
    if r["at_gaussian"]:
        lines.append("  the standardised alpha reads at or above a Gaussian's: no heavier tail")
    if r["below_grid"]:
        lines.append("  below the calibrated range: about 0.6 or heavier")
    if r["n_columns_calibrated"] < r["n_columns"] - r["n_dropped"]:
        lines.append(f"  (calibrated on {r['n_columns_calibrated']} random columns)")
    if r["alpha_per_column_quantiles"] is None:
        lines.append(f"per-column alpha    needs >= {MIN_COLUMN_ROWS} rows, got {r['n_rows']}")
        return lines
    q, g = r["alpha_per_column_quantiles"], r["alpha_per_column_gaussian_quantiles"]
    heads = "  ".join(f"{k:>4s}%" for k in q)
    lines += [
        f"per-column alpha    {heads}   ({r['n_columns_per_column']} columns)",
        f"  these columns     {'  '.join(f'{v:5.2f}' for v in q.values())}",
        f"  Gaussian columns  {'  '.join(f'{v:5.2f}' for v in g.values())}",
    ]
    return lines


@dataclass(frozen=True)
class Mode:
    """What one mode reads (``what``, for messages), computes and prints."""

    what: str
    run: Callable[[np.ndarray, int], dict]
    report: Callable[[dict], list[str]]


def analyse_per_example(grads: np.ndarray, seed: int) -> dict:
    """Tail exponents of per-example gradients (:func:`sgnoise.per_example.summarise`),
    without its per-column arrays."""
    result = per_example.summarise(grads, seed=seed)
    return {k: v for k, v in result.items() if k != "per_column"} | {"seed": seed}


def report_per_example(r: dict) -> list[str]:
    """The printed lines of :func:`analyse_per_example`'s result."""
    q = r["tail_exponent_quantiles"]
    lo, hi = r["fraction_infinite_variance_ci"]
    return [
        f"{r['n_rows']} examples x {r['n_columns']} coordinates ({r['n_dropped']} left out: "
        f"{r['n_constant']} constant, {r['n_sparse']} sparse, {r['n_atom']} with a tied tail)",
        "tail exponent (Hill, k = sqrt(non-zero values))   "
        + "  ".join(f"{k}%: {_fmt(v)}" for k, v in q.items()),
        f"infinite variance (exponent credibly < 2): {r['fraction_infinite_variance']:.3f} "
        f"of the coordinates, 95% interval [{lo:.3f}, {hi:.3f}]",
    ]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


MODES = {
    "noise": Mode("noise matrix", analyse_noise, report_noise),
    "per_example": Mode("per-example gradients", analyse_per_example, report_per_example),
}


class _Parser(argparse.ArgumentParser):
    """argparse that tells a usage error in one line (and --help in full)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> _Parser:
    parser = _Parser(
        prog="python -m sgnoise.analyse",
        description=(
            "Tail index alpha of gradient noise: pooled (as in Simsekli et al. 2019), "
            "standardised per coordinate, calibrated to a per-coordinate alpha with its 95% "
            "interval, and per column when there are enough rows."
        ),
        epilog="Exit status: 0 on success, 2 on a bad input or option (one line on stderr).",
    )
    parser.add_argument(
        "noise",
        metavar="NOISE",
        help=(
            "a .npy or .npz file holding a 2-D array: rows = minibatches (or samples), "
            f"columns = coordinates; at least {MIN_ROWS} rows, {MIN_COLUMN_ROWS} for the "
            "per-column quantiles"
        ),
    )
    parser.add_argument("--key", metavar="NAME", help="the array to read from a .npz file")
    parser.add_argument(
        "--per-example",
        action="store_true",
        help=(
            "NOISE holds per-example gradients (rows = examples, columns = coordinates, at "
            "least 100 rows): print the tail exponents of their distribution (Hill) and the "
            "share of coordinates with infinite variance, instead of the noise's alpha"
        ),
    )
    parser.add_argument(
        "--json", metavar="OUT.json", help="also write the results to this JSON file"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the random blocks, surrogates and calibration (default 0)",
    )
    return parser


def _jsonable(value):
    """Non-finite floats (an interval without an upper end) as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    mode, path = MODES["per_example" if args.per_example else "noise"], args.noise
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    try:
        matrix = load_matrix(path, args.key)
        try:
            result = mode.run(matrix, args.seed)
        except ValueError as e:
            raise InputError(f"{path}: {e}") from None
        if args.json:
            out = {"file": str(path)} | _jsonable(result)
            try:
                Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
            except OSError as e:
                raise InputError(f"{args.json}: cannot write the JSON ({e.strerror})") from None
    except InputError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{path} ({mode.what})")
    print("\n".join(mode.report(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
