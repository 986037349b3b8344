"""Maps: a task run once per element of an upstream task's result. No I/O.

When a mapped task is handed out, the driver *expands* it: the result it maps over becomes
a list of elements, each element gets a key (its index, the key of the item it came from
when the result is itself a map's, or what ``map_key`` returns), and each element an item
(a :class:`~flowweaver.Task` named ``task[key]``). Which item runs when (the task's
``max_concurrent``, the executor's bound, when the task ends) is the scheduler's decision
(``Scheduler.expand``); this module only works out the elements and keys, and what the
task's outcome is once its items ended.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import ItemsFailedError, MapError, WorkflowValidationError, describe_exception

if TYPE_CHECKING:
    from .._task import Task

Key = str | int


class MapSource:
    """A mapped task's upstream task, and how its items run.

    :ivar source: the index of the task it maps over.
    :ivar kind: the kind (``_plan``) of each item: what the task would have been.
    :ivar keys: once the task ended, the keys of the items in its result list, in order
        (a map over this task reuses them).
    """

    __slots__ = ("keys", "kind", "source")

    def __init__(self, source: int, kind: int) -> None:
        self.source = source
        self.kind = kind
        self.keys: list[Key] | None = None


def check_item_names(mapped: Collection[str], names: Iterable[str]) -> None:
    """Refuse a task named as an item of a mapped task would be (``p[<key>]``).

    Items are saved under their names, and ``Workflow.get_task`` finds them by name: such
    a task and an item would share a record (a resumed run restored the task with the
    item's result) and a name.

    :raises WorkflowValidationError: naming the task and the mapped task.
    """
    if not mapped:
        return
    for name in names:
        if not name.endswith("]"):
            continue
        at = name.find("[")
        while at > 0:
            if name[:at] in mapped:
                raise WorkflowValidationError(
                    f"task {name!r} is named as an item of mapped task {name[:at]!r} would be "
                    f"({name[:at]}[<key>]); rename it, so that the two do not share a record "
                    "or a name"
                )
            at = name.find("[", at + 1)


def elements(task: Task, source: str, value: Any) -> list[Any]:
    """The elements of ``value``, the result of ``source`` that ``task`` maps over.

    :raises MapError: when it is not iterable, is a string (whose characters are almost
        never what was meant), or raises while it is read (a generator, say).
    """
    if isinstance(value, (str, bytes, bytearray)):
        raise MapError(
            task.name,
            f"maps over {source!r}, which returned a {type(value).__name__}, not a list; "
            f"return a list from {source!r} (wrap a single value in one: [value])",
        )
    try:
        iterator = iter(value)
    except TypeError:
        raise MapError(
            task.name,
            f"maps over {source!r}, which returned {type(value).__name__} "
            f"{_short(value)}, not a list or other iterable; return a list from {source!r}",
        ) from None
    try:
        return list(iterator)
    except Exception as exc:  # the map fails, not the run (a TypeError included)
        raise MapError(
            task.name,
            f"maps over {source!r}, whose result raised while it was read: "
            f"{describe_exception(exc)}; return a list from {source!r}",
        ) from exc


def keys(task: Task, values: Sequence[Any], inherited: Sequence[Key] | None) -> list[Key]:
    """Each element's key: ``map_key(element)``, else the key of the item it came from
    (``inherited``, a map over a map), else its index.

    :raises MapError: when ``map_key`` raises or returns something other than a
        non-empty str, or two elements get the same key.
    """
    map_key = task.map_key
    if map_key is None:
        if inherited is not None and len(inherited) == len(values):
            return list(inherited)
        return list(range(len(values)))
    out: list[Key] = []
    seen: dict[str, int] = {}
    for n, value in enumerate(values):
        try:
            key = map_key(value)
        except Exception as exc:
            raise MapError(
                task.name,
                f"map_key raised on element {n} ({_short(value)}): {describe_exception(exc)}",
            ) from exc
        if type(key) is not str or not key:
            raise MapError(
                task.name,
                f"map_key must return a non-empty str, got {_short(key)} for element {n} "
                f"({_short(value)})",
            )
        if not key.isascii():
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                # no store could save the item's name, nor a log line show it
                raise MapError(
                    task.name,
                    f"map_key gave element {n} the key {key!r}, which UTF-8 cannot hold "
                    "(a lone surrogate, say from a file name); return text without it",
                ) from None
        if key in seen:
            raise MapError(
                task.name,
                f"map_key gave elements {seen[key]} and {n} the same key {key!r}; keys name "
                "the items and must be unique",
            )
        seen[key] = n
        out.append(key)
    return out


def items_failed(task: Task, failed: Sequence[Task], total: int) -> ItemsFailedError:
    """The error of a mapped task whose items ``failed`` (``on_item_failure="fail"``)."""
    errors: dict[str, BaseException] = {}
    for item in failed:
        error = item.error
        errors[item.name] = error if error is not None else RuntimeError("failed")
    return ItemsFailedError(task.name, errors, total)


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."
