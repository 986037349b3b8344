"""FlowWeaver's exceptions.

Every error the library raises on purpose is a :class:`FlowWeaverError`, so a caller can
catch them all at once. Bad input found before a run (an unknown dependency, a cycle, a bad
setting) raises :class:`WorkflowValidationError`, which is also a :class:`ValueError`
because that is what it is: a wrong value passed in by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def describe_exception(exc: BaseException) -> str:
    """``"ValueError: bad"``: an exception's type and message, without trusting either.

    A task may raise anything, including an exception whose ``__str__`` raises or returns
    something other than a str; describing it must never fail the run. Such a message is
    replaced by a note naming what went wrong reading it.
    """
    kind = type(exc).__name__
    try:
        message = str(exc)
        if type(message) is not str:  # a str subclass could override formatting too
            message = str.__str__(message)
    except Exception as inner:  # a hostile __str__: say so instead of failing the run
        return f"{kind} (its message could not be read: {type(inner).__name__})"
    return f"{kind}: {message}"


class FlowWeaverError(Exception):
    """Base class of every exception FlowWeaver raises on purpose."""


class WorkflowValidationError(FlowWeaverError, ValueError):
    """The workflow or a setting is invalid; raised before any task runs."""


class CycleError(WorkflowValidationError):
    """The dependencies form a cycle.

    :ivar cycle: the task names along the cycle, the first repeated at the end
        (``["a", "b", "a"]``).
    """

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        path = " -> ".join(self.cycle)
        super().__init__(f"the dependencies form a cycle: {path}; remove one of these dependencies")


class TaskExecutionError(FlowWeaverError):
    """A task failed after all its attempts.

    The exception raised by the task's function is chained as ``__cause__``.

    :ivar task_name: the name of the task that failed.
    :ivar attempts: how many attempts were made.
    """

    def __init__(self, task_name: str, attempts: int, cause: BaseException) -> None:
        self.task_name = task_name
        self.attempts = attempts
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        super().__init__(f"task {task_name!r} failed after {tries}: {describe_exception(cause)}")


class TaskTimeoutError(FlowWeaverError, TimeoutError):
    """One attempt of a task ran longer than the task's ``timeout``.

    For a synchronous function the attempt fails at the deadline but its thread keeps
    running to its end: Python cannot stop a thread from outside. A function run in a
    worker process (``isolation="process"``, ``ProcessExecutor``) is stopped: its process
    is terminated (SIGTERM, then SIGKILL after the executor's ``kill_grace``).
    """

    def __init__(self, task_name: str, timeout: float) -> None:
        self.task_name = task_name
        self.timeout = timeout
        super().__init__(f"task {task_name!r} timed out after {timeout:g} s")


class TaskCrashedError(FlowWeaverError):
    """The worker process running an attempt of a task died before it returned (a
    segfault, the OOM killer, ``os._exit``): the attempt failed, and retries apply.

    :ivar task_name: the name of the task.
    :ivar exitcode: the process's exit status, or None when a signal ended it.
    :ivar signal: the name of the signal that ended it (``"SIGKILL"``), or None.
    """

    def __init__(self, task_name: str, exitcode: int | None, signal: str | None) -> None:
        self.task_name = task_name
        self.exitcode = exitcode
        self.signal = signal
        how = f"was killed by {signal}" if signal else f"exited with status {exitcode}"
        hint = " (the out-of-memory killer sends SIGKILL)" if signal == "SIGKILL" else ""
        super().__init__(
            f"task {task_name!r}: its worker process {how}{hint} before the task returned"
        )


class UnsendableError(FlowWeaverError):
    """A task's function, inputs or result cannot travel to or from its worker process
    (it cannot be pickled, or loaded there). The same every time: the task fails without
    its retries. Not exported: users see a :class:`FlowWeaverError`."""


class WorkflowExecutionError(FlowWeaverError):
    """A workflow run finished with failed tasks.

    Tasks downstream of a failed task were skipped; independent branches ran to the end
    (unless the executor was created with ``fail_fast=True``).

    :ivar failed_task: the name of the first task that failed.
    :ivar failed_tasks: the names of all failed tasks, in the order they failed.
    :ivar errors: each failed task's name mapped to the exception its function raised.
    :ivar skipped_tasks: the names of the tasks that did not run because of a failure.
        Neither list names the items of a mapped task: the mapped task stands for them
        (see its ``failed_items`` and ``items``).
    """

    def __init__(
        self,
        workflow_name: str,
        errors: Mapping[str, BaseException],
        skipped_tasks: Sequence[str] = (),
    ) -> None:
        if not errors:
            raise ValueError("WorkflowExecutionError needs at least one failed task")
        self.workflow_name = workflow_name
        self.errors = dict(errors)
        self.failed_tasks = list(self.errors)
        self.failed_task = self.failed_tasks[0]
        self.skipped_tasks = list(skipped_tasks)
        first = self.errors[self.failed_task]
        message = (
            f"workflow {workflow_name!r} failed: task {self.failed_task!r} raised "
            f"{describe_exception(first)}"
        )
        others = self.failed_tasks[1:]
        if others:
            message += f"; also failed: {', '.join(others)}"
        if self.skipped_tasks:
            message += f"; skipped: {len(self.skipped_tasks)} downstream task(s)"
        super().__init__(message)


def check_name_text(kind: str, name: str) -> None:
    """Refuse a name that UTF-8 cannot hold (a lone surrogate, say from a file name
    decoded with ``surrogateescape``): no store could save it, nor a log line show it.

    :raises WorkflowValidationError: naming the name and the character.
    """
    if name.isascii():
        return
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise WorkflowValidationError(
            f"a {kind} name must be text that UTF-8 can hold; {name!r} has a lone surrogate "
            f"({name[exc.start]!r} at position {exc.start}): rename it"
        ) from None


class MapError(FlowWeaverError):
    """A mapped task could not be expanded into items: the upstream result it maps over
    is not a list (nor any iterable), or its ``map_key`` failed or gave two elements the
    same key. The task is ``FAILED`` with this error; no item ran.

    :ivar task_name: the mapped task's name.
    """

    def __init__(self, task_name: str, message: str) -> None:
        self.task_name = task_name
        super().__init__(f"task {task_name!r}: {message}")


class ItemsFailedError(FlowWeaverError):
    """Items of a mapped task failed (with ``on_item_failure="fail"``, the default): the
    mapped task is ``FAILED`` with this error once its other items ended.

    :ivar task_name: the mapped task's name.
    :ivar errors: each failed item's name (``"process_file[3]"``) mapped to its exception,
        in element order.
    :ivar total: how many items the task had.
    """

    _SHOWN = 3

    def __init__(self, task_name: str, errors: Mapping[str, BaseException], total: int) -> None:
        self.task_name = task_name
        self.errors = dict(errors)
        self.total = total
        shown = [f"{name} ({describe_exception(e)})" for name, e in list(errors.items())[:3]]
        more = len(errors) - len(shown)
        listed = ", ".join(shown) + (f" and {more} more" if more else "")
        super().__init__(f"{len(errors)} of {total} items of task {task_name!r} failed: {listed}")
