"""FlowWeaver: run a DAG of Python tasks in-process, from sync or async code.

Every public name is here (blocking forms) or in :mod:`flowweaver.aio` (awaitable forms);
all other modules are private.

``SequentialExecutor`` and ``ThreadedExecutor`` block in ``execute``. ``AsyncExecutor``'s
``execute`` is awaited, as in the API reference; ``ConcurrentExecutor`` is the same
scheduling with a blocking ``execute``, and ``Workflow.execute(executor)`` blocks for all.
"""

import logging as _logging

from ._async._executors import AsyncConcurrentExecutor as AsyncExecutor
from ._context import TaskContext, current
from ._errors import (
    CycleError,
    FlowWeaverError,
    ItemsFailedError,
    MapError,
    TaskCrashedError,
    TaskExecutionError,
    TaskTimeoutError,
    WorkflowExecutionError,
    WorkflowValidationError,
)
from ._events import (
    RunEvent,
    RunFinished,
    RunStarted,
    TaskCancelled,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskQueued,
    TaskRecomputed,
    TaskRestored,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
)
from ._executor import BaseExecutor, RunOptions
from ._explain import Plan, PlannedTask
from ._live import progress
from ._outcomes import SKIPPED, Failed, Skip
from ._status import TaskStatus, WorkflowStatus
from ._store._api import (
    RunRecord,
    StateSerializationError,
    StateStoreError,
    TaskRecord,
    WorkflowLockedError,
)
from ._store._serializers import JSONSerializer, PickleSerializer
from ._sync._executors import (
    ConcurrentExecutor,
    DaskExecutor,
    ProcessExecutor,
    SequentialExecutor,
    ThreadedExecutor,
)
from ._sync._json_store import JSONStateStore
from ._sync._sqlite_store import SQLiteStateStore
from ._sync._store_base import BaseStateStore
from ._task import Task, task
from ._workflow import Workflow

__version__ = "0.3.2"

# A library logs but never prints: without this, Python's last-resort handler would write
# FlowWeaver's warnings to stderr of every script that has not configured logging.
_logging.getLogger("flowweaver").addHandler(_logging.NullHandler())

__all__ = [  # noqa: RUF022 - plainly sorted, which tests/test_public_api.py checks
    "AsyncExecutor",
    "BaseExecutor",
    "BaseStateStore",
    "ConcurrentExecutor",
    "CycleError",
    "DaskExecutor",
    "Failed",
    "FlowWeaverError",
    "ItemsFailedError",
    "JSONSerializer",
    "JSONStateStore",
    "MapError",
    "PickleSerializer",
    "Plan",
    "PlannedTask",
    "ProcessExecutor",
    "RunEvent",
    "RunFinished",
    "RunOptions",
    "RunRecord",
    "RunStarted",
    "SKIPPED",
    "SQLiteStateStore",
    "SequentialExecutor",
    "Skip",
    "StateSerializationError",
    "StateStoreError",
    "Task",
    "TaskCancelled",
    "TaskCompleted",
    "TaskContext",
    "TaskCrashedError",
    "TaskEvent",
    "TaskExecutionError",
    "TaskFailed",
    "TaskQueued",
    "TaskRecomputed",
    "TaskRecord",
    "TaskRestored",
    "TaskRetrying",
    "TaskSkipped",
    "TaskStarted",
    "TaskStatus",
    "TaskTimeoutError",
    "ThreadedExecutor",
    "Workflow",
    "WorkflowExecutionError",
    "WorkflowLockedError",
    "WorkflowStatus",
    "WorkflowValidationError",
    "__version__",
    "current",
    "progress",
    "task",
]
