"""``Task``, ``@task`` and ``Task.execute`` called directly."""

from __future__ import annotations

import inspect
import logging
import random
import threading
import time
from typing import Any

import anyio
import pytest

from flowweaver import (
    SequentialExecutor,
    Task,
    TaskExecutionError,
    TaskStatus,
    TaskTimeoutError,
    Workflow,
    WorkflowValidationError,
    task,
)
from flowweaver._task import TaskSettings
from tests.helpers import (
    CallbackLog,
    Flaky,
    async_collect,
    async_returning,
    async_sleeping,
    async_upper,
    blocking_sleeper,
    flaky_coroutine,
    swallows_its_timeout,
)

# -- construction ---------------------------------------------------------------------------


def test_task_defaults_follow_the_reference() -> None:
    def f() -> None:
        pass

    t = Task("t", f)
    assert (t.name, t.func, t.retries, t.timeout, t.callbacks) == ("t", f, 0, None, [])
    assert (t.retry_delay, t.retry_backoff, t.retry_jitter, t.version) == (0.0, 2.0, 0.0, None)
    assert t.snapshot() == (TaskStatus.PENDING, None, None)
    assert (t.status, t.result, t.error, t.attempts) == (TaskStatus.PENDING, None, None, 0)
    assert (t.started_at, t.finished_at, t.duration) == (None, None, None)
    assert repr(t) == "<Task 't' PENDING>"


def test_task_takes_reference_arguments_positionally() -> None:
    def cb(t: Task) -> None:
        pass

    t = Task("api_fetch", lambda: None, 3, 30, [cb])
    assert (t.retries, t.timeout, t.callbacks) == (3, 30, [cb])


