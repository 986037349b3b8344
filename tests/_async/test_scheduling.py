"""When tasks start: concurrency bounds, no waves, and the event loop never blocked."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from flowweaver import Task, Workflow
from flowweaver.aio import SequentialExecutor, ThreadedExecutor
from tests.helpers import Concurrency, async_sleeping, blocking_sleeper, heartbeat

# Sleeps long enough that every task admitted at once is inside its function together.
NAP = 0.1


def _independent(conc: Concurrency, n: int, *, sync: int) -> Workflow:
    """``n`` independent sleeping tasks, the first ``sync`` of them plain functions."""
    wf = Workflow("independent")
    for i in range(n):
        func = conc.sync_sleeper(NAP, i) if i < sync else conc.async_sleeper(NAP, i)
        wf.add_task(Task(f"t{i}", func))
    return wf


@pytest.mark.anyio
async def test_sequential_runs_one_task_at_a_time() -> None:
    conc = Concurrency()
    wf = Workflow("one_at_a_time")
    for i in range(4):
        wf.add_task(Task(f"s{i}", conc.sync_sleeper(0.02)))
        wf.add_task(Task(f"a{i}", conc.async_sleeper(0.02)))
    wf.add_task(Task("timed", conc.sync_sleeper(0.02), timeout=30))
    await SequentialExecutor().execute(wf)
    assert conc.peak == 1


@pytest.mark.anyio
@pytest.mark.parametrize("sync", [0, 4, 8], ids=["async", "mixed", "sync"])
async def test_bound_is_never_exceeded_and_is_reached(make_parallel: Any, sync: int) -> None:
    conc = Concurrency()
    wf = _independent(conc, 8, sync=sync)
    await make_parallel(3).execute(wf)
    assert conc.peak == 3


@pytest.mark.anyio
async def test_bound_counts_timed_sync_tasks(make_parallel: Any) -> None:
    conc = Concurrency()
    wf = Workflow("timed")
    for i in range(6):
        wf.add_task(Task(f"t{i}", conc.sync_sleeper(NAP), timeout=30))
    await make_parallel(2).execute(wf)
    assert conc.peak == 2


@pytest.mark.anyio
async def test_bound_above_anyio_default_thread_limit_is_reached(make_parallel: Any) -> None:
    # anyio's process-wide default limiter allows 40 threads; an executor's own bound of
    # 45 must let 45 sync tasks sleep at once. A barrier proves they were all in together.
    n = 45
    barrier = threading.Barrier(n, timeout=10)

    def meet() -> int:
        return barrier.wait()

    wf = Workflow("many_threads")
    for i in range(n):
        wf.add_task(Task(f"t{i}", meet))
    await make_parallel(n).execute(wf)
    assert sorted(t.result for t in wf.tasks) == list(range(n))


@pytest.mark.anyio
async def test_worker_threads_never_exceed_max_workers(make_parallel: Any) -> None:
    conc = Concurrency()
    wf = Workflow("threads")
    for i in range(12):
        wf.add_task(Task(f"t{i}", conc.sync_sleeper(0.01)))
    await make_parallel(2).execute(wf)
    assert 1 <= len(conc.threads) <= 2
    assert conc.peak <= 2


@pytest.mark.anyio
async def test_bound_holds_across_a_layered_graph(make_parallel: Any) -> None:
    conc = Concurrency()
    wf = Workflow("layers")
    previous: list[str] = []
    for layer in range(3):
        names = []
        for i in range(5):
            name = f"l{layer}_{i}"
            func = conc.sync_sleeper(0.03) if i % 2 else conc.async_sleeper(0.03)
            wf.add_task(Task(name, func), depends_on=previous[i : i + 2])
            names.append(name)
        previous = names
    await make_parallel(2).execute(wf)
    assert conc.peak == 2


@pytest.mark.anyio
async def test_downstream_of_fast_branch_completes_while_slow_branch_runs(
    make_parallel: Any,
) -> None:
    slow_done = threading.Event()
    seen: dict[str, bool] = {}

    def fast() -> str:
        return "fast"

    def after_fast(fast: str) -> str:
        seen["slow_done_when_after_fast_ran"] = slow_done.is_set()
        return fast + "!"

    def last(after_fast: str) -> str:
        seen["slow_done_when_last_ran"] = slow_done.is_set()
        return after_fast + "!"

    wf = Workflow("eager")
    wf.add_task(Task("slow", blocking_sleeper(0.3, slow_done)))
    wf.add_task(Task("fast", fast))
    wf.add_task(Task("after_fast", after_fast), depends_on=["fast"])
    wf.add_task(Task("last", last), depends_on=["after_fast"])
    wf.add_task(Task("after_slow", lambda slow: slow), depends_on=["slow"])
    await make_parallel().execute(wf)
    assert seen == {"slow_done_when_after_fast_ran": False, "slow_done_when_last_ran": False}
    assert wf.get_task("last").result == "fast!!"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_no_layer_barrier_between_async_branches(make_parallel: Any) -> None:
    # layer 1: a fast task and a slow one; layer 2: a child of the fast one only. With waves,
    # the child would wait for the slow task of layer 1.
    order: list[str] = []
    lock = threading.Lock()

    def record(name: str) -> Any:
        def body() -> str:
            with lock:
                order.append(name)
            return name

        return body

    wf = Workflow("no_waves")
    wf.add_task(Task("slow", async_sleeping(0.4, "slow")))
    wf.add_task(Task("fast", async_sleeping(0.01, "fast")))
    wf.add_task(Task("child", record("child")), depends_on=["fast"])
    wf.add_task(Task("after_slow", record("after_slow")), depends_on=["slow"])
    await make_parallel().execute(wf)
    assert order == ["child", "after_slow"]


@pytest.mark.anyio
async def test_sync_task_does_not_block_async_tasks_of_the_same_run(make_parallel: Any) -> None:
    # the heartbeat is an async task of the same run: it can only tick while the sync task
    # sleeps if that sleep happens off the event loop's thread
    beats: list[float] = []
    done = threading.Event()
    wf = Workflow("heartbeat")
    wf.add_task(Task("sleep", blocking_sleeper(0.3, done)))
    wf.add_task(Task("beat", heartbeat(beats, done)))
    await make_parallel().execute(wf)
    assert done.is_set()
    assert len(beats) >= 5


@pytest.mark.anyio
async def test_threaded_executor_runs_sync_tasks_on_worker_threads() -> None:
    here = threading.get_ident()
    seen: list[int] = []
    wf = Workflow("threads")
    wf.add_task(Task("a", lambda: seen.append(threading.get_ident())))
    await ThreadedExecutor().execute(wf)
    assert seen
    assert seen[0] != here


@pytest.mark.anyio
async def test_timed_sync_task_runs_on_a_worker_thread(executor_cls: type) -> None:
    here = threading.get_ident()
    seen: list[int] = []
    wf = Workflow("timed_thread")
    wf.add_task(Task("a", lambda: seen.append(threading.get_ident()), timeout=30))
    await executor_cls().execute(wf)
    assert seen
    assert seen[0] != here


@pytest.mark.anyio
async def test_many_small_tasks_complete(executor_cls: type) -> None:
    # a long chain and a wide fan-out of no-op tasks, mixed sync and async
    wf = Workflow("many")
    for i in range(300):
        deps = [f"c{i - 1}"] if i else []
        wf.add_task(Task(f"c{i}", lambda **kw: sum(kw.values()) + 1), depends_on=deps)
    for i in range(300):
        wf.add_task(Task(f"w{i}", async_sleeping(0, i)), depends_on=["c0"])
    await executor_cls().execute(wf)
    assert wf.get_task("c299").result == 300  # type: ignore[union-attr]
    assert [wf.get_task(f"w{i}").result for i in range(300)] == list(range(300))  # type: ignore[union-attr]
