"""sgnoise.analyse: the command line on good noise, and one clear line for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sgnoise import calibration
from sgnoise.analyse import analyse, main
from sgnoise.tail_index import MIN_COLUMN_ROWS
from sgnoise.verdict import per_example_verdict

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (16, 64)
JSON_KEYS = {
    "n_rows",
    "n_columns",
    "n_dropped",
    "alpha_pooled",
    "surrogate_pooled",
    "alpha_standardised",
    "surrogate_standardised",
    "alpha_calibrated",
    "alpha_calibrated_ci",
    "alpha_per_column_quantiles",
}


@pytest.fixture(scope="module", autouse=True)
def _few_reps(few_reps):
    """Curves of 4 matrices per alpha (tests/conftest.py): fast tests."""


def noise(shape=SHAPE, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_t(3, shape).astype(np.float32)


def run(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_noise_matrix_is_summarised_in_text_and_json(tmp_path, capsys):
    np.save(tmp_path / "noise.npy", noise())
    code, out, err = run([tmp_path / "noise.npy", "--json", tmp_path / "out.json"], capsys)
    assert code == 0 and err == ""
    for line in ("pooled alpha", "standardised alpha", "calibrated alpha", "per-column alpha"):
        assert line in out
    result = json.loads((tmp_path / "out.json").read_text())
    assert JSON_KEYS <= set(result)
    assert (result["n_rows"], result["n_columns"], result["n_dropped"]) == (*SHAPE, 0)
    lo, hi = result["alpha_calibrated_ci"]
    assert lo <= result["alpha_calibrated"] <= hi <= 2.0
    assert result["alpha_per_column_quantiles"] is None  # 16 rows: too few


def test_the_same_seed_gives_the_same_json_and_another_seed_another(tmp_path, capsys):
    np.save(tmp_path / "noise.npy", noise())
    outs = []
    for seed in (1, 1, 2):
        run([tmp_path / "noise.npy", "--seed", seed, "--json", tmp_path / "o.json"], capsys)
        outs.append(json.loads((tmp_path / "o.json").read_text()))
    assert outs[0] == outs[1]
    assert outs[0]["alpha_pooled"] != outs[2]["alpha_pooled"]


def test_enough_rows_give_per_column_quantiles_beside_gaussian_ones(tmp_path, capsys):
    np.save(tmp_path / "noise.npy", noise((MIN_COLUMN_ROWS, 8)))
    code, out, _ = run([tmp_path / "noise.npy", "--json", tmp_path / "o.json"], capsys)
    result = json.loads((tmp_path / "o.json").read_text())
    assert code == 0 and "Gaussian columns" in out
    assert list(result["alpha_per_column_quantiles"]) == ["5", "25", "50", "75", "95"]
    assert list(result["alpha_per_column_gaussian_quantiles"]) == ["5", "25", "50", "75", "95"]


def test_every_array_of_an_npz_is_a_layer_then_all_layers_together(tmp_path, capsys):
    np.savez(tmp_path / "one.npz", grads=noise())
    assert run([tmp_path / "one.npz"], capsys)[0] == 0
    np.savez(tmp_path / "two.npz", a=noise(), b=noise(seed=1)[:, :32])
    code, out, _ = run([tmp_path / "two.npz", "--json", tmp_path / "o.json"], capsys)
    doc = json.loads((tmp_path / "o.json").read_text())
    assert code == 0 and "2 layers" in out and "all layers together" in out
    assert list(doc["layers"]) == ["a", "b"] and doc["file"] == str(tmp_path / "two.npz")
    assert JSON_KEYS | {"verdict"} <= set(doc["layers"]["b"])
    assert doc["all"]["n_columns"] == 64 + 32
    alone = json.loads(json.dumps(analyse(noise(seed=1)[:, :32])))
    assert doc["layers"]["b"] == alone  # a layer reads as the same matrix alone
    code, _, _ = run([tmp_path / "two.npz", "--key", "b", "--json", tmp_path / "b.json"], capsys)
    assert code == 0 and json.loads((tmp_path / "b.json").read_text())["n_columns"] == 32
    code, _, err = run([tmp_path / "two.npz", "--key", "c"], capsys)
    assert code == 2 and "'c'" in err


def test_a_bad_layer_is_named_and_layers_of_other_row_counts_have_no_all(tmp_path, capsys):
    np.savez(tmp_path / "two.npz", a=noise(), b=np.full((16, 8), np.nan))
    code, _, err = run([tmp_path / "two.npz"], capsys)
    assert code == 2 and err.count("\n") == 1 and "[b]" in err and "NaN" in err
    doc = analyse({"a": noise(), "b": noise((20, 64))})
    assert doc["all"] is None and any("row counts" in w for w in doc["warnings"])
    doc = analyse({"w": noise(), "bias": noise((16, 4))})  # 64 values: too few for alpha
    assert "usable values" in doc["layers"]["bias"]["skipped"] and doc["all"]["n_columns"] == 68
    assert any(w.startswith("skipped bias") for w in doc["warnings"])


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_a_pytorch_file_gets_one_line_saying_how_to_save_arrays(tmp_path, capsys, suffix):
    path = tmp_path / f"noise{suffix}"
    with zipfile.ZipFile(path, "w") as z:  # what torch.save writes: a zip with a pickle
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    code, out, err = run([path], capsys)
    assert code == 2 and not out and err.count("\n") == 1
    assert "PyTorch" in err and "np.save" in err and str(path) in err


def write_pickled(path: Path) -> None:
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


def write_truncated(path: Path) -> None:
    np.save(path, noise())
    path.write_bytes(path.read_bytes()[:200])


def write_huge_header(path: Path) -> None:
    """A truncated .npy whose header claims 72.8 TiB (read at once, a MemoryError)."""
    np.save(path, np.zeros((100, 50)))
    raw = path.read_bytes()
    path.write_bytes(raw[:128].replace(b"(100, 50)", b"(100000000, 100000)") + raw[128:228])


def write_corrupt_npz(path: Path) -> None:
    with open(path, "wb") as f:  # np.savez would append .npz to the name
        np.savez(f, a=noise())
    data = bytearray(path.read_bytes())
    data[40:400] = bytes(360)
    path.write_bytes(bytes(data))


BAD_INPUTS = {
    "1-D": (lambda p: np.save(p, np.ones(500)), "2-D"),
    "3-D": (lambda p: np.save(p, np.ones((16, 8, 8))), "2-D"),
    "NaN": (lambda p: np.save(p, np.where(noise() > 2, np.nan, noise())), "NaN"),
    "inf": (lambda p: np.save(p, np.where(noise() > 2, np.inf, noise())), "inf"),
    "too few rows": (lambda p: np.save(p, noise((4, 64))), "rows"),
    "too few values": (lambda p: np.save(p, noise((8, 10))), "usable values"),
    "all constant": (lambda p: np.save(p, np.ones((16, 64))), "constant"),
    "complex": (lambda p: np.save(p, noise() + 1j), "complex"),
    "pickle": (write_pickled, "Python objects"),
    "truncated": (write_truncated, "it is truncated"),
    "huge header": (write_huge_header, "shape (100000000, 100000) (72.8 TiB), but the file holds"),
    "corrupt npz": (write_corrupt_npz, "corrupt"),
    "not numpy": (lambda p: p.write_text("1,2,3\n4,5,6\n"), "not a .npy or .npz"),
    "empty file": (lambda p: p.write_bytes(b""), "not a .npy or .npz"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_a_bad_input_gets_one_line_naming_file_and_problem(case, tmp_path, capsys):
    write, problem = BAD_INPUTS[case]
    path = tmp_path / "bad.npy"
    write(path)
    code, out, err = run([path], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(path) in err and problem in err


def test_a_missing_file_or_a_directory_gets_one_line(tmp_path, capsys):
    for path, problem in ((tmp_path / "none.npy", "no such file"), (tmp_path, "directory")):
        code, _, err = run([path], capsys)
        assert code == 2 and err.count("\n") == 1 and problem in err and str(path) in err


def test_a_key_on_an_npy_file_and_an_unwritable_json_get_one_line(tmp_path, capsys):
    np.save(tmp_path / "noise.npy", noise())
    code, _, err = run([tmp_path / "noise.npy", "--key", "a"], capsys)
    assert code == 2 and err.count("\n") == 1 and ".npz" in err
    code, _, err = run([tmp_path / "noise.npy", "--json", tmp_path / "no" / "o.json"], capsys)
    assert code == 2 and err.count("\n") == 1 and "o.json" in err


def test_a_bad_option_gets_one_line_and_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as bad:
        main(["x.npy", "--seed", "many"])
    _, err = capsys.readouterr()
    assert bad.value.code == 2 and err.count("\n") == 1 and "--seed" in err
    with pytest.raises(SystemExit) as ok:
        main(["--help"])
    out, _ = capsys.readouterr()
    assert ok.value.code == 0
    for option in ("NOISE", "--key", "--json", "--plot", "--seed"):
        assert option in out


def test_the_module_runs_and_a_bad_input_shows_no_traceback(tmp_path):
    write_pickled(tmp_path / "bad.npy")
    done = subprocess.run(
        [sys.executable, "-m", "sgnoise.analyse", str(tmp_path / "bad.npy")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_per_example_gradients_get_tail_exponents_and_the_infinite_variance_share(tmp_path, capsys):
    rng = np.random.default_rng(0)
    heavy, light = rng.standard_t(1.5, (20_000, 40)), rng.standard_t(4, (20_000, 40))
    np.save(tmp_path / "g.npy", np.concatenate([heavy, light], axis=1))
    code, out, err = run(
        ["--per-example", tmp_path / "g.npy", "--json", tmp_path / "g.json"], capsys
    )
    assert code == 0 and not err and "(per-example gradients)" in out
    doc = json.loads((tmp_path / "g.json").read_text())
    assert set(doc["tail_exponent_quantiles"]) == {"5", "25", "50", "75", "95"}
    assert 1.2 < doc["tail_exponent_quantiles"]["5"] < 1.8  # the t(1.5) columns
    assert 3.0 < doc["tail_exponent_quantiles"]["95"] < 5.0  # the t(4) columns
    lo, hi = doc["fraction_infinite_variance_ci"]
    assert (
        lo <= doc["fraction_infinite_variance"] <= hi
        and 0.35 < doc["fraction_infinite_variance"] < 0.6
    )
    assert [row["k_factor"] for row in doc["by_k"]] == sorted(
        row["k_factor"] for row in doc["by_k"]
    )
    assert "over the threshold k" in out and "verdict:" in out
    variance = doc["verdict"]["findings"]["variance"]
    assert variance["k_range"][0] <= int(np.sqrt(20_000)) <= variance["k_range"][1]


def test_per_example_verdicts_hold_over_k_or_say_they_do_not():
    rng = np.random.default_rng(2)
    heavy = analyse(rng.standard_t(1.2, (8000, 40)), per_example=True)
    light = analyse(rng.standard_t(6, (8000, 40)), per_example=True)
    assert heavy["verdict"]["conclusion"] == "infinite variance"
    assert light["verdict"]["conclusion"] == "finite variance"
    assert heavy["verdict"]["findings"]["threshold_free"]["call"] == "infinite"
    assert light["verdict"]["findings"]["threshold_free"]["call"] == "finite"
    assert heavy["power_law"]["n_fitted"] == 40 and heavy["power_law"]["n_tested"] == 40
    disagreeing = heavy | {"power_law": light["power_law"]}
    verdict = per_example_verdict(disagreeing)
    assert verdict["conclusion"] == "undecided" and "disagrees" in verdict["summary"]
    assert "k = sqrt(m)" in heavy["verdict"]["summary"] or "every k" in heavy["verdict"]["summary"]
    sparse = rng.standard_normal((8000, 40)) * (rng.random((8000, 40)) < 0.02)
    mixed = analyse(np.concatenate([rng.standard_t(6, (8000, 40)), sparse], 1), per_example=True)
    assert mixed["sparse_share"] == 0.5 and mixed["verdict"]["findings"]["sparse"]["call"] == "many"


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.ones((500, 3)), "no column to estimate: of 3, 3 are constant"),
        (np.random.default_rng(1).normal(size=(50, 3)), "100"),
        (np.array([[1.0, np.nan]] * 200), "NaN"),
    ],
    ids=["constant-columns", "too-few-rows", "non-finite"],
)
def test_bad_per_example_gradients_get_one_line(tmp_path, capsys, matrix, message):
    np.save(tmp_path / "g.npy", matrix)
    code, out, err = run(["--per-example", tmp_path / "g.npy"], capsys)
    assert code == 2 and not out and err.count("\n") == 1
    assert str(tmp_path / "g.npy") in err and message in err


def sas(alpha: float, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    v = rng.uniform(-np.pi / 2, np.pi / 2, shape)
    return calibration._symmetric_stable(alpha, v, rng.exponential(size=shape))


def test_the_verdict_tells_heavy_tails_from_scale_mixing():
    rng = np.random.default_rng(0)
    scales = np.exp(1.5 * rng.standard_normal(300))
    mixed = analyse(rng.standard_normal((120, 300)) * scales)
    heavy = analyse(sas(1.4, (120, 300), rng))
    assert mixed["verdict"]["conclusion"] == "gaussian"
    assert mixed["verdict"]["findings"]["pooled"]["call"] == "scale mixing"
    assert mixed["alpha_pooled"] < 1.6  # pooled alone would say heavy
    assert heavy["verdict"]["conclusion"] == "heavy-tailed"
    assert heavy["verdict"]["findings"]["pooled"]["call"] == "heavy tails"
    assert heavy["verdict"]["summary"].startswith("Heavy-tailed")
    for key in ("pooled", "calibrated", "per_column", "sparse"):
        assert heavy["verdict"]["findings"][key]["text"]


def test_sparse_columns_are_counted():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((16, 200))
    m[:12, :50] = -0.01  # an atom in most rows (mostly-zero per-example gradients)
    r = analyse(m)
    assert r["sparse_share"] == pytest.approx(0.25)
    assert r["verdict"]["findings"]["sparse"]["call"] == "many"


def test_a_transposed_looking_matrix_is_warned_about(tmp_path, capsys):
    np.save(tmp_path / "t.npy", noise((6000, 16)))
    code, _, err = run([tmp_path / "t.npy"], capsys)
    assert code == 0 and "looks transposed" in err and "noise.T" in err
    assert analyse(noise())["warnings"] == []
    assert analyse({"w": noise((6000, 200)), "b": noise((6000, 10))})["warnings"] == []


def test_two_inputs_of_one_model_that_disagree_are_warned_about(tmp_path, capsys):
    # 32 rows: at 16, the 4-matrix curves of tests/conftest.py leave SaS(1.2) an interval
    # of 0.5-1.5 (a floor of t with 1.7 degrees of freedom), which overlaps the Gaussian's
    rng = np.random.default_rng(0)
    np.save(tmp_path / "heavy.npy", sas(1.2, (32, 400), rng))
    np.save(tmp_path / "light.npy", rng.standard_normal((32, 400)))
    np.save(tmp_path / "light2.npy", rng.standard_normal((32, 400)))
    code, out, err = run(
        [tmp_path / "heavy.npy", tmp_path / "light.npy", "--json", tmp_path / "o.json"], capsys
    )
    assert code == 0 and out.count("(noise matrix)") == 2
    assert err.count("disagree") == 1 and "heavy.npy and" in err
    doc = json.loads((tmp_path / "o.json").read_text())
    assert [d["file"] for d in doc["inputs"]] == [
        str(tmp_path / f) for f in ("heavy.npy", "light.npy")
    ]
    assert len(doc["warnings"]) == 1
    code, _, err = run([tmp_path / "light.npy", tmp_path / "light2.npy"], capsys)
    assert code == 0 and "disagree" not in err


def test_the_python_api_returns_the_json_keys_and_detaches_a_tensor():
    torch = pytest.importorskip("torch")
    x = noise()
    r = analyse(x, seed=3)
    assert JSON_KEYS | {"verdict", "warnings", "seed"} <= set(r) and r["seed"] == 3
    t = torch.from_numpy(x).requires_grad_(True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rt = analyse(t, seed=3)
    assert any("detach" in str(w.message) for w in caught)
    assert any("detach" in w for w in rt["warnings"])
    assert {k: v for k, v in rt.items() if k != "warnings"} == {
        k: v for k, v in r.items() if k != "warnings"
    }
    with pytest.raises(ValueError, match="seed"):
        analyse(x, seed=-1)
    with pytest.raises(ValueError, match="2-D"):
        analyse(x[0])


@pytest.mark.slow
@pytest.mark.parametrize("per_example", [False, True])
def test_plot_draws_a_png_for_noise_layers_and_per_example_gradients(tmp_path, capsys, per_example):
    rng = np.random.default_rng(0)
    if per_example:
        np.save(tmp_path / "x.npy", rng.standard_t(2, (400, 20)))
        flags = ["--per-example"]
    else:
        np.savez(tmp_path / "x.npz", a=noise((1000, 20)), b=noise((1000, 20), seed=1))
        flags = []
    path = tmp_path / ("x.npy" if per_example else "x.npz")
    code, _, err = run([path, "--plot", tmp_path / "x.png", *flags], capsys)
    assert code == 0 and not err
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_plot_that_cannot_be_written_is_one_line_naming_it(tmp_path, capsys):
    np.save(tmp_path / "x.npy", noise((200, 8)))
    code, _, err = run([tmp_path / "x.npy", "--plot", tmp_path / "no" / "x.png"], capsys)
    assert code == 2 and err.count("\n") == 1 and "x.png" in err
