"""Print the figures docs/findings.md quotes, from a run folder's results.

python bench/findings.py MNIST_activation/reference [--epoch E] [--seeds S ...]
python bench/findings.py MNIST_activation/reference_cnn      (the conv net's, layer by layer)
python bench/findings.py RUN_SEED0 RUN_SEEDS12   (one configuration run in parts: seeds pooled)
Means over seeds at the last checkpoint (or epoch E), train noise, all parameters pooled
unless a layer is named in the row (MLP: layer1, layer2; conv net: conv1, conv2, dense1,
output). A column the folder's results do not carry (an older run's) prints as nan. A folder
whose runs differ in their hidden layers (the size study: MNIST_size/reference,
FashionMNIST_size/reference, or any run of test_size_alpha.py) starts with one table per
activation, a row per network: the numbers findings.md quotes for width and depth.
"""

import _root  # noqa: F401, I001  (the project root on sys.path: runs without PYTHONPATH)

import argparse
import math
import sys
from typing import NoReturn

import numpy as np
from scipy import stats

from sgnoise.results import load_results

K_SUFFIXES = (("1/4", "_k025"), ("1/2", "_k05"), ("1", ""), ("2", "_k2"), ("4", "_k4"))


def mean(rows, key):
    values = [r[key] for r in rows if isinstance(r.get(key), float) and math.isfinite(r[key])]
    return float(np.mean(values)) if values else float("nan")


def bounded(rows, key="alpha_cal"):
    """Mean over seeds with its interval, "<=" when a seed's reading lay below the curve (its
    interval open below: a bound) and ">=G" when one lay at or above the Gaussian's (open
    above)."""

    def is_open(end):
        return any(
            math.isfinite(r.get(key) or math.nan)
            and not math.isfinite(
                r.get(key + end) if isinstance(r.get(key + end), float) else math.nan
            )
            for r in rows
        )

    lo, hi = mean(rows, key + "_lo"), mean(rows, key + "_hi")
    text = f"{mean(rows, key):.2f} [{lo:.2f}, {hi:.2f}]"
    return ("<=" if is_open("_lo") else "") + text + (" >=G" if is_open("_hi") else "")


def activity(runs, act, lr, b):
    """Spearman correlation of each coordinate's own α with its non-zero share, and the share
    of coordinates below the Gaussian columns' 5% quantile that are sparse, over seeds."""
    rhos, sparse_among_heavy = [], []
    for run in runs:
        c = run.get("coordinates")
        if not c or (run["activation"], run["lr"], run["batch_size"]) != (act, lr, b):
            continue
        share, alpha = np.array(c["nonzero_share"], float), np.array(c["alpha"], float)
        ok = np.isfinite(alpha) & (share > 0)
        rhos.append(stats.spearmanr(share[ok], alpha[ok]).statistic)
        heavy = ok & (alpha < (c.get("gaussian") or {"5": np.nan})["5"])
        if heavy.any():
            sparse_among_heavy.append(np.mean(share[heavy] < c["sparse"]))
    if not rhos:
        return ""
    return (
        f"Spearman(α, non-zero share) {np.mean(rhos):+.2f}; of the coordinates below the "
        f"Gaussian columns' 5%, {np.mean(sparse_among_heavy):.0%} are sparse"
    )


def _net_order(hidden: str) -> tuple[int, int]:
    """Networks by depth, then width: the width arm (one hidden layer) first."""
    widths = [int(w) for w in str(hidden).split("-")]
    return len(widths), widths[0]


def inputs(config: dict) -> int:
    """The networks' number of inputs (784 for MNIST's 28 x 28 images, 3,072 for CIFAR-10)."""
    sizes = config.get("sizes") or (config.get("networks") or [[784]])[0]
    return sizes[0]


