"""sgnoise.sweep: shared (memory-mapped) data, and runs in worker processes equal to runs here."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest

from sgnoise import data as datasets
from sgnoise import settings, sweep, training
from sgnoise.mlp import MLP
from sgnoise.model import footprint, make_model
from sgnoise.pool import Pool
from sgnoise.run_config import RunConfig
from sgnoise.studies import STUDIES

FIELDS = ("x_train", "y_train", "x_test", "y_test")


def test_memory_mapped_data_equal_the_data_and_their_folder_goes_with_the_block():
    data = datasets.prepare("mnist10k", None, 3000, 250)
    with datasets.memory_mapped(data) as mapped:
        for field in FIELDS:
            array = getattr(mapped, field)
            assert isinstance(array, np.memmap) and not array.flags.writeable
            np.testing.assert_array_equal(array, getattr(data, field))
        assert (mapped.name, mapped.source) == (data.name, data.source)
        folder = Path(mapped.x_train.filename).parent
        assert folder.is_dir()
    assert not folder.exists()


def test_the_shared_copy_goes_even_when_the_block_raises():
    data = datasets.prepare("mnist10k", None, 3000, 250)
    try:
        with datasets.memory_mapped(data) as mapped:
            folder = Path(mapped.x_train.filename).parent
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert not folder.exists()


def test_data_go_to_shared_memory_only_if_it_has_room_for_them(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "SHARED_MEMORY", str(tmp_path))
    assert datasets._shared_memory_folder(10**6) == str(tmp_path)
    assert datasets._shared_memory_folder(10**18) is None  # no room: the temporary directory
    with datasets.memory_mapped(datasets.prepare("mnist10k", None, 3000, 250)) as mapped:
        assert Path(mapped.x_train.filename).parent.parent == tmp_path
    monkeypatch.setattr(datasets, "SHARED_MEMORY", str(tmp_path / "missing"))
    assert datasets._shared_memory_folder(10**6) is None


def test_the_driver_lets_its_own_copy_of_the_data_go_while_workers_run(tmp_path, monkeypatch):
    """With the data memory-mapped for worker processes, the driver holds only the mapped
    copy while they run: Fashion-MNIST's 220 MB counted once in the study's memory, not
    twice (its own copy was kept by the sweep: 1,164 -> 942 MiB of summed PSS)."""
    s = settings.make("activation", epochs=1, seeds=(0,), subset=3000, batch_size=250, workers=2)
    data = datasets.prepare(s.dataset, None, s.subset, s.batch_size)
    own = weakref.ref(data.x_train)
    running = sweep._Sweep(s, STUDIES["activation"].runs(s), data, tmp_path)
    del data
    alive = []

    def execute(data, configs, **where):
        gc.collect()
        alive.append((own() is not None, isinstance(data.x_train, np.memmap), len(configs)))
        yield from ()

    monkeypatch.setattr(sweep, "execute", execute)
    sweep._execute(running, None, print)
    assert alive == [(False, True, 2)]


@pytest.mark.slow
def test_runs_in_worker_processes_equal_runs_in_this_process_to_the_last_digit():
    # One BLAS thread per run in every mode: the summation order, so every digit, is the same.
    s = settings.make(
        "activation", epochs=1, seeds=(0,), subset=3000, batch_size=250, checkpoint_every=4,
        coordinates=20, resampled=100,
    )  # fmt: skip
    serial = sweep.compute(s.replace(workers=1))
    parallel = sweep.compute(s.replace(workers=2))
    assert serial["runs"] == parallel["runs"]
    drop = {"elapsed_s"}
    one = [{k: v for k, v in r.items() if k not in drop} for r in serial["records"]]
    other = [{k: v for k, v in r.items() if k not in drop} for r in parallel["records"]]
    # 2 runs x (4 checkpoints (0, 4, 8, 12) x 2 splits x (2 layers + pooled) + 1 in-flight row)
    assert len([r for r in one if r["mode"] in ("frozen", "in_flight_row_major")]) == 2 * 25
    assert {r["mode"] for r in one} >= {"resampled", "per_example", "batch_scan"}
    np.testing.assert_equal(one, other)  # NaN == NaN here
    for key, values in serial["noise_samples"].items():
        np.testing.assert_array_equal(values, parallel["noise_samples"][key])


def test_the_engine_imports_no_matplotlib_nor_scipy_stats_nor_interpolate():
    """Worker processes import the engine to train; matplotlib (about 29 MB each) is
    imported only where figures are drawn, scipy.stats (0.2 s and ~20 MB a process) not
    at all (the engine's quantiles come from scipy.special), and scipy.interpolate (with
    scipy.optimize, 0.2-0.3 s and ~25 MB) only when a reading is calibrated: a driver
    that hands its runs to workers starts sooner."""
    heavy = ("matplotlib", "scipy.stats", "scipy.interpolate", "scipy.optimize")
    code = (
        "import sys, sgnoise.sweep, sgnoise.studies, sgnoise.training; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_pngs_are_drawn_by_the_workers_only_when_they_made_the_runs():
    """A warm local pool draws; a new one (one run, a resume with nothing left, dask) not."""
    local = settings.make("activation", workers=2)
    with sweep._pool_for(local, 2) as pool:
        assert isinstance(pool, Pool) and pool.n == 2
    for s, n_runs in ((local, 1), (local, 0), (settings.make("activation", workers=1), 4),
                      (settings.make("activation", workers=2, backend="dask"), 4)):  # fmt: skip
        with sweep._pool_for(s, n_runs) as pool:
            assert pool is None


def test_a_run_trains_the_network_its_init_and_loss_settings_name():
    s = settings.make(
        "activation", epochs=1, seeds=(0,), subset=2000, batch_size=125, checkpoint_every=-1,
        coordinates=0, activations=("relu",), workers=1, in_flight=False,
    )  # fmt: skip
    data = datasets.prepare("mnist10k", None, 2000, 125)
    for init, loss in (("paper", "cross_entropy"), ("he", "mse"), ("lecun", "mse")):
        out = sweep.compute(s.replace(init=init, loss=loss), data)
        start = next(r for r in out["records"] if r["iteration"] == 0 and r["split"] == "train")
        model = MLP((784, 100, 10), "relu", init=init, loss=loss, seed=0)
        assert start["loss"] == pytest.approx(model.loss(data.x_train, data.y_train), rel=1e-5)


def test_memory_check_adds_the_largest_runs_that_train_at_once():
    configs = [
        RunConfig(activation=a, optimizer="sgd", lr=0.1, batch_size=500, epochs=1, seed=0,
                  hidden=(w,))
        for a, w in (("relu", 32), ("relu", 2048), ("sigmoid", 2048))
    ]  # fmt: skip
    one = training.memory_estimate(1_626_112, 784 + 2048 + 10, 8000, 500)
    workspace = 4 * (784 + 2048 + 10) * 500 * training.WORKSPACES
    assert one == 4 * 1_626_112 * (6 + 3 * 16) + workspace + training.RUN_OVERHEAD
    image = (28, 28, 1)
    sweep.check_memory(configs, 8000, image, workers=2, limit=2 * one)
    with pytest.raises(sweep.TooLarge, match=r"784-2048-10, 0.5 GiB.* than the 1.1 GiB"):
        sweep.check_memory(configs, 8000, image, workers=2, limit=2 * one - 1)
    sweep.check_memory(configs, 8000, image, workers=1, limit=one)


def test_memory_check_counts_a_conv_nets_own_parameters_and_buffers_without_building_it():
    # it counted the MLP 784-hidden-10 for --model cnn (and the settings check drew the
    # weights first: --channels 1000000 ended in numpy's MemoryError traceback)
    config = RunConfig(activation="relu", optimizer="sgd", lr=0.1, batch_size=500, epochs=1,
                       seed=0, hidden=(120,), model="cnn", channels=(6, 100_000))  # fmt: skip
    params, activations = footprint("cnn", (28, 28, 1), 10, hidden=(120,), channels=(6, 100_000))
    assert params == 25 * 6 + 25 * 6 * 100_000 + 16 * 100_000 * 120 + 120 * 10
    need = training.memory_estimate(params, activations, 8000, 500)
    assert need > 4 * activations * 500 * training.WORKSPACES > 10 * 2**30  # the buffers: > 10 GiB
    with pytest.raises(sweep.TooLarge, match=r"conv net of --channels 6 100000, --kernel 5, dense"):
        sweep.check_memory([config], 8000, (28, 28, 1), workers=1, limit=need - 1)
    small = make_model("cnn", (28, 28, 1), 10, "relu", hidden=(120,))
    assert footprint("cnn", (28, 28, 1), 10, hidden=(120,)) == (
        sum(p.size for p in small.params),
        small.activations_per_example,
    )


def test_the_summary_says_which_networks_did_not_train(capsys):
    def row(activation, acc, seed=0):
        return {
            **dict(activation=activation, hidden="120", lr=0.1, batch_size=500, seed=seed),
            **dict(mode="frozen", split="train", layer="all", epoch=10.0, status="ok"),
            **dict(alpha=1.3, alpha_surrogate=1.35, alpha_std=1.9, alpha_std_surrogate=2.0),
            **dict(loss=2.3, train_acc=acc),
        }

    # a seed at chance among seeds that trained: a mean over seeds (0.34) would hide it
    sigmoid = [row("sigmoid", 0.11, 0), row("sigmoid", 0.45, 1), row("sigmoid", 0.47, 2)]
    sweep._print_summary({"runs": [], "records": [row("relu", 0.95), *sigmoid]})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["relu", "sigmoid", "did"]
    assert "1 of 3 seed(s), train accuracy 0.110 (seed 0)" in lines[2]


def test_the_summary_tells_a_blown_up_or_diverged_network_from_an_untrained_one(capsys):
    # at --lr 1000 both said "did not train (try more epochs, a larger --lr ...)"
    def row(activation, epoch, loss, diverged=False):
        return {
            **dict(activation=activation, hidden="120", lr=1000.0, batch_size=50, seed=0),
            **dict(mode="frozen", split="train", layer="all", epoch=epoch, status="ok"),
            **dict(alpha=1.3, alpha_surrogate=1.35, alpha_std=1.9, alpha_std_surrogate=2.0),
            **dict(loss=loss, train_acc=0.09, diverged=diverged),
        }

    rows = [row("relu", 0.0, 2.44, diverged=True)]
    rows += [row("sigmoid", 0.0, 2.5), row("sigmoid", 1.0, 19857.8), row("sigmoid", 2.0, 16133.1)]
    sweep._print_summary({"runs": [], "records": rows})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["relu", "sigmoid", "did"]
    assert "their loss rose from 2.5 to 1.61e+04: try a smaller --lr" in lines[2]
    assert "larger --lr" not in lines[2]
    # a network whose ReLUs all died (--lr 3): its pooled row's reason, not an in-flight row's,
    # and no "try a larger --lr"
    dead = [row("relu", 0.0, 2.44), row("relu", 1.0, 2.3026), row("relu", 2.0, 2.3026)]
    in_flight = {**dead[1], "mode": "in_flight_row_major", "layer": "output"}
    for r, why in ((in_flight, "exact zeros"), (dead[1], "all constant"), (dead[2], "same")):
        r.update(status="degenerate", reason=why, alpha=float("nan"))
    sweep._print_summary({"runs": [], "records": [dead[0], in_flight, *dead[1:]]})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "degenerate noise: relu lr=1000 b=50 seed=0 from epoch 1 (train noise): α not "
        "estimated: all constant"
    )
    assert lines[2].endswith("(chance 0.1); no noise left to measure (degenerate noise, above): "
                             "try a smaller --lr")  # fmt: skip
    # a conv net's line names its convolutions (it said "net 120", as the MLP 784-120-10's)
    sweep._print_summary({"config": {"model": "cnn", "channels": [6, 16]}, "records": rows,
                          "runs": []})  # fmt: skip
    assert capsys.readouterr().out.startswith("relu     net conv 6-16 + 120 ")


def test_the_summary_names_the_network_of_a_diverged_or_failed_run_in_the_size_study(capsys):
    # test_size_alpha.py --loss mse --lr 50 printed "diverged: sigmoid lr=50 b=100 seed=1" four
    # times, one per network, without saying which
    def run(hidden, **how):
        return {**dict(activation="sigmoid", hidden=hidden, lr=50.0, batch_size=100, seed=1),
                **dict(diverged=False, diverged_iteration=None, reason="why"), **how}  # fmt: skip

    runs = [run("16", diverged=True, diverged_iteration=7), run("128-128", failed=True,
            traceback="Traceback ...")]  # fmt: skip
    sweep._print_summary({"runs": runs, "records": []})
    out, err = capsys.readouterr()
    assert out == "diverged: sigmoid net 16 lr=50 b=100 seed=1 at iteration 7 (why)\n"
    assert err.startswith("failed:   sigmoid net 128-128 lr=50 b=100 seed=1: why\n")
    sweep._print_summary({"runs": runs[:1], "records": []})  # one network: as before
    assert capsys.readouterr().out.startswith("diverged: sigmoid lr=50 ")


def test_the_summary_does_not_blame_the_learning_rate_for_a_network_dead_from_the_start(capsys):
    # test_size_alpha.py --depths 3 --depth-width 1: 784-1-1-1-10 ReLU has no noise at epoch 0
    # already; the summary said "try a smaller --lr"
    def row(epoch, status):
        return {
            **dict(activation="relu", hidden="1-1-1", lr=0.1, batch_size=100, seed=1),
            **dict(mode="frozen", split="train", layer="all", epoch=epoch, status=status),
            **dict(alpha=float("nan"), alpha_surrogate=float("nan"), alpha_std=float("nan")),
            **dict(alpha_std_surrogate=float("nan"), loss=2.303, train_acc=0.088, reason="dead"),
        }

    sweep._print_summary({"runs": [], "records": [row(0.0, "degenerate"), row(1.0, "degenerate")]})
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.endswith("no noise to measure from the initialisation on (degenerate noise, "
                         "above): try wider hidden layers or another --init")  # fmt: skip
    sweep._print_summary({"runs": [], "records": [row(0.0, "ok"), row(1.0, "degenerate")]})
    assert capsys.readouterr().out.splitlines()[-1].endswith("try a smaller --lr")
