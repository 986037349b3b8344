"""The single writer of a run: group commit of task records to the state store.

Theory of operation: the engine hands each final task state to :meth:`Writer.put` on the
loop thread and goes on. One task of the run takes *everything* queued so far and saves it
as one batch (one transaction, one file append); while that batch is being written, new
records pile up for the next one. So batches grow exactly when the store is the bottleneck
and a store costs one write per batch, not per task. When a batch is durable the writer
tells the engine which completed tasks it held; only then do their dependents start.

A run that owns its loop saves inline, on the loop's own thread: its writer is given the
session's ``save_inline`` and, when kicked, saves on the spot and releases the batch's
dependents before it returns. On a chain that is every step, and each step then costs one
call instead of two trips through the event loop (waking the writer's task, then the
lane).

A deferred writer (see :class:`Writer`) also bounds how long a record waits: the first
record of a batch reads the clock once and sets the batch's deadline, ``interval`` later;
the writer waits for it with one timer per batch. A lane that runs sync tasks on the loop
thread cannot let that timer fire, so it asks :meth:`Writer.overdue` with the clock read
it makes per task anyway, and yields when the batch is due.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timezone

import anyio

from .._status import TaskStatus
from .._store._api import AsyncStoreSession, TaskRecord
from ._sigint import wait_event

_COMPLETED = TaskStatus.COMPLETED


class Writer:
    """Queues records and saves them in batches through ``session``.

    :param on_durable: called on the loop thread with the task indices of each saved batch.
    :param deferred: save only when :meth:`kick` says the run is waiting for the store
        (a free slot and nothing ready to start), or once the queue is long. A batch then
        holds everything that could run before it: fewer, bigger batches, each one
        transaction or one fsync, and no batch while all slots are busy anyway.
    :param interval: a deferred writer saves a record at the latest this many seconds
        after it was queued, however much else is ready (``commit_interval``).
    :param blocking_save: the session's ``save_inline``, when saves run on the loop's
        thread: :meth:`kick` then saves at once (see the module's docstring).
    """

    #: A deferred writer saves anyway once this many records wait.
    DEFERRED_LIMIT = 1024

    def __init__(
        self,
        session: AsyncStoreSession,
        workflow: str,
        on_durable: Callable[[list[int]], None],
        deferred: bool = False,
        interval: float = 0.2,
        blocking_save: Callable[[str, list[TaskRecord]], None] | None = None,
    ) -> None:
        self._session = session
        self._blocking_save = blocking_save
        self._error: Exception | None = None  # an inline save's failure, for run to raise
        self._workflow = workflow
        self._on_durable = on_durable
        self._deferred = deferred
        self._queue: list[tuple[int, TaskRecord]] = []
        self._more = anyio.Event()
        self._due = not deferred  # a deferred writer saves once kicked
        self._closed = False
        self._interval = interval
        #: When the oldest queued record is due (``time.time()``); inf with an empty queue.
        self.due_at = math.inf

    def put(self, index: int, record: TaskRecord) -> None:
        """Queue ``record`` of task ``index``; never blocks."""
        queue = self._queue
        if not queue:
            # The first record of a batch: the one clock read and (in run) the one timer.
            self.due_at = time.time() + self._interval
            self._more.set()
        queue.append((index, record))
        if not self._deferred or len(queue) >= self.DEFERRED_LIMIT:
            self._due = True
            self._more.set()

    def overdue(self, now: float) -> bool:
        """True when the queued batch is due at ``now`` (a ``time.time()`` the caller has
        read anyway); the writer is then woken, and the caller should let the loop run."""
        if now < self.due_at:
            return False
        self._due = True
        self._more.set()
        return True

    def kick(self) -> None:
        """The run waits for the store: a deferred writer saves what is queued now (on
        the spot when it saves inline)."""
        if not self._queue or self._error is not None:
            return
        if self._blocking_save is not None:
            self._save_inline(self._blocking_save)
            return
        self._due = True
        self._more.set()

    def _save_inline(self, save: Callable[[str, list[TaskRecord]], None]) -> None:
        batch, records = self._take()
        try:
            save(self._workflow, records)
        except Exception as exc:
            # Not saved: the writer's task ends the run with the error (see run).
            self._queue[:0] = batch
            self._error = exc
            self._more.set()
            return
        except BaseException:
            self._queue[:0] = batch
            raise
        self._on_durable([i for i, record in batch if record.status is _COMPLETED])

    def close(self) -> None:
        """No more records: :meth:`run` returns once everything queued is saved."""
        self._closed = True
        self._due = True
        self._more.set()

    async def run(self) -> None:
        """Save batches until closed and drained.

        On cancellation a batch being written is finished (the session's save is shielded
        by the worker thread it waits for, or by the caller's shield); what is still queued
        is saved by :meth:`flush`.

        :raises StateStoreError: when a batch cannot be saved; the run ends with it.
        """
        while True:
            if self._error is not None:
                raise self._error
            if self._queue and (self._due or self._closed):
                self._due = not self._deferred
                await self._save_queued()
            elif self._closed:
                return
            else:
                self._more = anyio.Event()
                if not self._queue:
                    await wait_event(self._more)
                    continue
                # Clamped: a wall clock set back must not stretch the wait.
                wait = min(max(self.due_at - time.time(), 0.0), self._interval)
                with anyio.move_on_after(wait) as timer:
                    await wait_event(self._more)
                if timer.cancelled_caught:
                    self._due = True

    def unsaved(self) -> list[str]:
        """The task names of the records still queued (not saved)."""
        return [record.task_name for _, record in self._queue]

    async def flush(self) -> None:
        """Save whatever is queued now (used after a cancellation, inside a shield)."""
        while self._queue:
            await self._save_queued()

    def _take(self) -> tuple[list[tuple[int, TaskRecord]], list[TaskRecord]]:
        """Everything queued, as the next batch, stamped with the time it is saved."""
        batch, self._queue = self._queue, []
        self.due_at = math.inf
        now = datetime.now(timezone.utc)
        records = []
        for _, record in batch:
            record.timestamp = now
            records.append(record)
        return batch, records

    async def _save_queued(self) -> None:
        batch, records = self._take()
        try:
            await self._session.save(self._workflow, records)
        except BaseException:
            # Not saved: put the batch back, so a later flush can still try.
            self._queue[:0] = batch
            raise
        self._on_durable([i for i, record in batch if record.status is _COMPLETED])