def size_table(records: list[dict], epoch: float, model: str, n_in: int) -> None:
    """One row per network (hidden layers) and activation, means over seeds at ``epoch``: pooled
    and standardised α of the frozen noise with their Gaussian surrogates, the calibrated α of
    resampled noise (all coordinates, then dense and sparse ones), the share of sparse
    coordinates, the per-example infinite-variance share, training loss and accuracy."""
    nets = sorted({r["hidden"] for r in records}, key=_net_order)
    print(
        "net: pooled (surrogate) | standardised (surrogate) | resampled calibrated α [interval] |"
        " sparse share | dense, sparse calibrated α | per-example infinite-variance share"
        " [interval] | train loss, accuracy"
    )
    for act in dict.fromkeys(r["activation"] for r in records):
        print(f"== size study, {act}, epoch {epoch:g}")
        for hidden in nets:
            where = {"activation": act, "hidden": hidden, "epoch": epoch, "layer": "all"}
            rows = [r for r in records if r["split"] == "train"
                    and all(r[k] == v for k, v in where.items())]  # fmt: skip
            f, res, p = ([r for r in rows if r["mode"] == m]
                         for m in ("frozen", "resampled", "per_example"))  # fmt: skip
            if not f:
                continue
            net = f"{n_in}-{hidden}-10" if model == "mlp" else f"convolutions-{hidden}-10"
            print(
                f"  {net} ({len(f)} seeds): {mean(f, 'alpha'):.2f} "
                f"({mean(f, 'alpha_surrogate'):.2f}) | {mean(f, 'alpha_std'):.2f} "
                f"({mean(f, 'alpha_std_surrogate'):.2f}) | {bounded(res)} | "
                f"{mean(res, 'sparse_share'):.3f} | {bounded(res, 'alpha_cal_dense')}, "
                f"{bounded(res, 'alpha_cal_sparse')} | {mean(p, 'frac_inf_var'):.3f} "
                f"[{mean(p, 'frac_inf_var_lo'):.3f}, {mean(p, 'frac_inf_var_hi'):.3f}] | "
                f"{mean(f, 'loss'):.3f}, {mean(f, 'train_acc'):.3f}"
            )


def _refuse(message: str, fix: str = "name runs of one configuration only") -> NoReturn:
    """One line naming the problem and the fix (if the message does not), exit 2 (bad input)."""
    print(f"findings.py: {message}{f': {fix}' if fix else ''}", file=sys.stderr)
    sys.exit(2)


