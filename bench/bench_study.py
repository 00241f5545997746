"""Wall time and peak memory of the whole activation study, and where its time goes.

The study is what ``python test_epoch_alpha_relu.py --dataset fashion_mnist
--epochs 50 --seeds 0`` does with the driver's shipped constants: ReLU and
sigmoid 784-100-10 networks trained in parallel (WORKERS processes), 50
epochs of 60,000 Fashion-MNIST images each, and at every epoch a checkpoint
(train and test noise per layer and pooled, raw and standardised α with
intervals and Gaussian surrogates, loss, accuracies, the in-flight estimate),
then the results and plots saved. Prints lines ``name value target PASS|FAIL``:

- ``study_wall_s``: wall time of that command (target <= 50 s on 2 cores);
  with ``--epochs E`` (E < 50) it is run for E epochs and scaled by the number
  of checkpoints, 51 / (E + 1), start-up included (an overestimate); the line
  then says ``extrapolated_from_E``;
- ``machine_epoch_one_core_s``: the best of three epochs of the 784-100-10 net's
  training loop in a one-core process, two such processes at once (as the study's
  two workers train; the slower one's), the better of that before and after the
  study: this VM's speed moves by 10-20% within an hour, and
  ``study_wall_over_epoch_one_core`` is the study's wall time in those epochs
  (information, comparable across machine states);
- ``study_peak_pss_mib``: peak of the summed proportional set size (PSS:
  pages shared between processes, such as joblib's memory-mapped data,
  counted once) of the driver and all its worker processes, sampled every
  SAMPLE_S, with the processes looked up every SCAN_S (target <= 1024 MiB);
  ``study_peak_rss_largest_mib``: the largest single process (``getrusage``
  maxrss), for reference;
- ``breakdown_<part>_share``: where a worker's time goes, from the same runs
  (same constants, WORKERS processes in parallel) done in this process's
  joblib workers over ``--breakdown-epochs`` epochs with timers around the
  study's parts: training steps, noise passes (train and test), the
  estimator (``summarise_layers``), the calibrated α of the frozen rows, the
  per-coordinate measurement where it runs, the in-flight estimate, and the rest
  (bookkeeping, the histogram sample, set-up); ``breakdown_<part>_s_per_<unit>``
  the same in seconds per worker and per epoch, checkpoint or run;
- ``new_measurements_over_study``: what issue #26's measurements add to the study's
  wall time, (their seconds per detailed checkpoint in the breakdown x the detailed
  checkpoints a worker makes) / (the study's wall time without them); target <= 0.10.
  Counted (``_new``): the threshold-free power-law fit with its bootstrap, the Hill
  estimates at the five thresholds k = sqrt(m)/4 ... 4 sqrt(m) (all of them: the one
  at sqrt(m) was made before too, so this is an upper bound), the census of each
  coordinate's activity, and every reading and calibration without centring (the
  resampled rows' and the dense and sparse coordinates'). Not counted: the dense and
  sparse per-column quantiles (a second quantile of estimates already made).

Run: python bench/bench_study.py [--epochs 50] [--breakdown-epochs 3]
(about two minutes at 50 epochs; needs Fashion-MNIST installed, see sgnoise.data).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _root import ROOT
from joblib import Parallel, delayed

from sgnoise import data as datasets
from sgnoise import measure, per_example, settings, training
from sgnoise.data import DataError, load
from sgnoise.run_config import RunConfig
from sgnoise.studies import STUDIES

EPOCHS, WALL_TARGET_S, MEMORY_TARGET_MIB = 50, 50.0, 1024.0
#: Seconds between PSS samples, and between looks for new worker processes (a scan of
#: /proc): sampling every 50 ms with a scan each time took about a sixth of a core from
#: the study it measured (73 s against 65 s unmeasured). A checkpoint holds its peak for
#: about half a second.
SAMPLE_S, SCAN_S = 0.2, 1.0
#: The parts of a run, and what their seconds are given per (E epochs have E + 1 checkpoints).
#: ``per_coordinate``: what the per-coordinate measurement adds at a checkpoint where it runs
#: (resampled noises, their summaries, per-column α, per-example tails, the batch scan; the
#: per-example products written during the noise pass count there).
PARTS = {
    "train_steps": "epoch",
    "noise_passes": "checkpoint",
    "summarise_layers": "checkpoint",
    "calibration": "checkpoint",
    "per_coordinate": "detailed_checkpoint",
    "in_flight_alpha": "epoch",
    "other": "run",
}


def line(name: str, value: float, target: str, ok: bool) -> None:
    print(f"{name} {value:.4g} {target} {'PASS' if ok else 'FAIL'}", flush=True)


def _descendants(pid: int) -> list[int]:
    """pid and every process below it, from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        children[int(fields[1])].append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def _pss_kib(pid: int) -> int:
    try:
        for row in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if row.startswith("Pss:"):
                return int(row.split()[1])
    except OSError:
        pass
    return 0


