"""How a run ends: tasks caught in flight, and the error that reports the failures."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import TaskExecutionError, WorkflowExecutionError
from .._events import RunEvent, TaskCancelled, TaskSkipped
from .._outcomes import TRIGGER_RULES
from .._status import TaskStatus
from ._rules import ALL_SUCCESS, ONE_FAILED, ONE_SUCCESS
from ._scheduler import FAILED, Skipped

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from .._task import Task


def is_interruption(exc: BaseException) -> bool:
    """True when ``exc`` ends a run from outside: a cancellation, Ctrl-C or SIGTERM.

    A group counts when everything in it does (a task group can wrap them).
    """
    if isinstance(exc, BaseExceptionGroup):
        return all(is_interruption(e) for e in exc.exceptions)
    return isinstance(exc, (KeyboardInterrupt, anyio.get_cancelled_exc_class()))


def bare_interrupt(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt in ``exc`` when it is a group holding one, else None.

    trio raises Ctrl-C in whichever task happens to run; in a child task of a task group
    it comes out wrapped in a ``BaseExceptionGroup``. A user pressing Ctrl-C expects a
    KeyboardInterrupt, whatever else was on its way out.
    """
    if not isinstance(exc, BaseExceptionGroup):
        return None
    for inner in exc.exceptions:
        found = inner if isinstance(inner, KeyboardInterrupt) else bare_interrupt(inner)
        if found is not None:
            return found
    return None


def settle_interrupted(
    workflow: str,
    tasks: Sequence[Task],
    cancelled: Sequence[int],
    skipped: Sequence[int],
    stopped_by: str | None,
    emit: Callable[[RunEvent], Any] | None,
) -> None:
    """Show what the scheduler decided when the run stopped early (``interrupt``).

    :param cancelled: tasks caught in flight: they did not finish, back to ``PENDING``
        (with a ``TaskCancelled`` event, unless a failure stopped the run).
    :param skipped: tasks that will not run because ``fail_fast`` stopped the run after
        ``stopped_by`` failed, each with a ``TaskSkipped`` event naming it.
    """
    now = time.time()
    for j in cancelled:
        t = tasks[j]
        t._state = (TaskStatus.PENDING, None, None)
        t._finished = None
        if emit is not None and stopped_by is None:
            emit(TaskCancelled(workflow, now, t.name, item=t.item))
    if stopped_by is None:
        return
    for j in skipped:
        t = tasks[j]
        t._state = (TaskStatus.SKIPPED, None, None)
        if emit is not None:
            emit(TaskSkipped(workflow, now, t.name, stopped_by, item=t.item))


def skip_reason(why: Skipped, upstream: str, states: Sequence[int]) -> str:
    """The text of a skip's reason (for its ``TaskSkipped`` event and its record).

    :param upstream: the name of the task ``why.upstream`` ("" for none).
    """
    rule = TRIGGER_RULES[why.rule]
    if why.stop:
        return f"the run stopped after task {upstream!r} failed (fail_fast)"
    if why.rule == ONE_FAILED:
        return "no upstream task failed (trigger rule 'one_failed')"
    if why.rule == ONE_SUCCESS:
        return "no upstream task completed (trigger rule 'one_success')"
    assert why.upstream is not None
    how = "failed" if states[why.upstream] == FAILED else "was skipped"
    text = f"upstream task {upstream!r} {how}"
    return text if why.rule == ALL_SUCCESS else f"{text} (trigger rule {rule!r})"


def execution_error(
    workflow: str, tasks: Sequence[Task], failed: Sequence[int], skipped: Sequence[int]
) -> WorkflowExecutionError:
    """The error a run with failed tasks raises: the first failure as its cause."""
    errors: dict[str, BaseException] = {}
    for i in failed:
        t = tasks[i]
        assert t.error is not None
        errors[t.name] = t.error
    err = WorkflowExecutionError(workflow, errors, [tasks[j].name for j in skipped])
    first = tasks[failed[0]]
    cause = TaskExecutionError(first.name, first.attempts, errors[first.name])
    cause.__cause__ = errors[first.name]
    err.__cause__ = cause
    return err