def test_retry_settings_are_keyword_only() -> None:
    params = inspect.signature(Task).parameters
    for name in ("retry_delay", "retry_backoff", "retry_jitter", "version"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"retries": -1}, "retries must be 0 or more, got -1"),
        ({"retries": 1.5}, "retries must be a whole number"),
        ({"retries": True}, "retries must be a whole number"),
        ({"timeout": 0}, "timeout must be more than 0 seconds, got 0"),
        ({"timeout": -2.5}, "timeout must be more than 0 seconds"),
        ({"timeout": float("nan")}, "timeout must be more than 0 seconds"),
        ({"timeout": "10"}, "timeout must be a number of seconds"),
        ({"callbacks": [42]}, "every callback must be callable"),
        ({"callbacks": "print"}, "callbacks must be a list of callables"),
        ({"retry_delay": -1}, "retry_delay must be 0 or more"),
        ({"retry_jitter": 2}, "retry_jitter is a fraction"),
        ({"retry_backoff": 0.5}, "retry_backoff must be 1"),
        ({"version": 3}, "version must be a string"),
    ],
)
def test_bad_setting_is_refused_naming_the_task(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(WorkflowValidationError, match=match) as info:
        Task("named", lambda: None, **kwargs)
    assert "'named'" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("func", [None, 42, "print", [print]])
def test_non_callable_func_is_refused(func: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="'t': func must be callable"):
        Task("t", func)


@pytest.mark.parametrize("name", ["", None, 7])
def test_task_name_must_be_a_non_empty_string(name: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="task name must be a non-empty string"):
        Task(name, lambda: None)


# -- the decorator ----------------------------------------------------------------------------


def test_task_decorator_without_parentheses_returns_the_function() -> None:
    def double(x: int) -> int:
        return x * 2

    decorated = task(double)
    assert decorated is double
    assert double(4) == 8
    settings = double.__flowweaver__  # type: ignore[attr-defined]
    assert isinstance(settings, TaskSettings)
    assert settings.name is None
    assert settings.retries == 0


def test_task_decorator_with_parentheses_stores_settings() -> None:
    def log_result(t: Task) -> None:
        pass

    @task(name="renamed", retries=2, timeout=30, callbacks=[log_result], retry_delay=0.5)
    def fetch_user(user_id: int) -> dict[str, Any]:
        return {"id": user_id, "name": f"User {user_id}"}

    assert fetch_user(123)["name"] == "User 123"
    s = fetch_user.__flowweaver__  # type: ignore[attr-defined]
    assert (s.name, s.retries, s.timeout, s.callbacks, s.retry_delay) == (
        "renamed",
        2,
        30,
        (log_result,),
        0.5,
    )
    t = Workflow("w").add_task(fetch_user)
    assert (t.name, t.retries, t.timeout, t.callbacks, t.retry_delay) == (
        "renamed",
        2,
        30,
        [log_result],
        0.5,
    )
    assert t.func is fetch_user


def test_task_decorator_keeps_async_functions_async() -> None:
    @task
    async def bare() -> int:
        return 1

    @task(retries=1)
    async def configured() -> int:
        return 2

    assert inspect.iscoroutinefunction(bare)
    assert inspect.iscoroutinefunction(configured)
    assert anyio.run(bare) == 1
    assert anyio.run(configured) == 2


def test_decorated_function_makes_a_fresh_task_per_workflow() -> None:
    @task(retries=1)
    def shared() -> str:
        return "s"

    first = Workflow("one").add_task(shared)
    second = Workflow("two").add_task(shared)
    assert first is not second
    assert first.name == second.name == "shared"
    first.execute()
    assert second.status is TaskStatus.PENDING


def test_task_decorator_refuses_bad_settings_at_decoration_time() -> None:
    with pytest.raises(WorkflowValidationError, match="retries must be 0 or more"):
        task(retries=-1)
    with pytest.raises(WorkflowValidationError, match="timeout must be more than 0"):
        task(timeout=0)
    with pytest.raises(WorkflowValidationError, match="task name must be a non-empty string"):
        task(name="")
    with pytest.raises(WorkflowValidationError, match="callbacks must be a list"):
        task(callbacks="x")  # type: ignore[arg-type]


def test_task_decorator_refuses_a_non_callable() -> None:
    with pytest.raises(WorkflowValidationError, match="@task needs a function"):
        task()(42)  # type: ignore[type-var]


def test_undecorated_named_function_can_be_added() -> None:
    def plain() -> int:
        return 3

    t = Workflow("w").add_task(plain)
    assert t.name == "plain"
    assert t.retries == 0


def test_lambda_without_a_name_is_refused_with_advice() -> None:
    with pytest.raises(WorkflowValidationError, match="no usable name"):
        Workflow("w").add_task(lambda: None)


# -- retry waits ----------------------------------------------------------------------------------


def test_retry_wait_grows_exponentially() -> None:
    t = Task("t", lambda: None, retries=4, retry_delay=0.5, retry_backoff=3)
    assert [t.retry_wait(k) for k in (1, 2, 3, 4)] == [0.5, 1.5, 4.5, 13.5]


def test_retry_wait_is_zero_by_default() -> None:
    t = Task("t", lambda: None, retries=3)
    assert [t.retry_wait(k) for k in (1, 2, 3)] == [0, 0, 0]


def test_retry_wait_jitter_varies_within_the_fraction() -> None:
    random.seed(1234)
    t = Task("t", lambda: None, retries=2, retry_delay=1.0, retry_backoff=2, retry_jitter=0.25)
    firsts = [t.retry_wait(1) for _ in range(300)]
    seconds = [t.retry_wait(2) for _ in range(300)]
    assert all(0.75 <= w <= 1.25 for w in firsts)
    assert all(1.5 <= w <= 2.5 for w in seconds)
    assert len(set(firsts)) > 100  # really varied
    assert min(firsts) < 0.85
    assert max(firsts) > 1.15


# -- Task.execute --------------------------------------------------------------------------------


def test_execute_sync_function_returns_result() -> None:
    t = Task("example", lambda: 42)
    assert t.execute() == 42
    assert t.snapshot() == (TaskStatus.COMPLETED, 42, None)
    assert t.attempts == 1
    assert t.started_at is not None
    assert t.finished_at is not None
    assert t.duration is not None


def test_execute_runs_sync_function_on_the_calling_thread() -> None:
    seen: list[int] = []
    Task("here", lambda: seen.append(threading.get_ident())).execute()
    assert seen == [threading.get_ident()]


def test_execute_awaits_async_function() -> None:
    t = Task("coro", async_returning({"a": 1}))
    assert t.execute() == {"a": 1}
    assert t.status is TaskStatus.COMPLETED


def test_execute_passes_context_by_parameter_name() -> None:
    def process(upstream_task: dict[str, int], unused: int = 5) -> int:
        return upstream_task["data"] + unused

    t = Task("process", process)
    assert t.execute(context={"upstream_task": {"data": 100}, "other": 1}) == 105


def test_execute_passes_whole_context_to_var_keyword() -> None:
    t = Task("collect", async_collect)
    assert t.execute({"a": 1, "b": 2}) == {"a": 1, "b": 2}


def test_execute_context_for_async_function_by_name() -> None:
    t = Task("process", async_upper)
    assert t.execute({"fetch_data": {"name": "zed"}}) == {"processed": "ZED"}


def test_execute_failure_raises_task_execution_error_with_cause() -> None:
    original = ValueError("Intentional error")

    def bad_task() -> None:
        raise original

    t = Task("bad", bad_task)
    with pytest.raises(TaskExecutionError) as info:
        t.execute()
    err = info.value
    assert err.__cause__ is original
    assert err.task_name == "bad"
    assert err.attempts == 1
    assert "'bad'" in str(err)
    assert "Intentional error" in str(err)
    assert t.snapshot() == (TaskStatus.FAILED, None, original)


def test_execute_retries_until_success() -> None:
    flaky = Flaky(failures=2, value="done")
    t = Task("flaky", flaky, retries=2)
    assert t.execute() == "done"
    assert flaky.calls == 3
    assert t.attempts == 3


def test_execute_async_retries_until_success() -> None:
    func, calls = flaky_coroutine(failures=1, value="async done")
    t = Task("flaky", func, retries=1)
    assert t.execute() == "async done"
    assert calls == [1, 2]


def test_execute_gives_up_after_retries_plus_one_attempts() -> None:
    flaky = Flaky(failures=9)
    t = Task("flaky", flaky, retries=2)
    with pytest.raises(TaskExecutionError) as info:
        t.execute()
    assert info.value.attempts == 3
    assert flaky.calls == 3
    assert str(info.value.__cause__) == "attempt 3 fails"


def test_execute_status_is_retrying_during_retry_delay() -> None:
    t = Task("flaky", Flaky(failures=1), retries=1, retry_delay=0.3)
    seen: set[TaskStatus] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.add(t.status)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        t.execute()
    finally:
        stop.set()
        watcher.join()
    assert TaskStatus.RETRYING in seen
    assert t.status is TaskStatus.COMPLETED


def test_execute_sync_timeout_fails_at_the_deadline() -> None:
    done = threading.Event()
    t = Task("slow", blocking_sleeper(0.4, done), timeout=0.05)
    with pytest.raises(TaskExecutionError) as info:
        t.execute()
    assert not done.is_set()  # returned at the deadline; the thread sleeps on
    cause = info.value.__cause__
    assert isinstance(cause, TaskTimeoutError)
    assert isinstance(cause, TimeoutError)
    assert t.status is TaskStatus.FAILED
    assert done.wait(5)


def test_execute_async_timeout_cancels_the_function() -> None:
    t = Task("slow", async_sleeping(30), timeout=0.05)
    started = time.monotonic()
    with pytest.raises(TaskExecutionError) as info:
        t.execute()
    assert time.monotonic() - started < 10
    assert isinstance(info.value.__cause__, TaskTimeoutError)


def test_execute_timeout_with_retry_succeeds_on_a_faster_attempt() -> None:
    calls: list[int] = []

    def slow_then_fast() -> str:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.3)
        return "fast"

    t = Task("t", slow_then_fast, retries=1, timeout=0.05)
    assert t.execute() == "fast"
    assert t.attempts == 2


