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
    """``IDLE`` until the first run, ``RUNNING`` during one, then how the last run ended."""

    IDLE = "IDLE"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
