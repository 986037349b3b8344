"""``Task.execute``: one task on its own, with its retries, timeout and callbacks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from .._blocking import run_blocking
from .._errors import TaskExecutionError
from .._status import TaskStatus
from ._attempt import await_with_timeout, call_with_timeout, is_awaitable, log_retry
from ._callbacks import run_callbacks
from ._workers import WorkerPool, threadsafe_caller

if TYPE_CHECKING:
    from .._task import Task


async def execute_task(task: Task, context: Mapping[str, Any] | None) -> Any:
    """Run ``task`` on the current loop; see :meth:`Task.execute`.

    A sync function without a timeout is called on this thread (the loop was started for
    this call); with a timeout it runs on a worker thread that is abandoned at the deadline.
    """
    kwargs = task.kwargs_from(context)
    task._reset()
    task._started = time.time()
    pool: WorkerPool | None = None
    try:
        while True:
            task.attempts += 1
            task._set_state(TaskStatus.RUNNING)
            try:
                if task.is_async:
                    value = await await_with_timeout(task.name, task.timeout, task.func(**kwargs))
                elif task.timeout is None:
                    value = task.func(**kwargs)
                else:
                    if pool is None:
                        pool = WorkerPool(1, threadsafe_caller(), task.name)
                    value = await call_with_timeout(
                        task.name, task.timeout, pool.call, task.func, kwargs
                    )
                if is_awaitable(value):
                    value = await await_with_timeout(task.name, task.timeout, value)
            except Exception as exc:
                if task.attempts <= task.retries:
                    task._set_state(TaskStatus.RETRYING, None, exc)
                    wait = task.retry_wait(task.attempts)
                    log_retry(task, exc, wait)
                    await anyio.sleep(wait)
                    continue
                task._finished = time.time()
                task._set_state(TaskStatus.FAILED, None, exc)
                await run_callbacks(task, None)
                raise TaskExecutionError(task.name, task.attempts, exc) from exc
            task._finished = time.time()
            task._set_state(TaskStatus.COMPLETED, value)
            await run_callbacks(task, None)
            return value
    except BaseException:
        if not task.status.is_final:
            task._set_state(TaskStatus.PENDING)
        raise
    finally:
        if pool is not None:
            pool.close()


def execute_task_blocking(task: Task, context: Mapping[str, Any] | None) -> Any:
    """Block until :func:`execute_task` is done, with or without a loop in this thread."""
    return run_blocking(execute_task, task, context)