def end_to_end(epochs: int, extra: list[str] = ()) -> tuple[float, float, float]:
    """(wall seconds, peak summed PSS in MiB, largest process's peak RSS in MiB) of the driver
    (with the flags ``extra`` added)."""
    with tempfile.TemporaryDirectory() as out:
        args = ["--dataset", "fashion_mnist", "--epochs", str(epochs), "--seeds", "0", *extra]
        return run_driver("test_epoch_alpha_relu.py", args, out)


def run_driver(script: str, args: list[str], out: str) -> tuple[float, float, float]:
    """(wall seconds, peak summed PSS in MiB, largest process's peak RSS in MiB) of
    ``python <script> <args>``, writing its run folder ``bench`` into ``out``."""
    peak = [0]
    done = threading.Event()

    def sample(pid: int) -> None:
        pids, scanned = [pid], 0.0
        while not done.wait(SAMPLE_S):
            if time.perf_counter() - scanned > SCAN_S:
                pids, scanned = _descendants(pid), time.perf_counter()
            peak[0] = max(peak[0], sum(_pss_kib(p) for p in pids))

    cmd = [sys.executable, str(ROOT / script), *args, "--out-root", out, "--run-name", "bench"]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=out, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    sampler = threading.Thread(target=sample, args=(proc.pid,), daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"the driver failed:\n{err}")
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak[0] / 1024, largest


def _timed(
    spent: dict[str, float], part: str, fn: Callable, active: list | None = None
) -> Callable:
    """fn, its time added to spent[part]; with ``active`` (shared by the timers), a call
    inside another timed call counts for the outer one only."""
    active = [] if active is None else active

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if active:
            return fn(*args, **kwargs)
        active.append(part)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[part] += time.perf_counter() - start
            active.pop()

    return wrapper


def _carved(spent: dict[str, float], part: str, fn: Callable, active: list) -> Callable:
    """fn, its time moved to spent[part] from the timed call it runs inside (the
    per-example tap runs inside the noise pass of a detailed checkpoint). A study's
    worker runs the pass's chunks on its own thread (one core each), so the tap's
    time is the pass's time."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds = time.perf_counter() - start
            spent[part] += seconds
            if active:
                spent[active[0]] -= seconds

    return wrapper


def _timed_steps(spent: dict[str, float], part: str, fn: Callable) -> Callable:
    """The generator fn, the time of each of its steps added to spent[part]."""

    def wrapper(*args: Any, **kwargs: Any) -> Iterator:
        steps = fn(*args, **kwargs)
        while True:
            start = time.perf_counter()
            try:
                value = next(steps)
            except StopIteration:
                return
            finally:
                spent[part] += time.perf_counter() - start
            yield value

    return wrapper


def _timed_epochs(spent: dict[str, float], fn: Callable) -> Callable:
    """The minibatch generator, its whole consumption (the training loop) timed."""

    def wrapper(*args: Any, **kwargs: Any) -> Iterator:
        start = time.perf_counter()
        yield from fn(*args, **kwargs)
        spent["train_steps"] += time.perf_counter() - start

    return wrapper


#: One epoch of the study's training loop in a process of one core, as a study worker runs it
#: (the data set and the layer widths are its arguments).
_ONE_CORE_EPOCH = """
import sys
import time
import numpy as np
from sgnoise.data import load
from sgnoise.mlp import MLP
from sgnoise.noise import shuffled_minibatches
from sgnoise.optim import SGD
data = load(sys.argv[1], download=False)
sizes = tuple(int(s) for s in sys.argv[2].split("-"))
best = float("inf")
for _ in range(3):
    model, opt = MLP(sizes, seed=0), SGD(0.1)
    grads = [np.empty_like(p) for p in model.params]
    start = time.perf_counter()
    for xb, yb in shuffled_minibatches(data.x_train, data.y_train, 500, 0):
        model.batched_loss_and_grads(xb, yb, out=grads)
        opt.step(model.params, grads)
    best = min(best, time.perf_counter() - start)
