"""What resource control costs per task: the resources section of the suite (issue 13).

The same layered DAG of no-op tasks runs in several forms, taking turns in one process,
with ``SequentialExecutor`` and ``ThreadedExecutor(4)``:

* ``plain``: no tags, no limits (the baseline);
* ``limit, never full``: every task tagged ``db``, ``limits={"db": N}``: the gate's
  bookkeeping on every admission, no task ever waits;
* ``limit 2``: ``limits={"db": 2}``: under ``ThreadedExecutor(4)`` most ready tasks park
  on the tag and are let go one by one (with Sequential nothing waits: one at a time);
* ``rate, never empty``: ``rate_limits={"db": "<huge>/s"}``: a clock read and a token per
  admission, no task ever waits;
* ``retried once``: no limits, every task fails its first attempt and is retried at once
  (``retries=1, retry_on=RuntimeError``): the cost of a retry, per task.

Building the workflow is not timed; ``execute`` is.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from . import workloads
from .measure import FormTimes, Progress, _quiet, rotated

FORMS = ("plain", "limit, never full", "limit 2", "rate, never empty", "retried once")
EXECUTORS = ("SequentialExecutor", "ThreadedExecutor(4)")


ResourcesResult = FormTimes  # one executor's times: form -> seconds per repetition


def _fails_once() -> Callable[..., None]:
    failed = [False]

    def task(**kw: object) -> None:
        if not failed[0]:
            failed[0] = True
            raise RuntimeError("the first attempt fails")

    return task


def _workflow(dag: workloads.Dag, form: str) -> Any:
    from flowweaver import Task, Workflow

    wf = Workflow(f"bench-resources-{len(dag)}")
    names = dag.names
    tagged = form not in ("plain", "retried once")
    for name, ups in zip(names, dag.deps, strict=True):
        if form == "retried once":
            t = Task(name, _fails_once(), retries=1, retry_on=RuntimeError)
        else:
            t = Task(name, workloads.noop, tags=["db"] if tagged else ())
        wf.add_task(t, depends_on=[names[j] for j in ups])
    return wf


def _executor(name: str, form: str, n: int) -> Any:
    import flowweaver

    options: dict[str, Any] = {}
    if form == "limit, never full":
        options["limits"] = {"db": n}
    elif form == "limit 2":
        options["limits"] = {"db": 2}
    elif form == "rate, never empty":
        options["rate_limits"] = {"db": f"{n * 1000}/s"}
    if name == "SequentialExecutor":
        return flowweaver.SequentialExecutor(**options)
    return flowweaver.ThreadedExecutor(4, **options)


def resource_costs(n: int, rounds: int, progress: Progress = _quiet) -> list[ResourcesResult]:
    """Each form of :data:`FORMS` on the layered DAG of ``n`` tasks with each executor,
    taking turns, ``rounds`` repetitions each."""
    import logging

    results = [ResourcesResult(n, e) for e in EXECUTORS]
    dag = workloads.make("layered", n)
    began = time.perf_counter()
    # a retry logs a warning per task: measured, not printed
    flowweaver_log = logging.getLogger("flowweaver")
    level = flowweaver_log.level
    flowweaver_log.setLevel(logging.ERROR)
    try:
        for rep in range(rounds):
            for res in results:
                for form in rotated(FORMS, rep):
                    if res.error is not None:
                        continue
                    wf = _workflow(dag, form)
                    try:
                        executor = _executor(res.executor, form, n)
                        gc.collect()
                        start = time.perf_counter()
                        executor.execute(wf)
                        seconds = time.perf_counter() - start
                    except Exception as exc:
                        res.error = f"{form}: {type(exc).__name__}: {exc}"[:200]
                        progress(f"  resources with {res.executor} failed: {res.error}")
                        continue
                    res.times.setdefault(form, []).append(seconds)
    finally:
        flowweaver_log.setLevel(level)
    progress(f"  resources: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return results
