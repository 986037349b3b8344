"""The two status enums of the public API (values exactly as the reference spells them)."""

from __future__ import annotations

from enum import Enum


class TaskStatus(Enum):
    """Where a task is in its life.

    A task starts ``PENDING``; it is ``RUNNING`` while an attempt is in flight and
    ``RETRYING`` between a failed attempt and the next one. It ends ``COMPLETED``,
    ``FAILED`` or ``SKIPPED`` (an upstream task failed). A task in flight when its run is
    cancelled goes back to ``PENDING``: it did not finish and will run next time.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    RETRYING = "RETRYING"
    SKIPPED = "SKIPPED"

    @property
    def is_final(self) -> bool:
        """True for ``COMPLETED``, ``FAILED`` and ``SKIPPED``."""
        return self in _FINAL


_FINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SKIPPED})


class WorkflowStatus(Enum):
    """``IDLE`` until the first run, ``RUNNING`` during one, then how the last run ended.

    ``COMPLETED``: every task completed. ``FAILED``: the run went to its end and a task
    failed (or the run itself failed, its state store for one). ``CANCELLED``: the run was
    stopped before its end by Ctrl-C, SIGTERM or the cancellation of the code awaiting it;
    also when a task had already failed, because the run did not finish. Tasks that were
    in flight are back to ``PENDING``.
    """

    IDLE = "IDLE"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
