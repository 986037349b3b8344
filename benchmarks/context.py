"""What the run context costs per task: the context section of the suite (issue 14).

Every attempt is marked so that ``flowweaver.current()`` finds it; that marking is always
on, and shows in every other section. This section prices what a task does with it, on
the layered DAG of no-op tasks with ``SequentialExecutor`` and ``ThreadedExecutor(4)``,
forms taking turns: ``plain``; every task calling ``flowweaver.current()`` once; every
task logging one record to a logger with a handler that drops it (the record factory
of the run gives each record ``fw_*`` attributes); ``flowweaver.otel.TracingObserver``
on an SDK tracer provider with no exporter (a span per attempt made, made current, and
ended); ``capture_logs=True`` with no-op tasks (a tail per task, the streams teed); every
task logging one record and printing one line, without and with ``capture_logs`` (the
line goes to a sink that keeps nothing, in both). And, for scale, one such record made
outside any run (no factory), timed by itself.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
import timeit
from typing import Any

from . import workloads
from .measure import FormTimes, Progress, _quiet, rotated

FORMS = (
    "plain",
    "current()",
    "one log record",
    "TracingObserver",
    "capture_logs",
    "log + print",
    "log + print, captured",
)
_CAPTURED = ("capture_logs", "log + print, captured")
EXECUTORS = ("SequentialExecutor", "ThreadedExecutor(4)")
_LOG = logging.getLogger("flowweaver-bench.context")


class _Drop(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        pass


def _calls_current(**kw: object) -> None:
    import flowweaver

    flowweaver.current()


def _logs(**kw: object) -> None:
    _LOG.info("a task ran")


def _logs_and_prints(**kw: object) -> None:
    _LOG.info("a task ran")
    print("and said so")


class _Sink:
    """sys.stdout during the section: a print costs the same in every form."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


ContextResult = FormTimes  # one executor's times: form -> seconds per repetition


def _workflow(dag: workloads.Dag, form: str) -> Any:
    from flowweaver import Task, Workflow

    func = {
        "current()": _calls_current,
        "one log record": _logs,
        "log + print": _logs_and_prints,
        "log + print, captured": _logs_and_prints,
    }.get(form, workloads.noop)
    wf = Workflow(f"bench-context-{len(dag)}")
    names = dag.names
    for name, ups in zip(names, dag.deps, strict=True):
        wf.add_task(Task(name, func), depends_on=[names[j] for j in ups])
    return wf


def _tracing() -> Any:
    try:
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return None
    from flowweaver.otel import TracingObserver

    return TracingObserver(TracerProvider().get_tracer("bench"))


def record_outside_runs_us() -> float:
    """Microseconds to make and drop one record outside any run."""
    return min(timeit.repeat(lambda: _LOG.info("a task ran"), number=20_000, repeat=5)) / 20e3 * 1e6


def context_costs(n: int, rounds: int, progress: Progress = _quiet) -> list[ContextResult]:
    import flowweaver

    results = [ContextResult(n, e) for e in EXECUTORS]
    dag = workloads.make("layered", n)
    handler = _Drop()
    _LOG.addHandler(handler)
    _LOG.setLevel(logging.INFO)
    _LOG.propagate = False
    began = time.perf_counter()
    stdout, sys.stdout = sys.stdout, _Sink()
    try:
        for rep in range(rounds):
            for res in results:
                for form in rotated(FORMS, rep):
                    wf = _workflow(dag, form)
                    options: dict[str, Any] = {}
                    if form == "TracingObserver":
                        observer = _tracing()
                        if observer is None:
                            res.error = "TracingObserver: opentelemetry-sdk is not installed"
                            continue
                        options["observer"] = observer
                    if form in _CAPTURED:
                        options["capture_logs"] = True
                    ex: Any = (
                        flowweaver.SequentialExecutor(**options)
                        if res.executor == "SequentialExecutor"
                        else flowweaver.ThreadedExecutor(4, **options)
                    )
                    gc.collect()
                    start = time.perf_counter()
                    try:
                        ex.execute(wf)
                    except Exception as exc:
                        res.error = f"{form}: {type(exc).__name__}: {exc}"[:200]
                        continue
                    res.times.setdefault(form, []).append(time.perf_counter() - start)
    finally:
        sys.stdout = stdout
        _LOG.removeHandler(handler)
    progress(f"  context: {rounds} repetitions in {time.perf_counter() - began:.1f} s")
    return results
