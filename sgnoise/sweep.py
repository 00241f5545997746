"""The sweep engine: settings -> runs (here or in worker processes) -> run folder -> plots.

``python test_lr_alpha.py`` calls :func:`main`; everything a study needs comes
from its row in :data:`sgnoise.studies.STUDIES`. The flow is one way:

1. :func:`sgnoise.settings.parse`: the driver's constants and flags, validated once;
2. :func:`sgnoise.data.prepare`: the data, loaded and checked once;
3. a fresh run folder with ``status.json`` (or ``--resume FOLDER``: the same one);
4. :func:`execute`: every run not yet saved, in this process, in ``WORKERS``
   processes (:mod:`sgnoise.pool`), or as tasks on a ``dask.distributed`` cluster
   (``BACKEND = "dask"``), each with one BLAS thread, so the numbers do not
   depend on where they ran; each finished run is saved at once;
5. the combined ``results.json``/``.csv``, noise samples, ``status.json``
   marked complete, and the study's plots.

Nothing already computed is lost: a run that raises, or whose worker process is
killed (SIGKILL from the out-of-memory killer), is recorded as failed and the
sweep goes on; a plot that fails leaves the saved results; on SIGINT or SIGTERM
the workers are stopped (with dask: the pending tasks cancelled, the client and
any cluster started for the sweep closed), the shared copy of the data is
removed, the folder is marked interrupted with the runs still missing, and the
exit code is 128 + the signal's number (130, 143); ``--resume FOLDER`` then runs
only the missing runs. Worker processes exit when their driver is killed, and
the next sweep removes the shared data such a driver left.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from sgnoise import data as datasets
from sgnoise import results, settings
from sgnoise.model import footprint, make_model
from sgnoise.pool import Pool, WorkerDied
from sgnoise.results import COMPLETE, FAILED, INTERRUPTED, RUNNING
from sgnoise.run_config import RunConfig, hidden_name
from sgnoise.settings import LOCATION, Settings
from sgnoise.studies import STUDIES
from sgnoise.training import N_CLASSES, failed_result, memory_estimate, train_and_measure


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived during a sweep (a BaseException, as KeyboardInterrupt)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SweepError(Exception):
    """A sweep cannot start or cannot save: the message says what to change."""


class BadSetting(SweepError):
    """A setting the study cannot run with, found once the data are known: exit code 2."""


class TooLarge(BadSetting):
    """The study's networks would not fit in memory (a bad setting: exit code 2)."""


def available_memory() -> int:
    """Bytes of memory this machine can give (Linux's MemAvailable; else all physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(
    configs: Sequence[RunConfig],
    n_rows: int,
    image_shape: tuple[int, int, int],
    workers: int,
    limit: int,
) -> None:
    """Refuse, before any training (no network built), runs whose estimated memory
    (:func:`memory_estimate`), for the ``workers`` largest at once, exceeds ``limit`` bytes.

    Raises
    ------
    TooLarge
        One line with the estimate, the limit and what to change.
    """
    need = []
    for c in configs:
        size = footprint(c.model, image_shape, N_CLASSES, hidden=c.hidden, channels=c.channels,
                         kernel=c.kernel)  # fmt: skip
        need.append(memory_estimate(*size, n_rows, c.batch_size))
    order = sorted(range(len(configs)), key=need.__getitem__, reverse=True)
    at_once = sum(need[i] for i in order[:workers])
    if at_once <= limit:
        return
    largest, size = configs[order[0]], need[order[0]]
    net = f"{np.prod(image_shape)}-{hidden_name(largest.hidden)}-{N_CLASSES}"
    if largest.model == "cnn":
        net = (f"conv net of --channels {' '.join(map(str, largest.channels))}, --kernel "
               f"{largest.kernel}, dense {hidden_name(largest.hidden)}")  # fmt: skip
    raise TooLarge(
        f"the runs would need an estimated {at_once / 2**30:.1f} GiB of memory "
        f"({min(workers, len(configs))} at once; the largest, {net}, {size / 2**30:.1f} GiB: "
        f"its parameters, noise matrices of {n_rows} examples and the buffers of a minibatch),"
        f" more than the {limit / 2**30:.1f} GiB available: use smaller widths or --channels,"
        " fewer --workers, a larger --batch-size or a --subset"
    )


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread."""

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Within the block SIGINT is ignored, and so it is by processes started in it for good
    (a terminal's Ctrl-C reaches the whole process group); a SIGINT then is lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _one_run(
    data: datasets.Dataset | datasets.Mapped, index: int, config: RunConfig, progress=None
):
    """One run with one BLAS thread (the same numbers in every process); errors recorded."""
    if isinstance(data, datasets.Mapped):  # in a worker process: map the shared files
        data = data.open()
    with threadpool_limits(limits=1, user_api="blas"):
        try:
            return index, train_and_measure(data, config, progress=progress)
        except Exception as err:  # a bug or a fault in one run must not cost the others
            return index, failed_result(config, err)


