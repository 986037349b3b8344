"""The single writer of a run: group commit of task records to the state store.

Theory of operation: the engine hands each final task state to :meth:`Writer.put` on the
loop thread and goes on. One task of the run takes *everything* queued so far and saves it
as one batch (one transaction, one file append); while that batch is being written, new
records pile up for the next one. So batches grow exactly when the store is the bottleneck
and a store costs one write per batch, not per task. When a batch is durable the writer
tells the engine which completed tasks it held; only then do their dependents start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import anyio

from .._store_api import AsyncStoreSession, TaskRecord


class Writer:
    """Queues records and saves them in batches through ``session``.

    :param on_durable: called on the loop thread with the task indices of each saved batch.
    """

    def __init__(
        self,
        session: AsyncStoreSession,
        workflow: str,
        on_durable: Callable[[list[int]], None],
    ) -> None:
        self._session = session
        self._workflow = workflow
        self._on_durable = on_durable
        self._queue: list[tuple[int, TaskRecord]] = []
        self._more = anyio.Event()
        self._closed = False
        self.batches = 0

    def put(self, index: int, record: TaskRecord) -> None:
        """Queue ``record`` of task ``index``; never blocks."""
        self._queue.append((index, record))
        self._more.set()

    def close(self) -> None:
        """No more records: :meth:`run` returns once everything queued is saved."""
        self._closed = True
        self._more.set()

    async def run(self) -> None:
        """Save batches until closed and drained.

        On cancellation a batch being written is finished (the session's save is shielded
        by the worker thread it waits for, or by the caller's shield); what is still queued
        is saved by :meth:`flush`.

        :raises StateStoreError: when a batch cannot be saved; the run ends with it.
        """
        while True:
            if not self._queue:
                if self._closed:
                    return
                self._more = anyio.Event()
                await self._more.wait()
                continue
            await self._save_queued()

    async def flush(self) -> None:
        """Save whatever is queued now (used after a cancellation, inside a shield)."""
        while self._queue:
            await self._save_queued()

    async def _save_queued(self) -> None:
        batch, self._queue = self._queue, []
        now = datetime.now(timezone.utc)
        records = []
        for _, record in batch:
            record.timestamp = now
            records.append(record)
        try:
            await self._session.save(self._workflow, records)
        except BaseException:
            # Not saved: put the batch back, so a later flush can still try.
            self._queue[:0] = batch
            raise
        self.batches += 1
        self._on_durable([i for i, record in batch if record.status.value == "COMPLETED"])
