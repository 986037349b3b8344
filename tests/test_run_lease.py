"""The run lease: one run of a workflow on a store at a time (issue 9, item 6).

A second concurrent run of the same workflow on the same store, from another process or
from another Workflow object of the same name, fails with WorkflowLockedError naming the
holder before anything runs, or waits when asked (``wait_for_lock``). A lease left by a
killed process is taken over; different workflows share a store freely.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

import flowweaver.aio as aio
from flowweaver import (
    BaseStateStore,
    SequentialExecutor,
    StateStoreError,
    Task,
    ThreadedExecutor,
    Workflow,
    WorkflowLockedError,
    WorkflowValidationError,
)

STORES = ["json", "sqlite"]


def store_of(kind: str, folder: Path, form: Any = aio) -> Any:
    if kind == "json":
        return form.JSONStateStore(folder / "s.json")
    return form.SQLiteStateStore(folder / "s.db")


class Holder:
    """A workflow whose one task waits until released: its run holds the lease."""

    def __init__(self, name: str = "wf") -> None:
        self.started = anyio.Event()
        self.release = anyio.Event()
        self.workflow = Workflow(name)
        self.workflow.add_task(Task("hold", self._hold))

    async def _hold(self) -> str:
        self.started.set()
        await self.release.wait()
        return "held"


@asynccontextmanager
async def holding(kind: str, folder: Path) -> AsyncIterator[Holder]:
    """A run of workflow ``wf`` that holds the lease until ``holder.release`` is set
    (set on leaving the block, at the latest)."""
    holder = Holder()
    async with anyio.create_task_group() as tg:
        executor = aio.AsyncExecutor(state_store=store_of(kind, folder))
        tg.start_soon(executor.execute, holder.workflow)
        await holder.started.wait()
        try:
            yield holder
        finally:
            holder.release.set()


def ran_log(name: str, ran: list[str]) -> Workflow:
    wf = Workflow(name)

    def record() -> str:
        ran.append(name)
        return name

    wf.add_task(Task("work", record))
    return wf


@pytest.mark.anyio
@pytest.mark.parametrize("kind", STORES)
async def test_a_second_workflow_object_of_the_same_name_is_refused(
    tmp_path: Path, kind: str
) -> None:
    ran: list[str] = []
    async with holding(kind, tmp_path):
        with pytest.raises(WorkflowLockedError) as info:
            await aio.AsyncExecutor(state_store=store_of(kind, tmp_path)).execute(
                ran_log("wf", ran)
            )
    assert ran == []  # nothing of the refused run ran
    err = info.value
    assert isinstance(err, StateStoreError)
    assert (err.workflow, err.pid, err.host) == ("wf", os.getpid(), socket.gethostname())
    assert err.since
    assert f"process {os.getpid()}" in str(err)
    assert "'wf'" in str(err)
    # the lease is free again once the holder's run ended
    await aio.AsyncExecutor(state_store=store_of(kind, tmp_path)).execute(ran_log("wf", ran))
    assert ran == ["wf"]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", STORES)
async def test_wait_for_lock_waits_for_the_holder_to_finish(tmp_path: Path, kind: str) -> None:
    ran: list[str] = []
    async with holding(kind, tmp_path) as holder, anyio.create_task_group() as tg:

        async def let_go() -> None:
            await anyio.sleep(0.3)
            holder.release.set()

        tg.start_soon(let_go)
        executor = aio.AsyncExecutor(state_store=store_of(kind, tmp_path), wait_for_lock=30)
        await executor.execute(ran_log("wf", ran))
    assert ran == ["wf"]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", STORES)
async def test_wait_for_lock_gives_up_after_its_seconds(tmp_path: Path, kind: str) -> None:
    ran: list[str] = []
    async with holding(kind, tmp_path):
        began = time.monotonic()
        with pytest.raises(WorkflowLockedError, match=r"after waiting 0\.3 s"):
            await aio.AsyncExecutor(
                state_store=store_of(kind, tmp_path), wait_for_lock=0.3
            ).execute(ran_log("wf", ran))
        assert time.monotonic() - began >= 0.3
    assert ran == []


@pytest.mark.anyio
@pytest.mark.parametrize("kind", STORES)
async def test_different_workflows_on_one_store_run_at_the_same_time(
    tmp_path: Path, kind: str
) -> None:
    # JSON keys records by task name alone, so the two workflows' tasks differ in name.
    a, b = Holder("a"), Holder("b")
    b.workflow = Workflow("b")
    b.workflow.add_task(Task("hold_b", b._hold))
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for h in (a, b):
                tg.start_soon(
                    aio.AsyncExecutor(state_store=store_of(kind, tmp_path)).execute, h.workflow
                )
            await a.started.wait()
            await b.started.wait()  # both inside their runs at once
            a.release.set()
            b.release.set()


@pytest.mark.anyio
async def test_a_users_own_store_is_not_leased(tmp_path: Path) -> None:
    class Memory(BaseStateStore):
        def save_task_state(self, *args: Any, **kwargs: Any) -> None:
            pass

        def load_task_state(self, *args: Any, **kwargs: Any) -> None:
            return None

        def delete_task_state(self, *args: Any, **kwargs: Any) -> None:
            pass

        def list_all_tasks(self, *args: Any, **kwargs: Any) -> list[str]:
            return []

        def clear_all_states(self, *args: Any, **kwargs: Any) -> None:
            pass

    store = Memory()
    first, second = Holder(), Holder()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for h in (first, second):
                tg.start_soon(aio.AsyncExecutor(state_store=store).execute, h.workflow)
            await first.started.wait()
            await second.started.wait()
            first.release.set()
            second.release.set()


@pytest.mark.parametrize("value", [-1, "1", True, float("nan")])
def test_wait_for_lock_must_be_none_or_seconds(value: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="wait_for_lock"):
        ThreadedExecutor(wait_for_lock=value)


def test_wait_for_lock_default_fails_at_once_and_none_waits_forever() -> None:
    assert SequentialExecutor().wait_for_lock == 0
    assert SequentialExecutor(wait_for_lock=None).wait_for_lock is None
    assert SequentialExecutor(wait_for_lock=float("inf")).wait_for_lock is None


HOLDER_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from flowweaver import JSONStateStore, SQLiteStateStore, Task, ThreadedExecutor, Workflow

    store_path, go, name = sys.argv[1:4]

    def hold():
        print("holding", flush=True)
        while not Path(go).exists():
            time.sleep(0.01)
        return 1

    wf = Workflow(name)
    wf.add_task(Task(f"hold-{name}", hold))
    cls = JSONStateStore if store_path.endswith(".json") else SQLiteStateStore
    ThreadedExecutor(state_store=cls(store_path)).execute(wf)
    print("done", flush=True)
    """
)


