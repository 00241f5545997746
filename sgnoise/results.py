"""Run folders with provenance; results as strict JSON and CSV.

A run folder ``<root>/<name>/`` holds ``results.json`` (``config``,
``provenance``, ``records``, ``runs``), ``results.csv`` (the records, one row
per checkpoint x split x layer), ``noise_samples.npz`` (for the histogram) and
the PNGs. NaN and inf are written as JSON ``null`` (strict JSON) and as empty
CSV cells. Nothing is ever silently overwritten.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np


def new_run_dir(root: str | Path, name: str | None = None, *, overwrite: bool = False) -> Path:
    """Create a fresh run folder inside ``root``.

    Default name ``run-YYYYmmdd-HHMMSS`` (with ``-2``, ``-3``... if taken). A
    user-given name that exists is refused unless ``overwrite=True``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if name is not None:
        folder = root / name
        if folder.exists() and not overwrite:
            raise FileExistsError(
                f"{folder} already exists: choose another --run-name, or pass --overwrite"
            )
        folder.mkdir(exist_ok=True)
        return folder
    base = "run-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1, 1000):
        folder = root / (base if i == 1 else f"{base}-{i}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a new run folder in {root}")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance() -> dict:
    """Versions, platform, git commit (and whether the tree was dirty), command line, time."""
    import matplotlib
    import scipy

    import sgnoise

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain")
    return {
        "sgnoise": sgnoise.__version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "git_commit": commit,
        "git_dirty": bool(status) if status is not None else None,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "time": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _clean(value):
    """JSON-safe: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_results(folder: str | Path, config: dict, records: list[dict], runs: list[dict]) -> Path:
    """Write results.json and results.csv into ``folder``; returns the JSON path."""
    folder = Path(folder)
    doc = _clean({"config": config, "provenance": provenance(), "records": records, "runs": runs})
    _atomic_write(folder / "results.json", json.dumps(doc, indent=1, allow_nan=False))
    columns: list[str] = []
    for row in doc["records"]:
        columns += [k for k in row if k not in columns]
    tmp = folder / "results.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        writer.writerows(
            {k: ("" if v is None else v) for k, v in r.items()} for r in doc["records"]
        )
    os.replace(tmp, folder / "results.csv")
    return folder / "results.json"


def load_results(folder: str | Path) -> dict:
    """Read a run folder's results.json (None values become NaN in records)."""
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {folder} a run folder?")
    doc = json.loads(path.read_text())
    doc["records"] = [
        {k: (float("nan") if v is None else v) for k, v in r.items()} for r in doc["records"]
    ]
    return doc