def test_execute_calls_callbacks_once_with_the_task() -> None:
    log = CallbackLog()
    t = Task("t", lambda: "r", callbacks=[log.sync, log.coroutine])
    t.execute()
    assert log.calls == [("t", TaskStatus.COMPLETED, "r"), ("t", TaskStatus.COMPLETED, "r")]


def test_execute_calls_callbacks_once_after_final_failure() -> None:
    log = CallbackLog()
    t = Task("t", Flaky(failures=5), retries=2, callbacks=[log.sync])
    with pytest.raises(TaskExecutionError):
        t.execute()
    assert log.calls == [("t", TaskStatus.FAILED, None)]


def test_execute_logs_a_raising_callback_and_keeps_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(t: Task) -> None:
        raise RuntimeError("callback broke")

    t = Task("t", lambda: 1, callbacks=[broken])
    with caplog.at_level(logging.ERROR, logger="flowweaver"):
        assert t.execute() == 1
    assert t.status is TaskStatus.COMPLETED
    assert any("callback broke" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_execute_again_starts_from_a_clean_state() -> None:
    outcomes = iter([ValueError("first"), "second"])

    def once_bad() -> str:
        value = next(outcomes)
        if isinstance(value, Exception):
            raise value
        return value

    t = Task("t", once_bad)
    with pytest.raises(TaskExecutionError):
        t.execute()
    assert t.execute() == "second"
    assert t.snapshot() == (TaskStatus.COMPLETED, "second", None)
    assert t.attempts == 1


def test_execute_inside_a_running_event_loop_works() -> None:
    async def main() -> Any:
        return Task("nested", async_returning("from a helper thread")).execute()

    assert anyio.run(main) == "from a helper thread"
    assert anyio.run(main, backend="trio") == "from a helper thread"


def test_status_is_final_for_completed_failed_skipped() -> None:
    assert {s for s in TaskStatus if s.is_final} == {
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.SKIPPED,
    }


def test_execute_awaits_a_coroutine_returned_by_a_sync_callable() -> None:
    make = async_returning("awaited")
    assert Task("t", lambda: make()).execute() == "awaited"


def test_execute_interrupted_by_a_base_exception_leaves_the_task_pending() -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    t = Task("t", interrupted, retries=3)
    with pytest.raises(KeyboardInterrupt):
        t.execute()
    # not a failure of the task (no retry either): it did not finish
    assert t.status is TaskStatus.PENDING
    assert t.attempts == 1


def test_builtin_without_a_readable_signature_gets_no_upstream_results() -> None:
    t = Task("empty", dict)
    assert t.execute({"upstream": 1}) == {}
    wf = Workflow("builtin")
    wf.add_task(Task("upstream", lambda: 1))
    wf.add_task(Task("empty", dict), depends_on=["upstream"])
    SequentialExecutor().execute(wf)
    assert wf.get_task("empty").result == {}  # type: ignore[union-attr]


def test_task_decorator_refuses_what_takes_no_attributes() -> None:
    with pytest.raises(WorkflowValidationError, match="cannot mark"):
        task(len)


def test_execute_awaits_a_coroutine_returned_by_a_sync_callback() -> None:
    seen: list[str] = []

    async def record(t: Task) -> None:
        seen.append(t.name)

    t = Task("t", lambda: 1, callbacks=[lambda t: record(t)])
    t.execute()
    assert seen == ["t"]


def test_execute_with_an_unprintable_exception_raises_task_execution_error() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    def fail() -> None:
        raise Unprintable()

    t = Task("bad", fail, retries=1, retry_delay=0)
    with pytest.raises(TaskExecutionError) as info:
        t.execute()
    assert "task 'bad' failed after 2 attempts: Unprintable (its message" in str(info.value)
    assert t.status is TaskStatus.FAILED


def test_execute_counts_a_value_returned_after_the_deadline_as_a_timeout() -> None:
    swallower, log = swallows_its_timeout(30, swallowing=1)
    t = Task("sly", swallower, timeout=0.1, retries=1, retry_delay=0)
    assert t.execute() == "on time"
    assert log == ["swallowed", "on time"]
    assert t.attempts == 2

    t = Task("sly", swallows_its_timeout(30, swallowing=1)[0], timeout=0.1)
    with pytest.raises(TaskExecutionError) as info:
        t.execute()
    assert isinstance(info.value.__cause__, TaskTimeoutError)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_sync_call_whose_outcome_comes_past_the_deadline_is_a_timeout(backend: str) -> None:
    from flowweaver._engine._attempt import call_with_timeout

    async def late_call(func: Any, kwargs: dict[str, Any]) -> Any:
        # a worker's outcome that reaches the loop only after the deadline has passed
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.3)
        return func(**kwargs)

    async def main() -> None:
        with pytest.raises(TaskTimeoutError):
            await call_with_timeout("late", 0.05, late_call, lambda: "late", {})

    anyio.run(main, backend=backend)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("retry_delay", float("inf")),
        ("retry_backoff", float("inf")),
        ("max_retry_delay", float("inf")),
        ("max_retry_delay", float("nan")),
        ("max_retry_delay", 0),
        ("max_retry_delay", -1),
        ("max_retry_delay", "5"),
        ("max_retry_delay", True),
    ],
)
def test_retry_waits_must_be_finite_and_the_cap_positive(setting: str, value: Any) -> None:
    for make in (
        lambda: Task("t", lambda: None, **{setting: value}),
        lambda: task(name="t", **{setting: value}),
    ):
        with pytest.raises(WorkflowValidationError) as info:
            make()
        assert "task 't'" in str(info.value)
        assert setting in str(info.value)


