"""Tail indices of anyone's gradient noise, with a verdict in words.

Command line: ``python -m sgnoise.analyse NOISE [NOISE ...]`` (or
``sgnoise-analyse``); Python: :func:`analyse`, which returns what ``--json``
writes.

NOISE is a 2-D array saved with ``np.save`` (``.npy``) or ``np.savez``
(``.npz``: every array in it is analysed as a layer, by name, then all layers
together; ``--key`` picks one): one row per minibatch (or sample), one column
per coordinate. Printed: the pooled alpha of Simsekli et al. (2019) and its
Gaussian surrogate, the standardised alpha and its surrogate
(:func:`sgnoise.tail_index.summarise_noise`), the calibrated per-coordinate
alpha with its interval (:func:`sgnoise.calibration.calibrated_alpha`), with
at least :data:`~sgnoise.tail_index.MIN_COLUMN_ROWS` rows the quantiles of
the per-column alpha beside those of Gaussian columns
(:func:`sgnoise.tail_index.per_column_alpha`), and a verdict
(:mod:`sgnoise.verdict`). ``--per-example`` reads per-example gradients
instead: their Hill tail exponents, at several thresholds k. Warned about: a
matrix that looks transposed, and two files whose readings of the same layer
disagree. A bad input gets one line on stderr and exit status 2.

Each mode is a function of a loaded matrix and the seed that returns a
JSON-ready dict, and one that turns that dict into the printed lines
(:data:`MODES`); :func:`analyse` applies a mode to one matrix or to the layers
of a model, and ``main`` loads the files and handles every error the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sgnoise import per_example
from sgnoise.calibration import MAX_VALUES, MIN_ROWS, calibrated_alpha
from sgnoise.results import open_npz
from sgnoise.tail_index import MIN_COLUMN_ROWS, MIN_SAMPLES, per_column_alpha, summarise_noise
from sgnoise.tail_index.common import ties
from sgnoise.verdict import noise_verdict, per_example_verdict

EXIT_BAD_INPUT = 2
_NPY_MAGIC, _ZIP_MAGIC, _PICKLE_MAGIC = b"\x93NUMPY", b"PK\x03\x04", b"\x80"
#: Noise with at most this many columns and at least this many rows looks transposed (the
#: issue's case: 20,490 parameters x 16 minibatches saved the wrong way round).
TRANSPOSED_COLUMNS, TRANSPOSED_ROWS = 64, 5000
#: A per-example column with fewer non-zero values than this share of its rows is sparse.
SPARSE_NONZERO = 0.05
TORCH_FILE = (
    "{path}: a PyTorch file, which sgnoise does not read (loading it runs pickled code): "
    "save the tensor with np.save('noise.npy', t.detach().cpu().numpy()), several with "
    "np.savez('noise.npz', **{{name: t.detach().cpu().numpy() for name, t in tensors.items()}})"
)


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
    if Path(path).suffix.lower() in (".pt", ".pth") or magic.startswith(_PICKLE_MAGIC):
        raise InputError(TORCH_FILE.format(path=path))
    if magic == _NPY_MAGIC:
        if key is not None:
            raise InputError(f"{path}: --key applies to .npz files, this is a .npy file")
        _check_npy_size(path)
        array = _read(path, lambda: np.load(path, allow_pickle=False))
    elif magic.startswith(_ZIP_MAGIC):
        array = _read(path, lambda: _npz_member(path, key))
    else:
        raise InputError(f"{path}: not a .npy or .npz file (it starts with neither's signature)")
    return _checked(array, path if key is None else f"{path} [{key}]")


def load_layers(path: str | Path, key: str | None = None) -> dict[str, np.ndarray]:
    """Every array of a .npz file by name (a layer each), else :func:`load_matrix`'s one.

    A ``.npy`` file, or ``key``, gives ``{name: matrix}`` with the file's stem or
    the key as the name. Raises :class:`InputError` as :func:`load_matrix`.
    """
    if key is None and _names(path):
        return {name: load_matrix(path, name) for name in _names(path)}
    return {key or Path(path).stem: load_matrix(path, key)}


def _names(path) -> list[str]:
    """The array names of an .npz file with several arrays, else [] (errors: load_matrix's)."""
    try:
        with open(path, "rb") as f:
            if not f.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC:
                return []
        with open_npz(path) as npz:
            names = list(npz.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return []
    return names if len(names) > 1 else []


def _check_npy_size(path) -> None:
    """Compare the size a .npy header announces with the file's, before anything is read
    (a truncated file whose header claims terabytes would otherwise be allocated)."""
    try:
        with open(path, "rb") as f:
            fmt = np.lib.format
            version = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read(f)
            offset = f.tell()
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"{path}: corrupt or unreadable ({e})") from None
    if dtype.hasobject:
        return  # np.load refuses pickled objects with its own message
    need = math.prod(shape) * dtype.itemsize
    have = os.path.getsize(path) - offset
    if have < need:
        raise InputError(
            f"{path}: its header announces a {dtype} array of shape {shape} ({_bytes(need)}), "
            f"but the file holds {_bytes(have)} of data: it is truncated; save it again"
        )


def _bytes(n: float) -> str:
    """A size with a binary unit: "512 B", "72.8 TiB"."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    power = 0
    while n >= 1024 and power < len(units) - 1:
        n, power = n / 1024, power + 1
    return f"{n:.1f} {units[power]}" if power else f"{n:.0f} B"


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
    with open_npz(path) as npz:
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


def _atom_share(noise: np.ndarray) -> float:
    """Share of the non-constant columns whose most frequent value fills half their rows
    (the mark of per-example gradients that are mostly exactly zero)."""
    n = noise.shape[0]
    half = -(-n // 2)
    s = np.sort(noise, axis=0)
    constant = s[0] == s[-1]
    atom = np.any(s[: n - half + 1] == s[half - 1 :], axis=0) & ~constant
    kept = int(np.count_nonzero(~constant))
    return float(np.count_nonzero(atom) / kept) if kept else 0.0


def analyse_noise(noise: np.ndarray, seed: int = 0) -> dict:
    """Pooled, standardised, calibrated and per-column alpha of a noise matrix, and a verdict.

    Parameters
    ----------
    noise : ndarray, shape (n_rows, n_columns)
        Finite floats, n_rows >= :data:`~sgnoise.calibration.MIN_ROWS`.
    seed : int
        Seed of every estimate.

    Returns
    -------
    dict
        JSON-ready: ``n_rows, n_columns, n_dropped, alpha_pooled, alpha_pooled_ci,
        surrogate_pooled, alpha_standardised, alpha_standardised_ci,
        surrogate_standardised, alpha_calibrated, alpha_calibrated_ci,
        above_grid, below_grid, n_columns_calibrated,
        alpha_per_column_quantiles, alpha_per_column_gaussian_quantiles,
        n_columns_per_column, sparse_share, seed, verdict``; the per-column
        entries are None with fewer than
        :data:`~sgnoise.tail_index.MIN_COLUMN_ROWS` rows; ``sparse_share`` is
        the share of non-constant columns with one value in half their rows;
        ``verdict`` is :func:`sgnoise.verdict.noise_verdict`'s.
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
    result = {
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
        "above_grid": c["above_grid"],
        "below_grid": c["below_grid"],
        "n_columns_calibrated": c["n_columns_calibrated"],
        "alpha_per_column_quantiles": per_column and per_column["quantiles"],
        "alpha_per_column_gaussian_quantiles": per_column and per_column["gaussian_quantiles"],
        "n_columns_per_column": per_column and per_column["n_columns"],
        "sparse_share": _atom_share(noise),
        "seed": seed,
    }
    return _jsonable(result | {"verdict": noise_verdict(_jsonable(result))})


def _ci(pair: list[float | None]) -> str:
    return "[" + ", ".join("inf" if v is None else f"{v:.3f}" for v in pair) + "]"


def report_noise(r: dict) -> list[str]:
    """The printed lines of :func:`analyse_noise`'s result."""
    lines = [
        f"{r['n_rows']} rows x {r['n_columns']} columns ({r['n_dropped']} constant, left out)",
        f"pooled alpha        {r['alpha_pooled']:.3f} {_ci(r['alpha_pooled_ci'])}"
        f"   Gaussian surrogate {r['surrogate_pooled']:.3f}",
        f"standardised alpha  {r['alpha_standardised']:.3f} {_ci(r['alpha_standardised_ci'])}"
        f"   Gaussian surrogate {r['surrogate_standardised']:.3f}",
        f"calibrated alpha    {r['alpha_calibrated']:.3f} {_ci(r['alpha_calibrated_ci'])}"
        "   per coordinate (the SaS alpha that reads the same)",
    ]
    if r["above_grid"]:
        lines.append("  the standardised alpha reads at or above a Gaussian's: no heavier tail")
    if r["below_grid"]:
        edge = r["alpha_calibrated"]
        lines.append(f"  below the calibrated range: about {edge:.2f} or heavier (a bound)")
    if r["n_columns_calibrated"] < r["n_columns"] - r["n_dropped"]:
        lines.append(f"  (calibrated on {r['n_columns_calibrated']} random columns)")
    if r["alpha_per_column_quantiles"] is None:
        lines.append(f"per-column alpha    needs >= {MIN_COLUMN_ROWS} rows, got {r['n_rows']}")
    else:
        q, g = r["alpha_per_column_quantiles"], r["alpha_per_column_gaussian_quantiles"]
        heads = "  ".join(f"{k:>4s}%" for k in q)
        lines += [
            f"per-column alpha    {heads}   ({r['n_columns_per_column']} columns)",
            f"  these columns     {'  '.join(f'{v:5.2f}' for v in q.values())}",
            f"  Gaussian columns  {'  '.join(f'{v:5.2f}' for v in g.values())}",
        ]
    return lines + report_verdict(r["verdict"])


def report_verdict(v: dict) -> list[str]:
    """The verdict's lines: its summary, then one line per finding."""
    return [f"verdict: {v['summary']}"] + [f"  - {f['text']}" for f in v["findings"].values()]


def analyse_per_example(grads: np.ndarray, seed: int = 0) -> dict:
    """Tail exponents of per-example gradients, at several thresholds k, and a verdict.

    :func:`sgnoise.per_example.summarise` without its per-column arrays, with
    ``by_k`` (:func:`sgnoise.per_example.exponents_over_k`), ``power_law`` (the
    threshold-free verdict's shares, :func:`sgnoise.per_example.power_law_shares`),
    ``sparse_share``
    (columns with non-zero values in fewer than :data:`SPARSE_NONZERO` of the
    rows), ``seed`` and ``verdict`` (:func:`sgnoise.verdict.per_example_verdict`).
    """
    result = per_example.summarise(grads, seed=seed)
    nonzero = np.count_nonzero(~ties(grads), axis=0) / grads.shape[0]
    result = {k: v for k, v in result.items() if k != "per_column"} | {
        "by_k": per_example.exponents_over_k(grads),
        "power_law": per_example.power_law_shares(grads, seed=seed),
        "sparse_share": float(np.mean(nonzero < SPARSE_NONZERO)),
        "seed": seed,
    }
    return _jsonable(result | {"verdict": per_example_verdict(_jsonable(result))})


def report_per_example(r: dict) -> list[str]:
    """The printed lines of :func:`analyse_per_example`'s result."""
    q, p = r["tail_exponent_quantiles"], r["power_law"]
    lo, hi = r["fraction_infinite_variance_ci"]
    lines = [
        f"{r['n_rows']} examples x {r['n_columns']} coordinates ({r['n_dropped']} left out: "
        f"{r['n_constant']} constant, {r['n_sparse']} sparse, {r['n_atom']} with a tied tail)",
        "tail exponent (Hill, k = sqrt(non-zero values))   "
        + "  ".join(f"{k}%: {_fmt(v)}" for k, v in q.items()),
        f"infinite variance (exponent credibly < 2): {r['fraction_infinite_variance']:.3f} "
        f"of the coordinates, 95% interval [{lo:.3f}, {hi:.3f}]",
        f"threshold-free (power law above a data-chosen x_min, {p['n_fitted']} coordinates): "
        f"infinite variance {_fmt(p['fraction_infinite_variance'])}, lognormal tail "
        f"{_fmt(p['fraction_lognormal'])}, plausible power law {_fmt(p['fraction_plausible'])} "
        f"(of {p['n_tested']} tested)",
        "over the threshold k = f sqrt(m):     f   k (fewest-most)  median  infinite  finite",
    ]
    for row in r["by_k"]:
        median = _fmt((row["tail_exponent_quantiles"] or {}).get("50"))
        ks = "-" if row["k_range"] is None else "{}-{}".format(*row["k_range"])
        inf, fin = row["fraction_infinite_variance"], row["fraction_finite_variance"]
        lines.append(
            f"{row['k_factor']:>37.2f}  {ks:>15s}  {median:>6s}  {_fmt(inf):>8s}  {_fmt(fin):>6s}"
        )
    return lines + report_verdict(r["verdict"])


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.2f}"


