"""Retry conditions (issue 13): ``retry_on`` and ``retry_if`` retry only some errors; any
other error fails the task at once, under every executor form and both backends."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flowweaver import (
    Task,
    TaskExecutionError,
    TaskRetrying,
    TaskStatus,
    TaskTimeoutError,
    Workflow,
    WorkflowExecutionError,
    WorkflowValidationError,
    task,
)
from tests.helpers import EventLog
from tests.run_helpers import Runner


def flaky(errors: list[BaseException]) -> Any:
    """A function raising each of ``errors`` in turn, then returning "ok"; ``calls``
    counts its attempts."""

    def func() -> str:
        func.calls += 1  # type: ignore[attr-defined]
        if errors:
            raise errors.pop(0)
        return "ok"

    func.calls = 0  # type: ignore[attr-defined]
    return func


def one(t: Task) -> Workflow:
    wf = Workflow("retrying")
    wf.add_task(t)
    wf.add_task(Task("after", lambda f: f), depends_on=[t.name])
    return wf


def test_retry_on_retries_the_listed_errors(runner: Runner) -> None:
    func = flaky([ConnectionError("reset"), TimeoutError("slow")])
    wf = one(Task("f", func, retries=3, retry_on=(TimeoutError, ConnectionError)))
    runner.run(wf)
    assert func.calls == 3
    assert wf.get_task("f").status is TaskStatus.COMPLETED  # type: ignore[union-attr]


def test_any_other_error_fails_at_once_with_its_retries_unused(runner: Runner) -> None:
    func = flaky([ConnectionError("reset"), ValueError("a bug")])
    log = EventLog()
    wf = one(Task("f", func, retries=5, retry_on=ConnectionError))
    with pytest.raises(WorkflowExecutionError) as caught:
        runner.run(wf, observer=log)
    assert func.calls == 2
    failed = wf.get_task("f")
    assert failed is not None
    assert failed.status is TaskStatus.FAILED
    assert failed.attempts == 2
    assert isinstance(failed.error, ValueError)
    assert len(log.of(TaskRetrying)) == 1  # for the ConnectionError only
    assert wf.get_task("after").status is TaskStatus.SKIPPED  # type: ignore[union-attr]
    cause = caught.value.__cause__
    assert isinstance(cause, TaskExecutionError)
    assert "after 2 attempts" in str(cause)


def test_retry_if_decides_from_the_exception(runner: Runner) -> None:
    seen: list[BaseException] = []

    def transient(exc: BaseException) -> bool:
        seen.append(exc)
        return "retry" in str(exc)

    func = flaky([RuntimeError("retry me"), RuntimeError("fatal")])
    wf = one(Task("f", func, retries=5, retry_if=transient))
    with pytest.raises(WorkflowExecutionError):
        runner.run(wf)
    assert func.calls == 2
    assert [str(e) for e in seen] == ["retry me", "fatal"]


def test_both_conditions_must_accept(runner: Runner) -> None:
    func = flaky([OSError("retry"), OSError("no"), OSError("retry")])
    wf = one(Task("f", func, retries=5, retry_on=OSError, retry_if=lambda e: str(e) == "retry"))
    with pytest.raises(WorkflowExecutionError):
        runner.run(wf)
    assert func.calls == 2


def test_a_retry_if_that_raises_does_not_retry_and_is_logged(
    runner: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(exc: BaseException) -> bool:
        raise KeyError("oops")

    func = flaky([ConnectionError("reset")])
    wf = one(Task("f", func, retries=3, retry_if=broken))
    with pytest.raises(WorkflowExecutionError):
        runner.run(wf)
    assert func.calls == 1
    assert isinstance(wf.get_task("f").error, ConnectionError)  # type: ignore[union-attr]
    assert "retry_if of task 'f' raised" in caplog.text


def test_a_timeout_counts_as_a_timeout_error(runner: Runner) -> None:
    calls: list[int] = []

    def slow() -> str:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(2)
        return "ok"

    wf = one(Task("f", slow, timeout=0.2, retries=2, retry_on=TimeoutError))
    runner.run(wf)
    assert len(calls) == 2
    assert issubclass(TaskTimeoutError, TimeoutError)


def test_async_tasks_and_map_items_follow_their_conditions(runner: Runner) -> None:
    attempts: dict[int, int] = {}

    async def item(src: int) -> int:
        attempts[src] = attempts.get(src, 0) + 1
        if attempts[src] == 1:
            raise (ConnectionError if src % 2 else ValueError)(f"item {src}")
        return src

    wf = Workflow("items")
    wf.add_task(Task("src", lambda: [1, 2, 3]))
    wf.add_task(
        Task("m", item, retries=2, retry_on=ConnectionError),
        map_over="src",
        on_item_failure="skip",
    )
    runner.run(wf)
    assert attempts == {1: 2, 2: 1, 3: 2}  # the ValueError item was not retried
    assert wf.get_task("m").result == [1, 3]  # type: ignore[union-attr]


def test_the_decorator_takes_the_conditions() -> None:
    @task(retries=2, retry_on=ConnectionError, retry_if=lambda e: True)
    def fetch() -> int:
        return 1

    wf = Workflow("w")
    t = wf.add_task(fetch)
    assert t.retry_on is ConnectionError
    assert t.retryable(ConnectionError())
    assert not t.retryable(ValueError())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry_on": ValueError()}, "retry_on must be an exception class or a tuple"),
        ({"retry_on": ()}, "retry_on must be an exception class or a tuple"),
        ({"retry_on": (ValueError, int)}, "retry_on must be an exception class or a tuple"),
        ({"retry_on": "ValueError"}, "retry_on must be an exception class or a tuple"),
        ({"retry_if": True}, "retry_if must be a function of the exception"),
    ],
)
def test_bad_conditions_are_refused_naming_the_task(options: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkflowValidationError, match=f"task 'f': {message}"):
        Task("f", lambda: 1, retries=1, **options)
