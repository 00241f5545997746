"""Plots from synthetic results, including NaN and diverged runs (sgnoise.plots)."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

from sgnoise import plots, results
from sgnoise.pool import Pool
from sgnoise.results import select

ACTS = ("relu", "sigmoid")


def _results(study, *, seeds=(0, 1), lrs=(0.01, 0.05, 0.1, 50.0), epochs=(0.0, 1.0, 2.0, 3.0)):
    """A synthetic study: alpha falls with epoch and lr; the largest lr diverges after epoch 1;
    one sigmoid checkpoint has an undefined (NaN) alpha, as a dead network gives."""
    rng = np.random.default_rng(0)
    lrs = lrs if study == "lr" else (0.1,)
    records, runs = [], []
    for act in ACTS:
        for lr in lrs:
            for seed in seeds:
                diverged = lr > 1
                run = {"activation": act, "optimizer": "sgd", "lr": lr, "batch_size": 100,
                       "seed": seed, "diverged": diverged,
                       "diverged_iteration": 150 if diverged else None,
                       "diverged_epoch": 1.5 if diverged else None, "reason": ""}  # fmt: skip
                if seed == seeds[0] and lr == max(v for v in lrs if v <= 1):
                    run["noise_sample"] = {"key": f"{act}_{lr:g}", "layer": "layer2",
                                           "split": "train", "epoch": epochs[-1]}  # fmt: skip
                runs.append(run)
                for epoch in epochs:
                    if diverged and epoch > 1:
                        break
                    for split in ("train", "test"):
                        for layer in ("layer1", "layer2", "all"):
                            a = 1.8 - 0.05 * epoch - lr + 0.02 * rng.standard_normal()
                            if act == "sigmoid" and epoch == 2 and layer == "all":
                                a = float("nan")
                            records.append({
                                **{k: run[k] for k in plots.RUN_KEYS}, "study": study,
                                "mode": "frozen", "epoch": epoch, "iteration": int(100 * epoch),
                                "split": split, "layer": layer, "alpha": a, "alpha_lo": a - 0.05,
                                "alpha_hi": a + 0.05, "alpha_surrogate": a + 0.1,
                                "alpha_std": a + 0.15, "alpha_std_lo": a + 0.1,
                                "alpha_std_hi": a + 0.2, "alpha_std_surrogate": 2.0,
                                "loss": 2.3 / (1 + epoch), "train_acc": 0.2 * epoch,
                                "test_acc": 0.19 * epoch,
                            })  # fmt: skip
    config = {"study": study, "dataset": "mnist10k", "optimizer": "sgd", "batch_size": 100,
              "sizes": [784, 100, 10], "lr": 0.1 if study == "activation" else None}  # fmt: skip
    return {"config": config, "provenance": {}, "records": records, "runs": runs}


def _assert_png(path, min_size=(600, 400)):
    """A real, non-blank image of at least ``min_size`` pixels."""
    image = matplotlib.image.imread(path)
    assert image.shape[1] >= min_size[0] and image.shape[0] >= min_size[1]
    ink = (image[..., :3] < 0.9).any(axis=-1).mean()
    assert ink > 0.02, f"{path} is (nearly) blank"


@pytest.fixture(autouse=True)
def _no_warnings_and_no_leaked_figures():
    """NaN must be handled, not warned about (e.g. 'Mean of empty slice'); figures closed."""
    before = plt.get_fignums()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    assert plt.get_fignums() == before


@pytest.mark.parametrize(
    ("plot", "study", "seeds"),
    [
        (plots.plot_alpha_vs_epoch, "activation", (0, 1)),  # band: min-max over seeds
        (plots.plot_alpha_vs_epoch, "activation", (0,)),  # band: the estimator's CI
        (plots.plot_alpha_by_layer, "activation", (0,)),
        (plots.plot_training, "activation", (0, 1)),
        (plots.plot_alpha_vs_sweep, "lr", (0, 1)),
        (plots.plot_alpha_vs_sweep, "lr", (0,)),
        (plots.plot_training, "lr", (0,)),
    ],
)
def test_each_plot_writes_a_readable_png_from_records_with_nan_and_divergence(
    tmp_path, plot, study, seeds
):
    path = plot(_results(study, seeds=seeds), tmp_path / "out.png")
    assert path == tmp_path / "out.png"
    _assert_png(path, min_size=(1500, 600))  # >= 10 x 4 inches at 150 dpi


def test_mean_and_band_skip_nan_and_stay_nan_where_no_seed_has_a_value():
    table = np.array([[1.0, np.nan, np.nan], [3.0, 5.0, np.nan]])
    mean, lo, hi = plots._finite_stats(table)
    np.testing.assert_array_equal(mean[:2], [2.0, 5.0])
    np.testing.assert_array_equal(lo[:2], [1.0, 5.0])
    np.testing.assert_array_equal(hi[:2], [3.0, 5.0])
    assert np.isnan(mean[2]) and np.isnan(lo[2]) and np.isnan(hi[2])


def test_diverged_runs_are_marked_at_their_learning_rate_and_epoch():
    doc = _results("lr")
    fig, ax = plt.subplots()
    assert plots._mark_failures(ax, doc, "lr", ACTS) == {"diverged"}
    assert sorted({float(line.get_xdata()[0]) for line in ax.lines}) == [50.0]
    ax.clear()
    assert plots._mark_failures(ax, doc, "epoch", ACTS) == {"diverged"}
    assert {float(line.get_xdata()[0]) for line in ax.lines} == {1.5}
    ax.clear()
    assert not plots._mark_failures(ax, _results("lr", lrs=(0.01,)), "lr", ACTS)
    plt.close(fig)


def test_degenerate_noise_is_marked_only_in_the_panels_of_its_split_and_layer():
    doc = _results("activation", seeds=(0,))
    for r in doc["records"]:
        bad = r["epoch"] == 2 and r["split"] == "test" and r["activation"] == "relu"
        r["status"] = "degenerate" if bad else "ok"
    fig, ax = plt.subplots()
    assert plots._mark_failures(ax, doc, "epoch", ACTS, split="test", layer="all") == {"degenerate"}
    assert {float(line.get_xdata()[0]) for line in ax.lines} == {2.0}
    ax.clear()
    assert not plots._mark_failures(ax, doc, "epoch", ACTS, split="train", layer="all")
    plt.close(fig)


def test_a_swept_x_shows_the_last_checkpoint_on_its_own_axis_and_the_epoch_every_one():
    doc = _results("lr")
    rows = select(doc["records"], mode="frozen")
    shown, when = plots._shown(rows, "batch_size")
    assert {r["epoch"] for r in shown} == {3.0} and when == " at epoch 3"
    assert plots._shown(rows, "epoch") == (rows, "")
    fig, (swept, epochs) = plt.subplots(1, 2)
    plots._x_axis(swept, {**doc, "runs": [{"batch_size": b} for b in (1000, 100, 250)]},
                  "batch_size")  # fmt: skip
    assert swept.get_xscale() == "log" and list(swept.get_xticks()) == [100, 250, 1000]
    assert swept.get_xlabel() == "training batch size b"
    plots._x_axis(epochs, doc, "epoch")
    assert epochs.get_xscale() == "linear" and epochs.get_xlabel() == "epoch"
    plt.close(fig)


def test_nan_alpha_leaves_a_gap_instead_of_a_number():
    doc = _results("activation", seeds=(0,))
    rows = select(doc["records"], split="train", layer="all", activation="sigmoid")
    fig, ax = plt.subplots()
    plots._curve(ax, rows, "epoch", "alpha", "k")
    y = ax.lines[0].get_ydata()
    assert np.isnan(y[2]) and np.isfinite(np.delete(y, 2)).all()
    plt.close(fig)


def test_histogram_of_heavy_tailed_noise_with_a_fitted_stable_law(tmp_path):
    rng = np.random.default_rng(1)
    noise = rng.standard_t(1.5, 20_000) * 1e-3
    noise[:5] = np.nan
    path = plots.plot_noise_histograms(
        {"relu, layer2": noise, "sigmoid, layer2": rng.standard_normal(5000)},
        tmp_path / "hist.png",
        alphas={"relu, layer2": 1.5},
    )
    _assert_png(path)


def _saved_lr_folder(parent: Path) -> Path:
    """The synthetic lr study (one seed) saved as a run folder, with its noise samples."""
    doc = _results("lr", seeds=(0,))
    folder = results.new_run_dir(parent, "lr")
    results.save_results(folder, doc["config"], doc["records"], doc["runs"])
    keys = {r["noise_sample"]["key"] for r in doc["runs"] if "noise_sample" in r}
    results.save_noise_samples(
        folder, {k: np.random.default_rng(2).normal(size=3000) for k in keys}
    )
    return folder


@pytest.fixture(scope="module")
def replotted(tmp_path_factory) -> tuple[Path, list[str]]:
    """A saved lr study folder redrawn by ``plots.replot`` (one figure after the other, no
    warning allowed, every figure closed), and the paths it printed, in order."""
    folder = _saved_lr_folder(tmp_path_factory.mktemp("replotted"))
    before = plt.get_fignums()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()) as out:
        warnings.simplefilter("error")
        plots.replot([str(folder)])
    assert plt.get_fignums() == before
    return folder, out.getvalue().split()


@pytest.mark.slow
def test_plot_run_redraws_every_png_from_a_saved_run_folder(replotted):
    # the activation study's folder is redrawn end to end in tests/test_drivers.py
    folder, printed = replotted
    expected = {
        "alpha_vs_lr",
        "alpha_vs_epoch_by_lr",
        "alpha_vs_loss_by_lr",
        "training_vs_lr",
        "noise_histogram",
    }
    assert {p.split("/")[-1].removesuffix(".png") for p in printed} == expected
    for name in expected:
        _assert_png(folder / f"{name}.png")


@pytest.mark.slow
def test_figures_drawn_by_two_processes_are_the_same_files_in_the_same_order(replotted, tmp_path):
    """A sweep hands its PNGs to its idle workers (plots.draw with a pool): the same bytes as
    the replot's, drawn in this process."""
    serial, printed = replotted
    folder = _saved_lr_folder(tmp_path)
    with Pool(2) as pool:
        parallel = plots.lr_plots(results.load_results(folder), folder, pool=pool)
    assert [p.name for p in parallel] == [Path(p).name for p in printed] and len(parallel) >= 4
    for path in parallel:
        _assert_png(path)
        assert path.read_bytes() == (serial / path.name).read_bytes(), path.name


