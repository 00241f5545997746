"""Compare two results.csv files column by column: every α, loss and accuracy value equal?

python bench/compare_results.py OLD/results.csv NEW/results.csv   (or the run folders OLD NEW)
Prints the rows and columns that differ (elapsed_s and columns only one file has are
listed, not compared), the largest |new - old| of each numeric column that differs, and
exits 1 if any shared column other than elapsed_s differs. Rows of a kind (``mode``)
that only NEW has (measurements added since) are left out.
"""

import csv
import sys
from pathlib import Path
from typing import NoReturn

USAGE = "usage: python bench/compare_results.py OLD NEW (two results.csv, or their run folders)"


def _rows(path: str) -> list[dict[str, str]]:
    """The rows of a results.csv, or of the one in a run folder; unreadable, or not records
    (no rows, no ``mode`` column: a results.json, an empty file): exit 2."""
    csv_path = Path(path) / "results.csv" if Path(path).is_dir() else Path(path)
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        _refuse(f"cannot read {csv_path} ({err.strerror})")
    except (UnicodeDecodeError, csv.Error) as err:
        _refuse(f"{csv_path} is not a results.csv ({err})")
    if not rows or "mode" not in rows[0]:
        _refuse(f"{csv_path} is not a results.csv (no records with a 'mode' column)")
    return rows


def _refuse(problem: str) -> NoReturn:
    """One line naming the problem and the fix, exit 2 (bad input)."""
    print(f"compare_results.py: {problem}: give two results.csv files, or the run folders "
          "that hold them", file=sys.stderr)  # fmt: skip
    sys.exit(2)


def main(old_path: str, new_path: str) -> int:
    old, new = _rows(old_path), _rows(new_path)
    modes = {r.get("mode") for r in old}
    added = sum(r.get("mode") not in modes for r in new)
    new = [r for r in new if r.get("mode") in modes]
    shared = [c for c in old[0] if c in new[0] and c != "elapsed_s"]
    only = sorted(set(old[0]) ^ set(new[0]))
    print(
        f"rows: {len(old)} old, {len(new)} new of the same kinds ({added} rows of new kinds "
        f"left out); columns compared: {len(shared)}; in one file only: {len(only)}"
    )
    if len(old) != len(new):
        print("FAIL: different numbers of rows")
        return 1
    bad = [
        (i, c, o[c], n[c])
        for i, (o, n) in enumerate(zip(old, new, strict=True))
        for c in shared
        if o[c] != n[c]
    ]
    for i, c, o, n in bad[:20]:
        print(f"row {i} column {c}: {o!r} != {n!r}")
    largest: dict[str, float] = {}
    for _, c, o, n in bad:
        try:
            delta = abs(float(n) - float(o))
        except ValueError:  # not numbers
            continue
        largest[c] = max(largest.get(c, 0.0), delta)
    for c, delta in largest.items():
        print(f"max |new - old| of {c}: {delta:.3g}")
    print(f"{len(bad)} differing cells of {len(old) * len(shared)}")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