print(best)
"""


def one_core_epoch(dataset: str = "fashion_mnist", net: str = "784-100-10") -> float:
    """Seconds of the best of three epochs of the net (default 784-100-10) on the data set
    (default Fashion-MNIST) in a process with one core's threads (OMP_NUM_THREADS=1), two
    such processes at once (the slower one's), as a study's two workers train: this VM's
    speed moves by 10-20% within an hour, and the study's wall time with it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ONE_CORE_EPOCH, dataset, net],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    return max(float(p.communicate()[0].split()[-1]) for p in procs)


def _new(spent: dict[str, float], fn: Callable, uncentred_only: bool = False) -> Callable:
    """fn, its time added to spent["new_measurements"] (besides any part it counts for);
    ``uncentred_only``: only its calls with ``centred=False``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if uncentred_only and kwargs.get("centred", True):
            return fn(*args, **kwargs)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent["new_measurements"] += time.perf_counter() - start

    return wrapper


def instrumented_run(data: Any, config: RunConfig) -> dict[str, float]:
    """One ``train_and_measure`` run (in a worker) with its parts timed, in seconds (the
    patched functions restored afterwards: a worker may make several runs)."""
    spent: dict[str, float] = defaultdict(float)
    active: list[str] = []
    recorder = per_example.Recorder
    new = {
        (per_example, name): _new(spent, getattr(per_example, name))
        for name in ("hill_and_power_law", "activity")
    }
    new |= {
        (measure, name): _new(spent, getattr(measure, name), uncentred_only=True)
        for name in ("standardised_alpha", "calibrate", "calibrated_alpha")
    }
    patches = {
        **new,
        (measure, "noise_pass"): _timed(spent, "noise_passes", measure.noise_pass, active),
        (measure, "summarise_layers"): _timed(
            spent, "summarise_layers", measure.summarise_layers, active
        ),
        (measure, "_calibrated"): _timed(spent, "calibration", measure._calibrated, active),
        **{
            (measure, name): _timed(spent, "per_coordinate", getattr(measure, name), active)
            for name in ("_resampled", "_tails")
        },
        (measure, "resampled_noises"): _timed_steps(
            spent, "per_coordinate", measure.resampled_noises
        ),
        (recorder, "record"): _carved(spent, "per_coordinate", recorder.record, active),
        (training, "estimate_alpha"): _timed(spent, "in_flight_alpha", training.estimate_alpha),
        (training, "shuffled_minibatches"): _timed_epochs(spent, training.shuffled_minibatches),
    }
    originals = {key: getattr(*key) for key in patches}
    for (owner, name), patched in patches.items():
        setattr(owner, name, patched)
    try:
        start = time.perf_counter()
        training.train_and_measure(data, config)
        total = time.perf_counter() - start
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)
    added = spent.pop("new_measurements", 0.0)
    spent["other"] = total - sum(spent.values())
    return {**spent, "total": total, "new_measurements": added}


def breakdown(epochs: int) -> float:
    s = settings.make("activation", dataset="fashion_mnist", epochs=epochs, seeds=(0,))
    data = datasets.prepare(s.dataset, None, 0, s.batch_size)
    configs = STUDIES["activation"].runs(s)
    with datasets.memory_mapped(data) as shared:
        runs = Parallel(n_jobs=s.workers)(delayed(instrumented_run)(shared, c) for c in configs)
    total = sum(r["total"] for r in runs)
    per_epoch = len(data.x_train) // s.batch_size
    ends = training._ends(epochs * per_epoch, s.checkpoint_every, per_epoch)
    detailed = epochs + 1 if s.detail == "every" else len(ends)
    count = {"epoch": epochs, "checkpoint": epochs + 1, "detailed_checkpoint": detailed, "run": 1}
    for part, unit in PARTS.items():
        seconds = sum(r[part] for r in runs)
        line(f"breakdown_{part}_share", seconds / total, "(info)", True)
        line(f"breakdown_{part}_s_per_{unit}", seconds / len(runs) / count[unit], "(info)", True)
    added = sum(r["new_measurements"] for r in runs) / len(runs) / detailed
    line("breakdown_new_measurements_s_per_detailed_checkpoint", added, "(info)", True)
    return added * detailed * len(runs) / s.workers  # per worker, over a study of ``epochs``


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs of the timed study")
    parser.add_argument(
        "--breakdown-epochs", type=int, default=3, help="epochs of the breakdown (0: none)"
    )
    parser.add_argument(
        "driver_args",
        nargs=argparse.REMAINDER,
        help="after --: more flags for the driver, e.g. "
        "-- --coordinates 0 (the study without its per-coordinate measurement)",
    )
    args = parser.parse_args()
    extra = [a for a in args.driver_args if a != "--"]
    try:
        load("fashion_mnist", download=False)
    except DataError as error:  # a skip, so that `make bench` goes on to the other scripts
        print(f"study_wall_s nan <={WALL_TARGET_S:g} SKIP (needs Fashion-MNIST installed: {error})")
        return
    before = one_core_epoch()
    wall, pss, largest = end_to_end(args.epochs, extra)
    speed = min(before, one_core_epoch())
    name = "study_wall_s"
    if args.epochs != EPOCHS:
        wall *= (EPOCHS + 1) / (args.epochs + 1)
        name += f"_extrapolated_from_{args.epochs}"
    line(name, wall, f"<={WALL_TARGET_S:g}", wall <= WALL_TARGET_S)
    line("study_peak_pss_mib", pss, f"<={MEMORY_TARGET_MIB:g}", pss <= MEMORY_TARGET_MIB)
    line("study_peak_rss_largest_mib", largest, "(reference)", True)
    line("machine_epoch_one_core_s", speed, "(this machine's speed now)", True)
    line("study_wall_over_epoch_one_core", wall / speed, "(information)", True)
    if args.breakdown_epochs:
        added = breakdown(args.breakdown_epochs)  # detailed checkpoints do not grow with epochs
        ratio = added / (wall - added)
        if args.epochs == EPOCHS:
            line("new_measurements_over_study", ratio, "<=0.10", ratio <= 0.10)
        else:  # the extrapolated wall scales the 3 detailed checkpoints too: far too large
            line("new_measurements_over_study_extrapolated", ratio, "(not the target)", True)


if __name__ == "__main__":
    main()
