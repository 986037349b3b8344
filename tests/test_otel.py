"""flowweaver.otel.TracingObserver, read back through the SDK's in-memory exporter."""

from __future__ import annotations

import importlib
import logging
import sys
import time
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

import flowweaver
from flowweaver import FlowWeaverError, Task, Workflow
from flowweaver.otel import TracingObserver
from tests import process_tasks
from tests.run_helpers import Runner


@pytest.fixture
def spans() -> Any:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    yield exporter, tracer
    provider.shutdown()


def _by_name(finished: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for s in finished:
        out.setdefault(s.name, []).append(s)
    return out


def _parent(s: ReadableSpan) -> int | None:
    return s.parent.span_id if s.parent is not None else None


def test_a_diamond_with_a_retry_a_failure_and_a_nested_run(
    form: tuple[type, bool], backend: str, spans: Any
) -> None:
    exporter, tracer = spans
    runner = Runner(None, *form, backend)
    tries: list[int] = []

    def flaky() -> int:
        tries.append(1)
        with tracer.start_as_current_span("flaky's own work"):
            if len(tries) == 1:
                raise ConnectionError("first attempt fails")
        return 1

    def nested(flaky: int) -> int:
        inner = Workflow("inner")
        inner.add_task(Task("leaf", lambda: 2))
        inner.execute(flowweaver.SequentialExecutor(observer=TracingObserver(tracer)))
        return 2

    async def breaks(flaky: int) -> None:
        with tracer.start_as_current_span("breaks' own work"):
            raise ValueError("broken")

    wf = Workflow("diamond")
    wf.add_task(Task("flaky", flaky, retries=1))
    wf.add_task(Task("nested", nested), depends_on=["flaky"])
    wf.add_task(Task("breaks", breaks), depends_on=["flaky"])
    wf.add_task(Task("join", lambda **kw: None), depends_on=["nested", "breaks"])
    with pytest.raises(flowweaver.WorkflowExecutionError):
        runner.run(wf, observer=TracingObserver(tracer))

    got = _by_name(exporter.get_finished_spans())
    (run,) = got["flowweaver run diamond"]
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes["flowweaver.status"] == "FAILED"
    # two attempts of flaky: the first failed with its exception and a retry event
    first, second = sorted(got["flaky"], key=lambda s: s.attributes["flowweaver.attempt"])
    assert [_parent(first), _parent(second)] == [run.context.span_id] * 2
    assert first.attributes["flowweaver.status"] == "RETRYING"
    assert first.status.status_code is StatusCode.ERROR
    assert [e.name for e in first.events] == ["exception", "retry"]
    assert second.attributes["flowweaver.status"] == "COMPLETED"
    # the task's own spans are children of its attempt's span
    own = sorted(got["flaky's own work"], key=lambda s: s.start_time or 0)
    assert [_parent(s) for s in own] == [first.context.span_id, second.context.span_id]
    (broken,) = got["breaks"]
    assert broken.attributes["flowweaver.status"] == "FAILED"
    assert broken.events[0].attributes["exception.type"] == "ValueError"  # type: ignore[index]
    assert _parent(got["breaks' own work"][0]) == broken.context.span_id
    # the nested run hangs below the task that ran it, its task below its run
    (nested_task,) = got["nested"]
    (inner_run,) = got["flowweaver run inner"]
    assert _parent(inner_run) == nested_task.context.span_id
    assert inner_run.attributes["flowweaver.run_id"] != run.attributes["flowweaver.run_id"]
    assert _parent(got["leaf"][0]) == inner_run.context.span_id
    # skipped below the failure: a span of no length with the reason
    (join,) = got["join"]
    assert join.attributes["flowweaver.status"] == "SKIPPED"
    assert "breaks" in str(join.attributes["flowweaver.reason"])
    # every span shares the run's trace
    assert {s.context.trace_id for s in exporter.get_finished_spans()} == {run.context.trace_id}


def test_a_sync_task_with_a_timeout_and_mapped_items_get_spans(spans: Any) -> None:
    exporter, tracer = spans
    wf = Workflow("shapes")

    def timed() -> None:
        with tracer.start_as_current_span("inside timed"):
            pass

    wf.add_task(Task("timed", timed, timeout=30))
    wf.add_task(Task("rows", lambda: [1, 2]))
    wf.add_task(Task("load", lambda rows: rows, map_over="rows"), depends_on=["rows"])
    flowweaver.ThreadedExecutor(observer=TracingObserver(tracer)).execute(wf)
    got = _by_name(exporter.get_finished_spans())
    assert _parent(got["inside timed"][0]) == got["timed"][0].context.span_id
    assert {s.attributes["flowweaver.item"] for s in got["load[0]"] + got["load[1]"]} == {
        "0",
        "1",
    }


def test_restored_tasks_are_spans_too(tmp_path: Any, spans: Any) -> None:
    exporter, tracer = spans
    store = flowweaver.SQLiteStateStore(tmp_path / "s.db")
    wf = Workflow("again")
    wf.add_task(Task("a", lambda: 1))
    flowweaver.SequentialExecutor(store).execute(wf)
    flowweaver.SequentialExecutor(store, observer=TracingObserver(tracer)).execute(wf)
    got = _by_name(exporter.get_finished_spans())
    assert got["a"][0].attributes["flowweaver.status"] == "RESTORED"


@pytest.mark.parametrize("func", ["sync", "async"])
def test_a_task_in_a_worker_process_runs_in_its_attempts_trace(
    backend: str, func: str, spans: Any
) -> None:
    exporter, tracer = spans
    target = process_tasks.trace_ids if func == "sync" else process_tasks.trace_ids_async
    wf = Workflow("apart")
    wf.add_task(Task("t", target, isolation="process"))
    flowweaver.ThreadedExecutor(backend=backend, observer=TracingObserver(tracer)).execute(wf)  # type: ignore[arg-type]
    (span,) = _by_name(exporter.get_finished_spans())["t"]
    trace_id, span_id = wf.get_task("t").result  # type: ignore[union-attr]
    assert (trace_id, span_id) == (span.context.trace_id, span.context.span_id)


def test_an_observer_that_raises_never_breaks_the_run(caplog: Any) -> None:
    class Broken:
        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the tracer is broken")

    wf = Workflow("sturdy")
    wf.add_task(Task("a", lambda: 1))
    wf.add_task(Task("b", lambda a: a + 1), depends_on=["a"])
    with caplog.at_level(logging.ERROR, logger="flowweaver"):
        flowweaver.ThreadedExecutor(observer=TracingObserver(Broken())).execute(wf)
    assert wf.get_task("b").result == 2  # type: ignore[union-attr]
    assert "the tracer is broken" in caplog.text


def test_without_opentelemetry_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "flowweaver.otel")
    try:
        otel = importlib.import_module("flowweaver.otel")
        with pytest.raises(FlowWeaverError, match=r'pip install "flowweaver\[otel\]"'):
            otel.TracingObserver()
    finally:
        monkeypatch.undo()
        importlib.reload(sys.modules["flowweaver.otel"])


def test_without_an_sdk_the_global_tracer_makes_no_spans_and_costs_little() -> None:
    # the API alone: a no-op tracer; the run works and the attempts still see a span
    seen = []
    wf = Workflow("api-only")
    wf.add_task(Task("a", lambda: seen.append(trace.get_current_span())))
    began = time.perf_counter()
    flowweaver.SequentialExecutor(observer=TracingObserver()).execute(wf)
    assert time.perf_counter() - began < 5
    assert len(seen) == 1
