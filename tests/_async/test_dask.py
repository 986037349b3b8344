"""DaskExecutor on an in-process LocalCluster: awaitable in tests/_async, blocking in _sync."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from flowweaver import (  # noqa: E402
    FlowWeaverError,
    Task,
    TaskStatus,
    TaskTimeoutError,
    Workflow,
    WorkflowExecutionError,
    WorkflowStatus,
)
from flowweaver._dask._runner import DaskRunner  # noqa: E402
from flowweaver._dask._worker import ResultNotPicklableError  # noqa: E402
from flowweaver._remote._protocol import RemoteResult  # noqa: E402
from flowweaver.aio import DaskExecutor, SQLiteStateStore  # noqa: E402
from tests import dask_support as sup  # noqa: E402


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """One in-process cluster for the module: 2 workers x 2 threads."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as c,
    ):
        yield c


def lazy_value(wf: Workflow, name: str) -> Any:
    t = wf.get_task(name)
    assert t is not None
    return t._state[1]


def result(wf: Workflow, name: str) -> Any:
    t = wf.get_task(name)
    assert t is not None
    return t.result


@pytest.mark.anyio
async def test_sync_async_lambda_and_closure_tasks_run_on_the_cluster(client: Any) -> None:
    offset = 10

    def closure(a: int) -> int:
        return a + offset

    wf = Workflow("kinds")
    wf.add_task(Task("a", lambda: 1))
    wf.add_task(Task("closure", closure), depends_on=["a"])
    wf.add_task(Task("awaited", sup.awaited), depends_on=["a", "closure"])
    await DaskExecutor(client).execute(wf)
    assert wf.status is WorkflowStatus.COMPLETED
    a, c, ident = result(wf, "awaited")
    assert (a, c) == (1, 11)
    assert ident != threading.get_ident()  # it ran on a worker thread, not the driver's


@pytest.mark.anyio
async def test_upstream_results_stay_on_the_cluster_until_read(client: Any) -> None:
    wf = Workflow("lazy")
    wf.add_task(Task("first", lambda: {"rows": 3}))
    wf.add_task(Task("second", lambda first: first["rows"] * 2), depends_on=["first"])
    await DaskExecutor(client, keep_results=True).execute(wf)
    first = lazy_value(wf, "first")
    assert type(first) is RemoteResult
    assert not first.fetched  # the dependent got the future, not a value from the driver
    assert isinstance(first.handle.future, distributed.Future)
    assert result(wf, "second") == 6
    assert result(wf, "first") == {"rows": 3}
    assert first.fetched


def two_step(name: str) -> Workflow:
    wf = Workflow(name)
    wf.add_task(Task("x", lambda: [1, 2]))
    wf.add_task(Task("y", lambda x: sum(x)), depends_on=["x"])
    return wf


@pytest.mark.anyio
async def test_results_stay_readable_after_the_client_passed_in_closes(client: Any) -> None:
    wf = two_step("closed-client")
    with distributed.Client(client.scheduler.address, set_as_default=False) as own:
        await DaskExecutor(own).execute(wf)
    assert result(wf, "x") == [1, 2]
    y = wf.get_task("y")
    assert y is not None
    assert y.snapshot() == (TaskStatus.COMPLETED, 3, None)


@pytest.mark.anyio
async def test_a_failed_run_keeps_its_completed_results_readable(client: Any) -> None:
    def boom(x: list[int]) -> None:
        raise ValueError("bad row")

    wf = two_step("failed-run")
    wf.add_task(Task("boom", boom), depends_on=["x"])
    with (
        distributed.Client(client.scheduler.address, set_as_default=False) as own,
        pytest.raises(WorkflowExecutionError),
    ):
        await DaskExecutor(own).execute(wf)
    assert (result(wf, "x"), result(wf, "y")) == ([1, 2], 3)


@pytest.mark.anyio
async def test_keep_results_leaves_values_on_the_cluster_until_read(client: Any) -> None:
    wf = two_step("kept")
    with distributed.Client(client.scheduler.address, set_as_default=False) as own:
        await DaskExecutor(own, keep_results=True).execute(wf)
        assert not lazy_value(wf, "x").fetched
        assert not lazy_value(wf, "y").fetched
        assert result(wf, "y") == 3  # fetched through the open client
    with pytest.raises(FlowWeaverError, match=r"'x' was left on the Dask cluster \(keep_results"):
        result(wf, "x")
    assert result(wf, "y") == 3  # read before the client closed


@pytest.mark.anyio
async def test_a_failing_task_skips_its_downstream_and_keeps_its_error(client: Any) -> None:
    def boom() -> None:
        raise KeyError("missing")

    wf = Workflow("fails")
    wf.add_task(Task("boom", boom))
    wf.add_task(Task("after", lambda boom: boom), depends_on=["boom"])
    wf.add_task(Task("other", lambda: "fine"))
    with pytest.raises(WorkflowExecutionError) as info:
        await DaskExecutor(client).execute(wf)
    assert info.value.failed_task == "boom"
    assert isinstance(info.value.errors["boom"], KeyError)
    after = wf.get_task("after")
    assert after is not None
    assert after.status is TaskStatus.SKIPPED
    assert result(wf, "other") == "fine"


@pytest.mark.anyio
async def test_retries_run_again_on_the_cluster(client: Any) -> None:
    token = f"retry-{time.monotonic_ns()}"
    wf2 = Workflow("retries")
    wf2.add_task(Task("flaky", lambda: sup.flaky_once(token), retries=1))
    await DaskExecutor(client).execute(wf2)
    flaky = wf2.get_task("flaky")
    assert flaky is not None
    assert flaky.attempts == 2
    assert flaky.result == "ok"


