"""FlowWeaver: run a DAG of Python tasks in-process, from sync or async code.

Every public name is here (blocking forms) or in :mod:`flowweaver.aio` (awaitable forms);
all other modules are private.

``SequentialExecutor`` and ``ThreadedExecutor`` block in ``execute``. ``AsyncExecutor``'s
``execute`` is awaited, as in the API reference; ``ConcurrentExecutor`` is the same
scheduling with a blocking ``execute``, and ``Workflow.execute(executor)`` blocks for all.
"""

import sys as _sys
import typing as _typing

from ._async._executors import AsyncConcurrentExecutor as AsyncExecutor
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
from ._executor import BaseExecutor, RunOptions
from ._outcomes import SKIPPED, Failed, Skip
from ._status import TaskStatus, WorkflowStatus
from ._sync._executors import (
    ConcurrentExecutor,
    DaskExecutor,
    ProcessExecutor,
    SequentialExecutor,
    ThreadedExecutor,
)
from ._task import Task, task
from ._workflow import Workflow

if _typing.TYPE_CHECKING:
    from ._context import TaskContext, current
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
    from ._explain import Plan, PlannedTask
    from ._live import progress
    from ._store._api import (
        RunRecord,
        StateSerializationError,
        StateStoreError,
        TaskRecord,
        WorkflowLockedError,
    )
    from ._store._serializers import JSONSerializer, PickleSerializer
    from ._sync._json_store import JSONStateStore
    from ._sync._sqlite_store import SQLiteStateStore
    from ._sync._store_base import BaseStateStore
else:
    from ._lazy import lazy_names as _lazy_names

    # Imported on first use, not with the package: the stores (sqlite3, pickle, hashing),
    # the progress displays, the run context and the events are what only some programs
    # need, and importing them all made `import flowweaver` 7 to 14 times `import anyio`.
    # A name is bound here once loaded, so later reads are plain attribute reads.
    __getattr__, __dir__ = _lazy_names(
        __name__,
        globals(),
        {
            "._context": ("TaskContext", "current"),
            "._events": (
                "RunEvent",
                "RunFinished",
                "RunStarted",
                "TaskCancelled",
                "TaskCompleted",
                "TaskEvent",
                "TaskFailed",
                "TaskQueued",
                "TaskRecomputed",
                "TaskRestored",
                "TaskRetrying",
                "TaskSkipped",
                "TaskStarted",
            ),
            "._explain": ("Plan", "PlannedTask"),
            "._live": ("progress",),
            "._store._api": (
                "RunRecord",
                "StateSerializationError",
                "StateStoreError",
                "TaskRecord",
                "WorkflowLockedError",
            ),
            "._store._serializers": ("JSONSerializer", "PickleSerializer"),
            "._sync._json_store": ("JSONStateStore",),
            "._sync._sqlite_store": ("SQLiteStateStore",),
            "._sync._store_base": ("BaseStateStore",),
        },
    )

__version__ = "0.3.2"
"""The version of FlowWeaver, as its package metadata gives it."""

# The library's NullHandler (see _log): at once when logging is loaded already, else by
# the engine and the stores, the code that logs, so that `import flowweaver` needs none.
if "logging" in _sys.modules:
    from . import _log  # noqa: F401

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