@dataclass(frozen=True)
class Mode:
    """What one mode reads (``what``, for messages), computes and prints, and the row of
    its table of layers (``row``: a result's cells; ``heads``: their titles)."""

    what: str
    run: Callable[[np.ndarray, int], dict]
    report: Callable[[dict], list[str]]
    heads: str
    row: Callable[[dict], str]


MODES = {
    "noise": Mode(
        "noise matrix",
        analyse_noise,
        report_noise,
        f"{'pooled (surr.)':>13s}  {'calibrated alpha':>22s}  {'sparse':>6s}  verdict",
        lambda r: (
            f"{_fmt(r['alpha_pooled']):>6s} ({_fmt(r['surrogate_pooled']):>4s})"
            f"  {_fmt(r['alpha_calibrated']):>5s} {_ci(r['alpha_calibrated_ci']):>16s}"
            f"  {r['sparse_share']:6.1%}  {r['verdict']['conclusion']}"
        ),
    ),
    "per_example": Mode(
        "per-example gradients",
        analyse_per_example,
        report_per_example,
        f"{'median exponent':>15s}  {'infinite variance':>24s}  {'sparse':>6s}  verdict",
        lambda r: (
            f"{_fmt(r['tail_exponent_quantiles']['50']):>15s}"
            f"  {r['fraction_infinite_variance']:>7.3f}"
            f" {_ci(r['fraction_infinite_variance_ci']):>16s}"
            f"  {r['sparse_share']:6.1%}  {r['verdict']['conclusion']}"
        ),
    ),
}


