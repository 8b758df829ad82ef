"""Run a campaign: problems to workers, verdict records back to one JSONL file.

The engine is Dask distributed: an embedded ``LocalCluster`` of worker *processes* (one
thread each: the numeric work holds the GIL), or an existing cluster given by its
scheduler's address.  Per task the client ships a problem index and the campaign's
:class:`~adjoint_sym.campaign.verdict.Settings` (a few hundred bytes); the worker draws
the problem, builds it (systems and compiled kernels stay cached in the worker process,
so each template is derived and compiled once per worker), judges it and sends back the
record (one to two kilobytes).  A window of a few tasks per worker thread is in flight,
so memory stays flat and an interruption loses at most the window.  Without Dask (or
with ``workers=0``) the same tasks run one after the other in this process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path

from ..errors import InvalidModelError
from ..testing.gradient_function import DEFAULT_RTOL
from .problems import problem_spec
from .records import RecordWriter, open_results
from .summary import CampaignSummary, summarize
from .verdict import Settings, crash_record, function_name, run_problem

#: Problems in one campaign at most (a bound on a mistyped ``--problems``).
MAX_PROBLEMS = 10_000_000
#: Tasks in flight per worker thread: enough to hide the round trip, few enough to lose little.
WINDOW_PER_THREAD = 4
#: Seconds to wait for an existing scheduler to answer.
CONNECT_TIMEOUT = 10
NO_DASK = "dask.distributed is not installed, so the campaign runs in one process (pip install 'adjoint_sym[campaign]')"


def dask_available() -> bool:
    """Whether ``distributed`` imports (the ``[campaign]`` extra)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def run_campaign(
    problems: int,
    out: str | Path,
    *,
    seed: int = 0,
    families: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    function: str | Callable | None = None,
    function_rtol: float = DEFAULT_RTOL,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    timeout: float | None = 300.0,
    on_start: Callable[[str, int, int], None] | None = None,
    on_record: Callable[[dict], None] | None = None,
) -> CampaignSummary:
    """Judge problems ``0 .. problems-1`` of the campaign ``seed``, one JSONL record each.

    Parameters
    ----------
    problems : int
        How many problems (indices ``0 .. problems-1``).
    out : str or Path
        The results file (JSON Lines); it must not exist unless ``resume``.
    seed : int
        The same seed draws the same problems on every machine.
    families : sequence of str, optional
        Default all of :data:`~adjoint_sym.campaign.families.FAMILIES` (they take turns).
    methods : sequence of str, optional
        The methods :func:`~adjoint_sym.verify.check` compares (default the checker's), or,
        with ``function``, the references it is compared with (default complex step).
    function : str or callable, optional
        A gradient function to campaign instead of the library's methods:
        ``"module:callable"`` or a callable, with the contract of
        :func:`~adjoint_sym.testing.check_gradient_function`.
    function_rtol : float
        The accuracy the function is judged at (its ``tau`` in the tolerance model).
    workers : int, optional
        Local worker processes (default: one per CPU); ``0`` runs in this process.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``) instead of a local cluster.
    resume : bool
        Continue ``out``: skip the indices it holds (a truncated last line is dropped).
    timeout : float or None
        Wall seconds per problem; a problem over it is recorded as a crash.
    on_start : callable ``(engine, todo, done)``, optional
        Called once the engine runs: its description, problems to do, problems already done.
    on_record : callable ``record -> None``, optional
        Called with every record as it is written (progress bars).

    Returns
    -------
    CampaignSummary
        Of every record in ``out`` with an index below ``problems``.

    Examples
    --------
    >>> import os, tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "results.jsonl")
    >>> summary = run_campaign(2, out, families=["growing", "backward"], methods=["adjoint", "forward"], workers=0)
    >>> summary.problems, summary.verdicts["ok"], len(open(out).readlines())
    (2, 2, 2)
    """
    if isinstance(problems, bool) or not isinstance(problems, int) or not 1 <= problems <= MAX_PROBLEMS:
        raise InvalidModelError(f"problems must be an integer from 1 to {MAX_PROBLEMS}, got {problems!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise InvalidModelError(f"workers must be a non-negative integer (0: in this process), got {workers!r}")
    if workers is not None and scheduler is not None:
        raise InvalidModelError("give either workers (a local cluster) or scheduler (an existing one), not both")
    methods = None if methods is None else tuple(methods)
    settings = Settings(seed, families, methods, function, function_rtol, timeout)
    done = open_results(out, resume=resume, config=settings.config())
    todo = [i for i in range(problems) if i not in done]
    new: list[dict] = []
    clock = time.perf_counter()
    with _engine(workers, scheduler, todo) as (engine, records):
        startup = time.perf_counter() - clock
        if on_start is not None:
            on_start(engine, len(todo), problems - len(todo))
        started = time.perf_counter()
        with RecordWriter(out) as writer:
            for record in records(todo, settings):
                writer.append(record)
                new.append(_slim(record))
                if on_record is not None:
                    on_record(record)
        computing = time.perf_counter() - started
    rate = 60.0 * len(new) / computing if new and computing > 0 else None
    mode = "check" if function is None else f"function {function_name(function)}"
    kept = [r for r in [*done.values(), *new] if r["index"] < problems]
    return summarize(
        kept, computed=len(new), problems_per_minute=rate, startup=startup, engine=engine, mode=mode, out=str(out)
    )


def _slim(record: dict) -> dict:
    """What the summary needs of a record (the campaign keeps these, not whole records)."""
    keep = ("index", "family", "verdict", "error", "timings")
    return {k: record.get(k) for k in keep} | {
        "failures": [{"cause_kind": f["cause_kind"]} for f in record["failures"]]
    }


# -- engines ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _engine(workers: int | None, scheduler: str | None, todo: list[int]):
    """``(description, records)``: ``records(todo, settings)`` yields records as they complete."""
    if workers == 0 or not todo:
        yield "one process", _in_process
        return
    if not dask_available():
        if scheduler is not None:
            raise InvalidModelError(
                f"scheduler {scheduler!r}: {NO_DASK.split(', so')[0]}; pip install 'adjoint_sym[campaign]'"
            )
        warnings.warn(NO_DASK, RuntimeWarning, stacklevel=3)
        yield f"one process ({NO_DASK})", _in_process
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InvalidModelError(
                f"scheduler {scheduler!r}: cannot connect ({exc}); start one with `dask scheduler` "
                "and workers with `dask worker ADDRESS`, or leave out --scheduler"
            ) from None
        with client:
            threads = sum(client.nthreads().values())
            if threads == 0:
                raise InvalidModelError(
                    f"scheduler {scheduler!r} has no workers; start some with `dask worker {scheduler}`"
                )
            yield f"Dask scheduler {scheduler}, {len(client.nthreads())} workers, {threads} threads", _on_dask(client)
        return
    count = min(workers or os.cpu_count() or 1, len(todo))
    cluster = LocalCluster(
        n_workers=count,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    with cluster, Client(cluster) as client:
        yield f"Dask LocalCluster, {count} worker process{'es' if count > 1 else ''}", _on_dask(client)


def _in_process(todo: list[int], settings: Settings) -> Iterator[dict]:
    for index in todo:
        yield run_problem(index, settings)


def _on_dask(client):
    def records(todo: list[int], settings: Settings) -> Iterator[dict]:
        from distributed import as_completed

        window = WINDOW_PER_THREAD * max(1, sum(client.nthreads().values()))
        queue = iter(todo)
        running = as_completed()
        index_of = {}

        def submit(index: int) -> None:
            future = client.submit(run_problem, index, settings, pure=False)
            index_of[future.key] = index
            running.add(future)

        for index in islice(queue, window):
            submit(index)
        for future in running:
            index = index_of.pop(future.key)
            try:
                record = future.result()
            except Exception as exc:  # the worker died (KilledWorker) or the task was lost: a crash, recorded
                record = crash_record(
                    index, settings, exc, "worker", problem_spec(settings.seed, index, settings.families)
                )
            future.release()
            following = next(queue, None)
            if following is not None:
                submit(following)
            yield record

    return records


__all__ = ["MAX_PROBLEMS", "dask_available", "run_campaign"]