def _convolutions(model: str, channels: Sequence[int]) -> str:
    """What a progress bar or summary line puts before the hidden widths: a conv net's
    ``conv 6-16 + ``, nothing for an MLP."""
    return f"conv {hidden_name(channels)} + " if model == "cnn" else ""


def _postfix(config: RunConfig, status: Mapping[str, Any]) -> dict[str, str]:
    return {
        "act": config.activation,
        "net": _convolutions(config.model, config.channels) + hidden_name(config.hidden),
        "lr": f"{config.lr:g}",
        "seed": str(config.seed),
        "loss": f"{status['loss']:.3f}",
        "alpha": f"{status['alpha']:.2f}",
        **({"diverged": "yes"} if status["diverged"] else {}),
    }


def _latest(out: Mapping[str, Any]) -> dict[str, Any] | None:
    last = results.last_pooled_train(out["records"])
    return None if last is None else {**last, "diverged": out["run"]["diverged"]}


def execute(
    data: datasets.Dataset,
    configs: Sequence[RunConfig],
    *,
    workers: int = 1,
    backend: str = "local",
    scheduler: str = "",
    pool: Pool | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run every config; yield ``(index, result)`` as each run finishes.

    ``backend == "local"``: with ``workers == 1`` the runs go one after the
    other in this process with a progress bar over epochs; otherwise
    ``workers`` processes run them (``pool``, else a :class:`~sgnoise.pool.Pool`
    started here): a run whose worker dies (SIGKILL from the out-of-memory
    killer) is recorded as failed with why, and the others go on.
    ``backend == "dask"``: each run is a task on the ``dask.distributed``
    cluster at ``scheduler`` (see :func:`_dask_runs`). Parallel runs come in the
    order they finish, under a progress bar over runs. Every bar shows the
    pooled train-noise α and the loss of the latest checkpoint.

    Raises
    ------
    SweepError
        ``backend == "dask"`` without dask installed, a scheduler that cannot
        be reached, or a task that failed on the cluster for a reason other
        than its workers dying (the message names the run).
    """
    if not configs:
        return
    if backend == "dask":
        yield from _bar_over_runs(configs, _dask_runs(data, configs, workers, scheduler))
        return
    if workers == 1 or len(configs) == 1:
        yield from _runs_here(data, configs)
        return
    with contextlib.nullcontext(pool) if pool else Pool(workers) as running:
        yield from _bar_over_runs(configs, _pool_runs(data, configs, running))


def _runs_here(
    data: datasets.Dataset, configs: Sequence[RunConfig]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The runs one after the other in this process, under a progress bar over epochs."""
    total = sum(c.epochs for c in configs)
    with tqdm(total=total, desc="epochs", unit="epoch") as bar:
        for i, config in enumerate(configs):
            done = bar.n

            def progress(status: Mapping[str, Any], config=config) -> None:
                bar.set_postfix(_postfix(config, status))
                bar.update(1)

            yield _one_run(data, i, config, progress)
            bar.update(done + config.epochs - bar.n)  # the epochs a diverged run skipped


def _pool_runs(
    data: datasets.Dataset, configs: Sequence[RunConfig], pool: Pool
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The runs in the pool's worker processes; a run whose worker died is a failed run."""
    shared = datasets.by_reference(data)  # the memory-mapped files' names, not the arrays
    for i, out in pool.run([(_one_run, (shared, i, c)) for i, c in enumerate(configs)]):
        yield (i, failed_result(configs[i], out)) if isinstance(out, WorkerDied) else out


def _bar_over_runs(
    configs: Sequence[RunConfig], finished: Iterator[tuple[int, dict[str, Any]]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Pass on the ``(index, result)`` pairs of parallel runs under a progress bar over runs."""
    with tqdm(total=len(configs), desc="runs", unit="run") as bar:
        for i, out in finished:
            status = _latest(out)
            if status is not None:
                bar.set_postfix(_postfix(configs[i], status))
            bar.update(1)
            yield i, out


#: The one-line error for ``--backend dask`` without dask installed.
NO_DASK = "--backend dask needs dask.distributed: pip install -r requirements-dask.txt"


def _dask() -> tuple[Any, Any]:
    """The modules ``dask`` and ``distributed``, imported only for ``--backend dask``."""
    try:
        import dask  # noqa: PLC0415
        import distributed  # noqa: PLC0415
    except ImportError:
        raise SweepError(NO_DASK) from None
    return dask, distributed


def _dask_runs(
    data: datasets.Dataset, configs: Sequence[RunConfig], workers: int, scheduler: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run every config as a task on a ``dask.distributed`` cluster; yield results as they come.

    The cluster: the scheduler at ``scheduler``, else at dask's
    ``scheduler-address`` setting (``$DASK_SCHEDULER_ADDRESS``), else a
    ``LocalCluster`` of ``workers`` single-threaded processes started here for
    the sweep. Once a first worker is there (a batch queue may start them
    late), the data are scattered once to every worker (a worker that joins
    later copies them from a peer); the task is :func:`_one_run`, one BLAS
    thread, so the numbers are those of a local run. The scheduler reruns a run
    whose worker died (up to ``distributed.scheduler.allowed-failures`` times);
    a run that exhausts them is recorded as failed with the ``KilledWorker``
    error. On the way out, finished or not (SIGINT, SIGTERM, an error), the
    pending tasks are cancelled, the client is closed, and the cluster too if
    it was started here.
    """
    dask, distributed = _dask()
    address = scheduler or dask.config.get("scheduler-address", None)
    with contextlib.ExitStack() as stack:
        if address:
            try:
                _hello(address)  # a port where something else listens would hang the client
                client = stack.enter_context(distributed.Client(address))
            except (OSError, ValueError) as err:
                raise SweepError(
                    f"could not reach the dask scheduler at {address} "
                    f"({str(err) or type(err).__name__}): start it (dask scheduler) or fix "
                    "--scheduler"
                ) from None
        else:
            # Its workers ignore SIGINT: a terminal's Ctrl-C is for this process, which closes them.
            with _sigint_ignored():
                cluster = stack.enter_context(
                    distributed.LocalCluster(
                        n_workers=workers, threads_per_worker=1, processes=True
                    )
                )
            client = stack.enter_context(distributed.Client(cluster))
        client.wait_for_workers(1)  # a batch queue may start them later
        shared = client.scatter(data, broadcast=True, hash=False)
        pending = {
            client.submit(_one_run, shared, i, c, pure=False): i for i, c in enumerate(configs)
        }
        stack.callback(lambda: client.cancel(list(pending), force=True))
        for future in distributed.as_completed(list(pending)):
            i = pending.pop(future)
            try:
                _, out = future.result()
            except distributed.KilledWorker as err:  # every worker that took the run died
                out = failed_result(configs[i], err)
            except (Exception, distributed.CancelledError) as err:  # the cluster, not the run:
                # a worker without sgnoise, the scheduler lost, ...
                raise SweepError(
                    f"run {configs[i].key} failed on the dask cluster, not in its own "
                    f"code: {type(err).__name__}: {err} (is the scheduler up, and can it and "
                    "every worker import sgnoise?)"
                ) from None
            yield i, out


#: Seconds a scheduler has to answer dask's handshake (a port where something else
#: listens, such as a web server, never answers it).
HELLO_S = 20.0


def _hello(address: str) -> None:
    """Open and close one connection to the scheduler at ``address``, dask's handshake
    included, within :data:`HELLO_S` seconds; else raise OSError (TimeoutError).

    ``distributed.Client`` waits for ever on a port where something other than a
    scheduler listens. The handshake runs in a thread of its own (this thread may
    already run an event loop, as in a notebook)."""
    from distributed.comm import connect  # noqa: PLC0415

    async def hello() -> None:
        comm = await asyncio.wait_for(connect(address), HELLO_S)
        await comm.close()

    with ThreadPoolExecutor(1) as thread:
        try:
            thread.submit(asyncio.run, hello()).result()
        except TimeoutError:
            raise TimeoutError(
                f"no dask scheduler answered within {HELLO_S:g} s: is one running there, "
                "and is this its port (not its dashboard's)?"
            ) from None


def gather(
    study: str, dataset: str, configs: Sequence[RunConfig], outs: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Merge runs (in sweep order) into ``{"records", "runs", "noise_samples"}``.

    Every record gets the columns ``study`` and ``dataset``; the noise samples
    kept are those of the study's :meth:`~sgnoise.studies.Study.histogram_runs`.
    """
    keep = STUDIES[study].histogram_runs(configs, [o["run"]["diverged"] for o in outs])
    records, runs, samples = [], [], {}
    for i, out in enumerate(outs):
        records += [{"study": study, "dataset": dataset, **r} for r in out["records"]]
        run = dict(out["run"])
        if i in keep and run.get("noise_sample"):
            samples[run["noise_sample"]["key"]] = out["noise_sample"]
        else:
            run["noise_sample"] = None
        runs.append(run)
    return {"records": records, "runs": runs, "noise_samples": samples}


def compute(s: Settings, data: datasets.Dataset | None = None) -> dict[str, Any]:
    """Run a study in memory, saving nothing: ``{"records", "runs", "noise_samples"}``.

    ``data``: already loaded (default: loaded as ``s`` says).
    """
    study = STUDIES[s.study]
    data = data or datasets.prepare(s.dataset, s.data_dir or None, s.subset, study.batch_sizes(s))
    configs = study.runs(s)
    outs: list[Any] = [None] * len(configs)
    with _shared(data, s, len(configs)) as data:  # (this process's own copy can go)
        for i, out in execute(data, configs, **_where(s)):
            outs[i] = out
    return gather(s.study, data.name, configs, outs)


def _shared(data: datasets.Dataset, s: Settings, n_runs: int):
    """The data memory-mapped for local worker processes (one copy in all), or as they are.

    Bind the result to the name that held ``data`` (``with _shared(data, ...) as data``):
    this process then keeps no copy of its own beside the shared one (220 MB of
    Fashion-MNIST), and the mapped arrays stay readable after the block (the
    mapping outlives the removed files); workers receive the files' names
    (:func:`sgnoise.data.by_reference`).
    """
    if s.backend == "local" and s.workers > 1 and n_runs > 1:
        return datasets.memory_mapped(data)
    return contextlib.nullcontext(data)


def _pool_for(s: Settings, n_runs: int) -> contextlib.AbstractContextManager[Pool | None]:
    """The local worker processes that run this call's runs, then draw its PNGs (idle by
    then, and warm); None when the runs go here (one run, ``--workers 1``, a resume with
    nothing left) or to dask: a new pool would cost more than it saves."""
    if s.backend == "local" and s.workers > 1 and n_runs > 1:
        return Pool(s.workers)
    return contextlib.nullcontext(None)


def _where(s: Settings) -> dict[str, Any]:
    """The keyword arguments of :func:`execute` that say where the runs go."""
    return {"workers": s.workers, "backend": s.backend, "scheduler": s.scheduler}


def saved_settings(s: Settings) -> dict[str, Any]:
    """The settings that decide the numbers: all but where things are (:data:`LOCATION`)."""
    return {k: v for k, v in s.items() if k not in LOCATION}


def _resumed(s: Settings) -> tuple[Path, Settings]:
    """The folder to resume and its saved settings, with this invocation's locations."""
    folder = Path(s.resume)
    status = results.read_status(folder)
    if status["study"] != s.study:
        raise SweepError(
            f"{folder} holds {_a(status['study'])} study, not {s.study}: resume it with its "
            "own driver"
        )
    if status["state"] == COMPLETE:
        raise SweepError(f"{folder} is complete: nothing to resume")
    expected = set(saved_settings(s))
    if set(status["settings"]) != expected:
        odd = sorted(set(status["settings"]) ^ expected)
        raise SweepError(
            f"{folder / results.STATUS_JSON} was written by another version of sgnoise (settings "
            f"{', '.join(odd)} differ): finish it with that version, or start a new run"
        )
    saved = settings.make(s.study, {**status["settings"], **{k: s[k] for k in LOCATION}})
    given = saved_settings(s)
    default = settings.make(s.study, {k: s[k] for k in LOCATION})
    # a flag typed is checked even at its default value; a driver's constant where it is
    # not the study's default (the driver's unchanged constants must not block a resume)
    changed = [k for k, v in given.items() if v != saved[k] and (k in s.typed or v != default[k])]
    if changed:
        what = ", ".join(
            f"{settings.as_typed(k, given[k])} (saved: {settings.as_typed(k, saved[k])})"
            for k in changed
        )
        raise SweepError(
            f"--resume {folder}: {what}; a resumed sweep keeps its saved settings: drop "
            "these, or start a new run"
        )
    return folder, saved


def _a(word: str) -> str:
    """``word`` with its indefinite article: "an activation", "a lr"."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _print_summary(out: Mapping[str, Any]) -> None:
    """Diverged and failed runs, then the last pooled train-noise α per activation and lr, and
    whether that network trained at all (:data:`sgnoise.results.UNTRAINED_ACCURACY`)."""
    several = len({r.get("hidden") for r in (*out["runs"], *out["records"])}) > 1  # size study

    def who(activation: str, hidden: str | None) -> str:
        """A run in the summary: 'relu', or 'relu net 128-128' where the networks differ."""
        return f"{activation}{f' net {hidden}' if several else ''}"

    for run in out["runs"]:
        if run.get("failed"):
            print(
                f"failed:   {who(run['activation'], run.get('hidden'))} lr={run['lr']:g} "
                f"b={run['batch_size']} seed={run['seed']}: "
                f"{run['reason']}\n{run['traceback']}",
                file=sys.stderr,
            )
        elif run["diverged"]:
            print(
                f"diverged: {who(run['activation'], run.get('hidden'))} lr={run['lr']:g} "
                f"b={run['batch_size']} seed={run['seed']} at "
                f"iteration {run['diverged_iteration']} ({run['reason']})"
            )
    # per run, the first measurement not estimated: the pooled train noise's if it is one (an
    # in-flight row's "exact zeros" hid "all coordinates constant: dead ReLUs" at --lr 3)
    failing = [r for r in out["records"] if r.get("status") not in (None, results.OK)]
    pooled = results.select(failing, **results.POOLED_TRAIN)
    degenerate = {}
    for r in pooled + failing:
        run = (r["activation"], r.get("hidden"), r["lr"], r["batch_size"], r["seed"])
        degenerate.setdefault(run, r)
    for (activation, hidden, lr, b, seed), r in degenerate.items():
        where = "" if r in pooled else f", {r['mode']}, layer {r['layer']}"
        print(
            f"degenerate noise: {who(activation, hidden)} lr={lr:g} b={b} "
            f"seed={seed} from epoch {r['epoch']:g} ({r['split']} noise{where}): α not "
            f"estimated: {r['reason']}"
        )
    first: dict[tuple, dict] = {}
    last: dict[tuple, dict] = {}
    for r in results.select(out["records"], **results.POOLED_TRAIN):
        run = (r["activation"], r.get("hidden"), r["lr"], r["batch_size"], r["seed"])
        first.setdefault(run, r)
        last[run] = r
    groups: dict[tuple, list[dict]] = {}
    for (activation, hidden, lr, b, _), r in last.items():
        groups.setdefault((activation, hidden, lr, b), []).append(r)
    config = out.get("config", {})
    conv = _convolutions(config.get("model", "mlp"), config.get("channels", ()))
    for (activation, hidden, lr, b), rows in groups.items():

        def mean(key: str, rows=rows) -> float:
            values = [r[key] for r in rows if math.isfinite(r[key])]
            return float(np.mean(values)) if values else float("nan")

        print(
            f"{activation:8s} net {conv}{hidden or '?':<11s} lr {lr:<8g} b {b:<5d} last checkpoint "
            f"(epoch {rows[0]['epoch']:g}, "
            f"{len(rows)} seed(s)): pooled α {mean('alpha'):.3f} (Gaussian surrogate "
            f"{mean('alpha_surrogate'):.3f}), standardised α {mean('alpha_std'):.3f} "
            f"(surrogate {mean('alpha_std_surrogate'):.3f}), loss {mean('loss'):.3f}"
        )
        untrained = [r for r in rows if results.untrained(r)]  # a diverged run has its line
        if untrained:
            accuracy = ", ".join(f"{r['train_acc']:.3f} (seed {r['seed']})" for r in untrained)
            start = {r["seed"]: first[(activation, hidden, lr, b, r["seed"])] for r in untrained}
            rose = [r for r in untrained if r["loss"] > start[r["seed"]]["loss"]]
            lost = [r for r in untrained if r.get("status") not in (None, results.OK)]
            noise = "their α is an untrained network's noise"
            if rose:
                noise += (
                    f" (their loss rose from "
                    f"{np.mean([start[r['seed']]['loss'] for r in rose]):.3g} to "
                    f"{np.mean([r['loss'] for r in rose]):.3g}: try a smaller --lr)"
                )
            elif len(lost) == len(untrained):  # e.g. every ReLU dead after a large step ...
                noise = "no noise left to measure (degenerate noise, above): try a smaller --lr"
                if all(start[r["seed"]].get("status") not in (None, results.OK) for r in lost):
                    noise = (  # ... or dead from the start (784-1-10, ReLU): no step did it
                        "no noise to measure from the initialisation on (degenerate noise, "
                        "above): try wider hidden layers or another --init"
                    )
            else:
                noise += " (try more epochs, a larger --lr or another --init)"
            print(
                f"{'':8s} did not train: {len(untrained)} of {len(rows)} seed(s), train accuracy "
                f"{accuracy} at the last checkpoint (chance {1 / N_CLASSES:g}); {noise}"
            )


class _Sweep:
    """A sweep under way: its settings, runs and folder, and the runs saved so far."""

    def __init__(self, s: Settings, configs: list, data: datasets.Dataset, folder: Path):
        self.s, self.configs, self.data, self.folder = s, configs, data, folder
        self.study = STUDIES[s.study]
        self.keys = [c.key for c in self.configs]
        try:
            saved = {k: results.load_run(folder, k) for k in self.keys}
        except (OSError, ValueError) as err:
            raise SweepError(str(err)) from None
        self.done = {k: out for k, out in saved.items() if out and not out["run"].get("failed")}
        self.todo = [i for i, k in enumerate(self.keys) if k not in self.done]

    def missing(self) -> list[str]:
        """The runs not done, or failed (a resume runs them)."""
        return [k for k in self.keys if k not in self.done or self.done[k]["run"].get("failed")]

    def mark(self, state: str, message: str = "") -> None:
        """Write ``status.json``: the state, the runs done and missing, what happened."""
        missing = self.missing()
        results.write_status(self.folder, study=self.s.study, settings=saved_settings(self.s),
                             runs=self.keys, state=state, done=len(self.keys) - len(missing),
                             missing=missing, message=message)  # fmt: skip

    def saved(self) -> str:
        """How many runs are saved: "3 of 8 runs"."""
        return f"{len(self.keys) - len(self.missing())} of {len(self.keys)} runs"


def run(s: Settings, *, echo: Callable[[str], None] = print) -> Path:
    """Run a study as configured and save it; returns the run folder.

    The steps: :func:`_begin` (resume or a new folder), :func:`_execute` (each run
    saved as it finishes), :func:`_save_results`, :func:`_draw` and :func:`_finish`.

    Raises
    ------
    SweepError
        Unusable data, run folder or resume; results that cannot be written (the
        runs already saved stay in the folder for ``--resume``); failed runs; or
        plots that could not be drawn (the results are saved).
    Interrupted
        SIGINT or SIGTERM: finished runs saved, folder marked interrupted.
    """
    started = dt.datetime.now().astimezone()
    git = results.git_state()  # the code this run starts from: the checkout may move under it
    clock = time.perf_counter()
    sweep = _begin(s, echo)
    with _pool_for(sweep.s, len(sweep.todo)) as pool:
        _execute(sweep, pool, echo)
        out = _save_results(sweep, started, git, clock)
        paths, plot_error = _draw(sweep, pool)
    _print_summary(out)
    _finish(sweep, paths, plot_error, echo)
    return sweep.folder


def _begin(s: Settings, echo: Callable[[str], None]) -> _Sweep:
    """The sweep's settings (saved ones on ``--resume``), data and folder, before any run.

    Shared data left in memory by drivers killed with SIGKILL are removed first."""
    datasets.remove_orphans()
    study = STUDIES[s.study]
    try:
        if s.resume:
            folder, s = _resumed(s)
        if s.backend == "dask":
            _dask()  # before a folder is made: the one-line error if dask is missing
        try:  # a grid that cannot be run is a bad setting, refused before the data are read
            configs = study.runs(s)
        except ValueError as err:
            raise BadSetting(str(err)) from None
        data = datasets.prepare(s.dataset, s.data_dir or None, s.subset, study.batch_sizes(s))
        if s.backend == "local":  # a cluster's workers have memory of their own
            n_rows = max(len(data.x_train), len(data.x_test))
            check_memory(configs, n_rows, data.image_shape, s.workers, available_memory())
    except datasets.BatchSizeError as err:
        raise BadSetting(str(err)) from None
    except (OSError, ValueError) as err:  # DataError is a ValueError
        raise SweepError(str(err)) from None
    if not s.resume:
        folder = _new_folder(s, data)
    sweep = _Sweep(s, configs, data, folder)
    echo(f"study:   {study.name}, {len(sweep.keys)} runs over {study.sweeps}: {study.question}")
    echo(f"data:    {data.name} from {data.source}")
    if sweep.done:
        echo(f"resume:  {len(sweep.done)} of {len(sweep.keys)} runs already in {folder}; "
             f"{len(sweep.todo)} to run")  # fmt: skip
    return sweep


def _new_folder(s: Settings, data: datasets.Dataset) -> Path:
    """A fresh run folder (:func:`sgnoise.results.new_run_dir`), its errors as one line."""
    root = Path(s.out_root) / f"{data.display_name}_{STUDIES[s.study].name}"
    try:
        return results.new_run_dir(root, s.run_name or None, overwrite=s.overwrite)
    except (FileExistsError, ValueError) as err:
        raise SweepError(str(err)) from None
    except OSError as err:  # read-only, no permission, ...
        raise SweepError(
            f"cannot make a run folder in {root} ({err.strerror or err}): choose a folder "
            "you can write to with --out-root"
        ) from None


def _execute(sweep: _Sweep, pool: Pool | None, echo: Callable[[str], None]) -> None:
    """Run the runs not yet saved; save each as it finishes, ``status.json`` with it.

    Interrupted, a cluster error or a full disk: the folder is marked and the error
    raised again, saying how many runs are saved and how to finish (:func:`_stopped`).
    """
    s, todo = sweep.s, sweep.todo
    try:
        sweep.mark(RUNNING)
        with _signals_raise(), _shared(sweep.data, s, len(todo)) as data:
            sweep.data = data  # the shared copy replaces this process's own, which can go
            configs = [sweep.configs[i] for i in todo]
            with contextlib.closing(execute(data, configs, **_where(s), pool=pool)) as runs:
                for j, out in runs:
                    results.save_run(sweep.folder, sweep.keys[todo[j]], out)
                    sweep.done[sweep.keys[todo[j]]] = out
                    sweep.mark(RUNNING)
    except (Interrupted, SweepError, OSError) as err:
        _stopped(sweep, err, echo)


def _stopped(sweep: _Sweep, err: BaseException, echo: Callable[[str], None]) -> NoReturn:
    """Mark the folder of a sweep that stopped before its runs were done, and raise."""
    if isinstance(err, Interrupted):
        _safely(sweep.mark, INTERRUPTED, f"stopped by {err}")
        echo(f"interrupted by {err}: {sweep.saved()} saved in {sweep.folder}; "
             f"finish with: --resume {sweep.folder}")  # fmt: skip
        raise err
    _safely(sweep.mark, FAILED, str(err))
    if isinstance(err, SweepError):  # dask: no scheduler, or a cluster that cannot run sgnoise
        raise SweepError(
            f"{err}; {sweep.saved()} are saved in {sweep.folder}: fix the cluster and finish with "
            f"--resume {sweep.folder}"
        ) from None
    raise SweepError(  # a full disk, a folder removed or made read-only under us
        f"could not write into {sweep.folder} ({err}); {sweep.saved()} are saved there: "
        f"{_disk_fix(err)} and finish with --resume {sweep.folder}"
    ) from None


def _disk_fix(err: OSError) -> str:
    """What to do about an error writing files."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free space"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "make it writable"
    return "fix the cause"


def _save_results(
    sweep: _Sweep, started: dt.datetime, git: dict[str, Any], clock: float
) -> dict[str, Any]:
    """The combined results and noise samples of every run, with their configuration."""
    s, data = sweep.s, sweep.data
    out = gather(s.study, data.name, sweep.configs, [sweep.done[k] for k in sweep.keys])
    config = {
        **saved_settings(s),
        "study": s.study,
        "dataset": data.name,
        "data_sha256": datasets.fingerprint(data),
        "n_train": len(data.x_train),
        "n_test": len(data.x_test),
        **_networks(STUDIES[s.study].networks(s), s, data),
        "wall_time_s": round(time.perf_counter() - clock, 1),
    }
    try:
        where = {"workers": s.workers, "backend": s.backend}
        results.save_results(sweep.folder, config, out["records"], out["runs"], started=started,
                             git=git, extra_provenance=where)  # fmt: skip
        results.save_noise_samples(sweep.folder, out["noise_samples"])
    except OSError as err:
        _safely(sweep.mark, FAILED, str(err))
        raise SweepError(
            f"could not write the results into {sweep.folder} ({err}); every run is saved "
            f"there: {_disk_fix(err)} and finish with --resume {sweep.folder}"
        ) from None
    return {**out, "config": config}


def _draw(sweep: _Sweep, pool: Pool | None) -> tuple[list[Path], str]:
    """The study's PNGs, drawn from the saved results; a failure is told, never raised:
    the results are saved already. Returns the paths and the error ('' if none)."""
    from sgnoise import plots  # noqa: PLC0415  (matplotlib: not in the workers that train)

    try:
        drawn = results.load_results(sweep.folder)
        paths = plots.draw_study(sweep.s.study, drawn, sweep.folder, pool=pool)
    except Exception as err:  # a plot must never cost the runs
        return [], f"{type(err).__name__}: {err}".splitlines()[0]
    return paths, ""


def _finish(sweep: _Sweep, paths: list[Path], plot_error: str, echo: Callable[[str], None]):
    """Mark the folder complete (or failed, with the runs that failed) and say where things
    are; raise :class:`SweepError` for failed runs or plots that could not be drawn."""
    failed = [k for k in sweep.keys if sweep.done[k]["run"].get("failed")]
    replot = f"redraw them with: python replot.py {sweep.folder}"
    drawn = f"; the plots could not be drawn ({plot_error}): fix the cause and {replot}"
    if failed:  # everything is saved; the failed runs are rerun by --resume
        why = f"{len(failed)} run(s) failed: {', '.join(failed)}"
        _safely(sweep.mark, FAILED, why + (drawn if plot_error else ""))
        raise SweepError(
            f"{len(failed)} of {len(sweep.keys)} runs failed ({', '.join(failed)}; why: above "
            f"and in {sweep.folder / results.STATUS_JSON}); the others are saved in "
            f"{sweep.folder}: fix the cause and rerun the failed ones with --resume {sweep.folder}"
        )
    _safely(sweep.mark, COMPLETE, f"results saved{drawn}" if plot_error else "")
    results.remove_runs(sweep.folder)
    echo(f"results: {sweep.folder / results.RESULTS_JSON}, {sweep.folder / results.RESULTS_CSV}")
    if plot_error:
        raise SweepError(f"the results are saved in {sweep.folder}{drawn}")
    for path in paths:
        echo(f"plot:    {path}")


def _networks(
    hidden: Sequence[Sequence[int]], s: Settings, data: datasets.Dataset
) -> dict[str, Any]:
    """The configuration's networks: ``sizes`` (input, hidden and output widths) and ``net``
    (:attr:`architecture`) of a study's one network, or ``networks`` and ``nets``, the lists
    of them, when it has several (the size study)."""
    sizes = [[data.x_train.shape[1], *h, N_CLASSES] for h in hidden]
    nets = [
        make_model(s.model, data.image_shape, N_CLASSES, "relu", hidden=h, channels=s.channels,
                   kernel=s.kernel).architecture
        for h in hidden
    ]  # fmt: skip
    if len(sizes) == 1:
        return {"sizes": sizes[0], "net": nets[0]}
    return {"networks": sizes, "nets": nets}


def _safely(write: Callable[..., Any], *args: Any) -> None:
    """Try to record a state; a full disk must not hide the error being reported."""
    with contextlib.suppress(OSError):
        write(*args)


def main(study: str, constants: Mapping[str, Any], argv: Sequence[str] | None = None) -> Path:
    """A driver's entry point: parse its settings, run its study, exit with a clear status.

    Exit codes: 0 done; 1 unusable data, run folder or disk (one line saying
    what to change); 2 a bad setting, a batch size the data cannot hold 3
    minibatches of, or runs too large for the memory; 130 / 143
    interrupted by SIGINT / SIGTERM (finished runs kept, ``--resume FOLDER`` finishes
    the sweep).
    """
    s = settings.parse(study, constants, argv)
    try:
        return run(s)
    except BadSetting as err:  # found once the data's size is known
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except SweepError as err:
        sys.exit(f"error: {err}")
    except Interrupted as err:
        sys.exit(128 + err.signum)
