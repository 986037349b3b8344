"""DaskExecutor: settings, the missing extra, and what only the awaitable form can show."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

distributed = pytest.importorskip("distributed")

import flowweaver  # noqa: E402
from flowweaver import (  # noqa: E402
    FlowWeaverError,
    Task,
    TaskStatus,
    Workflow,
    WorkflowStatus,
    WorkflowValidationError,
)
from flowweaver._dask import DaskRunner  # noqa: E402
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
