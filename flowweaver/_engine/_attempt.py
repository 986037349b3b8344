"""Running one attempt of a function with a deadline, shared by the engine and ``Task.execute``."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from .. import _log
from .._errors import TaskTimeoutError, describe_exception

if TYPE_CHECKING:
    from .._task import Task

logger = _log.logger  # with its NullHandler (see _log)


async def await_with_timeout(name: str, limit: float | None, awaitable: Awaitable[Any]) -> Any:
    """``await awaitable``, cancelled after ``limit`` seconds (a task's ``timeout``).

    :raises TaskTimeoutError: at the deadline (the awaitable has been cancelled), also when
        the awaitable catches that cancellation and returns a value anyway: that value came
        after the deadline, so the attempt timed out.
    """
    if limit is None:
        return await awaitable
    with anyio.move_on_after(limit) as scope:
        value = await awaitable
    if scope.cancel_called:
        raise TaskTimeoutError(name, limit)
    return value


async def call_with_timeout(
    name: str,
    limit: float,
    call: Callable[[Callable[..., Any], dict[str, Any]], Awaitable[Any]],
    func: Callable[..., Any],
    kwargs: dict[str, Any],
) -> Any:
    """Run a sync ``func`` through ``call`` (a worker pool's) and give up after ``limit`` s.

    The worker thread cannot be stopped; it is abandoned and the attempt fails.

    :raises TaskTimeoutError: at the deadline, whatever the call returned past it.
    """
    with anyio.move_on_after(limit) as scope:
        value = await call(func, kwargs)
    if scope.cancel_called:
        raise TaskTimeoutError(name, limit)
    return value


def is_awaitable(value: Any) -> bool:
    """``inspect.isawaitable(value)``, False when the value fails the check itself.

    The check reads ``value.__class__``, which a task's result may make raise; a result
    that cannot even say what it is has no ``__await__`` the engine could call.
    """
    try:
        return inspect.isawaitable(value)
    except Exception:
        return False


def log_retry(task: Task, exc: BaseException, wait: float) -> None:
    """The warning a failed attempt that will be retried gets, in a run or ``Task.execute``."""
    logger.warning(
        "task %r attempt %d failed (%s); retrying%s",
        task.name,
        task.attempts,
        describe_exception(exc),
        f" in {wait:.3g} s" if wait else "",
    )
