"""The console scripts (sgnoise.cli): sgnoise STUDY|replot, sgnoise-analyse, python -m sgnoise."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sgnoise import cli, plots, results

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--seeds", "0", "--subset", "2000", "--batch-size", "125"]


def test_pyproject_declares_the_console_scripts_and_they_resolve():
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    scripts = dict(re.findall(r'^([\w-]+) = "([\w.:]+)"$', section, re.M))
    assert scripts == {"sgnoise": "sgnoise.cli:main", "sgnoise-analyse": "sgnoise.cli:analyse_main"}
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_help_lists_every_command_and_a_bad_command_gets_one_line(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    out, _ = capsys.readouterr()
    assert done.value.code == 0
    for command in ("activation", "lr", "batch", "replot", "sgnoise-analyse"):
        assert command in out
    for argv in ([], ["train"]):
        with pytest.raises(SystemExit) as bad:
            cli.main(argv)
        _, err = capsys.readouterr()
        assert bad.value.code == 2 and err
    assert err.count("\n") == 1 and "'train'" in err


def test_a_study_takes_the_drivers_flags_and_errors(capsys):
    with pytest.raises(SystemExit) as ok:
        cli.main(["lr", "--help"])
    out, _ = capsys.readouterr()
    assert ok.value.code == 0 and "--lr-step" in out and "does α depend" in out
    for argv, message in (
        (["lr", "--lr-step", "-0.1"], "--lr-step must be > 0, got -0.1 (from the command line)"),
        (["activation", "--lr-step", "0.1"], "--lr-step"),
    ):
        with pytest.raises(SystemExit) as bad:
            cli.main(argv)
        _, err = capsys.readouterr()
        assert bad.value.code == 2 and err.count("\n") == 1 and message in err


@pytest.mark.slow
def test_a_study_writes_under_the_current_directory_with_the_real_command_line(
    tmp_path, monkeypatch, capsys
):
    argv = [
        "activation",
        *TINY,
        "--activations",
        "relu",
        "--checkpoint-every",
        "-1",
        "--workers",
        "1",
    ]
    argv += ["--coordinates", "0", "--run-name", "r"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["/somewhere/bin/sgnoise", *argv])
    monkeypatch.setenv("MPLBACKEND", "Agg")
    with monkeypatch.context() as no_plots:  # the PNGs are drawn by the replot below
        no_plots.setattr(plots, "draw_study", lambda study, results, folder, pool=None: [])
        cli.main(argv)
    folder = tmp_path / "MNIST_activation" / "r"
    doc = json.loads((folder / "results.json").read_text())
    assert doc["provenance"]["command"] == "sgnoise " + " ".join(argv)
    assert not (folder / "training.png").exists()
    capsys.readouterr()
    cli.main(["replot", str(folder)])
    assert (folder / "training.png").stat().st_size > 0
    assert str(folder / "training.png") in capsys.readouterr().out


def test_provenance_names_python_m_for_a_package_main(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/x/sgnoise/__main__.py", "lr", "--epochs", "1"])
    assert results.provenance()["command"] == "python -m sgnoise lr --epochs 1"


def test_sgnoise_analyse_is_the_analyse_command_line(tmp_path, monkeypatch, capsys):
    np.save(tmp_path / "n.npy", np.random.default_rng(0).standard_normal((16, 200)))
    monkeypatch.setattr(sys, "argv", ["sgnoise-analyse", str(tmp_path / "n.npy")])
    with pytest.raises(SystemExit) as done:
        cli.analyse_main()
    assert done.value.code == 0 and "calibrated alpha" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["sgnoise-analyse", str(tmp_path / "none.npy")])
    with pytest.raises(SystemExit) as bad:
        cli.analyse_main()
    _, err = capsys.readouterr()
    assert bad.value.code == 2 and err.startswith("sgnoise-analyse: error:")


def test_python_m_sgnoise_runs_the_console_script():
    done = subprocess.run(
        [sys.executable, "-m", "sgnoise", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0 and "replot" in done.stdout
