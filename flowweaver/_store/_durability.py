"""What a store promises about a saved record, and when a dependent may start.

Three settings, one per store (``durability=`` on both built-in stores):

* ``"normal"`` (the default): a task's ``COMPLETED`` record is committed before any of its
  dependents starts and before ``execute`` returns. Committed means handed to the OS: it
  survives the process being killed (kill -9, an OOM kill) but a power loss or an OS crash
  may lose the last commits. SQLite runs ``synchronous=NORMAL`` (WAL); the JSON store
  writes each batch to its journal with one ``write`` and no ``fsync``.
* ``"fsync"``: as ``"normal"``, and each commit is flushed to the disk before anything
  that depends on it goes on, so it survives a power loss too. SQLite ``synchronous=FULL``,
  the JSON journal ``fsync``s each batch. It costs a disk flush per batch (0.1 to 10 ms,
  by disk), which a chain of tasks pays on every step.
* ``"ordered"``: dependents start as soon as a task completes, before its record is
  committed; records are committed in the order tasks completed (every record after its
  upstream tasks' records), in batches at most ``commit_interval`` apart, and everything
  before ``execute`` returns. A kill -9 loses at most the last ``commit_interval`` of
  finished work, never a record without the records it was computed from, so a resume
  is exact. The store leaves the critical path: a chain runs at the speed of no store.

Whatever the setting, the JSON file itself is only ever replaced whole, fsync'd and
renamed (the journal is folded in when a run ends), and SQLite never corrupts the
database: the settings only decide how much finished work a crash can cost.
"""

from __future__ import annotations

from typing import Literal

from .._errors import WorkflowValidationError

Durability = Literal["normal", "fsync", "ordered"]
SETTINGS: tuple[Durability, ...] = ("normal", "fsync", "ordered")


def check_durability(value: object) -> Durability:
    """``value`` when it is one of :data:`SETTINGS`.

    :raises WorkflowValidationError: naming the value and the settings.
    """
    if isinstance(value, str) and value in SETTINGS:
        return value
    raise WorkflowValidationError(
        f"durability must be one of {', '.join(map(repr, SETTINGS))}, got {value!r}; "
        "'normal' survives a killed process, 'fsync' a power loss too, 'ordered' lets "
        "dependents start before a record is committed (see the README's Durability)"
    )


def durability_of(store: object) -> Durability:
    """A store's setting; a store of the user's own, which has none, commits each batch
    before it returns: ``"normal"``."""
    value = getattr(store, "durability", "normal")
    return value if value in SETTINGS else "normal"