def test_max_retry_delay_caps_the_wait_and_defaults_to_five_minutes() -> None:
    t = Task("t", lambda: None, retry_delay=1, retry_backoff=10)
    assert t.max_retry_delay == 300
    assert t.retry_wait(2) == 10
    assert t.retry_wait(4) == 300
    assert t.retry_wait(100_000) == 300  # no OverflowError from the backoff
    capped = Task("t", lambda: None, retry_delay=1, retry_jitter=1, max_retry_delay=0.5)
    assert all(capped.retry_wait(1) <= 0.5 for _ in range(50))

    @task(retry_delay=1, max_retry_delay=2)
    def marked() -> None:
        pass

    assert Task.from_callable(marked).max_retry_delay == 2


def test_execute_logs_each_retry_as_a_run_does(caplog: pytest.LogCaptureFixture) -> None:
    t = Task("flaky", Flaky(failures=1), retries=1, retry_delay=0.01)
    with caplog.at_level(logging.WARNING, logger="flowweaver"):
        assert t.execute() == "ok"
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "task 'flaky' attempt 1 failed (RuntimeError: attempt 1 fails); retrying in 0.01 s"
    ]


def test_an_item_of_a_mapped_task_has_every_option_of_the_task() -> None:
    from flowweaver._settings import OPTIONS

    # every option away from its default, so a forgotten one shows
    t = Task(
        "p",
        lambda src: src,
        retries=2,
        timeout=5.0,
        callbacks=[lambda task: None],
        retry_delay=0.5,
        retry_backoff=3.0,
        retry_jitter=0.25,
        version="7",
        max_retry_delay=9.0,
        trigger="all_done",
        map_over="src",
        map_key=str,
        max_concurrent=3,
        on_item_failure="skip",
        cache_ttl=60,
        retry_on=ConnectionError,
        retry_if=bool,
        tags=["db", "api", "db"],
        isolation="process",
    )
    assert t.tags == ("db", "api")  # a list becomes a tuple, each tag once
    t.cache_key = repr  # refused with map_over; set here only to see _item copy it
    item = t._item("k")
    assert (item.name, item.item, item.status, item.attempts) == (
        "p[k]",
        "k",
        TaskStatus.PENDING,
        0,
    )
    defaults = TaskSettings()
    for option in OPTIONS:
        assert getattr(t, option) != getattr(defaults, option), option
        assert getattr(item, option) == getattr(t, option), option
