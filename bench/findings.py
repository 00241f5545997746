"""Print the figures docs/findings.md quotes, from a run folder's results.

python bench/findings.py MNIST_activation/reference [--epoch E]
Means over seeds at the last checkpoint (or epoch E), train noise, all parameters pooled
unless a layer is named in the row.
"""

import _root  # noqa: F401, I001  (the project root on sys.path: runs without PYTHONPATH)

import argparse
import math

import numpy as np

from sgnoise.results import load_results


def mean(rows, key):
    values = [r[key] for r in rows if isinstance(r.get(key), float) and math.isfinite(r[key])]
    return float(np.mean(values)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("folder")
    parser.add_argument("--epoch", type=float, default=None)
    args = parser.parse_args()
    records = load_results(args.folder)["records"]
    epoch = args.epoch if args.epoch is not None else max(r["epoch"] for r in records)
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
        net = f" net 784-{hidden}-10" if hidden else ""
        print(f"== {act}{net} lr {lr:g} b {b} epoch {epoch:g} ({len(f)} seeds)")
        print(
            f"  frozen: pooled {mean(f, 'alpha'):.3f} (surr {mean(f, 'alpha_surrogate'):.3f}), "
            f"std {mean(f, 'alpha_std'):.3f} (surr {mean(f, 'alpha_std_surrogate'):.3f}), "
            f"cal {mean(f, 'alpha_cal'):.3f} [{mean(f, 'alpha_cal_lo'):.3f}, "
            f"{mean(f, 'alpha_cal_hi'):.3f}], loss {mean(f, 'loss'):.3f}"
        )
        if res:
            q = " ".join(
                f"{mean(res, f'col_alpha_{p}'):.2f}" for p in ("5", "25", "50", "75", "95")
            )
            g = " ".join(f"{mean(res, f'col_alpha_gauss_{p}'):.2f}" for p in ("5", "50", "95"))
            print(
                f"  resampled (M rows): std {mean(res, 'alpha_std'):.3f}, cal "
                f"{mean(res, 'alpha_cal'):.3f} [{mean(res, 'alpha_cal_lo'):.3f}, "
                f"{mean(res, 'alpha_cal_hi'):.3f}]; per-coordinate α 5-95%: {q}; "
                f"Gaussian 5/50/95: {g}"
            )
        layers = sorted({r["layer"] for r in records if r["mode"] == "per_example"} - {"all"})
        for layer in [*layers, "all"]:  # layer1, layer2 (MLP); conv1, conv2, dense1, output
            p = pick("per_example", layer)
            if p:
                t = " ".join(f"{mean(p, f'tail_{q}'):.2f}" for q in ("5", "25", "50", "75", "95"))
                print(
                    f"  per-example {layer}: tail exponent 5-95% {t}; infinite variance "
                    f"{mean(p, 'frac_inf_var'):.3f} [{mean(p, 'frac_inf_var_lo'):.3f}, "
                    f"{mean(p, 'frac_inf_var_hi'):.3f}]"
                )
        scan = pick("batch_scan")
        if scan:
            bs = sorted({r["measured_batch"] for r in scan})
            line = ", ".join(
                f"B={B:g}: {mean([r for r in scan if r['measured_batch'] == B], 'alpha_cal'):.2f}"
                for B in bs
            )
            print(f"  batch scan (calibrated α): {line}")


if __name__ == "__main__":
    main()
