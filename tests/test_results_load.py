"""results.csv as a pandas DataFrame (sgnoise.results.load); pandas is a test-only requirement."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sgnoise import results
from sgnoise.studies import STUDIES

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_RUNS = ("MNIST_activation/reference", "MNIST_lr/reference")


def _records():
    base = {
        "study": "lr",
        "dataset": "mnist10k",
        "activation": "relu",
        "optimizer": "sgd",
        "batch_size": 500,
        "mode": "frozen",
        "iteration": 0,
    }
    return [
        {**base, "lr": 0.1, "seed": 0, "epoch": 0.0, "split": "train", "layer": "all",
         "alpha": np.float32(1.25), "n_samples": np.int64(1000), "diverged": False},
        {**base, "lr": 5.0, "seed": 1, "epoch": 1.5, "split": "test", "layer": "layer2",
         "alpha": float("nan"), "alpha_hi": float("inf"), "loss": -float("inf"),
         "diverged": True, "diverged_iteration": 7, "alpha_shuffled": 1.9},
    ]  # fmt: skip


def _saved(folder: Path) -> Path:
    results.save_results(folder, {"study": "lr"}, _records(), [])
    return folder / results.RESULTS_CSV


@pytest.mark.parametrize("run", REFERENCE_RUNS)
def test_load_gives_the_same_table_as_results_json_on_the_reference_runs(run):
    table = results.load(ROOT / run)
    records = results.load_results(ROOT / run)["records"]
    added = ["run", *results.FOLDER_SETTINGS.values()]
    # a column the records carry themselves (the network, "hidden") stands among the added
    assert list(table.columns) == added + [
        c for c in results.record_columns(records) if c not in added
    ]
    assert len(table) == len(records)
    for column in table.columns[len(added) :]:
        got, want = table[column].tolist(), [r[column] for r in records]
        if pd.api.types.is_float_dtype(table[column]):
            np.testing.assert_array_equal(got, np.asarray(want, float), err_msg=column)
        else:  # text and flags: an empty cell (or "" in results.json) is NaN in the table
            empty = [w is None or w == "" or (isinstance(w, float) and math.isnan(w)) for w in want]
            assert [None if e else w for w, e in zip(want, empty, strict=True)] == [
                None if isinstance(g, float) and math.isnan(g) else g for g in got
            ], column
    assert (table["run"] == run).all() and (table["hidden"] == "100").all()


def test_load_turns_empty_cells_into_nan_and_types_text_numbers_and_flags(tmp_path):
    _saved(tmp_path)
    table = results.load(tmp_path)
    added = ["run", *results.FOLDER_SETTINGS.values()]
    assert list(table.columns) == [*added, *results.RECORD_COLUMNS, "alpha_shuffled"]
    assert table["reason"].isna().all()
    first, second = table.to_dict("records")
    assert first["alpha"] == pytest.approx(1.25) and first["n_samples"] == 1000
    assert np.isnan(first["alpha_shuffled"]) and second["alpha_shuffled"] == 1.9
    assert np.isnan(second["alpha"]) and np.isnan(second["alpha_hi"]) and np.isnan(second["loss"])
    assert table["diverged"].dtype == bool and table["diverged"].tolist() == [False, True]
    assert pd.api.types.is_string_dtype(table["layer"])
    assert table["layer"].tolist() == ["all", "layer2"]
    assert all(pd.api.types.is_numeric_dtype(table[c]) for c in results.ALPHA_COLUMNS)


def test_load_without_pandas_says_how_to_install_it(tmp_path, monkeypatch):
    _saved(tmp_path)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(ImportError, match="pip install pandas"):
        results.load(tmp_path)


def test_load_names_a_missing_folder_and_a_missing_results_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere is not a folder: pass a run folder"):
        results.load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"results\.csv not found: is .* a run folder"):
        results.load(tmp_path)


def _damage_cell(text: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[1] = lines[1].replace("1.25", "1.2S", 1)
    return "".join(lines)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_damage_cell, r"line 2, column 'alpha' must be a number or empty, got '1.2S'"),
        (lambda t: t[: t.rindex(",True,")], r"line 3, column 'diverged' must be True or False"),
        (lambda t: t + "lr,mnist10k,relu,sgd,0.1,500,0" + "," * 200 + "\n", r"damaged \(Error"),
        (lambda t: "", r"damaged \(No columns"),
        (lambda t: t.replace("alpha_std_surrogate", "alpha_std_sur", 1), r"no columns \['alpha_st"),
    ],
    ids=["letter-in-number", "truncated-line", "extra-fields", "empty-file", "renamed-column"],
)
def test_load_names_the_file_and_the_fix_for_a_damaged_csv(tmp_path, damage, message):
    path = _saved(tmp_path)
    path.write_text(damage(path.read_text()))
    with pytest.raises(ValueError, match=message) as error:
        results.load(tmp_path)
    assert str(path) in str(error.value) and "rerun the study" in str(error.value)


def test_tables_of_folders_with_other_settings_concatenate_with_their_run_and_settings(tmp_path):
    for name, config in (("a", {"hidden": [100], "epochs": 5}), ("b", {"hidden": [256, 128]})):
        folder = tmp_path / "MNIST_lr" / name
        folder.mkdir(parents=True)
        results.save_results(folder, {"study": "lr", **config}, _records(), [])
    both = pd.concat([results.load(tmp_path / "MNIST_lr" / n) for n in "ab"], ignore_index=True)
    assert both["run"].tolist() == ["MNIST_lr/a"] * 2 + ["MNIST_lr/b"] * 2
    assert both["hidden"].tolist() == ["100", "100", "256-128", "256-128"]
    default = STUDIES["lr"].defaults["EPOCHS"]
    assert both["epochs"].tolist() == [5, 5, default, default]  # b: the study's default
    assert (
        both["init"].tolist() == ["paper"] * 4 and both["loss_function"].iloc[0] == "cross_entropy"
    )
    assert both["model"].tolist() == ["mlp"] * 4 and both["channels"].iloc[0] == "6-16"


def test_a_table_from_before_the_per_coordinate_columns_loads_with_them_empty(tmp_path):
    path = _saved(tmp_path)
    table = pd.read_csv(path)
    old = table.drop(columns=["sparse_share", "variance_call", "below_grid"])
    old.to_csv(path, index=False)
    loaded = results.load(tmp_path)
    assert list(loaded.columns)[-len(table.columns) :] == list(table.columns)
    assert loaded["sparse_share"].isna().all() and loaded["variance_call"].isna().all()
