"""OpenTelemetry traces of FlowWeaver runs: ``pip install "flowweaver[otel]"``.

``TracingObserver`` makes a span per run and a child span per task attempt; configure
OpenTelemetry's SDK (a tracer provider, an exporter) as you would for any program, then
pass the observer to an executor::

    from flowweaver.otel import TracingObserver

    flowweaver.ThreadedExecutor(observer=TracingObserver()).execute(workflow)

Theory of operation. Run events open and close the spans on the loop thread; the engine
also asks the observer to wrap each attempt where it runs (its ``_flowweaver_attempt_scope``,
see ``flowweaver._context.AttemptScope``), so the attempt's span is the current span
while the task's code runs: spans that code makes (an HTTP client's, a database
driver's) are its children, in async tasks, on worker threads, inline, and in worker
processes and on Dask workers (the span's context travels as W3C headers, attached
there). A run started by a task (a nested workflow) finds that task's span current when
it starts, and its run span is a child of it. Only ``opentelemetry-api`` is needed; the
observer never breaks a run (the engine logs what it raises).
"""

from __future__ import annotations

import threading
from typing import Any

from ._context import TaskContext
from ._errors import FlowWeaverError
from ._events import (
    RunEvent,
    RunFinished,
    RunStarted,
    TaskCancelled,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskRestored,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
)

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Span, Status, StatusCode
except ImportError:  # pragma: no cover - checked by the test of the missing extra
    trace = None  # type: ignore[assignment]

__all__ = ["TracingObserver"]


