"""Tasks, the ``@task`` decorator and the rule that feeds upstream results to a function.

A :class:`Task` is a name, a function and its settings, plus the state of its latest run.
That state is one tuple replaced in a single assignment, so a thread that reads a task
while a run is in progress never sees a status from one moment and a result from another.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, overload

from ._calls import accepted_keywords, is_async_callable
from ._errors import WorkflowValidationError
from ._remote import RemoteResult
from ._status import TaskStatus

F = TypeVar("F", bound=Callable[..., Any])

Callback = Callable[["Task"], Any]


@dataclass(frozen=True)
class TaskSettings:
    """What ``@task`` stores on ``func.__flowweaver__``; checked when it is made."""

    name: str | None = None
    retries: int = 0
    timeout: float | None = None
    callbacks: tuple[Callback, ...] = ()
    retry_delay: float = 0.0
    retry_backoff: float = 2.0
    retry_jitter: float = 0.0
    version: str | None = None

    def __post_init__(self) -> None:
        check_settings(
            self.name or "<unnamed>",
            retries=self.retries,
            timeout=self.timeout,
            callbacks=self.callbacks,
            retry_delay=self.retry_delay,
            retry_backoff=self.retry_backoff,
            retry_jitter=self.retry_jitter,
            version=self.version,
        )


def check_settings(
    name: str,
    *,
    retries: int,
    timeout: float | None,
    callbacks: Iterable[Any],
    retry_delay: float,
    retry_backoff: float,
    retry_jitter: float,
    version: str | None,
) -> None:
    """Raise :class:`WorkflowValidationError` naming the task for any bad setting."""
    where = f"task {name!r}"
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise WorkflowValidationError(f"{where}: retries must be a whole number, got {retries!r}")
    if retries < 0:
        raise WorkflowValidationError(
            f"{where}: retries must be 0 or more, got {retries}; use 0 for a single attempt"
        )
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise WorkflowValidationError(
                f"{where}: timeout must be a number of seconds or None, got {timeout!r}"
            )
        if not timeout > 0 or math.isnan(timeout):
            raise WorkflowValidationError(
                f"{where}: timeout must be more than 0 seconds, got {timeout!r}; "
                "use None for no timeout"
            )
    for cb in callbacks:
        if not callable(cb):
            raise WorkflowValidationError(f"{where}: every callback must be callable, got {cb!r}")
    for label, value in (("retry_delay", retry_delay), ("retry_jitter", retry_jitter)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise WorkflowValidationError(f"{where}: {label} must be 0 or more, got {value!r}")
    if retry_jitter > 1:
        raise WorkflowValidationError(
            f"{where}: retry_jitter is a fraction of the delay from 0 to 1, got {retry_jitter!r}"
        )
    if (
        isinstance(retry_backoff, bool)
        or not isinstance(retry_backoff, (int, float))
        or not (retry_backoff >= 1)
    ):
        raise WorkflowValidationError(
            f"{where}: retry_backoff must be 1 (constant delay) or more, got {retry_backoff!r}"
        )
    if version is not None and not isinstance(version, str):
        raise WorkflowValidationError(f"{where}: version must be a string, got {version!r}")


class Task:
    """One unit of work in a workflow.

    :param name: unique within its workflow.
    :param func: the function to run, plain or ``async def``. It receives the result of
        each upstream task ``U`` as the keyword argument ``U`` when it has a parameter of
        that name or takes ``**kwargs``.
    :param retries: extra attempts after a failure (at most ``retries + 1`` attempts).
    :param timeout: seconds each attempt may take. An async function is cancelled at the
        deadline; a sync one runs in a worker thread that is abandoned at the deadline
        (Python cannot kill a thread), and the attempt fails with
        :class:`~flowweaver.TaskTimeoutError`.
    :param callbacks: called with this task once it is ``COMPLETED`` or ``FAILED``
        (after all retries); ``async def`` callbacks are awaited. A callback that raises is
        logged and does not change the task's status.
    :param retry_delay: seconds to wait before the first retry (default: none).
    :param retry_backoff: each further retry waits this many times longer.
    :param retry_jitter: a fraction (0 to 1) by which each delay is varied at random, so
        that many tasks failing together do not retry in lockstep.
    :param version: the version of the task's code. A result saved in a state store under
        another version is not restored: the task runs again.
    :raises WorkflowValidationError: for a non-callable ``func`` or a bad setting.
    """

    __slots__ = (
        "_finished",
        "_is_async",
        "_keywords",
        "_started",
        "_state",
        "attempts",
        "callbacks",
        "func",
        "name",
        "retries",
        "retry_backoff",
        "retry_delay",
        "retry_jitter",
        "timeout",
        "version",
    )

    def __init__(
        self,
        name: str,
        func: Callable[..., Any],
        retries: int = 0,
        timeout: float | None = None,
        callbacks: list[Callback] | None = None,
        *,
        retry_delay: float = 0.0,
        retry_backoff: float = 2.0,
        retry_jitter: float = 0.0,
        version: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise WorkflowValidationError(f"a task name must be a non-empty string, got {name!r}")
        if not callable(func):
            raise WorkflowValidationError(
                f"task {name!r}: func must be callable, got {type(func).__name__} {func!r}"
            )
        if callbacks is not None and (
            isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable)
        ):
            raise WorkflowValidationError(
                f"task {name!r}: callbacks must be a list of callables, got {callbacks!r}"
            )
        cbs = list(callbacks or ())
        check_settings(
            name,
            retries=retries,
            timeout=timeout,
            callbacks=cbs,
            retry_delay=retry_delay,
            retry_backoff=retry_backoff,
            retry_jitter=retry_jitter,
            version=version,
        )
        self.name = name
        self.func = func
        self.retries = retries
        self.timeout = timeout
        self.callbacks: list[Callback] = cbs
        self.retry_delay = retry_delay
        self.retry_backoff = retry_backoff
        self.retry_jitter = retry_jitter
        self.version = version
        self._state: tuple[TaskStatus, Any, BaseException | None] = (
            TaskStatus.PENDING,
            None,
            None,
        )
        self._keywords: tuple[frozenset[str], bool] | None = None
        self._is_async: bool | None = None
        self.attempts = 0
        self._started: float | None = None
        self._finished: float | None = None

    # -- state ---------------------------------------------------------------------------

    @property
    def status(self) -> TaskStatus:
        """The task's current :class:`TaskStatus`."""
        return self._state[0]

    @property
    def result(self) -> Any:
        """What the function returned (``None`` until the task has ``COMPLETED``).

        Under a remote executor (Dask) the value stays on the cluster until first read here.
        """
        value = self._state[1]
        if type(value) is RemoteResult:
            return value.get()
        return value

    @property
    def error(self) -> BaseException | None:
        """The exception of the last failed attempt, when the task ``FAILED``."""
        return self._state[2]

    def snapshot(self) -> tuple[TaskStatus, Any, BaseException | None]:
        """``(status, result, error)`` read at one instant; safe from any thread."""
        status, value, error = self._state
        if type(value) is RemoteResult:
            value = value.get()
        return status, value, error

    @property
    def started_at(self) -> datetime | None:
        """When the first attempt of the latest run started (local time)."""
        return None if self._started is None else datetime.fromtimestamp(self._started)

    @property
    def finished_at(self) -> datetime | None:
        """When the task reached ``COMPLETED`` or ``FAILED`` in the latest run."""
        return None if self._finished is None else datetime.fromtimestamp(self._finished)

    @property
    def duration(self) -> float | None:
        """Seconds from the first attempt's start to the end of the last one."""
        if self._started is None or self._finished is None:
            return None
        return max(self._finished - self._started, 0.0)

    def _set_state(
        self, status: TaskStatus, result: Any = None, error: BaseException | None = None
    ) -> None:
        self._state = (status, result, error)

    def _reset(self) -> None:
        self._state = (TaskStatus.PENDING, None, None)
        self.attempts = 0
        self._started = None
        self._finished = None

    # -- calling the function --------------------------------------------------------------

    @property
    def is_async(self) -> bool:
        """True when the function is ``async def`` (it is awaited, never called bare)."""
        if self._is_async is None:
            self._is_async = is_async_callable(self.func)
        return self._is_async

    def accepts(self, upstream: str) -> bool:
        """True when the function takes the upstream task ``upstream``'s result."""
        if self._keywords is None:
            self._keywords = accepted_keywords(self.func)
        names, var_kw = self._keywords
        return var_kw or upstream in names

    def kwargs_from(self, context: Mapping[str, Any] | None) -> dict[str, Any]:
        """The keyword arguments the function receives from ``context`` (upstream results)."""
        if not context:
            return {}
        return {k: v for k, v in context.items() if self.accepts(k)}

    def retry_wait(self, retry_number: int) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry)."""
        if self.retry_delay <= 0:
            return 0.0
        wait = self.retry_delay * self.retry_backoff ** (retry_number - 1)
        if self.retry_jitter:
            wait *= 1 + random.uniform(-self.retry_jitter, self.retry_jitter)
        return max(wait, 0.0)

    def execute(self, context: dict[str, Any] | None = None) -> Any:
        """Run this task on its own, with its retries, timeout and callbacks; block until done.

        Usually executors run tasks; this is for tests and one-off calls. An ``async def``
        function is run on an event loop of its own (or, when this thread already runs
        one, on a helper thread).

        :param context: upstream results by task name, passed to the function by the same
            rule as in a workflow.
        :returns: the function's result; the task is then ``COMPLETED``.
        :raises TaskExecutionError: when the last attempt fails; the function's exception
            is its ``__cause__`` and the task is ``FAILED``.
        """
        from ._async._engine import run_task_blocking

        return run_task_blocking(self, context)

    def __repr__(self) -> str:
        return f"<Task {self.name!r} {self.status.value}>"

    @classmethod
    def from_callable(cls, func: Callable[..., Any]) -> Task:
        """A new task from a ``@task`` function or a plain named function."""
        settings = getattr(func, "__flowweaver__", None)
        if isinstance(settings, TaskSettings):
            name = settings.name or _callable_name(func)
            return cls(
                name,
                func,
                retries=settings.retries,
                timeout=settings.timeout,
                callbacks=list(settings.callbacks),
                retry_delay=settings.retry_delay,
                retry_backoff=settings.retry_backoff,
                retry_jitter=settings.retry_jitter,
                version=settings.version,
            )
        return cls(_callable_name(func), func)


def _callable_name(func: Callable[..., Any]) -> str:
    name = getattr(func, "__name__", None)
    if not isinstance(name, str) or not name or name == "<lambda>":
        raise WorkflowValidationError(
            f"{func!r} has no usable name; give it one: Task('some_name', func) "
            "or @task(name='some_name')"
        )
    return name


@overload
def task(func: F, /) -> F: ...


@overload
def task(
    func: None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    timeout: float | None = None,
    callbacks: list[Callback] | None = None,
    retry_delay: float = 0.0,
    retry_backoff: float = 2.0,
    retry_jitter: float = 0.0,
    version: str | None = None,
) -> Callable[[F], F]: ...


def task(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    timeout: float | None = None,
    callbacks: list[Callback] | None = None,
    retry_delay: float = 0.0,
    retry_backoff: float = 2.0,
    retry_jitter: float = 0.0,
    version: str | None = None,
) -> F | Callable[[F], F]:
    """Mark a function as a task, with or without parentheses.

    The function itself is returned unchanged, so it stays callable (and awaitable, if it
    is ``async def``) exactly as before, for unit tests; its settings are stored on
    ``func.__flowweaver__``. ``Workflow.add_task(func)`` makes a fresh :class:`Task` from
    them each time, so one function can serve in several workflows.

    The parameters are those of :class:`Task`; ``name`` defaults to ``func.__name__``.

    :raises WorkflowValidationError: for a bad setting, at decoration time.
    """
    if name is not None and (not isinstance(name, str) or not name):
        raise WorkflowValidationError(f"a task name must be a non-empty string, got {name!r}")
    if callbacks is not None and (
        isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable)
    ):
        raise WorkflowValidationError(f"callbacks must be a list of callables, got {callbacks!r}")
    settings = TaskSettings(
        name=name,
        retries=retries,
        timeout=timeout,
        callbacks=tuple(callbacks or ()),
        retry_delay=retry_delay,
        retry_backoff=retry_backoff,
        retry_jitter=retry_jitter,
        version=version,
    )

    def mark(f: F) -> F:
        if not callable(f):
            raise WorkflowValidationError(f"@task needs a function, got {f!r}")
        try:
            f.__flowweaver__ = settings  # type: ignore[attr-defined]
        except AttributeError:
            raise WorkflowValidationError(
                f"@task cannot mark {f!r} (it takes no attributes); wrap it in a def "
                "or use Task(name, func)"
            ) from None
        return f

    if func is not None:
        return mark(func)
    return mark