def _shape_warnings(shape: tuple[int, int], mode: str, name: str) -> list[str]:
    n_rows, n_columns = shape
    if mode == "noise" and n_columns <= TRANSPOSED_COLUMNS and n_rows >= TRANSPOSED_ROWS:
        return [
            f"{name}: {n_rows} rows x {n_columns} columns looks transposed: rows must be "
            "minibatches (or samples), columns coordinates; if the rows are coordinates, "
            "analyse noise.T"
        ]
    return []


def as_array(x: Any, name: str = "input") -> tuple[np.ndarray, list[str]]:
    """A numpy array of ``x`` (an array or a CPU tensor), and notes about the conversion.

    A tensor that requires grad is detached (the note says so, also as a
    :class:`UserWarning`); a tensor on another device is refused with the fix.
    sgnoise never imports PyTorch: a tensor is recognised by its type's module.
    """
    kind = type(x)
    if kind.__module__.partition(".")[0] != "torch" or not hasattr(x, "detach"):
        return np.asarray(x), []
    if x.device.type != "cpu":
        raise InputError(f"{name}: a tensor on {x.device}: move it to the CPU with .cpu() first")
    notes = []
    if x.requires_grad:
        notes.append(f"{name}: a tensor that requires grad: analysed x.detach()")
        warnings.warn(notes[-1], stacklevel=3)
        x = x.detach()
    return x.numpy(), notes


