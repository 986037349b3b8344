"""The awaitable forms, for async services on asyncio or trio.

``await flowweaver.aio.SequentialExecutor().execute(workflow)`` runs on the caller's event
loop; sync task functions go to worker threads so the loop is never blocked.
``AsyncExecutor`` is the same class as ``flowweaver.AsyncExecutor``.

The state stores here have ``async def`` methods (on aiofiles and aiosqlite under asyncio,
on worker threads under trio); ``BaseStateStore`` is the base for a user's async store.
"""

from ._async._executors import AsyncConcurrentExecutor as AsyncExecutor
from ._async._executors import AsyncDaskExecutor as DaskExecutor
from ._async._executors import AsyncProcessExecutor as ProcessExecutor
from ._async._executors import AsyncSequentialExecutor as SequentialExecutor
from ._async._executors import AsyncThreadedExecutor as ThreadedExecutor
from ._async._json_store import AsyncJSONStateStore as JSONStateStore
from ._async._sqlite_store import AsyncSQLiteStateStore as SQLiteStateStore
from ._async._store_base import AsyncBaseStateStore as BaseStateStore

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
