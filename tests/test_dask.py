"""DaskExecutor: settings, the missing extra, and what only the awaitable form can show."""

from __future__ import annotations

import gc
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

distributed = pytest.importorskip("distributed")

import flowweaver  # noqa: E402
import flowweaver._remote._steps  # noqa: E402
import flowweaver.aio  # noqa: E402
from flowweaver import (  # noqa: E402
    FlowWeaverError,
    Task,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
    WorkflowStatus,
    WorkflowValidationError,
)
from flowweaver._dask._runner import DaskRunner  # noqa: E402
from flowweaver._dask._watch import EXECUTIONS, ExecutionLog, NoWorkersError  # noqa: E402
from flowweaver.aio import DaskExecutor as AwaitableDaskExecutor  # noqa: E402
from tests import dask_support as sup  # noqa: E402


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as c,
    ):
        yield c


def test_both_forms_are_exported() -> None:
    import flowweaver.aio

    assert "DaskExecutor" in flowweaver.__all__
    assert "DaskExecutor" in flowweaver.aio.__all__
    assert flowweaver.DaskExecutor is not flowweaver.aio.DaskExecutor
    assert flowweaver.DaskExecutor().concurrency == 1000


def test_without_distributed_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(FlowWeaverError, match=r'pip install "flowweaver\[dask\]"'):
        flowweaver.DaskExecutor()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"client": 42}, "client must be a distributed.Client"),
        ({"client": "  "}, "address is empty"),
        ({"max_in_flight": 0}, "max_in_flight must be at least 1"),
        ({"connect_timeout": 0}, "connect_timeout must be a positive number"),
        ({"connect_timeout": True}, "connect_timeout must be a positive number"),
        ({"client": "tcp://x:1", "cluster_options": {}}, "only apply with client=None"),
        ({"backend": "curio"}, "backend must be"),
        ({"keep_results": True}, "keep_results=True .* pass your Client, not None"),
        ({"client": "tcp://x:1", "keep_results": True}, "not an address"),
        ({"keep_results": "yes"}, "keep_results must be True or False"),
        ({"worker_timeout": 0}, "worker_timeout must be a positive number"),
        ({"worker_timeout": float("inf")}, "worker_timeout must be a positive number"),
        ({"worker_timeout": "60"}, "worker_timeout must be a positive number"),
    ],
)
def test_bad_settings_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkflowValidationError, match=message):
        flowweaver.DaskExecutor(**kwargs)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # Dask's async client is asyncio's
async def test_an_asynchronous_client_is_rejected(client: Any) -> None:
    async with distributed.Client(
        client.scheduler.address, asynchronous=True, set_as_default=False
    ) as async_client:
        with pytest.raises(WorkflowValidationError, match=r"synchronous distributed\.Client"):
            AwaitableDaskExecutor(async_client)


