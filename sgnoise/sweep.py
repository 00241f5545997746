"""The sweep engine: settings -> runs (here or in worker processes) -> run folder -> plots.

``python test_lr_alpha.py`` calls :func:`main`; everything a study needs comes
from its row in :data:`sgnoise.studies.STUDIES`. The flow is one way:

1. :func:`sgnoise.settings.parse`: the driver's constants and flags, validated once;
2. :func:`sgnoise.data.prepare`: the data, loaded and checked once;
3. a fresh run folder with ``status.json`` (or ``--resume FOLDER``: the same one);
4. :func:`execute`: every run not yet saved, in this process, in ``WORKERS``
   processes (joblib), or as tasks on a ``dask.distributed`` cluster
   (``BACKEND = "dask"``), each with one BLAS thread, so the numbers do not
   depend on where they ran; each finished run is saved at once;
5. the combined ``results.json``/``.csv``, noise samples, ``status.json``
   marked complete, and the study's plots.

Nothing already computed is lost: a run that raises is recorded as failed and
the sweep goes on; on SIGINT or SIGTERM the workers are stopped (with dask:
the pending tasks cancelled, the client and any cluster started for the sweep
closed), the shared copy of the data is removed, the folder is marked
interrupted with the runs still missing, and the exit code is 128 + the
signal's number (130, 143); ``--resume FOLDER`` then runs only the missing runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from sgnoise import data as datasets
from sgnoise import results, settings
from sgnoise.model import make_model
from sgnoise.results import COMPLETE, FAILED, INTERRUPTED, RUNNING
from sgnoise.run_config import RunConfig
from sgnoise.settings import LOCATION, Settings
from sgnoise.studies import STUDIES
from sgnoise.training import N_CLASSES, failed_result, train_and_measure


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived during a sweep (a BaseException, as KeyboardInterrupt)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SweepError(Exception):
    """A sweep cannot start or cannot save: the message says what to change."""


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


def _stop_workers() -> None:
    """Kill joblib's worker processes now (they would finish their runs and linger)."""
    from joblib.externals.loky import get_reusable_executor  # noqa: PLC0415

    get_reusable_executor().shutdown(wait=True, kill_workers=True)


def _one_run(data: datasets.Dataset, index: int, config: RunConfig, progress=None):
    """One run with one BLAS thread (the same numbers in every process); errors recorded."""
    with threadpool_limits(limits=1, user_api="blas"):
        try:
            return index, train_and_measure(data, config, progress=progress)
        except Exception as err:  # a bug or a fault in one run must not cost the others
            return index, failed_result(config, err)