def start_holder(tmp_path: Path, store: Path, name: str = "wf") -> subprocess.Popen[str]:
    """A process whose run of workflow ``name`` is inside its task (holding the lease)
    until the file ``go`` appears."""
    script = tmp_path / "holder.py"
    script.write_text(HOLDER_CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), str(tmp_path / "go"), name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == "holding\n", proc.communicate(timeout=30)
    return proc


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("kind", STORES)
def test_another_process_holds_the_lease_then_a_killed_holder_is_taken_over(
    tmp_path: Path, kind: str
) -> None:
    store = store_of(kind, tmp_path, sys.modules["flowweaver"])
    path = Path(store.store_path if kind == "json" else store.db_path)
    ran: list[str] = []
    proc = start_holder(tmp_path, path)
    try:
        with pytest.raises(WorkflowLockedError) as info:
            ThreadedExecutor(state_store=store).execute(ran_log("wf", ran))
        assert info.value.pid == proc.pid
        assert str(proc.pid) in str(info.value)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    ThreadedExecutor(state_store=store).execute(ran_log("wf", ran))
    assert ran == ["wf"]


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", STORES)
def test_a_run_waits_for_another_process_that_holds_the_lease(tmp_path: Path, kind: str) -> None:
    store = store_of(kind, tmp_path, sys.modules["flowweaver"])
    path = Path(store.store_path if kind == "json" else store.db_path)
    ran: list[str] = []
    proc = start_holder(tmp_path, path)
    try:
        # the holder finishes its task, then its run, while this run waits for it
        threading.Timer(0.5, (tmp_path / "go").touch).start()
        ThreadedExecutor(state_store=store, wait_for_lock=60).execute(ran_log("wf", ran))
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert ran == ["wf"]


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", STORES)
def test_processes_running_different_workflows_on_one_store_run_at_once(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / ("s.json" if kind == "json" else "s.db")
    procs = []
    try:
        # each returns from start_holder only once its run is inside its task
        procs = [start_holder(tmp_path, path, f"wf{k}") for k in range(3)]
        (tmp_path / "go").touch()
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
