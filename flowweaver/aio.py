"""The awaitable forms, for async services on asyncio or trio.

``await flowweaver.aio.SequentialExecutor().execute(workflow)`` runs on the caller's event
loop; sync task functions go to worker threads so the loop is never blocked.
``AsyncExecutor`` is the same class as ``flowweaver.AsyncExecutor``.
"""

from ._async._executors import AsyncConcurrentExecutor as AsyncExecutor
from ._async._executors import AsyncDaskExecutor as DaskExecutor
from ._async._executors import AsyncSequentialExecutor as SequentialExecutor
from ._async._executors import AsyncThreadedExecutor as ThreadedExecutor

__all__ = ["AsyncExecutor", "DaskExecutor", "SequentialExecutor", "ThreadedExecutor"]
