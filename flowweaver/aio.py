"""The awaitable forms, for async services on asyncio or trio.

``await flowweaver.aio.SequentialExecutor().execute(workflow)`` runs on the caller's event
loop; sync task functions go to worker threads so the loop is never blocked.
``AsyncExecutor`` is the same class as ``flowweaver.AsyncExecutor``.

The state stores here have ``async def`` methods (on aiofiles and aiosqlite under asyncio,
on worker threads under trio); ``BaseStateStore`` is the base for a user's async store.
"""

import typing as _typing

from ._async._executors import AsyncConcurrentExecutor as AsyncExecutor
from ._async._executors import AsyncDaskExecutor as DaskExecutor
from ._async._executors import AsyncProcessExecutor as ProcessExecutor
from ._async._executors import AsyncSequentialExecutor as SequentialExecutor
from ._async._executors import AsyncThreadedExecutor as ThreadedExecutor

if _typing.TYPE_CHECKING:
    from ._async._json_store import AsyncJSONStateStore as JSONStateStore
    from ._async._sqlite_store import AsyncSQLiteStateStore as SQLiteStateStore
    from ._async._store_base import AsyncBaseStateStore as BaseStateStore
else:
    from ._lazy import lazy_names as _lazy_names

    # The stores (aiosqlite, aiofiles, sqlite3...) are imported on first use, as in
    # flowweaver/__init__.py: a program that only runs workflows never pays for them.
    __getattr__, __dir__ = _lazy_names(
        __name__,
        globals(),
        {
            "._async._json_store": [("JSONStateStore", "AsyncJSONStateStore")],
            "._async._sqlite_store": [("SQLiteStateStore", "AsyncSQLiteStateStore")],
            "._async._store_base": [("BaseStateStore", "AsyncBaseStateStore")],
        },
    )

__all__ = [
    "AsyncExecutor",
    "BaseStateStore",
    "DaskExecutor",
    "JSONStateStore",
    "ProcessExecutor",
    "SQLiteStateStore",
    "SequentialExecutor",
    "ThreadedExecutor",
]