@pytest.mark.anyio
async def test_a_cancelled_run_cancels_its_futures_and_resets_tasks(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancelled: list[Any] = []
    cancel = DaskRunner.cancel

    def spy(self: DaskRunner, handle: Any) -> None:
        cancelled.append(handle)
        cancel(self, handle)

    monkeypatch.setattr(DaskRunner, "cancel", spy)
    wf = Workflow("cancelled")
    wf.add_task(Task("slow", lambda: time.sleep(2)))
    began = time.monotonic()
    with anyio.move_on_after(0.5):
        await AwaitableDaskExecutor(client).execute(wf)
    assert time.monotonic() - began < 2
    slow = wf.get_task("slow")
    assert slow is not None
    assert slow.status is TaskStatus.PENDING
    assert wf.status is WorkflowStatus.CANCELLED
    assert len(cancelled) == 1
    assert sup.settles(cancelled[0].future) == "cancelled"


@pytest.mark.anyio
async def test_the_driver_loop_is_free_while_tasks_run(client: Any) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    wf = Workflow("busy")
    for i in range(4):
        wf.add_task(Task(f"sleep{i}", lambda: time.sleep(0.3)))
    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        await AwaitableDaskExecutor(client).execute(wf)
        tg.cancel_scope.cancel()
    assert ticks >= 10  # ~60 in 0.6 s; a blocked loop would give 0 or 1


async def run_until_quick_completes(name: str, address: str) -> Workflow:
    """Run a workflow of a quick and a slow task, cancelling it once the quick one completed."""
    completed = anyio.Event()

    async def on_done(task: Task) -> None:  # async: awaited on the driver's loop
        completed.set()

    wf = Workflow(name)
    wf.add_task(Task("quick", lambda: {"rows": 3}, callbacks=[on_done]))
    wf.add_task(Task("slow", lambda: time.sleep(2)))
    async with anyio.create_task_group() as tg:
        tg.start_soon(AwaitableDaskExecutor(address).execute, wf)
        with anyio.fail_after(20):
            await completed.wait()
        tg.cancel_scope.cancel()
    return wf


@pytest.mark.anyio
async def test_an_interrupted_run_by_address_keeps_completed_results(client: Any) -> None:
    wf = await run_until_quick_completes("interrupted", client.scheduler.address)
    quick = wf.get_task("quick")
    assert quick is not None
    assert quick.snapshot() == (TaskStatus.COMPLETED, {"rows": 3}, None)
    assert quick.result == {"rows": 3}


@pytest.mark.anyio
async def test_a_result_an_interrupt_left_behind_says_why(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flowweaver._remote._steps, "INTERRUPTED_FETCH_WAIT", 0)
    wf = await run_until_quick_completes("left-behind", client.scheduler.address)
    with pytest.raises(FlowWeaverError, match=r"interrupted before the result of task 'quick'"):
        wf.get_task("quick").snapshot()  # type: ignore[union-attr]


@pytest.fixture
def no_workers() -> Iterator[Any]:
    """A cluster of its own with no worker (yet): a test adds them with ``scale``."""
    with distributed.LocalCluster(
        n_workers=0, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        yield cluster


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_a_cluster_without_workers_fails_the_run_after_worker_timeout(
    no_workers: Any,
) -> None:
    wf = Workflow("no-workers")
    wf.add_task(Task("x", lambda: 1))
    wf.add_task(Task("y", lambda x: x), depends_on=["x"])
    began = time.monotonic()
    with pytest.raises(WorkflowExecutionError) as info:
        await AwaitableDaskExecutor(no_workers.scheduler_address, worker_timeout=1).execute(wf)
    assert time.monotonic() - began < 15
    error = info.value.errors["x"]
    assert isinstance(error, NoWorkersError)
    assert isinstance(error, FlowWeaverError)
    assert "no worker for" in str(error)
    assert no_workers.scheduler_address in str(error)
    assert info.value.skipped_tasks == ["y"]


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_a_worker_that_joins_within_worker_timeout_runs_the_tasks(no_workers: Any) -> None:
    wf = Workflow("late-worker")
    wf.add_task(Task("x", lambda: 1))
    wf.add_task(Task("y", lambda x: x + 1), depends_on=["x"])

    async def scale_up_later() -> None:
        await anyio.sleep(1.5)  # longer than a poll: the watch has seen no worker
        await anyio.to_thread.run_sync(no_workers.scale, 1)

    async with anyio.create_task_group() as tg:
        tg.start_soon(scale_up_later)
        await AwaitableDaskExecutor(no_workers.scheduler_address, worker_timeout=20).execute(wf)
    assert wf.get_task("y").result == 2  # type: ignore[union-attr]


def test_a_second_execution_of_a_key_is_a_recomputation() -> None:
    heard: list[tuple[str, int, int]] = []
    log = ExecutionLog(client=None, recomputed=lambda *args: heard.append(args))
    key = ("lambda", "load", "0a1b2c3d", "1")
    log.heard(key)
    log.heard(("lambda", "other", "0a1b2c3d", "1"))
    assert heard == []
    log.heard(key)
    log.heard(key)
    assert heard == [("load", 1, 2), ("load", 1, 3)]


@pytest.mark.anyio
async def test_runs_sharing_a_client_share_one_subscription(client: Any) -> None:
    # Two runs at once on one client (distributed keeps one handler per topic), then
    # nothing left behind on the client once both ended.
    def build(name: str) -> Workflow:
        wf = Workflow(name)
        wf.add_task(Task("x", lambda: time.sleep(0.3)))
        return wf

    async with anyio.create_task_group() as tg:
        for name in ("first", "second"):
            tg.start_soon(AwaitableDaskExecutor(client).execute, build(name))
    assert EXECUTIONS not in client._event_handlers


@pytest.mark.anyio
async def test_nothing_holds_a_finished_runs_results_once_the_workflow_is_gone(
    client: Any,
) -> None:
    wf = Workflow("forgotten")
    wf.add_task(Task("forget_me", lambda: 1))
    await AwaitableDaskExecutor(client).execute(wf)
    del wf
    with warnings.catch_warnings():
        # This collection also frees what earlier tests left for the collector: on Python
        # 3.10 with an older pytest-asyncio, the event loop of each of its tests (an
        # unclosed socket pair), which would fail this test on its ResourceWarning.
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert sup.forgets(client, "forget_me")


@pytest.mark.anyio
async def test_values_fetched_for_the_store_are_not_fetched_again(
    client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    gathered: list[str] = []
    gather = DaskRunner._gather

    def spy(self: DaskRunner, handles: list[Any]) -> list[Any]:
        gathered.extend(h.name for h in handles)
        return gather(self, handles)

    monkeypatch.setattr(DaskRunner, "_gather", spy)
    wf = Workflow("stored")
    wf.add_task(Task("x", lambda: [1, 2]))
    wf.add_task(Task("y", lambda x: sum(x)), depends_on=["x"])
    store = flowweaver.aio.SQLiteStateStore(tmp_path / "state.db")
    await AwaitableDaskExecutor(client, state_store=store).execute(wf)
    assert sorted(gathered) == ["x", "y"]  # once each: for the store, not again at the end
    assert wf.get_task("y").result == 3  # type: ignore[union-attr]


def test_params_selection_plan_and_early_cut_off_on_a_cluster(client: Any, tmp_path: Any) -> None:
    from flowweaver import RunStarted, SQLiteStateStore, TaskRestored, TaskStarted
    from tests.helpers import EventLog

    store = SQLiteStateStore(tmp_path / "state.db")

    def build() -> Workflow:
        wf = Workflow("dask_options")
        wf.add_task(Task("extract", lambda date: {"date": date, "rows": 3}))
        wf.add_task(Task("rows", lambda extract: extract["rows"]), depends_on=["extract"])
        wf.add_task(Task("report", lambda rows: f"{rows} rows"), depends_on=["rows"])
        wf.add_task(Task("side", lambda: "side"))
        return wf

    def run(params: dict[str, Any], **options: Any) -> tuple[Workflow, EventLog]:
        wf, log = build(), EventLog()
        flowweaver.DaskExecutor(client, state_store=store, observer=log).execute(
            wf, params=params, **options
        )
        return wf, log

    wf, log = run({"date": "a"}, targets=["rows"])
    assert {e.task for e in log.of(TaskStarted)} == {"extract", "rows"}
    assert [e.total for e in log.of(RunStarted)] == [2]
    assert wf.get_task("side").status is TaskStatus.PENDING  # type: ignore[union-attr]
    wf, log = run({"date": "a"})
    assert {e.task for e in log.of(TaskStarted)} == {"report", "side"}
    assert wf.get_task("report").result == "3 rows"  # type: ignore[union-attr]

    plan = flowweaver.DaskExecutor(client, state_store=store).plan(build(), params={"date": "b"})
    assert {n: p.action for n, p in plan.items()} == {
        "extract": "run",
        "rows": "run",
        "report": "run",
        "side": "restore",
    }
    wf, log = run({"date": "b"})
    assert plan["report"].unless_unchanged
    # rows returned what it did: report is cut off
    assert {e.task for e in log.of(TaskStarted)} == {"extract", "rows"}
    assert {e.task for e in log.of(TaskRestored)} == {"report", "side"}
    assert wf.get_task("extract").result == {"date": "b", "rows": 3}  # type: ignore[union-attr]


_GAUGE = {"now": 0, "most": 0}


def _gauged() -> None:
    # runs on the in-process worker's threads, which share this module: no lock needed
    # beyond the GIL for a read-modify-write pair this coarse (the sleep dominates)
    _GAUGE["now"] += 1
    _GAUGE["most"] = max(_GAUGE["most"], _GAUGE["now"])
    time.sleep(0.05)
    _GAUGE["now"] -= 1


def test_limits_hold_on_a_cluster_because_admission_is_the_drivers(client: Any) -> None:
    _GAUGE.update(now=0, most=0)
    wf = Workflow("dask-limited")
    for k in range(6):
        wf.add_task(Task(f"db{k}", _gauged, tags=["db"]))
    flowweaver.DaskExecutor(client, limits={"db": 1}).execute(wf)
    assert all(t.status is TaskStatus.COMPLETED for t in wf.tasks)
    assert _GAUGE["most"] == 1
    _GAUGE.update(now=0, most=0)
    for t in wf.tasks:
        t._reset()
    flowweaver.DaskExecutor(client, limits={"db": 2}).execute(wf)
    assert _GAUGE["most"] == 2  # the worker has 2 threads: the limit, not the cluster, bounds


def _where_am_i() -> list[object]:
    c = flowweaver.current()
    assert c is not None
    return [c.workflow, c.task, c.attempt, c.run_id]


async def _where_am_i_async() -> list[object]:
    return _where_am_i()


def test_a_task_on_a_dask_worker_sees_its_context(client: Any) -> None:
    events: list[Any] = []
    wf = Workflow("on-dask")
    wf.add_task(Task("sync", _where_am_i))
    wf.add_task(Task("async", _where_am_i_async))
    flowweaver.DaskExecutor(client, observer=events.append).execute(wf)
    run_id = next(e.run_id for e in events if isinstance(e, flowweaver.RunStarted))
    assert wf.get_task("sync").result == ["on-dask", "sync", 1, run_id]  # type: ignore[union-attr]
    assert wf.get_task("async").result == ["on-dask", "async", 1, run_id]  # type: ignore[union-attr]


def _trace_ids() -> list[int]:
    from opentelemetry import trace

    c = trace.get_current_span().get_span_context()
    return [c.trace_id, c.span_id]


def test_a_task_on_a_dask_worker_runs_in_its_attempts_trace(client: Any) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from flowweaver.otel import TracingObserver

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    wf = Workflow("traced-on-dask")
    wf.add_task(Task("t", _trace_ids))
    observer = TracingObserver(provider.get_tracer("tests"))
    flowweaver.DaskExecutor(client, observer=observer).execute(wf)
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "t"]
    assert wf.get_task("t").result == [span.context.trace_id, span.context.span_id]  # type: ignore[union-attr]


def test_keys_are_grouped_by_task_function_so_the_scheduler_keeps_few_groups(
    client: Any,
) -> None:
    """Dask keeps state per key group (the key's first part): one per function, not one
    per wrapper object the engine makes to carry each attempt's context."""
    wf = Workflow("grouped")
    wf.add_task(Task("first", sup.own_key))
    wf.add_task(Task("second", sup.own_key))
    flowweaver.DaskExecutor(client).execute(wf)
    keys = [wf.get_task(name).result for name in ("first", "second")]
    assert [key[:2] for key in keys] == [["own_key", "first"], ["own_key", "second"]]
