"""The bench scripts a reader runs by hand on run folders (findings.py, compare_results.py):
bad input is one line naming it, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "MNIST_size/reference"


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [  # each printed a traceback (FileNotFoundError, IsADirectoryError, TypeError) or only nan
        ("findings.py", ["no_such_folder"], "no_such_folder/results.json not found"),
        ("findings.py", [REFERENCE, "--epoch", "99"],
         "--epoch 99: not a checkpoint of MNIST_size/reference: choose among 0, 1, 2, 3, 4, 5"),
        ("compare_results.py", [], "usage: python bench/compare_results.py OLD NEW"),
        ("compare_results.py", ["no_such_folder", REFERENCE], "cannot read no_such_folder"),
    ],
)  # fmt: skip
def test_a_bench_script_refuses_bad_input_in_one_line(script, args, message):
    out = run(script, *args)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and out.stdout == ""


def test_compare_results_reads_the_results_csv_of_two_run_folders():
    out = run("compare_results.py", REFERENCE, REFERENCE)
    assert out.returncode == 0 and out.stdout.splitlines()[-1].startswith("0 differing cells")
