"""What a run would do, task by task, and why: the result of ``executor.plan(...)``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["run", "restore", "skip"]


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """What a run would do with one task.

    :ivar name: the task's name.
    :ivar action: ``"run"``, ``"restore"`` (its saved result stands) or ``"skip"``
        (outside the selection, or skipped by its trigger rule).
    :ivar reason: why, in words: ``"no saved result"``, ``"upstream `extract` will run"``,
        ``"parameter `date` changed"``, ``"version 2 != 1"``, ``"code changed"``,
        ``"older than cache_ttl"``, ``"fresh run"``, ``"saved result stands"``...
    :ivar unless_unchanged: for ``"run"`` only: the run decides once the task is ready,
        and restores it after all when what it receives is what it was saved with (the
        upstream tasks that run return what they did before, or its ``cache_key`` is
        the saved one).
    """

    name: str
    action: Action
    reason: str
    unless_unchanged: bool = False


@dataclass(frozen=True)
class Plan(Mapping[str, PlannedTask]):
    """Every task of a workflow, in dependency order, with what a run would do with it.

    A mapping from task name to :class:`PlannedTask`; ``str(plan)`` is a table.

    :ivar workflow: the workflow's name.
    :ivar params: the run parameters it was planned with.
    """

    workflow: str
    params: dict[str, Any]
    _tasks: dict[str, PlannedTask] = field(repr=False)

    def __getitem__(self, name: str) -> PlannedTask:
        return self._tasks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def counts(self) -> dict[str, int]:
        """How many tasks each action has: ``{"run": n, "restore": n, "skip": n}``."""
        out = {"run": 0, "restore": 0, "skip": 0}
        for planned in self._tasks.values():
            out[planned.action] += 1
        return out

    def __str__(self) -> str:
        rows = [
            (
                p.name,
                p.action,
                p.reason + (" (restored if unchanged)" if p.unless_unchanged else ""),
            )
            for p in self._tasks.values()
        ]
        width = max([len("task"), *(len(r[0]) for r in rows)])
        lines = [f"{'task':<{width}}  action   reason"]
        lines += [f"{name:<{width}}  {action:<7}  {reason}" for name, action, reason in rows]
        counts = self.counts()
        lines.append(", ".join(f"{n} {action}" for action, n in counts.items()))
        return "\n".join(lines)
