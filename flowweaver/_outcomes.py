"""What a task receives for an upstream task that did not complete, and how a task skips.

A task runs with an upstream task that failed or was skipped only when its trigger rule
allows it (``trigger="all_done"``, ``"none_failed"``, ...). It then receives, for that
upstream task's parameter, :class:`Failed` (holding the error) or :data:`SKIPPED` instead
of a result. A task that decides there is nothing to do raises :class:`Skip`.
"""

from __future__ import annotations

from typing import Any, Final

#: The trigger rules, in the scheduler's numbering (see ``_engine._scheduler``).
TRIGGER_RULES: Final = ("all_success", "all_done", "none_failed", "one_failed", "one_success")


class Skip(Exception):
    """Raise in a task to end it ``SKIPPED`` on purpose, with ``reason``.

    The task is not ``FAILED`` and not retried; its callbacks run, and the run does not
    raise for it. Its downstream tasks follow their trigger rules: the default
    ``all_success`` skips them, ``none_failed`` and ``all_done`` run them (they receive
    :data:`SKIPPED` for this task). With a state store the decision is saved like a
    result: a resumed run does not run the task again unless an upstream task runs again.

    :param reason: said on the ``TaskSkipped`` event and in the state store.
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class Failed:
    """Passed for an upstream task that failed, to a task whose trigger rule runs it anyway.

    :ivar error: the exception of the upstream task's last attempt.
    """

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"Failed({self.error!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Failed) and other.error is self.error

    def __hash__(self) -> int:
        return hash(id(self.error))


class _Skipped:
    """The type of :data:`SKIPPED` (one instance; it survives pickling as itself)."""

    __slots__ = ()
    _instance: Any = None

    def __new__(cls) -> _Skipped:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return "flowweaver.SKIPPED"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "SKIPPED"


SKIPPED: Final = _Skipped()
"""Passed for an upstream task that was skipped (or, to a ``one_failed`` or
``one_success`` task that started before it ended, one that had not ended yet)."""
