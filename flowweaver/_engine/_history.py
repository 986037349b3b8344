"""A run's entry in its store's history (:class:`~flowweaver.RunRecord`).

The engine keeps one :class:`RunLog` per run with a store: begun once the records are
loaded (durable before any task runs), told which tasks ran (and why) and which were
restored, and ended before the session closes. A session without ``begin_run`` and
``end_run`` (a user's store of five methods) keeps no history, and the log does nothing.

Only the workflow's own tasks are recorded, not a mapped task's items: a map of 100,000
elements would make one history entry as big as the records themselves.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import _log
from .._status import TaskStatus
from .._store._api import RunRecord
from .._store._runs import RUNNING, now_utc

if TYPE_CHECKING:
    from .._task import Task

logger = _log.logger  # with its NullHandler (see _log)

COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"


class RunLog:
    """The history entry of one run.

    :param session: the run's store session; its optional ``begin_run`` / ``end_run``
        keep the history.
    :param params: the run's parameters, recorded as given.
    """

    def __init__(
        self, session: object, run_id: str, workflow: str, params: Mapping[str, Any] | None
    ) -> None:
        self._begin_run = getattr(session, "begin_run", None)
        self._end_run = getattr(session, "end_run", None)
        self._begun = False
        self.run = RunRecord(
            run_id=run_id,
            workflow=workflow,
            params=dict(params or {}),
            started=now_utc(),
            ended=None,
            status=RUNNING,
            counts={},
            ran={},
            restored=[],
            pid=os.getpid(),
            host=socket.gethostname(),
        )

    async def begin(self) -> None:
        """Record the run as ``RUNNING``; returns once that is durable.

        :raises StateStoreError: when the store cannot record it (the run then fails
            before anything runs, as for a store it cannot load).
        """
        if self._begin_run is None:
            return
        self.run.started = now_utc()
        await self._begin_run(self.run)
        self._begun = True

    async def end(self, status: str, counts: Mapping[str, int]) -> None:
        """Record how the run ended.

        A failure to record is raised only for a run that completed; a run already
        failing or cancelled logs it (error level) and keeps its own outcome, and the
        history shows it ``INTERRUPTED``. Call it shielded from cancellation.

        :raises StateStoreError: when the store cannot record a completed run's end.
        """
        if not self._begun or self._end_run is None:
            return
        run = self.run
        # Made directly: dataclasses.replace reads the fields anew on every call.
        ended = RunRecord(
            run.run_id,
            run.workflow,
            run.params,
            run.started,
            now_utc(),
            status,
            dict(counts),
            dict(run.ran),
            list(run.restored),
            run.pid,
            run.host,
        )
        try:
            await self._end_run(ended)
        except Exception:
            if status == COMPLETED:
                raise
            logger.exception(
                "could not record the end of run %s of %r in the run history",
                self.run.run_id,
                self.run.workflow,
            )
        self.run = ended


def outcome(
    tasks: Sequence[Task], restored: Collection[str], ok: bool, interrupted: bool
) -> tuple[str, dict[str, int]]:
    """A run's status and counts, from its tasks' states as it ends.

    A task still running or retrying is counted ``pending``: the run puts it back.

    :param ok: the run ended without an error of its own (task failures aside).
    :param interrupted: it was cancelled, interrupted (Ctrl-C) or terminated.
    """
    counts = dict.fromkeys(("completed", "failed", "skipped", "restored", "pending"), 0)
    failed = False
    for t in tasks:
        status = t.status
        if t.name in restored:
            counts["restored"] += 1
        elif status is TaskStatus.COMPLETED:
            counts["completed"] += 1
        elif status is TaskStatus.FAILED:
            counts["failed"] += 1
            failed = True
        elif status is TaskStatus.SKIPPED:
            counts["skipped"] += 1
        else:
            counts["pending"] += 1
    if interrupted:
        return CANCELLED, counts
    return (FAILED if failed or not ok else COMPLETED), counts
