"""Settings: constants, command-line overrides, validation, --help (sgnoise.settings)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from sgnoise import settings as cli
from sgnoise.studies import STUDIES

ROOT = Path(__file__).resolve().parents[1]

DOC = "A test driver.\n\n    python drv.py --lr-step 0.01\n"
CONSTANTS = {
    "__file__": "/somewhere/drv.py",
    "__doc__": DOC,
    "DATASET": "mnist10k",
    "ACTIVATIONS": ("relu", "sigmoid"),
    "HIDDEN": (100,),
    "EPOCHS": 5,
    "LR_START": 0.001,
    "LR_STOP": 0.1,
    "LR_STEP": 0.005,
    "SEEDS": (0, 1, 2),
    "OPTIMIZER": "sgd",
    "IN_FLIGHT": False,
    "RUN_NAME": "",
}
CONSTANTS_ACTIVATION = {
    "__file__": "/somewhere/drv.py",
    "__doc__": DOC,
    "EPOCHS": 5,
    "LR": 0.1,
}


def test_without_arguments_the_constants_are_the_settings_and_the_rest_the_defaults():
    s = cli.parse("lr", CONSTANTS, [])
    assert {k: s[k] for k in (n.lower() for n in CONSTANTS if n.isupper())} == {
        "dataset": "mnist10k",
        "activations": ("relu", "sigmoid"),
        "hidden": (100,),
        "epochs": 5,
        "lr_start": 0.001,
        "lr_stop": 0.1,
        "lr_step": 0.005,
        "seeds": (0, 1, 2),
        "optimizer": "sgd",
        "in_flight": False,
        "run_name": "",
    }
    assert set(s) == {n.lower() for n in STUDIES["lr"].defaults}
    assert s.batch_size == STUDIES["lr"].defaults["BATCH_SIZE"]


def test_settings_are_read_only_and_replace_validates():
    s = cli.parse("lr", CONSTANTS, [])
    with pytest.raises(AttributeError, match="read-only"):
        s.epochs = 3
    with pytest.raises(TypeError):
        s["epochs"] = 3
    assert s.replace(epochs=3).epochs == 3 and s.epochs == 5
    with pytest.raises(ValueError, match="--epochs must be >= 1, got 0"):
        s.replace(epochs=0)
    with pytest.raises(ValueError, match="'lr' is not a setting of the lr study"):
        s.replace(lr=0.1)


def test_command_line_overrides_each_constant_by_its_dashed_name():
    argv = ["--lr-step", "0.01", "--activations", "tanh", "relu", "--seeds", "3", "4",
            "--epochs", "2", "--in-flight", "--optimizer", "adam", "--hidden", "64", "32",
            "--run-name", "try"]  # fmt: skip
    s = cli.parse("lr", CONSTANTS, argv)
    assert s["lr_step"] == 0.01 and s["activations"] == ("tanh", "relu")
    assert s["seeds"] == (3, 4) and s["epochs"] == 2 and s["in_flight"] is True
    assert s["optimizer"] == "adam" and s["hidden"] == (64, 32) and s["run_name"] == "try"
    assert s["lr_start"] == 0.001  # untouched
    assert (
        cli.parse("lr", {**CONSTANTS, "IN_FLIGHT": True}, ["--no-in-flight"])["in_flight"] is False
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr-step", "-0.1"], "--lr-step must be > 0, got -0.1 (from the command line)"),
        (["--lr-stop", "nan"], "--lr-stop must be > 0, got nan"),
        (
            ["--dataset", "cifar"],
            "--dataset must be one of mnist10k, mnist, fashion_mnist, cifar10, got",
        ),
        (["--activations", "relu", "gelu"], "--activations must be one of relu, sigmoid, tanh"),
        (["--optimizer", "rmsprop"], "--optimizer must be one of sgd, momentum, adam, adadelta"),
        (["--epochs", "0"], "--epochs must be >= 1, got 0"),
        (["--seeds", "1", "1"], "--seeds must not repeat a value, got [1, 1]"),
        (["--seeds", "-1"], "--seeds must be >= 0, got -1"),
        (["--hidden", "0"], "--hidden must be >= 1, got 0"),
        (["--lr-start", "0.5"], "--lr-start must be <= --lr-stop, got 0.5 > 0.1"),
        (["--lr-step", "1e-7"], "makes 990001 learning rates, more than 1000"),
        (["--lr-stop", "1e308", "--lr-step", "1e-300"], "makes about inf learning rates"),
        (["--run-name", " "], "--run-name must be a plain folder name (not blank"),
        (["--epochs", "1.5"], "argument --epochs: invalid int value: '1.5'"),
        (["--lr-ste", "0.1"], "unrecognized arguments: --lr-ste"),  # no silent abbreviations
        (["--backend", "ray"], "--backend must be one of local, dask, got 'ray'"),
        (
            ["--scheduler", "tcp://host:8786"],
            "--scheduler 'tcp://host:8786' needs --backend dask, got --backend 'local'",
        ),
    ],
)
def test_bad_values_exit_with_a_message_naming_option_and_value(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse("lr", CONSTANTS, argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_bad_constant_is_reported_as_the_constant_in_the_driver(capsys):
    with pytest.raises(SystemExit):
        cli.parse("lr", {**CONSTANTS, "EPOCHS": 0}, [])
    err = capsys.readouterr().err
    assert "--epochs must be >= 1, got 0 (from the constant EPOCHS in drv.py)" in err
    with pytest.raises(SystemExit):
        cli.parse("lr", {**CONSTANTS, "SEEDS": 0}, [])  # a list setting given a scalar
    assert "--seeds must be a non-empty list, got 0" in capsys.readouterr().err


def one_line_error(capsys, study, constants, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(study, constants, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_an_unknown_constant_is_one_line_naming_it(capsys):
    err = one_line_error(capsys, "lr", {**CONSTANTS, "LEARNING_RATE": 0.1}, [])
    assert "LEARNING_RATE in drv.py is not a setting of the lr study: check the spelling" in err


def test_a_constant_the_study_does_not_have_is_one_line_naming_it(capsys):
    err = one_line_error(capsys, "activation", {**CONSTANTS_ACTIVATION, "LR_STEP": 0.5}, [])
    assert "LR_STEP in drv.py is not a setting of the activation study (only the lr study " in err
    assert "remove it" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr-step", "0.5"], "--lr-step is not a setting of the activation study (only the lr"),
        (["--lr-step=0.5"], "--lr-step is not a setting of the activation study"),
        (["--learning-rate", "0.5"], "unrecognized arguments: --learning-rate 0.5"),
    ],
)
def test_a_flag_the_study_does_not_have_is_one_line_naming_it(capsys, argv, message):
    assert message in one_line_error(capsys, "activation", CONSTANTS_ACTIVATION, argv)


def test_the_shipped_drivers_declare_exactly_their_study_s_settings_at_its_defaults():
    scripts = {"test_epoch_alpha_relu.py": "activation", "test_lr_alpha.py": "lr",
               "test_batch_alpha.py": "batch", "test_size_alpha.py": "size"}  # fmt: skip
    assert set(scripts.values()) == set(STUDIES)
    for script, study in scripts.items():
        constants: dict = {}
        for node in ast.parse((ROOT / script).read_text()).body:
            if isinstance(node, ast.Assign):
                value = ast.literal_eval(node.value)
                target = node.targets[0]
                names = (
                    [t.id for t in target.elts] if isinstance(target, ast.Tuple) else [target.id]
                )
                values = value if isinstance(target, ast.Tuple) else [value]
                constants.update(zip(names, values, strict=True))
        assert constants == dict(STUDIES[study].defaults), script


def test_help_explains_every_constant_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse("lr", CONSTANTS, ["--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    assert "python drv.py --lr-step 0.01" in out  # the driver's docstring
    for name in (n for n in CONSTANTS if n.isupper()):
        assert cli.flag(name) in out
        assert " ".join(cli.KNOBS[name].help.split()) in out
    assert "(default: 0.005)" in out and "(default: [0, 1, 2])" in out


def test_every_knob_has_help_and_accepts_its_documented_example_values():
    for name, knob in cli.KNOBS.items():
        assert knob.help and cli.flag(name).startswith("--")
    cli.make(
        "activation",
        {
            "dataset": "fashion_mnist",
            "checkpoint_every": -1,
            "subset": 0,
            "workers": 2,
            "out_root": ".",
            "hidden": [256, 256],
            "lr": 1,
        },
    )
    with pytest.raises(ValueError, match="--out-root must be a folder name"):
        cli.check_setting("OUT_ROOT", "")
    with pytest.raises(ValueError, match="--in-flight must be of type bool, got 1"):
        cli.check_setting("IN_FLIGHT", 1)


@pytest.mark.parametrize("study", list(STUDIES))
def test_every_flag_a_study_s_help_names_is_one_of_its_own(study):
    # the size study's --help said "--model: mlp (fully connected, --hidden widths)", a flag
    # it refuses ("--hidden is not a setting of the size study")
    parser = cli.build_parser("", STUDIES[study].defaults)
    own = {o for action in parser._actions for o in action.option_strings}
    named = set(re.findall(r"--[a-z][a-z-]*", parser.format_help()))
    assert named <= own, sorted(named - own)
