"""The engine's remote-runner seam, with a small runner on threads instead of a cluster."""

from __future__ import annotations

import concurrent.futures as cf
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from flowweaver import FlowWeaverError, Task, TaskRecomputed, TaskStatus, Workflow
from flowweaver._executor import ThreadedBase
from flowweaver._remote._protocol import RemoteResult


class Unpicklable(Exception):
    """What a real runner raises for a value that cannot come back."""


class ThreadRunner:
    """Runs functions on a thread pool; handles are concurrent futures."""

    def __init__(self, keeps_results: bool, refuse: str | None = None) -> None:
        self._keeps = keeps_results
        self._refuse = refuse  # a result value fetch() cannot bring back
        self.pool: cf.ThreadPoolExecutor | None = None
        self.fetches = 0
        self.blocking_fetches = 0

    async def start(self, recomputed: Callable[[str, int, int], None]) -> None:
        self.recomputed = recomputed
        self.pool = cf.ThreadPoolExecutor(2)

    def submit(
        self,
        key: str,
        func: Callable[..., Any],
        kwargs: dict[str, Any],
        done: Callable[[bool, Any], None],
    ) -> Any:
        assert self.pool is not None
        assert key.rsplit("-", 2)[0]  # "<task name>-<run id>-<attempt>"

        def call() -> Any:
            values = {k: v.result() if isinstance(v, cf.Future) else v for k, v in kwargs.items()}
            return func(**values)

        future = self.pool.submit(call)

        def finished(f: cf.Future[Any]) -> None:
            error = f.exception()
            done(error is None, f if error is None else error)

        future.add_done_callback(finished)
        return future

    def cancel(self, handle: Any) -> None:
        handle.cancel()

    def _value(self, handle: Any) -> Any:
        value = handle.result()
        if value == self._refuse:
            raise Unpicklable(f"cannot bring {value!r} back")
        return value

    async def fetch(self, handles: Sequence[Any]) -> list[Any]:
        self.fetches += 1
        return [self._value(h) for h in handles]

    def fetch_blocking(self, handle: Any) -> Any:
        self.blocking_fetches += 1
        return self._value(handle)

    async def aclose(self) -> None:
        assert self.pool is not None
        self.pool.shutdown(wait=False)

    @property
    def keeps_results(self) -> bool:
        return self._keeps


class RemoteExecutor(ThreadedBase):
    def __init__(self, runner: ThreadRunner, observer: Any = None) -> None:
        super().__init__(2, observer=observer)
        self.runner = runner

    def _remote_runner(self) -> ThreadRunner:
        return self.runner

    def execute(self, workflow: Workflow) -> None:
        self._run_blocking(workflow)


def pipeline() -> Workflow:
    wf = Workflow("remote")
    wf.add_task(Task("a", lambda: "x"))
    wf.add_task(Task("b", lambda a: a + "y"), depends_on=["a"])
    wf.add_task(Task("c", lambda: "bad"))
    return wf


def test_results_stay_remote_until_read_when_the_cluster_outlives_the_run() -> None:
    runner = ThreadRunner(keeps_results=True)
    wf = pipeline()
    RemoteExecutor(runner).execute(wf)
    b = wf.get_task("b")
    assert b is not None
    assert isinstance(b._state[1], RemoteResult)
    assert runner.fetches == 0
    assert b.result == "xy"
    assert runner.blocking_fetches == 1


def test_clear_results_does_not_fetch_what_it_drops() -> None:
    runner = ThreadRunner(keeps_results=True)
    wf = pipeline()
    RemoteExecutor(runner).execute(wf)
    wf.clear_results()
    assert runner.blocking_fetches == 0
    assert runner.fetches == 0
    assert [t.status for t in wf.tasks] == [TaskStatus.COMPLETED] * 3
    assert all(t.result is None for t in wf.tasks)


def test_one_value_that_cannot_come_back_does_not_cost_the_others() -> None:
    runner = ThreadRunner(keeps_results=False, refuse="bad")
    wf = pipeline()
    RemoteExecutor(runner).execute(wf)
    a, b, c = wf.tasks
    assert (a.result, b.result) == ("x", "xy")  # brought home before the cluster closed
    with pytest.raises(FlowWeaverError, match="could not be brought back") as info:
        _ = c.result
    assert isinstance(info.value.__cause__, Unpicklable)


def test_a_recomputation_the_runner_reports_is_an_event_and_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = ThreadRunner(keeps_results=False)
    wf = Workflow("again")
    wf.add_task(Task("a", lambda: "x"))

    def b(a: str) -> str:
        runner.recomputed("a", 1, 2)  # from a pool thread, as a cluster's client would
        return a + "y"

    wf.add_task(Task("b", b), depends_on=["a"])
    events: list[Any] = []
    with caplog.at_level(logging.WARNING, logger="flowweaver"):
        RemoteExecutor(runner, observer=events.append).execute(wf)
    recomputed = [e for e in events if isinstance(e, TaskRecomputed)]
    assert [(e.workflow, e.task, e.attempt, e.runs) for e in recomputed] == [("again", "a", 1, 2)]
    assert "task 'a' of workflow 'again': Dask ran its function again" in caplog.text
    assert wf.get_task("b").result == "xy"  # type: ignore[union-attr]