class TracingObserver:
    """An observer that records each run and each task attempt as OpenTelemetry spans.

    Span names: ``"flowweaver run <workflow>"`` for a run, the task's name for an attempt
    (an item of a mapped task: the item's, ``"load[3]"``). Attributes:
    ``flowweaver.workflow``, ``flowweaver.run_id``, ``flowweaver.task``,
    ``flowweaver.item``, ``flowweaver.attempt``, ``flowweaver.status``
    (``COMPLETED``, ``FAILED``, ``RETRYING``, ``SKIPPED``, ``RESTORED``, ``CANCELLED``).
    A failed attempt records its exception and an error status; one that will be retried
    gets a ``retry`` event with the delay. A skipped or restored task is a span of no
    length with the reason.

    :param tracer: the tracer to use; None: ``trace.get_tracer("flowweaver")`` of the
        global tracer provider.
    :raises FlowWeaverError: opentelemetry-api is not installed.
    """

    def __init__(self, tracer: Any = None) -> None:
        if trace is None:
            raise FlowWeaverError(
                'TracingObserver needs OpenTelemetry: pip install "flowweaver[otel]"'
            )
        from . import __version__

        self._tracer = tracer if tracer is not None else trace.get_tracer("flowweaver", __version__)
        self._lock = threading.Lock()  # attempts are entered on worker threads
        self._runs: dict[str, Span] = {}
        self._attempts: dict[tuple[str, str], Span] = {}
        # what the engine calls around each attempt (see flowweaver._context.AttemptScope)
        self._flowweaver_attempt_scope = self

    # -- events (on the run's loop thread) -------------------------------------------------

    def on_event(self, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            # current here is the span of the task that started this run, if one did
            span = self._tracer.start_span(
                f"flowweaver run {event.workflow}",
                attributes={
                    "flowweaver.workflow": event.workflow,
                    "flowweaver.run_id": event.run_id,
                    "flowweaver.tasks": event.total,
                },
            )
            with self._lock:
                self._runs[event.run_id] = span
        elif isinstance(event, RunFinished):
            self._run_finished(event)
        elif isinstance(event, TaskEvent):
            self._task_event(event)

    def _run_finished(self, event: RunFinished) -> None:
        with self._lock:
            span = self._runs.pop(event.run_id, None)
            left = [k for k in self._attempts if k[0] == event.run_id]
            stray = [self._attempts.pop(k) for k in left]
        for s in stray:  # attempts the run's end cut short
            s.set_attribute("flowweaver.status", "CANCELLED")
            s.end()
        if span is None:
            return
        status = str(getattr(event.status, "value", event.status))
        span.set_attribute("flowweaver.status", status)
        if status != "COMPLETED":
            span.set_status(Status(StatusCode.ERROR, f"the run ended {status}"))
        span.end()

    def _task_event(self, event: TaskEvent) -> None:
        key = (event.run_id, event.task)
        if isinstance(event, TaskStarted):
            self._attempt(key, event.workflow, event.task, event.item, event.attempt)
            return
        if isinstance(event, (TaskSkipped, TaskRestored)):
            span = self._instant(event)
            if isinstance(event, TaskSkipped):
                span.set_attribute("flowweaver.status", "SKIPPED")
                span.set_attribute("flowweaver.reason", event.reason)
            else:
                span.set_attribute("flowweaver.status", "RESTORED")
            span.end()
            return
        with self._lock:
            ended: Span | None = self._attempts.pop(key, None)
        if ended is None:
            return
        span = ended
        if isinstance(event, TaskCompleted):
            span.set_attribute("flowweaver.status", "COMPLETED")
            span.set_status(Status(StatusCode.OK))
        elif isinstance(event, TaskRetrying):
            span.set_attribute("flowweaver.status", "RETRYING")
            span.record_exception(event.error)
            span.add_event("retry", {"flowweaver.delay": event.delay})
            span.set_status(Status(StatusCode.ERROR, _describe(event.error)))
        elif isinstance(event, TaskFailed):
            span.set_attribute("flowweaver.status", "FAILED")
            span.record_exception(event.error)
            span.set_status(Status(StatusCode.ERROR, _describe(event.error)))
        elif isinstance(event, TaskCancelled):
            span.set_attribute("flowweaver.status", "CANCELLED")
        span.end()

    def _attempt(
        self, key: tuple[str, str], workflow: str, task: str, item: Any, attempt: int
    ) -> Span:
        """The span of the task's attempt in flight, started now if it was not yet."""
        with self._lock:
            span = self._attempts.get(key)
            if span is not None:
                return span
            parent = self._runs.get(key[0])
        attributes: dict[str, Any] = {
            "flowweaver.workflow": workflow,
            "flowweaver.run_id": key[0],
            "flowweaver.task": task,
            "flowweaver.attempt": attempt,
        }
        if item is not None:
            attributes["flowweaver.item"] = str(item)
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        span = self._tracer.start_span(task, context=ctx, attributes=attributes)
        with self._lock:
            # another thread may have started it meanwhile: keep the first
            span = self._attempts.setdefault(key, span)
        return span

    def _instant(self, event: TaskEvent) -> Span:
        with self._lock:
            parent = self._runs.get(event.run_id)
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        attributes: dict[str, Any] = {
            "flowweaver.workflow": event.workflow,
            "flowweaver.run_id": event.run_id,
            "flowweaver.task": event.task,
        }
        if event.item is not None:
            attributes["flowweaver.item"] = str(event.item)
        return self._tracer.start_span(event.task, context=ctx, attributes=attributes)

    # -- around each attempt, where it runs (see flowweaver._context.AttemptScope) -------------

    def _span_of(self, ctx: TaskContext) -> Span:
        return self._attempt((ctx.run_id, ctx.task), ctx.workflow, ctx.task, ctx.item, ctx.attempt)

    def enter(self, ctx: TaskContext) -> Any:
        return otel_context.attach(trace.set_span_in_context(self._span_of(ctx)))

    def exit(self, token: Any) -> None:
        otel_context.detach(token)

    def carrier(self, ctx: TaskContext) -> dict[str, str] | None:
        headers: dict[str, str] = {}
        propagate.inject(headers, context=trace.set_span_in_context(self._span_of(ctx)))
        return headers


def _describe(error: BaseException) -> str:
    try:
        return f"{type(error).__name__}: {error}"
    except Exception:
        return type(error).__name__