@pytest.mark.anyio
async def test_a_timeout_fails_the_attempt_and_cancels_the_future(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancelled: list[Any] = []
    cancel = DaskRunner.cancel

    def spy(self: DaskRunner, handle: Any) -> None:
        cancelled.append(handle)
        cancel(self, handle)

    monkeypatch.setattr(DaskRunner, "cancel", spy)
    wf = Workflow("slow")
    wf.add_task(Task("slow", lambda: time.sleep(3), timeout=0.3))
    began = time.monotonic()
    with pytest.raises(WorkflowExecutionError) as info:
        await DaskExecutor(client).execute(wf)
    assert time.monotonic() - began < 2.5  # the run did not wait for the function
    assert isinstance(info.value.errors["slow"], TaskTimeoutError)
    assert len(cancelled) == 1
    assert sup.settles(cancelled[0].future) == "cancelled"


@pytest.mark.anyio
async def test_a_result_that_cannot_be_pickled_fails_its_task_by_name(client: Any) -> None:
    wf = Workflow("unpicklable")
    wf.add_task(Task("locked", sup.returns_lock))
    wf.add_task(Task("after", lambda locked: 1), depends_on=["locked"])
    with pytest.raises(WorkflowExecutionError) as info:
        await DaskExecutor(client).execute(wf)
    error = info.value.errors["locked"]
    assert isinstance(error, ResultNotPicklableError)
    assert isinstance(error, FlowWeaverError)
    assert "'locked'" in str(error)
    assert "lock" in str(error)
    assert info.value.skipped_tasks == ["after"]


@pytest.mark.anyio
async def test_a_function_that_cannot_be_sent_fails_alone(client: Any) -> None:
    lock = threading.Lock()
    wf = Workflow("unsendable")
    wf.add_task(Task("holds_lock", lambda: lock.locked()))  # the closure captures a lock
    for i in range(3):
        wf.add_task(Task(f"fine{i}", lambda: "fine"))
    with pytest.raises(WorkflowExecutionError) as info:
        await DaskExecutor(client).execute(wf)
    assert info.value.failed_tasks == ["holds_lock"]
    assert "'holds_lock'" in str(info.value.errors["holds_lock"])
    assert [result(wf, f"fine{i}") for i in range(3)] == ["fine"] * 3


@pytest.mark.anyio
async def test_max_in_flight_bounds_the_tasks_on_the_cluster(client: Any) -> None:
    sup.reset_overlap()
    wf = Workflow("bounded")
    for i in range(6):
        wf.add_task(Task(f"probe{i}", sup.overlap_probe))
    await DaskExecutor(client, max_in_flight=2).execute(wf)
    assert sup.most_overlap() <= 2


@pytest.mark.anyio
async def test_restored_tasks_are_not_sent_to_the_cluster(client: Any, tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "state.db")

    def build() -> Workflow:
        wf = Workflow("resume")
        wf.add_task(Task("one", sup.one))
        wf.add_task(Task("add_one", sup.add_one), depends_on=["one"])
        return wf

    before = dict(sup.CALLS)
    first = build()
    await DaskExecutor(client, state_store=store).execute(first)
    saved = await store.load_task_state("add_one", workflow="resume")
    assert saved is not None
    assert saved["result"] == 2  # the store got the value from the cluster
    assert sup.CALLS["one"] == before.get("one", 0) + 1

    second = build()
    await DaskExecutor(client, state_store=store).execute(second)
    assert sup.CALLS["one"] == before.get("one", 0) + 1  # restored, not run again
    assert sup.CALLS["add_one"] == before.get("add_one", 0) + 1
    assert result(second, "add_one") == 2


@pytest.mark.anyio
async def test_a_scheduler_address_connects_for_the_run(client: Any) -> None:
    address = client.scheduler.address
    wf = Workflow("by-address")
    wf.add_task(Task("x", lambda: [1, 2]))
    wf.add_task(Task("y", lambda x: sum(x)), depends_on=["x"])
    await DaskExecutor(address).execute(wf)
    # The run's own client is closed: the results were brought home before that.
    assert result(wf, "y") == 3
    assert lazy_value(wf, "x").fetched


@pytest.mark.anyio
async def test_an_unreachable_scheduler_fails_within_the_connect_timeout() -> None:
    address = f"tcp://127.0.0.1:{sup.free_port()}"
    wf = Workflow("nowhere")
    wf.add_task(Task("x", lambda: 1))
    began = time.monotonic()
    with pytest.raises(FlowWeaverError, match="cannot reach the Dask scheduler") as info:
        await DaskExecutor(address, connect_timeout=0.5).execute(wf)
    assert time.monotonic() - began < 20
    assert address in str(info.value)
    x = wf.get_task("x")
    assert x is not None
    assert x.status is TaskStatus.PENDING
    assert not wf._running  # another run may start


@pytest.mark.anyio
async def test_without_a_client_the_run_starts_and_closes_its_own_cluster() -> None:
    wf = Workflow("own")
    wf.add_task(Task("x", lambda: "mine"))
    executor = DaskExecutor(cluster_options={"processes": False, "n_workers": 1})
    await executor.execute(wf)
    value = lazy_value(wf, "x")
    assert value.fetched  # brought home before the cluster went away
    assert value.handle.future.client.status == "closed"
    assert result(wf, "x") == "mine"
