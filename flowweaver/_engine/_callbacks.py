"""Task callbacks: called once a task is final; a failing callback is logged, never fatal."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .. import _log
from .._calls import is_async_callable

if TYPE_CHECKING:
    from .._task import Task

logger = _log.logger  # with its NullHandler (see _log)

SyncCall = Callable[[Callable[..., Any], dict[str, Any]], Awaitable[Any]]


async def run_callbacks(task: Task, call_sync: SyncCall | None) -> None:
    """Call each of ``task.callbacks`` with ``task``, in order.

    :param call_sync: runs a sync callback off the loop (a worker pool's ``call``);
        ``None`` calls it right here, when the run owns its loop.

    ``async def`` callbacks are awaited. An exception from a callback is logged to the
    ``flowweaver`` logger and does not change the task's status. Cancellation propagates.
    """
    for callback in task.callbacks:
        try:
            if is_async_callable(callback):
                await callback(task)
            else:
                if call_sync is None:
                    result = callback(task)
                else:
                    result = await call_sync(functools.partial(callback, task), {})
                if inspect.isawaitable(result):
                    await result
        except Exception:
            logger.exception(
                "callback %r of task %r raised; the task stays %s",
                getattr(callback, "__name__", callback),
                task.name,
                task.status.value,
            )
