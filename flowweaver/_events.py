"""Run events: what an executor's ``observer`` receives, one per task state change.

An observer is any callable taking one event (``async def`` ones are awaited, in order,
by a task of their own). It is called on the run's event loop thread, so it must be quick;
one that raises is logged to the ``flowweaver`` logger and never breaks the run.

An event is immutable, compares equal to an event of the same class with the same
fields, hashes and prints as a frozen dataclass would. It is not one: a run with an
observer makes two events per task, and a frozen dataclass stores each field through
``object.__setattr__`` (11,500 instructions to make a ``TaskStarted``, a third of a no-op
task's whole run). :func:`_event` builds each class from the same annotated declaration:
every field is a slot under its name with an underscore, stored by a plain assignment in
``__init__``, and read through a property with no setter, so ``event.task = x`` raises
``AttributeError``. Type checkers see frozen dataclasses (``dataclass_transform``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import MISSING, Field, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: object) -> Callable[[Any], Any]:
        return lambda f: f


E = TypeVar("E", bound=type)

# The properties' docstrings, by field name.
_DOCS = {
    "workflow": "The workflow's name.",
    "timestamp": "``time.time()`` when it happened.",
    "run_id": 'The id of the run (16 hex digits); ``""`` for an event made outside a run.',
    "total": "How many tasks the workflow has.",
    "status": 'How the run ended: ``"COMPLETED"``, ``"FAILED"`` or ``"CANCELLED"``.',
    "duration": "Seconds it took.",
    "task": "The task's name (an item's, ``\"process_file[3]\"``, for an item of a map).",
    "item": "An item's key, for an item of a mapped task; None for any other task.",
    "attempt": "The attempt, counted from 1.",
    "tag": "The tag the task waits for.",
    "kind": '``"limit"`` (a tag limit) or ``"rate"`` (a rate limit).',
    "delay": "Seconds until the next attempt starts.",
    "error": "The exception the attempt raised.",
    "attempts": "How many attempts the task made.",
    "upstream": 'The upstream task whose failure or skip caused this (``""`` if none).',
    "reason": "Why, in words.",
    "runs": "How many times the attempt's function has run to its end.",
}


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def _event(declared: E) -> E:
    """The event class for ``declared``: its annotated fields become read-only slots."""
    base = declared.__mro__[1]
    inherited: list[tuple[str, bool, Any]] = list(getattr(base, "_specs", ()))
    own: list[tuple[str, bool, Any]] = []
    for name in inspect.get_annotations(declared):  # its own, not its bases'
        spec = declared.__dict__.get(name, MISSING)
        if isinstance(spec, Field):
            own.append((name, spec.kw_only is True, spec.default))
        else:
            own.append((name, False, spec))
    specs = inherited + own
    namespace: dict[str, Any] = {
        "__slots__": tuple(f"_{name}" for name, _, _ in own),
        "__doc__": declared.__doc__,
        "__module__": declared.__module__,
        "__qualname__": declared.__qualname__,
        "_specs": tuple(specs),
        "_fields": tuple(name for name, _, _ in specs),
        "__match_args__": tuple(name for name, kw_only, _ in specs if not kw_only),
        "__init__": _init(declared.__name__, specs),
    }
    for name, _, _ in own:
        namespace[name] = property(attrgetter(f"_{name}"), doc=_DOCS[name])
    cls: Any = type(declared.__name__, (base,), namespace)
    cls._make = staticmethod(_maker(cls, specs))
    return cls  # type: ignore[no-any-return]


def _init(cls_name: str, specs: list[tuple[str, bool, Any]]) -> Callable[..., None]:
    """``__init__`` taking the fields as a dataclass would and storing each by assignment."""
    defaults = {f"_default_{name}": default for name, _, default in specs}
    positional = [
        name if default is MISSING else f"{name}=_default_{name}"
        for name, kw_only, default in specs
        if not kw_only
    ]
    keywords = [f"{name}=_default_{name}" for name, kw_only, _ in specs if kw_only]
    params = ", ".join(["self", *positional, *(["*", *keywords] if keywords else [])])
    lines = [f"    self._{name} = {name}" for name, _, _ in specs]
    source = f"def __init__({params}) -> None:\n" + "\n".join(lines) + "\n"
    namespace: dict[str, Any] = {}
    exec(source, defaults, namespace)  # as dataclasses makes theirs
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls_name}.__init__"
    return init


def _maker(cls: type, specs: list[tuple[str, bool, Any]]) -> Callable[..., Any]:
    """``cls._make``: the engine's constructor, every field positional (keyword-only ones
    last, in order) and no defaults. Calling a class with keywords costs a dict and a
    second interpreter frame (type.__call__ into __init__): 3,600 instructions for a
    ``TaskStarted``, 2,200 through this plain function call."""
    order = [name for name, kw_only, _ in specs if not kw_only]
    order += [name for name, kw_only, _ in specs if kw_only]
    lines = [f"    event._{name} = {name}" for name in order]
    source = (
        f"def _make({', '.join(order)}):\n    event = _new(_cls)\n"
        + "\n".join(lines)
        + "\n    return event\n"
    )
    namespace: dict[str, Any] = {}
    exec(source, {"_new": object.__new__, "_cls": cls}, namespace)
    make: Callable[..., Any] = namespace["_make"]
    make.__qualname__ = f"{cls.__name__}._make"
    return make


class _Event:
    """What every event class shares: equality, hashing and ``repr`` over its fields."""

    __slots__ = ()
    _specs: ClassVar[tuple[tuple[str, bool, Any], ...]] = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    #: the engine's constructor, see :func:`_maker`
    _make: ClassVar[Callable[..., Any]]

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({shown})"


@_event
class RunEvent(_Event):
    """Fields every event has.

    :ivar workflow: the workflow's name.
    :ivar timestamp: ``time.time()`` when it happened.
    :ivar run_id: the id of the run (16 hex digits), the one its history record has
        (``flowweaver history``); ``""`` for an event made outside a run.
    """

    workflow: str
    timestamp: float
    run_id: str = field(default="", kw_only=True)


@_event
class RunStarted(RunEvent):
    """A run began; ``total`` tasks are in the workflow."""

    total: int


@_event
class RunFinished(RunEvent):
    """A run ended. ``status`` is ``"COMPLETED"``, ``"FAILED"`` or ``"CANCELLED"``."""

    status: str
    duration: float


@_event
class TaskEvent(RunEvent):
    """Something happened to one task.

    :ivar task: the task's name; for an item of a mapped task, the item's
        (``"process_file[3]"``).
    :ivar item: for an item of a mapped task, its key (its index, or what ``map_key``
        returned); None for any other task.
    """

    task: str
    item: str | int | None = field(default=None, kw_only=True)


@_event
class TaskStarted(TaskEvent):
    """An attempt started (``attempt`` counts from 1)."""

    attempt: int


@_event
class TaskQueued(TaskEvent):
    """The task is ready but waits for ``tag``: ``kind`` ``"limit"`` (the executor's
    ``limits`` allow no more tasks with that tag in flight now) or ``"rate"`` (its
    ``rate_limits`` have no token left now). It holds no worker while it waits; a
    :class:`TaskStarted` follows once it may go."""

    attempt: int
    tag: str
    kind: str


@_event
class TaskRetrying(TaskEvent):
    """Attempt ``attempt`` failed with ``error``; the next starts in ``delay`` seconds."""

    attempt: int
    delay: float
    error: BaseException


@_event
class TaskCompleted(TaskEvent):
    """The task completed after ``attempts`` attempts, ``duration`` seconds in all."""

    attempts: int
    duration: float


@_event
class TaskFailed(TaskEvent):
    """The task failed for good (after its retries) with ``error``."""

    attempts: int
    duration: float
    error: BaseException


@_event
class TaskSkipped(TaskEvent):
    """The task will not run because ``upstream`` failed or was skipped (or, with
    ``fail_fast``, because the run was stopped by that failure), because its trigger rule
    can no longer be met, or because it raised ``flowweaver.Skip`` (``upstream`` is then
    ``""``).

    :ivar reason: why, in words: ``"upstream task 'load' failed"``, the text given to
        ``Skip``, ``"no upstream task failed (trigger rule 'one_failed')"``...
    """

    upstream: str
    reason: str = ""


@_event
class TaskRestored(TaskEvent):
    """The task's saved result was restored from the state store instead of running it."""


@_event
class TaskCancelled(TaskEvent):
    """The run was cancelled while this task was in flight; it is ``PENDING`` again."""


@_event
class TaskRecomputed(TaskEvent):
    """A Dask cluster ran the function of attempt ``attempt`` again after it had finished
    (a worker holding its result was lost while a dependent still needed it); it has now
    run to its end ``runs`` times. Task functions on a cluster run at least once: the
    task's status, attempts, result and callbacks stay those of the first run."""

    attempt: int
    runs: int
