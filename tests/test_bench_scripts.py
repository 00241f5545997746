"""The bench scripts a reader runs by hand on run folders (findings.py, compare_results.py):
bad input is one line naming it, exit 2, no traceback."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize(
    ("contents", "message"),
    [  # each was an IndexError or UnicodeDecodeError traceback, exit 1
        (b"", "empty.csv is not a results.csv (no records with a 'mode' column)"),
        (b"study,mode\n", "empty.csv is not a results.csv (no records with a 'mode' column)"),
        (b'{\n  "config": {}\n}\n', "is not a results.csv (no records with a 'mode' column)"),
        (b"\x89PNG\r\n\x1a\n", "is not a results.csv ('utf-8' codec can't decode byte 0x89"),
    ],
)
@pytest.mark.parametrize("side", ["old", "new"])
def test_compare_results_refuses_a_file_that_is_not_a_results_csv_in_one_line(
    tmp_path, contents, message, side
):
    bad = tmp_path / "empty.csv"
    bad.write_bytes(contents)
    args = [str(bad), REFERENCE] if side == "old" else [REFERENCE, str(bad)]
    out = run("compare_results.py", *args)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and out.stdout == ""


def test_findings_takes_a_fractional_checkpoint_as_it_prints_it(tmp_path):
    # checkpoints every k iterations: epoch 5/7 is 0.7142857142857143 in results.json; the
    # refusal listed it as 0.714286, which --epoch 0.714286 was refused as again
    doc = json.loads((ROOT / REFERENCE / "results.json").read_text())
    for r in doc["records"]:
        r["epoch"] /= 7
    (tmp_path / "results.json").write_text(json.dumps(doc))
    out = run("findings.py", str(tmp_path), "--epoch", "0.714286")
    assert out.returncode == 0, out.stderr
    said = out.stdout.replace(str(tmp_path), REFERENCE).replace("epoch 0.714286", "epoch 5")
    assert said == run("findings.py", REFERENCE).stdout  # the figures of the last checkpoint
    out = run("findings.py", str(tmp_path), "--epoch", "0.7143")
    assert out.returncode == 2 and "choose among 0, 0.142857, 0.285714, " in out.stderr


def test_compare_results_reads_the_results_csv_of_two_run_folders():
    out = run("compare_results.py", REFERENCE, REFERENCE)
    assert out.returncode == 0 and out.stdout.splitlines()[-1].startswith("0 differing cells")


def test_bench_epoch_s_verdict_agrees_with_its_pass_line():
    pytest.importorskip("torch")  # bench_epoch imports it (one process: about 2 s)
    cases = {  # (numpy_over_torch, floor_over_torch): the verdict's last words
        (0.9, 0.8): ": the target is met",
        (0.98, 1.05): ": the target is met",  # the floor is an estimate: was "below the floor"
        (1.3, 1.1): ": the <= 1.0 target is below this BLAS's floor on this machine",
        (1.2, 0.8): ": the target is above the floor; the loop adds 1.50x to it",
    }
    code = "import sys; sys.path.insert(0, 'bench'); import bench_epoch\n" + "".join(
        f"print(bench_epoch.verdict({ratio}, {floor}, 0.5, 1.2))\n" for ratio, floor in cases
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    for said, words in zip(out.stdout.splitlines(), cases.values(), strict=True):
        assert said.endswith(words), said