def _postfix(config: RunConfig, status: Mapping[str, Any]) -> dict[str, str]:
    return {
        "act": config.activation,
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
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run every config; yield ``(index, result)`` as each run finishes.

    ``backend == "local"``: with ``workers == 1`` the runs go one after the
    other in this process with a progress bar over epochs; otherwise
    ``workers`` processes (joblib) run them. ``backend == "dask"``: each run is
    a task on the ``dask.distributed`` cluster at ``scheduler`` (see
    :func:`_dask_runs`). Parallel runs come in the order they finish, under a
    progress bar over runs. Every bar shows the pooled train-noise α and the
    loss of the latest checkpoint.

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
        total = sum(c.epochs for c in configs)
        with tqdm(total=total, desc="epochs", unit="epoch") as bar:
            for i, config in enumerate(configs):
                done = bar.n

                def progress(status: Mapping[str, Any], config=config) -> None:
                    bar.set_postfix(_postfix(config, status))
                    bar.update(1)

                yield _one_run(data, i, config, progress)
                bar.update(done + config.epochs - bar.n)  # the epochs a diverged run skipped
        return
    tasks = Parallel(n_jobs=workers, return_as="generator_unordered")(
        delayed(_one_run)(data, i, c) for i, c in enumerate(configs)
    )
    try:
        yield from _bar_over_runs(configs, tasks)
    except BaseException:
        tasks.close()  # joblib stops dispatching first, so killing its workers is quiet
        _stop_workers()
        raise


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
                client = stack.enter_context(distributed.Client(address))
            except (OSError, ValueError) as err:
                raise SweepError(
                    f"could not reach the dask scheduler at {address} ({err}): start it "
                    "(dask scheduler) or fix --scheduler"
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
    mapping outlives the removed files) but must not be handed to workers again:
    joblib passes a memory-mapped array by its file's name.
    """
    if s.backend == "local" and s.workers > 1 and n_runs > 1:
        return datasets.memory_mapped(data)
    return contextlib.nullcontext(data)


def _draw_jobs(s: Settings, n_ran: int) -> int:
    """Processes that draw the PNGs: the local worker processes if this call ran its
    runs in them (idle by then, and warm: :func:`execute` runs several runs in
    ``workers`` processes), else this process alone (one run, ``--workers 1``, a
    resume with nothing left, ``--backend dask``: a new pool would cost more than
    it saves)."""
    return s.workers if s.backend == "local" and s.workers > 1 and n_ran > 1 else 1


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
    """Diverged and failed runs, then the last pooled train-noise α per activation and lr."""
    for run in out["runs"]:
        if run.get("failed"):
            print(
                f"failed:   {run['activation']} lr={run['lr']:g} b={run['batch_size']} "
                f"seed={run['seed']}: "
                f"{run['reason']}\n{run['traceback']}",
                file=sys.stderr,
            )
        elif run["diverged"]:
            print(
                f"diverged: {run['activation']} lr={run['lr']:g} b={run['batch_size']} "
                f"seed={run['seed']} at "
                f"iteration {run['diverged_iteration']} ({run['reason']})"
            )
    degenerate = {}
    for r in out["records"]:
        if r.get("status") not in (None, results.OK):
            degenerate.setdefault((r["activation"], r["lr"], r["batch_size"], r["seed"]), r)
    for (activation, lr, b, seed), r in degenerate.items():
        print(
            f"degenerate noise: {activation} lr={lr:g} b={b} seed={seed} from epoch {r['epoch']:g} "
            f"({r['split']} noise): α not estimated: {r['reason']}"
        )
    last: dict[tuple, dict] = {}
    for r in results.select(out["records"], **results.POOLED_TRAIN):
        last[(r["activation"], r["lr"], r["batch_size"], r["seed"])] = r
    groups: dict[tuple, list[dict]] = {}
    for (activation, lr, b, _), r in last.items():
        groups.setdefault((activation, lr, b), []).append(r)
    for (activation, lr, b), rows in groups.items():

        def mean(key: str, rows=rows) -> float:
            values = [r[key] for r in rows if math.isfinite(r[key])]
            return float(np.mean(values)) if values else float("nan")

        print(
            f"{activation:8s} lr {lr:<8g} b {b:<5d} last checkpoint (epoch {rows[0]['epoch']:g}, "
            f"{len(rows)} seed(s)): pooled α {mean('alpha'):.3f} (Gaussian surrogate "
            f"{mean('alpha_surrogate'):.3f}), standardised α {mean('alpha_std'):.3f} "
            f"(surrogate {mean('alpha_std_surrogate'):.3f}), loss {mean('loss'):.3f}"
        )


def run(s: Settings, *, echo: Callable[[str], None] = print) -> Path:
    """Run a study as configured and save it; returns the run folder.

    Raises
    ------
    SweepError
        Unusable data, run folder or resume; or results that cannot be written
        (the runs already saved stay in the folder for ``--resume``).
    Interrupted
        SIGINT or SIGTERM: finished runs saved, folder marked interrupted.
    """
    started = dt.datetime.now().astimezone()
    clock = time.perf_counter()
    study = STUDIES[s.study]
    try:
        if s.resume:
            folder, s = _resumed(s)
        if s.backend == "dask":
            _dask()  # before a folder is made: the one-line error if dask is missing
        configs = study.runs(s)
        data = datasets.prepare(s.dataset, s.data_dir or None, s.subset, study.batch_sizes(s))
        if not s.resume:
            root = Path(s.out_root) / f"{data.display_name}_{study.name}"
            folder = results.new_run_dir(root, s.run_name or None, overwrite=s.overwrite)
    except (OSError, ValueError) as err:  # DataError is a ValueError
        raise SweepError(str(err)) from None
    echo(f"study:   {study.name}, {len(configs)} runs over {study.sweeps}: {study.question}")
    echo(f"data:    {data.name} from {data.source}")
    keys = [c.key for c in configs]
    try:
        saved = {k: results.load_run(folder, k) for k in keys}
        done = {k: out for k, out in saved.items() if out and not out["run"].get("failed")}
    except (OSError, ValueError) as err:
        raise SweepError(str(err)) from None
    status = {"study": s.study, "settings": saved_settings(s), "runs": keys}

    def mark(state: str, message: str = "") -> None:
        missing = [k for k in keys if k not in done]
        results.write_status(folder, **status, state=state, done=len(done), missing=missing,
                             message=message)  # fmt: skip

    todo = [i for i, k in enumerate(keys) if k not in done]
    if done:
        echo(f"resume:  {len(done)} of {len(keys)} runs already in {folder}; {len(todo)} to run")
    try:
        mark(RUNNING)
        with (
            _signals_raise(),
            _shared(data, s, len(todo)) as data,  # (this process's own copy can go)
            contextlib.closing(execute(data, [configs[i] for i in todo], **_where(s))) as runs,
        ):
            for j, out in runs:
                results.save_run(folder, keys[todo[j]], out)
                done[keys[todo[j]]] = out
    except Interrupted as err:
        _safely(mark, INTERRUPTED, f"stopped by {err}")
        echo(
            f"interrupted by {err}: {len(done)} of {len(keys)} runs saved in {folder}; "
            f"finish with: --resume {folder}"
        )
        raise
    except SweepError as err:  # dask: no scheduler, or a cluster that cannot run sgnoise
        _safely(mark, FAILED, str(err))
        raise SweepError(
            f"{err}; {len(done)} of {len(keys)} runs are saved in {folder}: fix the cluster "
            f"and finish with --resume {folder}"
        ) from None
    except OSError as err:  # a full disk, a folder removed under us
        _safely(mark, FAILED, str(err))
        raise SweepError(
            f"could not write into {folder} ({err}); {len(done)} of {len(keys)} runs are "
            f"saved there: free space and finish with --resume {folder}"
        ) from None
    out = gather(s.study, data.name, configs, [done[k] for k in keys])
    config = {
        **saved_settings(s),
        "study": s.study,
        "dataset": data.name,
        "data_sha256": datasets.fingerprint(data),
        "n_train": len(data.x_train),
        "n_test": len(data.x_test),
        "sizes": [data.x_train.shape[1], *s.hidden, N_CLASSES],
        "net": make_model(
            s.model,
            data.image_shape,
            N_CLASSES,
            "relu",
            hidden=s.hidden,
            channels=s.channels,
            kernel=s.kernel,
        ).architecture,  # fmt: skip
        "wall_time_s": round(time.perf_counter() - clock, 1),
    }
    try:
        where = {"workers": s.workers, "backend": s.backend}
        results.save_results(folder, config, out["records"], out["runs"], started=started,
                             extra_provenance=where)  # fmt: skip
        results.save_noise_samples(folder, out["noise_samples"])
        from sgnoise import plots  # noqa: PLC0415  (matplotlib: not in the workers that train)

        drawn = results.load_results(folder)
        paths = plots.draw_study(s.study, drawn, folder, n_jobs=_draw_jobs(s, len(todo)))
        mark(COMPLETE)
    except OSError as err:
        _safely(mark, FAILED, str(err))
        raise SweepError(
            f"could not write the results into {folder} ({err}); every run is saved there: "
            f"free space and finish with --resume {folder}"
        ) from None
    _print_summary(out)
    failed = [k for k in keys if done[k]["run"].get("failed")]
    if failed:  # everything is saved; the failed runs are rerun by --resume
        _safely(mark, FAILED, f"{len(failed)} run(s) failed: {', '.join(failed)}")
        raise SweepError(
            f"{len(failed)} of {len(keys)} runs failed ({', '.join(failed)}; why: above and in "
            f"{folder / results.STATUS_JSON}); the others are saved in {folder}: fix the cause "
            f"and rerun the failed ones with --resume {folder}"
        )
    results.remove_runs(folder)
    echo(f"results: {folder / results.RESULTS_JSON}, {folder / results.RESULTS_CSV}")
    for path in paths:
        echo(f"plot:    {path}")
    return folder


def _safely(write: Callable[..., Any], *args: Any) -> None:
    """Try to record a state; a full disk must not hide the error being reported."""
    with contextlib.suppress(OSError):
        write(*args)


def main(study: str, constants: Mapping[str, Any], argv: Sequence[str] | None = None) -> Path:
    """A driver's entry point: parse its settings, run its study, exit with a clear status.

    Exit codes: 0 done; 1 unusable data, run folder or disk (one line saying
    what to change); 2 a bad setting; 130 / 143 interrupted by SIGINT / SIGTERM
    (finished runs kept, ``--resume FOLDER`` finishes the sweep).
    """
    s = settings.parse(study, constants, argv)
    try:
        return run(s)
    except SweepError as err:
        sys.exit(f"error: {err}")
    except Interrupted as err:
        sys.exit(128 + err.signum)