def analyse(
    x: Any, *, per_example: bool = False, seed: int = 0, name: str = "input"
) -> dict[str, Any]:
    """What ``python -m sgnoise.analyse`` computes, for arrays in memory.

    Parameters
    ----------
    x : array_like, CPU tensor, or mapping of names to them
        One matrix (rows = minibatches or samples, columns = coordinates; with
        ``per_example``, rows = examples), or the layers of a model by name
        (e.g. ``sgnoise.torch.record(...).noise``). A tensor that requires grad
        is detached, with a note in ``warnings``.
    per_example : bool
        ``x`` holds per-example gradients (``--per-example``).
    seed : int
        Seed of every estimate (``--seed``).
    name : str
        What messages call a single matrix.

    Returns
    -------
    dict
        For one matrix: :func:`analyse_noise`'s keys (or
        :func:`analyse_per_example`'s), ``verdict`` and ``warnings``. For
        several layers: ``layers`` ({name: that dict}), ``all`` (that dict for
        the layers' columns side by side, or None when their row counts
        differ) and ``warnings``. The same as ``--json`` writes, without
        ``file``.

    Raises
    ------
    ValueError
        (:class:`InputError`) a matrix that is not 2-D, not finite, too small.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    layers = dict(x) if isinstance(x, Mapping) else {name: x}
    if not layers:
        raise InputError(f"{name}: no arrays to analyse")
    notes, matrices = [], {}
    for key, value in layers.items():
        array, said = as_array(value, str(key))
        notes += said
        matrices[str(key)] = _checked(array, str(key))
    return _analyse_layers(matrices, "per_example" if per_example else "noise", seed, notes)


def _analyse_layers(matrices: dict[str, np.ndarray], mode: str, seed: int, notes: list[str]):
    """:func:`analyse` of checked matrices. A single matrix's ValueError is an
    :class:`InputError`; a layer that cannot be analysed (e.g. a bias of too few values)
    is ``{"skipped": why}`` and a warning, unless every layer is."""

    def one(key: str | None, matrix: np.ndarray, shape_warnings: bool = True) -> dict:
        try:
            result = MODES[mode].run(matrix, int(seed))
        except InputError:
            raise
        except ValueError as e:
            raise InputError(f"{key}: {e}" if key else str(e)) from None
        said = _shape_warnings(matrix.shape, mode, key or "input") if shape_warnings else []
        return result | {"warnings": said}

    if len(matrices) == 1:
        result = one(None, *matrices.values())
        return result | {"warnings": notes + result["warnings"]}
    results: dict[str, dict] = {}
    for key, matrix in matrices.items():
        try:
            results[key] = one(key, matrix, shape_warnings=False)  # a bias has few columns
        except InputError as e:
            results[key] = {"skipped": str(e), "warnings": [f"skipped {e}"]}
    if all("skipped" in r for r in results.values()):
        raise InputError("; ".join(r["skipped"] for r in results.values()))
    rows = {m.shape[0] for m in matrices.values()}
    together = None
    if len(rows) == 1:
        together = one("all layers", np.concatenate(list(matrices.values()), axis=1))
    else:
        notes = notes + [f"the layers have different row counts ({sorted(rows)}): no 'all'"]
    said = [w for r in results.values() for w in r["warnings"]]
    return {"layers": results, "all": together, "warnings": notes + said}


def _by_layer(doc: dict) -> dict[str | None, dict]:
    if "layers" in doc:
        kept = {k: r for k, r in doc["layers"].items() if "skipped" not in r}
        return kept | ({"all layers": doc["all"]} if doc["all"] else {})
    return {None: doc}


def disagreements(docs: Mapping[str, dict]) -> list[str]:
    """Warnings for two inputs whose readings of the same layer disagree.

    ``docs`` maps each input's name to :func:`analyse`'s result. Noise: the
    calibrated intervals do not overlap; per-example gradients: the verdicts
    differ. Layers are matched by name (a single matrix matches a single matrix).
    """
    out = []
    names = list(docs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            la, lb = _by_layer(docs[a]), _by_layer(docs[b])
            for layer in [k for k in la if k in lb]:
                ra, rb = la[layer], lb[layer]
                where = f" ({layer})" if layer else ""
                if "alpha_calibrated_ci" in ra and "alpha_calibrated_ci" in rb:
                    (alo, ahi), (blo, bhi) = ra["alpha_calibrated_ci"], rb["alpha_calibrated_ci"]
                    ahi, bhi = (math.inf if v is None else v for v in (ahi, bhi))
                    if ahi < blo or bhi < alo:
                        out.append(
                            f"{a} and {b} disagree{where}: calibrated alpha "
                            f"{ra['alpha_calibrated']:.2f} {_ci(ra['alpha_calibrated_ci'])} "
                            f"against {rb['alpha_calibrated']:.2f} "
                            f"{_ci(rb['alpha_calibrated_ci'])}, intervals apart: if they are "
                            "the same model and checkpoint, one reading is off (few rows, a "
                            "different batch size, or minibatches that are not disjoint)"
                        )
                elif ra["verdict"]["conclusion"] != rb["verdict"]["conclusion"]:
                    out.append(
                        f"{a} and {b} disagree{where}: {ra['verdict']['conclusion']} against "
                        f"{rb['verdict']['conclusion']}"
                    )
    return out


def report(doc: dict, mode: str) -> list[str]:
    """The printed lines of :func:`analyse`'s result: a table of layers, then everything
    about the single matrix or all layers together."""
    m = MODES[mode]
    if "layers" not in doc:
        return m.report(doc)
    width = max(len(k) for k in doc["layers"])
    lines = [f"{len(doc['layers'])} layers", f"{'layer':<{width}s}  {'shape':^15s}  {m.heads}"]
    for key, r in doc["layers"].items():
        if "skipped" in r:
            lines.append(f"{key:<{width}s}  skipped: {r['skipped'].partition(': ')[2]}")
            continue
        lines.append(f"{key:<{width}s}  {r['n_rows']:>6d} x {r['n_columns']:<6d}  {m.row(r)}")
    if doc["all"] is None:
        return lines
    return lines + ["", "all layers together:"] + m.report(doc["all"])


class _Parser(argparse.ArgumentParser):
    """argparse that tells a usage error in one line (and --help in full)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _parser(prog: str = "python -m sgnoise.analyse") -> _Parser:
    parser = _Parser(
        prog=prog,
        description=(
            "Tail index alpha of gradient noise: pooled (as in Simsekli et al. 2019), "
            "standardised per coordinate, calibrated to a per-coordinate alpha with its 95% "
            "interval, and per column when there are enough rows; then a verdict in words."
        ),
        epilog="Exit status: 0 on success, 2 on a bad input or option (one line on stderr).",
    )
    parser.add_argument(
        "noise",
        metavar="NOISE",
        nargs="+",
        help=(
            "a .npy or .npz file holding 2-D arrays: rows = minibatches (or samples), "
            f"columns = coordinates; at least {MIN_ROWS} rows, {MIN_COLUMN_ROWS} for the "
            "per-column quantiles. Every array of a .npz is a layer (a table, then all layers "
            "together). Several files: each is analysed, and readings of the same layer that "
            "disagree are warned about"
        ),
    )
    parser.add_argument(
        "--key", metavar="NAME", help="read only this array of a .npz file (one file)"
    )
    parser.add_argument(
        "--per-example",
        action="store_true",
        help=(
            "NOISE holds per-example gradients (rows = examples, columns = coordinates, at "
            "least 100 rows): print the tail exponents of their distribution (Hill) at several "
            "thresholds k and the share of coordinates with infinite variance, instead of the "
            "noise's alpha"
        ),
    )
    parser.add_argument(
        "--json", metavar="OUT.json", help="also write the results to this JSON file"
    )
    parser.add_argument(
        "--plot",
        metavar="OUT.png",
        help=(
            "also draw the per-column alpha against Gaussian columns, the Hill plot (with "
            "--per-example) and the histogram with the fitted stable density, of the first NOISE "
            "file (a row per layer, up to 4, and all layers together)"
        ),
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


def _write(path: str, what: str, write: Callable[[Path], Any]) -> None:
    try:
        write(Path(path))
    except OSError as e:
        raise InputError(f"{path}: cannot write the {what} ({e.strerror})") from None


def main(argv: Sequence[str] | None = None, prog: str = "python -m sgnoise.analyse") -> int:
    """Run the command line; returns the exit status."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    mode = "per_example" if args.per_example else "noise"
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.key is not None and len(args.noise) > 1:
        parser.error("--key reads one array of one file: give one NOISE file")
    docs, matrices = {}, {}
    try:
        for path in args.noise:
            matrices[path] = load_layers(path, args.key)
            try:
                docs[path] = _analyse_layers(matrices[path], mode, args.seed, [])
            except InputError as e:
                raise InputError(f"{path}: {e}") from None
        said = disagreements(docs) if len(docs) > 1 else []
        if args.json:
            out = (
                {"file": args.noise[0]} | docs[args.noise[0]]
                if len(docs) == 1
                else {"inputs": [{"file": p} | d for p, d in docs.items()], "warnings": said}
            )
            _write(args.json, "JSON", lambda p: p.write_text(json.dumps(out, indent=2) + "\n"))
        if args.plot:
            from sgnoise.plots import analysis_figure

            path = args.noise[0]
            _write(
                args.plot,
                "plot",
                lambda p: analysis_figure(matrices[path], docs[path], p, title=path),
            )
    except InputError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path, doc in docs.items():
        print(f"{path} ({MODES[mode].what})")
        print("\n".join(report(doc, mode)))
        for warning in doc["warnings"]:
            print(f"warning: {warning}", file=sys.stderr)
    for warning in said:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
