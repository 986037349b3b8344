"""What runs on a Dask worker for each task attempt (see ``_dask``).

A task function is not handed to Dask as it is: :func:`run_on_worker` calls it, runs an
``async def`` function (or a sync one that returned an awaitable) to its end on a fresh
event loop of the worker thread, and checks that the value can be pickled before Dask
keeps it. Without that check a value that cannot travel (a lock, an open file) would
sit on its worker until something needs it elsewhere; then a dependent on another worker
waits for it forever, and the driver gets an error naming no task. With it, the attempt
fails at once with an error that names the task.

Each execution that ends well is also logged with the run's token (when it has one), so
the driver can tell when Dask runs a finished task again (see ``_dask_watch``).

This module is imported on the workers, so it stays small and imports nothing heavy.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from .._errors import FlowWeaverError

# Values that always pickle: spares the check for the many tasks that return these.
_PLAIN = frozenset({type(None), bool, int, float, complex, str, bytes})


class ResultNotPicklableError(FlowWeaverError, TypeError):
    """A task ran on a Dask worker but its result cannot be pickled to leave the worker.

    The attempt fails (and is retried like any failure, if the task has retries).

    :ivar task_name: the task whose function returned the value.
    :ivar value_type: the type name of the value.
    """

    def __init__(self, task_name: str, value_type: str, reason: str) -> None:
        self.task_name = task_name
        self.value_type = value_type
        self.reason = reason
        super().__init__(
            f"task {task_name!r} returned a {value_type} that cannot be pickled ({reason}), "
            "so it cannot leave the Dask worker for its dependents or the driver; return "
            "picklable data (plain values, dataclasses, arrays, data frames) instead"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised on a worker and pickled back to the driver: rebuild from the fields.
        return (type(self), (self.task_name, self.value_type, self.reason))


def run_on_worker(
    task_name: str, token: str | None, func: Callable[..., Any], /, **kwargs: Any
) -> Any:
    """Call ``func(**kwargs)`` on the worker; return a value that can leave the worker.

    Positional-only parameters, so a task may take keyword arguments named like them.
    With a ``token``, the execution is logged once the value is ready.

    :raises ResultNotPicklableError: the value cannot be pickled.
    :raises Exception: whatever the task function raised.
    """
    value = func(**kwargs)
    if type(value) not in _PLAIN:
        if inspect.isawaitable(value):
            # A worker thread runs no event loop of its own: give the coroutine a fresh one.
            import asyncio  # rarely needed, and costly to import with the package

            value = asyncio.run(_wait(value))
        if type(value) not in _PLAIN:
            _check_picklable(task_name, value)
    if token is not None:
        _log_execution(token)
    return value


#: ``_dask_watch.EXECUTIONS``, spelled here too: the workers need not import that module.
_EXECUTIONS = "flowweaver-executions"


def _log_execution(token: str) -> None:
    try:
        from distributed import get_worker

        worker = get_worker()
        # One small message on the worker's batched stream to the scheduler.
        worker.log_event(_EXECUTIONS, (token, worker.get_current_task()))
    except Exception:  # not on a worker (called directly), or the worker is closing
        pass


async def _wait(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _check_picklable(task_name: str, value: Any) -> None:
    import cloudpickle  # a core dependency (worker processes), untyped: see pyproject

    try:
        # Protocol 5 with a buffer callback: array data is referenced, never copied.
        cloudpickle.dumps(value, protocol=5, buffer_callback=_drop)
    except Exception as exc:
        raise ResultNotPicklableError(
            task_name, type(value).__qualname__, f"{type(exc).__name__}: {exc}"
        ) from None


def _drop(buffer: Any) -> None:
    pass