def pooled_seeds(folders: list[str]) -> dict:
    """The results of ``folders`` as one: runs of one configuration but their seeds (a study
    run as ``--seeds 0``, then ``--seeds 1 2``), records and runs concatenated."""
    try:
        results = [load_results(folder) for folder in folders]
    except (OSError, ValueError) as err:  # not a run folder, unfinished, damaged: it says which
        _refuse(str(err), "")
    first = results[0]
    same = {k: v for k, v in first["config"].items() if k not in ("seeds", "wall_time_s")}
    seeds: list[int] = []
    for folder, r in zip(folders, results, strict=True):
        other = {k: v for k, v in r["config"].items() if k not in ("seeds", "wall_time_s")}
        if other != same:
            differ = sorted(k for k in same.keys() | other.keys() if same.get(k) != other.get(k))
            _refuse(f"{folder}: its configuration differs from {folders[0]}'s in {differ}")
        if set(r["config"]["seeds"]) & set(seeds):
            _refuse(f"{folder}: a seed of {r['config']['seeds']} is in an earlier folder")
        seeds += r["config"]["seeds"]
    commits = {
        folder: (r["provenance"].get("git_commit") or "?")[:7]
        + (" (dirty)" if r["provenance"].get("git_dirty") else "")
        for folder, r in zip(folders, results, strict=True)
    }
    if len(set(commits.values())) > 1:  # the same settings, perhaps not the same estimators
        made = ", ".join(f"{folder} at {commit}" for folder, commit in commits.items())
        print(f"warning: these runs were made from different code ({made}): check that "
              "`git diff` between them leaves the estimators alone", file=sys.stderr)  # fmt: skip
    return {
        **first,
        "config": {**first["config"], "seeds": seeds},
        "records": [x for r in results for x in r["records"]],
        "runs": [x for r in results for x in r["runs"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("folder", nargs="+", help="a run folder, or several runs of one "
                        "configuration with different seeds (their seeds are pooled)")  # fmt: skip
    parser.add_argument("--epoch", type=float, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", help="only these seeds (default: all)")
    args = parser.parse_args()
    results = pooled_seeds(args.folder)
    records = results["records"]
    if args.seeds:
        records = [r for r in records if r["seed"] in args.seeds]
        results["runs"] = [r for r in results["runs"] if r["seed"] in args.seeds]
        if not records:
            _refuse(f"--seeds {args.seeds}: no such seed in {args.folder}",
                    f"choose among the recorded seeds {results['config']['seeds']}")  # fmt: skip
    epochs = sorted({r["epoch"] for r in records})
    epoch = args.epoch if args.epoch is not None else epochs[-1]
    # the recorded checkpoint as printed (6 digits: 1/7 of an epoch is 0.142857), else every
    # figure would print as nan
    near = [e for e in epochs if math.isclose(e, epoch, rel_tol=1e-5)]
    if not near:
        _refuse(f"--epoch {epoch:g}: not a checkpoint of {' + '.join(args.folder)}",
                f"choose among {', '.join(f'{e:g}' for e in epochs)}")  # fmt: skip
    epoch = near[0]
    config = results["config"]
    print(
        f"{' + '.join(args.folder)}: {config['dataset']} "
        f"({config.get('n_train')} / {config.get('n_test')}), "
        f"loss {config.get('loss', 'cross_entropy')}, init {config.get('init', 'paper')}"
    )
    if len({r.get("hidden") for r in records}) > 1:
        size_table(records, epoch, config.get("model", "mlp"), inputs(config))
    groups = list(dict.fromkeys((r["activation"], r.get("hidden"), r["lr"], r["batch_size"])
                                for r in records))  # fmt: skip
    for act, hidden, lr, b in sorted(groups, key=lambda g: (g[0], g[2], g[3])):

        def pick(mode, layer="all", split="train", act=act, hidden=hidden, lr=lr, b=b, **where):
            return [r for r in records if r["mode"] == mode and r["layer"] == layer
                    and r["split"] == split and r["activation"] == act and r["lr"] == lr
                    and r["batch_size"] == b and r["epoch"] == epoch
                    and r.get("hidden") == hidden
                    and all(r.get(k) == v for k, v in where.items())]  # fmt: skip

        f, res = pick("frozen"), pick("resampled")
        net = f" net {config['net']}" if config.get("model") == "cnn" else ""
        net = f" net {inputs(config)}-{hidden}-10" if hidden and not net else net
        print(f"== {act}{net} lr {lr:g} b {b} epoch {epoch:g} ({len(f)} seeds)")
        print(
            f"  frozen: pooled {mean(f, 'alpha'):.3f} (surr {mean(f, 'alpha_surrogate'):.3f}), "
            f"std {mean(f, 'alpha_std'):.3f} (surr {mean(f, 'alpha_std_surrogate'):.3f}), "
            f"cal {mean(f, 'alpha_cal'):.3f} [{mean(f, 'alpha_cal_lo'):.3f}, "
            f"{mean(f, 'alpha_cal_hi'):.3f}], loss {mean(f, 'loss'):.3f}, train accuracy "
            f"{mean(f, 'train_acc'):.3f}"
        )
        group = [r for r in records if r["mode"] == "frozen"  # every checkpoint has its layers
                 and (r["activation"], r.get("hidden")) == (act, hidden)]  # fmt: skip
        layers = [layer for layer in dict.fromkeys(r["layer"] for r in group) if layer != "all"]
        for layer in layers:
            fl = pick("frozen", layer)
            print(
                f"  frozen {layer}: pooled {mean(fl, 'alpha'):.3f} (surr "
                f"{mean(fl, 'alpha_surrogate'):.3f}), std {mean(fl, 'alpha_std'):.3f} (surr "
                f"{mean(fl, 'alpha_std_surrogate'):.3f}), cal {bounded(fl)}"
            )
        if res:
            q = " ".join(
                f"{mean(res, f'col_alpha_{p}'):.2f}" for p in ("5", "25", "50", "75", "95")
            )
            g = " ".join(f"{mean(res, f'col_alpha_gauss_{p}'):.2f}" for p in ("5", "50", "95"))
            print(
                f"  resampled (M rows): std {mean(res, 'alpha_std'):.3f}, cal "
                f"{bounded(res)}; per-coordinate α 5-95%: {q}; "
                f"Gaussian 5/50/95: {g}"
            )
            for layer in [*layers, "all"]:
                r = pick("resampled", layer)
                kinds = "; ".join(
                    f"{kind}: cal {bounded(r, f'alpha_cal_{kind}')}, per-coordinate 5/50/95 "
                    + " ".join(f"{mean(r, f'col_alpha_{kind}_{q}'):.2f}" for q in ("5", "50", "95"))
                    for kind in ("dense", "sparse")
                )
                print(
                    f"  resampled {layer}: cal {bounded(r)}, sparse share "
                    f"{mean(r, 'sparse_share'):.3f}; {kinds}; "
                    f"all: per-coordinate 5% {mean(r, 'col_alpha_5'):.2f}"
                )
            print(f"  {activity(results['runs'], act, lr, b)}")
        for layer in [*layers, "all"]:  # layer1, layer2 (MLP); conv1, conv2, dense1, output
            p = pick("per_example", layer)
            if p:
                t = " ".join(f"{mean(p, f'tail_{q}'):.2f}" for q in ("5", "25", "50", "75", "95"))
                print(
                    f"  per-example {layer}: tail exponent 5-95% {t}; infinite variance "
                    f"{mean(p, 'frac_inf_var'):.3f} [{mean(p, 'frac_inf_var_lo'):.3f}, "
                    f"{mean(p, 'frac_inf_var_hi'):.3f}]"
                )
                by_k = ", ".join(
                    f"{f}: {mean(p, 'frac_inf_var' + k):.3f} (median {mean(p, 'tail_50' + k):.2f})"
                    for f, k in K_SUFFIXES
                )
                calls = sorted({str(r.get("variance_call")) for r in p})
                held = f"{mean(p, 'k_holds_lo'):g}-{mean(p, 'k_holds_hi'):g}"
                if all(isinstance(r.get("k_holds_lo"), float) for r in p):
                    held = (
                        f"{min(r['k_holds_lo'] for r in p):g}-{max(r['k_holds_hi'] for r in p):g}"
                    )
                print(f"    infinite-variance share at k = f sqrt(m), f = {by_k}")
                print(
                    f"    call {'/'.join(calls)} holding over f = {held} (widest over seeds); "
                    f"threshold-free: infinite {mean(p, 'frac_inf_var_csn'):.3f} "
                    f"[{mean(p, 'frac_inf_var_csn_lo'):.3f}, {mean(p, 'frac_inf_var_csn_hi'):.3f}]"
                    f", plausible power law {mean(p, 'frac_power_law'):.2f}, lognormal favoured "
                    f"{mean(p, 'frac_lognormal'):.2f}, median exponent "
                    f"{mean(p, 'tail_50_csn'):.2f} at k = {mean(p, 'k_csn_50'):.2f} sqrt(m); "
                    f"sparse share {mean(p, 'sparse_share'):.3f}"
                )
        for layer in ["all", *layers]:
            scan = pick("batch_scan", layer)
            if scan:
                bs = sorted({r["measured_batch"] for r in scan})
                line = ", ".join(
                    f"B={B:g}: {bounded([r for r in scan if r['measured_batch'] == B])}" for B in bs
                )
                where = "" if layer == "all" else f" {layer}"
                print(f"  batch scan{where} (calibrated α): {line}")


if __name__ == "__main__":
    main()
