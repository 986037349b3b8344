"""Tasks, the ``@task`` decorator and the rule that feeds upstream results to a function.

A :class:`Task` is a name, a function and its settings, plus the state of its latest run.
That state is one tuple replaced in a single assignment, so a thread that reads a task
while a run is in progress never sees a status from one moment and a result from another.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._calls import accepted_keywords, is_async_callable
from ._errors import WorkflowValidationError, check_name_text
from ._remote._protocol import RemoteResult
from ._settings import (
    DEFAULTS,
    OPTIONS,
    Callback,
    DecoratorOptions,
    TaskOptions,
    TaskSettings,
    keyword_parameters,
)
from ._status import TaskStatus

if TYPE_CHECKING:
    from datetime import datetime, timedelta

if sys.version_info >= (3, 11):
    from typing import Unpack
else:
    from typing_extensions import Unpack

F = TypeVar("F", bound=Callable[..., Any])

_PENDING_STATE: tuple[TaskStatus, Any, BaseException | None] = (TaskStatus.PENDING, None, None)

__all__ = ["Callback", "Task", "TaskSettings", "task"]


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
    :param max_retry_delay: the longest wait before a retry, in seconds (default 300),
        whatever ``retry_delay``, ``retry_backoff`` and ``retry_jitter`` make of it.
    :param trigger: which outcomes of the upstream tasks let the task run:
        ``"all_success"`` (the default: every one completed), ``"all_done"`` (every one
        ended, however), ``"none_failed"`` (none failed; skipped ones are fine),
        ``"one_failed"`` / ``"one_success"`` (as soon as one failed / completed). A task
        whose rule can no longer be met is ``SKIPPED``. For an upstream task that failed
        the function receives :class:`~flowweaver.Failed`, for one that was skipped (or
        had not ended yet) :data:`~flowweaver.SKIPPED`.
    :param map_over: the name of an upstream task whose result (a list, or any iterable)
        this task maps over: when it completes, the task runs once per element, as items
        named ``name[0]``, ``name[1]``... Each item receives its element as the keyword
        argument ``map_over`` (other upstream results arrive whole) and has its own
        status, attempts, retries, timeout, callbacks and events. The task's result is
        the list of its items' results, in element order. The upstream task is added to
        the task's dependencies if it is not among them.
    :param map_key: names each item after its element: ``map_key(element)`` returns a
        str, unique within the map (``name[<key>]``). A resumed run matches saved items
        by key, so a list that changes order or grows reruns only new or changed items.
    :param max_concurrent: the most items in flight at once (within the executor's own
        bound); None: only the executor's.
    :param on_item_failure: ``"fail"`` (the default): the other items finish, then the
        task is ``FAILED`` and its downstream skipped. ``"skip"``: failed items are left
        out of the result list and the task completes with the rest. Either way
        :attr:`failed_items` names the items that failed. Items that raise
        :class:`~flowweaver.Skip` are left out too. The task's callbacks are called for
        each item (with the item, whose ``item`` attribute is its key) and once for the
        task itself when it ends.
    :param cache_ttl: with a state store, a saved result older than this (seconds, or a
        ``timedelta``) is stale: the task runs again. None (the default): it never
        expires by age.
    :param cache_key: with a state store, a function called with the task's keyword
        arguments that returns a str; the saved result is restored while the key is the
        one it was saved under, instead of while the task's inputs hash the same (for
        inputs that do not hash well: open files, clients, big frames).
    :param retry_on: retry only errors of this exception class (or tuple of classes); any
        other error fails the task at once, its retries unused. A timeout is a
        :class:`~flowweaver.TaskTimeoutError`, which is a ``TimeoutError``.
    :param retry_if: retry only errors for which ``retry_if(exception)`` returns true (with
        ``retry_on`` too: only errors both accept). One that raises counts as false, and
        is logged.
    :param tags: names of shared resources the task uses (``["db", "api"]``); an
        executor's ``limits`` and ``rate_limits`` count the tasks in flight per tag. A
        task waiting for a tag holds no worker and no slot of the executor's own bound.
    :param isolation: ``"process"``: run the function in a worker process, under any
        executor (a timeout then kills it: see :class:`~flowweaver.ProcessExecutor`);
        ``"thread"``: run it in this process even under a ``ProcessExecutor``; None (the
        default): where the executor runs functions of its kind. Ignored by
        ``DaskExecutor``, whose workers run every task apart already.
    :raises WorkflowValidationError: for a non-callable ``func`` or a bad setting (a
        delay, backoff or cap that is not a finite number, say).
    """

    # Only the per-task state is a slot: the options live on the class as their defaults
    # (set below from TaskSettings) and an option away from its default in the instance's
    # __dict__, made only then. A task with default options is about half the size it
    # was with a slot per option (issue 15: a million tasks in memory), and reads an
    # option as fast.
    __slots__ = (
        "__dict__",
        "_callbacks",
        "_finished",
        "_keywords",
        "_logs",
        "_settings",
        "_started",
        "_state",
        "attempts",
        "func",
        "name",
    )
    # Like the options, state that only maps use is a class default, set on the tasks
    # that need it (a mapped task and its items have a __dict__ anyway: map_over).
    #: For an item of a mapped task, its key (its index, or what ``map_key`` returned).
    item: str | int | None = None
    # Shared empty lists: both are only ever replaced whole, never appended to.
    _items: list[Task] = []  # noqa: RUF012 - per instance; see above
    _failed_items: list[str] = []  # noqa: RUF012

    if TYPE_CHECKING:  # the options, copied from self.settings (see _settings.py)
        retries: int
        timeout: float | None
        retry_delay: float
        retry_backoff: float
        retry_jitter: float
        version: str | None
        max_retry_delay: float
        trigger: str
        map_over: str | None
        map_key: Callable[[Any], str] | None
        max_concurrent: int | None
        on_item_failure: str
        cache_ttl: float | timedelta | None
        cache_key: Callable[..., str] | None
        retry_on: type[BaseException] | tuple[type[BaseException], ...] | None
        retry_if: Callable[[BaseException], bool] | None
        tags: tuple[str, ...]
        isolation: str | None

    def __init__(
        self,
        name: str,
        func: Callable[..., Any],
        retries: int = 0,
        timeout: float | None = None,
        callbacks: list[Callback] | None = None,
        **options: Unpack[TaskOptions],
    ) -> None:
        if not isinstance(name, str) or not name:
            raise WorkflowValidationError(f"a task name must be a non-empty string, got {name!r}")
        if not callable(func):
            raise WorkflowValidationError(
                f"task {name!r}: func must be callable, got {type(func).__name__} {func!r}"
            )
        if options or callbacks is not None or timeout is not None or not _is_zero(retries):
            settings = TaskSettings.make(
                name,
                {
                    "name": name,
                    "retries": retries,
                    "timeout": timeout,
                    "callbacks": callbacks,
                    **options,
                },
            )
        else:
            # Every option at its default (most tasks): the shared, already checked
            # defaults, named on demand (see settings); nothing to make or check.
            settings = DEFAULTS
        self._setup(name, func, settings)

    def _setup(self, name: str, func: Callable[..., Any], settings: TaskSettings) -> None:
        check_name_text("task", name)
        self.name = name
        self.func = func
        self._settings = settings
        if settings is not DEFAULTS:
            # Only the options away from their defaults become the task's own.
            own = self.__dict__
            for option, default in _DEFAULT_OPTIONS:
                value = getattr(settings, option)
                if value is not default:
                    own[option] = value
        self._callbacks = list(settings.callbacks) if settings.callbacks else None
        self._state = _PENDING_STATE
        self._keywords: tuple[frozenset[str], bool] | None = None
        self.attempts = 0
        self._started: float | None = None
        self._finished: float | None = None
        self._logs: list[str] | None = None

    @property
    def settings(self) -> TaskSettings:
        """Every option of the task, as one checked :class:`TaskSettings` (named after it)."""
        settings = self._settings
        if settings.name is None:
            # Shared settings (the defaults, or a decorator's without a name) are named
            # the first time they are read, not for every task made.
            settings = self._settings = settings.named(self.name)
        return settings

    @settings.setter
    def settings(self, settings: TaskSettings) -> None:
        self._settings = settings

    @property
    def callbacks(self) -> list[Callback]:
        """Called with the task once it is ``COMPLETED`` or ``FAILED`` (a list of its own,
        made when first read: most tasks have none)."""
        callbacks = self._callbacks
        if callbacks is None:
            callbacks = self._callbacks = []
        return callbacks

    @callbacks.setter
    def callbacks(self, callbacks: list[Callback]) -> None:
        self._callbacks = callbacks

    def _item(self, key: str | int) -> Task:
        """A new item of this mapped task: the same function and settings, its own state."""
        new = Task.__new__(Task)
        new.name = f"{self.name}[{key}]"
        new.func = self.func
        # The options away from their defaults (a mapped task has one at least: map_over),
        # copied, so that changing an item's option leaves the task's alone.
        # tests/test_task.py checks that every option is copied.
        new.__dict__ = self.__dict__.copy()
        new._settings = self._settings
        new._callbacks = self._callbacks
        new._state = _PENDING_STATE
        new._keywords = self._keywords
        new.attempts = 0
        new._started = None
        new._finished = None
        new._logs = None
        new.item = key
        # An item never expands: back to the class's empty lists (its __dict__ is a copy
        # of the task's, which holds the task's own).
        if new._items is not Task._items:
            del new._items
        if new._failed_items is not Task._failed_items:
            del new._failed_items
        return new

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
        if self._started is None:
            return None
        from datetime import datetime  # here: off `import flowweaver` (import time)

        return datetime.fromtimestamp(self._started)

    @property
    def finished_at(self) -> datetime | None:
        """When the task reached ``COMPLETED`` or ``FAILED`` in the latest run."""
        if self._finished is None:
            return None
        from datetime import datetime

        return datetime.fromtimestamp(self._finished)

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
        self._state = _PENDING_STATE
        self.attempts = 0
        self._started = None
        self._finished = None
        # Back to the class's empty lists, without giving a task that never had lists of
        # its own a __dict__ (reading one makes it).
        if self._items is not Task._items:
            del self._items
        if self._failed_items is not Task._failed_items:
            del self._failed_items
        self._logs = None

    @property
    def items(self) -> list[Task]:
        """The items of a mapped task's latest run, in element order (a new list each
        time; empty for a task that is not mapped, or was restored whole)."""
        return list(self._items)

    @property
    def failed_items(self) -> list[str]:
        """The names of the items that failed in a mapped task's latest run."""
        return list(self._failed_items)

    @property
    def logs(self) -> list[str]:
        """The lines its latest run captured (an executor's ``capture_logs=True``): the
        tail of its log records and ``print`` output, a retry's below a ``--- attempt N
        ---`` line; for a task restored from a store, the lines saved with its record.
        Empty when nothing was captured (a new list each time)."""
        return list(self._logs) if self._logs else []

    # -- calling the function --------------------------------------------------------------

    @property
    def is_async(self) -> bool:
        """True when the function is ``async def`` (it is awaited, never called bare)."""
        # Not kept: read from the code's flags, it costs less than a slot in every task.
        return is_async_callable(self.func)

    def retryable(self, exc: BaseException) -> bool:
        """Whether ``retry_on`` and ``retry_if`` let a failed attempt with ``exc`` be
        retried (both unset: yes). A ``retry_if`` that raises says no (logged)."""
        if self.retry_on is not None and not isinstance(exc, self.retry_on):
            return False
        if self.retry_if is None:
            return True
        try:
            return bool(self.retry_if(exc))
        except Exception:
            from ._log import logger  # a run's, whose engine has imported it

            logger.exception(
                "retry_if of task %r raised on %s; the task is not retried", self.name, exc
            )
            return False

    def accepts(self, upstream: str) -> bool:
        """True when the function takes the upstream task ``upstream``'s result."""
        names, var_kw = self._signature()
        return var_kw or upstream in names

    def _takes_any_keyword(self) -> bool:
        """True when the function takes ``**kwargs``: every upstream result."""
        return self._signature()[1]

    def _signature(self) -> tuple[frozenset[str], bool]:
        """The keywords the function takes, and whether it takes ``**kwargs`` (read once)."""
        if self._keywords is None:
            self._keywords = accepted_keywords(self.func)
        return self._keywords

    def _forget_func(self) -> None:
        """Drop what was read from the function: ``func`` was given a new one."""
        self._keywords = None

    def kwargs_from(self, context: Mapping[str, Any] | None) -> dict[str, Any]:
        """The keyword arguments the function receives from ``context`` (upstream results)."""
        if not context:
            return {}
        return {k: v for k, v in context.items() if self.accepts(k)}

    def retry_wait(self, retry_number: int) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry)."""
        if self.retry_delay <= 0:
            return 0.0
        try:
            wait = self.retry_delay * self.retry_backoff ** (retry_number - 1)
        except OverflowError:  # many retries with a backoff: past any cap anyway
            wait = math.inf
        if self.retry_jitter:
            import random  # only jittered retries need it: kept off `import flowweaver`

            wait *= 1 + random.uniform(-self.retry_jitter, self.retry_jitter)
        return min(max(wait, 0.0), self.max_retry_delay)

    def execute(self, context: dict[str, Any] | None = None) -> Any:
        """Run this task on its own, with its retries, timeout and callbacks; block until done.

        Usually executors run tasks; this is for tests and one-off calls. An ``async def``
        function is run on an event loop of its own (or, when this thread already runs
        one, on a helper thread).

        :param context: upstream results by task name, passed to the function by the same
            rule as in a workflow. A mapped task runs once, on the context as given: pass
            one element under its source's name to try one item.
        :returns: the function's result; the task is then ``COMPLETED``.
        :raises TaskExecutionError: when the last attempt fails; the function's exception
            is its ``__cause__`` and the task is ``FAILED``.
        """
        from ._engine._driver import run_task_blocking

        return run_task_blocking(self, context)

    def __repr__(self) -> str:
        return f"<Task {self.name!r} {self.status.value}>"

    @classmethod
    def from_callable(cls, func: Callable[..., Any]) -> Task:
        """A new task from a ``@task`` function or a plain named function."""
        settings = getattr(func, "__flowweaver__", None)
        if isinstance(settings, TaskSettings):
            name = settings.name or _callable_name(func)
            new = cls.__new__(cls)
            # Named when first read (see settings), unless the name takes part in the
            # checks: a task cannot map over itself.
            new._setup(name, func, settings if settings.map_over is None else settings.named(name))
            return new
        return cls(_callable_name(func), func)


# The options' defaults, on the class (see __slots__); callbacks is a property of its own.
_DEFAULT_OPTIONS = tuple(
    (option, getattr(DEFAULTS, option)) for option in OPTIONS if option != "callbacks"
)
for _option, _default in _DEFAULT_OPTIONS:
    setattr(Task, _option, _default)


def _is_zero(retries: object) -> bool:
    return type(retries) is int and retries == 0


# Type checkers read the TypedDicts; help() and IDEs that inspect at run time read these,
# built from the same list of options (inspect.signature follows __signature__).
_KW = keyword_parameters(tuple(TaskOptions.__annotations__))
Task.__init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="str"),
        inspect.Parameter(
            "func", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Callable[..., Any]"
        ),
        *(
            p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
            for p in keyword_parameters(("retries", "timeout", "callbacks"))
        ),
        *_KW,
    ],
    return_annotation="None",
)


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
def task(func: None = None, /, **options: Unpack[DecoratorOptions]) -> Callable[[F], F]: ...


def task(func: F | None = None, /, **options: Unpack[DecoratorOptions]) -> F | Callable[[F], F]:
    """Mark a function as a task, with or without parentheses.

    The function itself is returned unchanged, so it stays callable (and awaitable, if it
    is ``async def``) exactly as before, for unit tests; its settings are stored on
    ``func.__flowweaver__``. ``Workflow.add_task(func)`` makes a fresh :class:`Task` from
    them each time, so one function can serve in several workflows.

    The options are those of :class:`Task` (``name``, ``retries``, ``timeout``,
    ``callbacks``, ``retry_delay``, ``retry_backoff``, ``retry_jitter``, ``version``,
    ``max_retry_delay``, ``trigger``, ``map_over``, ``map_key``, ``max_concurrent``,
    ``on_item_failure``, ``cache_ttl``, ``cache_key``, ``retry_on``, ``retry_if``,
    ``tags``, ``isolation``), all by keyword; ``name`` defaults to ``func.__name__``.

    :raises WorkflowValidationError: for a bad setting, at decoration time.
    """
    name = options.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise WorkflowValidationError(f"a task name must be a non-empty string, got {name!r}")
    settings = TaskSettings.make(name, dict(options))

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


task.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter("func", inspect.Parameter.POSITIONAL_ONLY, default=None),
        *keyword_parameters(("name", "retries", "timeout", "callbacks")),
        *_KW,
    ]
)