@pytest.mark.parametrize("state", [results.COMPLETE, results.INTERRUPTED])
def test_a_replot_clears_a_complete_folders_plots_not_drawn_message(tmp_path, monkeypatch, state):
    # after a full disk during the plots and a replot, status.json still said they were not drawn
    folder = _saved_lr_folder(tmp_path)
    message = "results saved; the plots could not be drawn (OSError: [Errno 28] No space left)"
    status = {"study": "lr", "settings": {}, "runs": [], "state": state, "message": message}
    results.write_status(folder, **status)
    monkeypatch.setattr(plots, "draw_study", lambda *args: [])
    plots.plot_run(folder)
    want = "" if state == results.COMPLETE else message  # an unfinished sweep keeps its why
    assert results.read_status(folder) == {**status, "message": want}


def test_replot_of_a_folder_without_results_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        plots.replot([str(tmp_path)])
    assert "results.json not found" in capsys.readouterr().err


def test_alpha_vs_activity_with_no_coordinate_read_says_so_without_a_warning(tmp_path):
    # a run diverged at --lr 1000: every coordinate's alpha NaN, a "Mean of empty slice"
    # RuntimeWarning on the terminal and "ρ = nan" in the title
    layers = ["conv1", "conv1", "output", "output"]
    coordinates = {"nonzero_share": [0.5, 0.2, 0.9, 0.1], "alpha": [np.nan] * 4,
                   "layer": layers, "sparse": 0.05, "epoch": 0.0}  # fmt: skip
    run = {"activation": "relu", "seed": 0, "lr": 1000.0, "coordinates": coordinates}
    doc = {"config": {"study": "activation"}, "runs": [run], "records": []}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.plot_alpha_vs_activity(doc, tmp_path / "activity.png")
    assert (tmp_path / "activity.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("share", "alpha", "title"),
    [
        ([1.0, 1.0, 1.0, 1.0], [1.9, 2.0, 2.1, 1.8], "every coordinate as active: no ρ"),
        ([0.5, 0.2, 0.9, 0.1], [np.nan] * 4, "too few α for a ρ"),
        ([0.5, 0.2, 0.9, 0.1], [1.5, 1.0, 1.9, 0.8], "Spearman ρ = 1.00"),
    ],
)
def test_alpha_vs_activity_titles_why_it_has_no_rho(tmp_path, monkeypatch, share, alpha, title):
    # sigmoid's coordinates are all non-zero on every example: a constant share has no rank
    # correlation (it read "too few α for a ρ" with thousands of α read)
    coordinates = {"nonzero_share": share, "alpha": alpha, "layer": ["conv1"] * 4,
                   "sparse": 0.05, "epoch": 20.0}  # fmt: skip
    run = {"activation": "sigmoid", "seed": 0, "lr": 0.1, "coordinates": coordinates}
    titles = []

    def save(fig, path):
        titles.extend(ax.get_title() for ax in fig.axes)
        plt.close(fig)
        return path

    monkeypatch.setattr(plots, "_save", save)
    doc = {"config": {"study": "activation"}, "runs": [run], "records": []}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.plot_alpha_vs_activity(doc, tmp_path / "activity.png")
    assert titles == [f"sigmoid, epoch 20: {title}"]


