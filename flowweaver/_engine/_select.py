"""What one run takes besides the workflow: its parameters and the part of the graph it
runs (``targets``, ``from_tasks``). Checked before anything runs; no I/O.

A selection keeps the workflow's tasks that it runs, and, for ``from_tasks``, the
upstream tasks whose results those need: *given* tasks, taken from the state store as
they are saved, neither run nor reported (their status stays ``PENDING``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import WorkflowValidationError
from ._graph import Graph, unknown_dependency

if TYPE_CHECKING:
    from .._workflow import Workflow


@dataclass(frozen=True, slots=True)
class Selection:
    """The tasks one run holds.

    :ivar names: in the workflow's order: the selected tasks and the given ones.
    :ivar depends_on: each one's dependencies (none for a given task: it is not run).
    :ivar given: the tasks whose saved results the selection takes from the store.
    :ivar forced: ``from_tasks``: run whatever they have saved.
    """

    names: list[str]
    depends_on: dict[str, tuple[str, ...]]
    given: frozenset[str]
    forced: frozenset[str]

    def graph(self) -> Graph:
        return Graph(self.names, self.depends_on)


@dataclass(frozen=True, slots=True)
class Held:
    """What a run (or a plan) of a workflow holds, by index in its graph.

    :ivar given: tasks whose saved results it takes from the store (see the module doc).
    :ivar forced: ``from_tasks``: run whatever they have saved.
    """

    graph: Graph
    given_names: frozenset[str]
    given: list[int]
    forced: list[int]


def held(workflow: Any, selection: Selection | None) -> Held:  # a Workflow, or a one-task run
    """The graph a run of ``workflow`` holds: the selection's, or the workflow's own (a
    subset made by :meth:`Workflow.subset` carries its given and forced tasks)."""
    if selection is None:
        graph, given, forced = workflow.graph(), workflow._given, workflow._forced
    else:
        graph, given, forced = selection.graph(), selection.given, selection.forced
    index = graph.index
    return Held(graph, given, sorted(index[n] for n in given), [index[n] for n in forced])


def results_unavailable(
    workflow: str, names: Iterable[str], store: bool
) -> WorkflowValidationError:
    """The error of a run (or plan) whose selection needs saved results it cannot have."""
    listed = ", ".join(repr(n) for n in names)
    if store:
        why = (
            "and the state store holds no completed result for them; run them first (or "
            "select them too)"
        )
    else:
        why = (
            "which are not selected; without a state store there is nowhere to take them "
            "from: select them too, or give the executor the store they were saved in"
        )
    return WorkflowValidationError(
        f"workflow {workflow!r}: the tasks to run need the results of {listed}, {why}"
    )


def select(
    workflow: Workflow,
    targets: Iterable[str] | None,
    from_tasks: Iterable[str] | None,
) -> Selection | None:
    """The part of ``workflow`` a run of ``targets`` / ``from_tasks`` holds; None for the
    whole workflow.

    ``targets``: those tasks and every task upstream of them. ``from_tasks``: those tasks
    and every task downstream of them. Both: the tasks between them.

    :raises WorkflowValidationError: for a name the workflow does not have, a bare
        string, or a selection with no task in it.
    """
    given_before = workflow._given
    forced_before = workflow._forced
    if targets is None and from_tasks is None:
        return None
    graph = workflow.graph()
    wanted = _indices(graph, "targets", targets)
    start = _indices(graph, "from_tasks", from_tasks)
    chosen: set[int] | None = None
    if wanted is not None:
        chosen = _closure(wanted, graph.upstream)
    if start is not None:
        below = _closure(start, graph.downstream)
        chosen = below if chosen is None else chosen & below
    assert chosen is not None
    if not chosen:
        raise WorkflowValidationError(
            f"workflow {workflow.name!r}: no task is both downstream of from_tasks and "
            "upstream of targets; check the names, or give only one of them"
        )
    names = graph.names
    given = {j for i in chosen for j in graph.upstream[i] if j not in chosen}
    # A subset's own given tasks stay given.
    given |= {i for i in chosen if names[i] in given_before}
    chosen -= given
    held = sorted(chosen | given)
    depends_on = {names[i]: () if i in given else workflow._depends_on[names[i]] for i in held}
    # A from_tasks name outside the targets' upstream is not part of the run.
    forced = {names[i] for i in start or () if i in chosen} | {
        names[i] for i in chosen if names[i] in forced_before
    }
    return Selection(
        [names[i] for i in held],
        depends_on,
        frozenset(names[i] for i in given),
        frozenset(forced),
    )


def _indices(graph: Graph, label: str, value: Iterable[str] | None) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        raise WorkflowValidationError(
            f"{label} must be a list of task names, got the string {value!r}; "
            f"write {label}=[{value!r}]"
        )
    try:
        items = list(value)
    except TypeError:
        raise WorkflowValidationError(
            f"{label} must be a list of task names, got {value!r}"
        ) from None
    if not items:
        raise WorkflowValidationError(f"{label} is empty; name at least one task")
    out = []
    for name in items:
        i = graph.index.get(name) if isinstance(name, str) else None
        if i is None:
            message = unknown_dependency(label, name, graph.names)
            message = message.replace(f"task {label!r} depends on", f"{label} names")
            raise WorkflowValidationError(message)
        out.append(i)
    return out


def _closure(start: list[int], edges: Sequence[Sequence[int]]) -> set[int]:
    seen = set(start)
    stack = list(start)
    while stack:
        for j in edges[stack.pop()]:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return seen


def check_params(params: Mapping[str, Any] | None, workflow: Workflow) -> dict[str, Any]:
    """The run parameters, checked: a mapping of identifiers, none named like a task, each
    taken by some task of the workflow (a typo must not pass silently).

    :raises WorkflowValidationError: naming the parameter and saying what to do.
    """
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise WorkflowValidationError(
            f"params must be a mapping of parameter names to values, got {params!r}"
        )
    tasks = workflow._tasks
    for name in params:
        if not isinstance(name, str) or not name.isidentifier():
            raise WorkflowValidationError(
                f"parameter name {name!r} is not a Python identifier; a parameter reaches "
                "the tasks whose functions take a keyword argument of that name"
            )
        if name in tasks:
            raise WorkflowValidationError(
                f"parameter {name!r} has the name of a task of workflow {workflow.name!r}, "
                "whose result its dependents receive under that name; rename the parameter"
            )
        if not any(t.accepts(name) for t in tasks.values()):
            raise WorkflowValidationError(
                f"parameter {name!r}: no task of workflow {workflow.name!r} takes it; a task "
                f"receives it by taking a keyword argument named {name!r} (check the "
                "spelling, or drop it)"
            )
    return dict(params)
