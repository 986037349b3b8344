"""What watching a run costs: the watching section of the suite (issue 14).

The layered DAG runs in four forms, taking turns in one process, with
``SequentialExecutor`` and ``ThreadedExecutor(4)``:

* ``no observer``: the baseline;
* ``no-op observer``: ``observer=lambda event: None``: what the engine's events cost
  (made only when there is an observer), whoever receives them;
* ``progress(), pipe``: ``flowweaver.progress(console=Console(file=StringIO()))``: the
  counts and the occasional lines of a log or a pipe;
* ``progress(), terminal``: the same console with ``force_terminal=True``: rich's live
  display, redrawn 4 times a second by its own thread while the run goes on.

Two kinds of task: no-op ones (all orchestration: the worst case for any per-event cost)
and ones that compute for about 100 us (closer to a real task). Building the workflow is
not timed; ``execute`` is.
"""

from __future__ import annotations

import gc
import io
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from . import workloads
from .measure import Progress, _quiet, rotated

FORMS = ("no observer", "no-op observer", "progress(), pipe", "progress(), terminal")
EXECUTORS = ("SequentialExecutor", "ThreadedExecutor(4)")
TASKS = ("no-op", "100 us")


@dataclass
class WatchingResult:
    """One executor and kind of task: form -> seconds per repetition."""

    n: int
    executor: str
    task: str
    times: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None

    def us_per_task(self, form: str) -> float | None:
        t = self.times.get(form)
        return statistics.median(t) / self.n * 1e6 if t else None

    def ratio(self, form: str, to: str = "no observer") -> float | None:
        a, b = self.us_per_task(form), self.us_per_task(to)
        return None if a is None or not b else a / b


def _busy(**kw: object) -> None:
    """About 100 us of pure-Python work (a loop of the interpreter, holding the GIL)."""
    end = time.perf_counter() + 100e-6
    while time.perf_counter() < end:
        pass


def _workflow(dag: workloads.Dag, task: str) -> Any:
    from flowweaver import Task, Workflow

    func = workloads.noop if task == "no-op" else _busy
    wf = Workflow(f"bench-watching-{len(dag)}")
    names = dag.names
    for name, ups in zip(names, dag.deps, strict=True):
        wf.add_task(Task(name, func), depends_on=[names[j] for j in ups])
    return wf


def _observer(form: str) -> Any:
    import flowweaver

    if form == "no observer":
        return None
    if form == "no-op observer":
        return lambda event: None
    from rich.console import Console

    terminal = form == "progress(), terminal"
    console = Console(file=io.StringIO(), force_terminal=terminal, width=120)
    return flowweaver.progress(console=console)


def _executor(name: str, form: str) -> Any:
    import flowweaver

    observer = _observer(form)
    if name == "SequentialExecutor":
        return flowweaver.SequentialExecutor(observer=observer)
    return flowweaver.ThreadedExecutor(4, observer=observer)


def watching_costs(n: int, rounds: int, progress: Progress = _quiet) -> list[WatchingResult]:
    """Each form of :data:`FORMS` on the layered DAG of ``n`` tasks, each executor and
    kind of task, taking turns, ``rounds`` repetitions each."""
    results = [WatchingResult(n, e, t) for t in TASKS for e in EXECUTORS]
    dag = workloads.make("layered", n)
    began = time.perf_counter()
    for rep in range(rounds):
        for res in results:
            for form in rotated(FORMS, rep):
                if res.error is not None:
                    continue
                wf = _workflow(dag, res.task)
                try:
                    executor = _executor(res.executor, form)
                    gc.collect()
                    start = time.perf_counter()
                    executor.execute(wf)
                    seconds = time.perf_counter() - start
                except Exception as exc:
                    res.error = f"{form}: {type(exc).__name__}: {exc}"[:200]
                    progress(f"  watching with {res.executor} failed: {res.error}")
                    continue
                res.times.setdefault(form, []).append(seconds)
    progress(f"  watching: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return results