def _panel_texts(monkeypatch) -> list[str]:
    """The texts drawn inside the panels of every figure plots saves from now on (the
    figures are closed, not written)."""
    texts: list[str] = []

    def keep(fig, path):
        texts.extend(t.get_text() for ax in fig.axes for t in ax.texts)
        plt.close(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return texts


@pytest.mark.parametrize(("resampled", "noted"), [(100, True), (1000, False), (None, False)])
def test_the_coordinates_own_alpha_panel_says_it_needs_1000_resampled_minibatches(
    tmp_path, monkeypatch, resampled, noted
):
    # --resampled 100 left that panel blank without a word; older configs lack the key
    doc = _results("activation")
    if resampled is not None:
        doc["config"]["resampled"] = resampled
    texts = _panel_texts(monkeypatch)
    plots.plot_per_coordinate(doc, tmp_path / "per_coordinate.png")
    note = [t for t in texts if "needs M >= 1000" in t]
    assert note == ([f"no coordinate's own α: it needs M >= 1000 resampled\nminibatches "
                     f"(--resampled), got {resampled}"] if noted else [])  # fmt: skip


def test_a_png_that_cannot_be_written_leaves_the_earlier_one_whole(tmp_path, monkeypatch):
    # a full disk half-way through savefig left a truncated PNG under the plot's name
    path = tmp_path / "plot.png"
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    plots._save(fig, path)
    earlier = path.read_bytes()
    real = plt.Figure.savefig

    def half_then_full(fig, target, **kwargs):
        png = io.BytesIO()
        real(fig, png, **kwargs)
        if hasattr(target, "write"):
            target.write(png.getvalue()[:100])
        else:
            Path(target).write_bytes(png.getvalue()[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plt.Figure, "savefig", half_then_full)
    fig, ax = plt.subplots()
    ax.plot([1, 0])
    with pytest.raises(OSError, match="No space left"):
        plots._save(fig, path)
    assert path.read_bytes() == earlier and [p.name for p in tmp_path.iterdir()] == ["plot.png"]
    assert not plt.fignum_exists(fig.number)  # closed all the same


def test_a_bound_arrow_has_a_length_in_points_and_stays_inside_its_own_small_panel(tmp_path):
    """A calibrated reading outside its curve (a bound) gets an arrow: up from α = 2 for
    ``above_grid``, down for ``below_grid``. In a panel whose y range is a few hundredths
    (1.82-2.00) it must neither run out of the panel nor across its neighbours."""
    rows = [
        {"seed": seed, "epoch": epoch, "alpha_cal": a, "above_grid": a == 2.0,
         "below_grid": a < 1.83}
        for seed in (0, 1)
        for epoch, a in ((0.0, 1.95), (1.0, 2.0), (2.0, 1.9), (3.0, 1.82))
    ]  # fmt: skip
    fig, axes = plt.subplots(2, 1, figsize=(6, 5), layout="constrained")
    for ax in axes:
        plots._curve(ax, rows, "epoch", "alpha_cal", "tab:blue", band=False)
    fig.suptitle("a title above the panels")
    plots._save(fig, tmp_path / "bounds.png")  # saving makes the room the arrows need
    fig.draw_without_rendering()
    slack = 3 * fig.dpi / 72  # a few points
    for ax in axes:
        box = ax.get_window_extent()
        arrows = [t for t in ax.texts if t.arrow_patch is not None]
        assert len(arrows) == 2
        for arrow in arrows:
            end = arrow.arrow_patch.get_window_extent()
            assert box.y0 - slack <= end.y0 and end.y1 <= box.y1 + slack, (end, box)
            assert end.height >= 10 * fig.dpi / 72  # long enough to be seen
        tails = [arrow.xyann[1] for arrow in arrows]
        up, down = (ax.transData.transform((0, y))[1] for y in (2.0, 1.82))
        ups = [a for a, y in zip(arrows, tails, strict=True) if y == 2.0]
        assert ups[0].arrow_patch.get_window_extent().y1 > up  # points up from α = 2
        downs = [a for a, y in zip(arrows, tails, strict=True) if y == 1.82]
        assert downs[0].arrow_patch.get_window_extent().y0 < down  # and down from the floor


def test_a_curve_over_one_x_still_shows_its_band_and_its_surrogate():
    # test_size_alpha.py --widths 16 --depths 1 --depth-width 16 --seeds 1: the panels showed a
    # dot each, no 95% interval and no Gaussian surrogate, though the legend named both
    rows = [{"width": 16, "seed": 1, "alpha": 1.47, "alpha_lo": 1.40, "alpha_hi": 1.55,
             "alpha_surrogate": 1.52}]  # fmt: skip
    fig, ax = plt.subplots()
    plots._curve(ax, rows, "width", "alpha", "C0")
    plots._curve(ax, rows, "width", "alpha_surrogate", "C0", band=False, ls="--")
    plt.close(fig)
    (band,) = ax.collections
    (segment,) = band.get_segments() if hasattr(band, "get_segments") else [None]
    np.testing.assert_allclose(segment, [[16, 1.40], [16, 1.55]])
    assert band.get_linewidth()[0] > 0
    surrogate = ax.lines[1]
    assert surrogate.get_marker() not in (None, "None", "") and surrogate.get_ydata()[0] == 1.52


def test_the_calibrated_panel_per_layer_says_when_the_per_coordinate_measurement_is_off(
    tmp_path, monkeypatch
):
    # test_size_alpha.py --coordinates 0: alpha_by_layer_vs_width.png's third column was an
    # empty panel titled "calibrated α, M resampled minibatches", without a word
    doc = results.load_results(Path(__file__).resolve().parent.parent / "MNIST_size/reference")
    texts = _panel_texts(monkeypatch)
    plots.plot_alpha_by_layer_vs_sweep(plots._arm(doc, "width"), tmp_path / "a.png", x="width")
    assert not any("--coordinates 0" in t for t in texts)  # measured: no note
    doc["config"]["coordinates"] = 0
    doc["records"] = [r for r in doc["records"] if r["mode"] == "frozen"]
    plots.plot_alpha_by_layer_vs_sweep(plots._arm(doc, "width"), tmp_path / "a.png", x="width")
    note = "not measured: the per-coordinate\nmeasurement is off (--coordinates 0)"
    assert texts.count(note) == 2  # one per activation


def test_a_network_that_did_not_train_is_marked_against_a_swept_x_not_over_epochs():
    # MNIST_lr/reference at η = 0.001 (train accuracy 0.12 and 0.10 after 5 epochs) and the
    # sigmoid nets of 3-4 hidden layers in MNIST_size/reference plotted as any other point
    doc = _results("lr")
    for r in doc["records"]:
        if r["lr"] == 0.01 and r["epoch"] == 3.0 and r["seed"] == 0:
            r["train_acc"] = 0.1  # one seed of both activations at chance
    fig, ax = plt.subplots()
    assert plots._mark_failures(ax, doc, "lr", ACTS, split="train", layer="all") == {
        "diverged", "untrained"}  # fmt: skip
    untrained = [line for line in ax.lines if line.get_marker() == "v"]
    assert [float(line.get_xdata()[0]) for line in untrained] == [0.01, 0.01]
    left, right = (line.get_transform().transform((0.01, 1.0))[0] for line in untrained)
    assert right - left > 5  # side by side on the screen, not one on the other
    ax.clear()
    assert "untrained" not in plots._mark_failures(ax, doc, "epoch", ACTS)  # over training: no
    plt.close(fig)
