"""Wall time, peak memory and each run's cost of the size study at its defaults on mnist10k.

The study is what ``python test_size_alpha.py`` does with the driver's shipped constants:
784-w-10 networks for w = 32, 128, 512, 2,048 and 1-4 hidden layers of 128, ReLU and
sigmoid, two seeds, five epochs of mnist10k's 8,000 images, WORKERS processes. Prints
lines ``name value target PASS|FAIL``:

- ``size_study_wall_s``: its wall time (target <= 600 s: the committed reference is made by
  it, in at most 10 minutes on 2 cores);
- ``size_study_peak_pss_mib``: peak of the summed proportional set size of the driver and
  its workers (see ``bench_study.py``; target <= 1024 MiB);
- ``size_epoch_one_core_s_<net>``: the best of three training epochs of that network on
  mnist10k in a one-core process, two such processes at once (as the study's two workers
  train), measured after the study;
- ``size_run_over_epoch_one_core_<net>``: a run's own time (its last record's
  ``elapsed_s``, mean over activations and seeds) in those epochs (information: five
  epochs of training, six checkpoints of two noise passes, three with the per-coordinate
  measurement).

The machine is shared: the figures hold for the load at the time (the 1-minute load
average is printed first).
Run: python bench/bench_size.py [--keep DIR] [-- more flags for the driver]   (a few minutes on
two idle cores; ``--keep DIR`` keeps the run folder as DIR/MNIST_size/bench)
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import defaultdict
from pathlib import Path

from bench_study import line, one_core_epoch, run_driver

from sgnoise.results import load_results

WALL_TARGET_S, MEMORY_TARGET_MIB = 600.0, 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keep", default="", help="keep the run folder in DIR/MNIST_size/bench")
    parser.add_argument(
        "driver_args", nargs=argparse.REMAINDER, help="after --: more flags for the driver"
    )
    args = parser.parse_args()
    extra = [a for a in args.driver_args if a != "--"]
    print(
        f"# 1-minute load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.abspath(args.keep) if args.keep else tmp
        wall, pss, _ = run_driver("test_size_alpha.py", extra, out)
        doc = load_results(Path(out) / "MNIST_size" / "bench")
    line("size_study_wall_s", wall, f"<={WALL_TARGET_S:g}", wall <= WALL_TARGET_S)
    line("size_study_peak_pss_mib", pss, f"<={MEMORY_TARGET_MIB:g}", pss <= MEMORY_TARGET_MIB)
    elapsed: dict[str, list[float]] = defaultdict(list)
    last: dict[tuple, float] = {}
    for r in doc["records"]:
        key = (r["hidden"], r["activation"], r["seed"])
        last[key] = max(last.get(key, 0.0), r["elapsed_s"])
    for (hidden, _, _), seconds in last.items():
        elapsed[hidden].append(seconds)
    print(f"# load average after the study: {os.getloadavg()[0]:.1f}")
    for hidden, runs in elapsed.items():
        net = f"784-{hidden}-10"
        epoch = one_core_epoch("mnist10k", net)
        line(f"size_epoch_one_core_s_{net}", epoch, "(information)", True)
        cost = sum(runs) / len(runs) / epoch
        line(f"size_run_over_epoch_one_core_{net}", cost, "(information)", True)


if __name__ == "__main__":
    main()
