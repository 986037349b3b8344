"""The :class:`Workflow` container: tasks, their dependencies and the status of the last run."""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import _export
from ._engine._graph import Graph, unknown_dependency
from ._errors import WorkflowValidationError, check_name_text
from ._status import WorkflowStatus
from ._task import Task, TaskSettings

if TYPE_CHECKING:
    import sys

    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

    from ._engine._plan import PlanKey, Planned
    from ._executor import BaseExecutor, RunOptions
    from ._settings import ItemFailure, TriggerRule


class Workflow:
    """A named DAG of tasks.

    :param name: identifies the workflow; state stores key saved results by it.
    :param description: free text for people.

    Dependencies may name tasks added later: the graph is checked as a whole when a run
    starts, and nothing runs if it is invalid.
    """

    def __init__(self, name: str, description: str | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise WorkflowValidationError(
                f"a workflow name must be a non-empty string, got {name!r}"
            )
        check_name_text("workflow", name)
        self.name = name
        self.description = description
        self._tasks: dict[str, Task] = {}
        # Tasks with a trigger rule other than the default: a run reads only these.
        self._ruled: list[str] = []
        # Mapped tasks (map_over): likewise.
        self._mapped: list[str] = []
        self._depends_on: dict[str, tuple[str, ...]] = {}
        self._graph: Graph | None = None
        # Each kind of executor's plan of a run (see _engine/_plan.cached_plan): replaced,
        # never cleared, when a task is added, so a run planning meanwhile cannot put a
        # stale plan back.
        self._plans: dict[PlanKey, Planned] = {}
        self._status = WorkflowStatus.IDLE
        self._running = False
        # A subset's tasks whose saved results it takes from the store, and the ones it
        # runs whatever they have saved (from_tasks; see subset).
        self._given: frozenset[str] = frozenset()
        self._forced: frozenset[str] = frozenset()

    # -- building --------------------------------------------------------------------------

    def add_task(
        self,
        task_or_func: Task | Callable[..., Any],
        depends_on: Sequence[str | Task | Callable[..., Any]] | None = None,
        *,
        trigger: TriggerRule | None = None,
        map_over: str | Task | Callable[..., Any] | None = None,
        map_key: Callable[[Any], str] | None = None,
        max_concurrent: int | None = None,
        on_item_failure: ItemFailure | None = None,
    ) -> Task:
        """Add a :class:`Task`, or a function (``@task``-decorated or plain and named).

        :param depends_on: the names of upstream tasks (a ``Task`` or a decorated function
            stands for its name).
        :param trigger: the task's trigger rule (see :class:`Task`), replacing the one it
            was made with.
        :param map_over: run the task once per element of this upstream task's result
            (see :class:`Task`); ``map_key``, ``max_concurrent`` and ``on_item_failure``
            set the map's other options. Each replaces the one the task was made with.
        :returns: the task added (for a function, a new :class:`Task` made from it).
        :raises WorkflowValidationError: for a duplicate name, a task depending on itself,
            ``depends_on`` given as a bare string, or something that is neither a task nor
            a callable; unknown names and cycles are reported when the run starts.
        """
        self._check_not_running("add a task")
        if isinstance(task_or_func, Task):
            new = task_or_func
        elif callable(task_or_func):
            new = Task.from_callable(task_or_func)
        else:
            raise WorkflowValidationError(
                f"add_task takes a Task or a function, got {type(task_or_func).__name__} "
                f"{task_or_func!r}"
            )
        deps = self._dependency_names(new.name, depends_on)
        if (
            trigger is not None
            or map_over is not None
            or map_key is not None
            or max_concurrent is not None
            or on_item_failure is not None
        ):
            self._apply(new, trigger, map_over, map_key, max_concurrent, on_item_failure)
        over = new.map_over
        if over is not None:
            if over not in deps:
                deps = (*deps, over)  # mapping over a task depends on it
            if not new.accepts(over):
                raise WorkflowValidationError(
                    f"task {new.name!r} maps over {over!r} but its function takes no "
                    f"parameter named {over!r}; each item receives its element under that "
                    "name: add the parameter (or **kwargs)"
                )
        if new.name in self._tasks:
            raise WorkflowValidationError(
                f"workflow {self.name!r} already has a task named {new.name!r}; "
                "task names must be unique (pass name= to tell them apart)"
            )
        self._tasks[new.name] = new
        if new.trigger != "all_success":
            self._ruled.append(new.name)
        if over is not None:
            self._mapped.append(new.name)
        self._depends_on[new.name] = deps
        self._graph = None
        self._plans = {}
        return new

    def _apply(
        self,
        new: Task,
        trigger: TriggerRule | None,
        map_over: str | Task | Callable[..., Any] | None,
        map_key: Callable[[Any], str] | None,
        max_concurrent: int | None,
        on_item_failure: ItemFailure | None,
    ) -> None:
        """Give ``new`` the options add_task was given, checked with its others."""
        changes: dict[str, Any] = {}
        if trigger is not None:
            changes["trigger"] = trigger
        if map_over is not None:
            # A task or a function stands for its name; a name (or a bad value) is checked
            # with the other map settings, whose messages speak of map_over, not depends_on.
            by_name = isinstance(map_over, Task) or callable(map_over)
            changes["map_over"] = (
                self._dependency_names(new.name, [map_over])[0] if by_name else map_over
            )
        for label, value in (
            ("map_key", map_key),
            ("max_concurrent", max_concurrent),
            ("on_item_failure", on_item_failure),
        ):
            if value is not None:
                changes[label] = value
        new.settings = replace(new.settings, **changes)  # checked, naming the task
        for label, value in changes.items():
            setattr(new, label, value)

    def _dependency_names(
        self, name: str, depends_on: Sequence[str | Task | Callable[..., Any]] | None
    ) -> tuple[str, ...]:
        if depends_on is None:
            return ()
        if type(depends_on) is list or type(depends_on) is tuple:
            # The common form, a list of names, checked in one pass; anything else takes
            # the general path below, with its messages.
            deps = tuple(depends_on)
            for dep in deps:
                if type(dep) is not str or dep == name:
                    break
            else:
                return deps
        if isinstance(depends_on, (str, bytes)):
            raise WorkflowValidationError(
                f"task {name!r}: depends_on must be a list of names, got the string "
                f"{depends_on!r}; write depends_on=[{depends_on!r}]"
            )
        try:
            items = list(depends_on)
        except TypeError:
            raise WorkflowValidationError(
                f"task {name!r}: depends_on must be a list of task names, got {depends_on!r}"
            ) from None
        names: list[str] = []
        for dep in items:
            if isinstance(dep, Task):
                dep_name = dep.name
            elif isinstance(dep, str):
                dep_name = dep
            elif callable(dep) and isinstance(
                settings := getattr(dep, "__flowweaver__", None), TaskSettings
            ):
                dep_name = settings.name or str(getattr(dep, "__name__", ""))
            else:
                raise WorkflowValidationError(
                    f"task {name!r}: each dependency must be a task name, got {dep!r}"
                )
            if dep_name == name:
                raise WorkflowValidationError(
                    f"task {name!r} depends on itself; remove {name!r} from its depends_on"
                )
            names.append(dep_name)
        return tuple(names)

    # -- reading -----------------------------------------------------------------------------

    @property
    def tasks(self) -> list[Task]:
        """All tasks, in the order they were added (a new list each time)."""
        return list(self._tasks.values())

    @property
    def status(self) -> WorkflowStatus:
        """``IDLE`` before the first run, ``RUNNING`` during one, then how it ended."""
        return self._status

    def get_task(self, name: str) -> Task | None:
        """The task called ``name``, or ``None``. An item of a mapped task's latest run is
        found by its name too: ``"process_file[3]"``, ``"process_file[<key>]"``."""
        found = self._tasks.get(name)
        if found is not None or not name.endswith("]"):
            return found
        for base in self._mapped:
            if name.startswith(base + "["):
                items = self._tasks[base]._items
                key = name[len(base) + 1 : -1]
                if key.isdigit() and int(key) < len(items) and items[int(key)].name == name:
                    return items[int(key)]
                for item in items:
                    if item.name == name:
                        return item
        return None

    def dependencies(self, name: str) -> tuple[str, ...]:
        """The names ``name`` depends on, as given to :meth:`add_task`.

        :raises KeyError: when there is no such task.
        """
        if name not in self._tasks:
            raise KeyError(name)
        return self._depends_on[name]

    def clear_results(self) -> None:
        """Drop every task's result from memory; statuses and errors are kept."""
        self._check_not_running("clear results")
        for t in self._tasks.values():
            status, _, error = t._state  # not snapshot(): it would fetch remote results
            t._set_state(status, None, error)

    # -- running -------------------------------------------------------------------------------

    def execute(self, executor: BaseExecutor, **options: Unpack[RunOptions]) -> None:
        """Run the workflow with ``executor`` and block until it ends, for every executor.

        ``AsyncExecutor`` included: its scheduling runs on an event loop of its own (or on
        a helper thread when this thread already runs one). In async code, ``await
        executor.execute(workflow)`` instead.

        :param options: ``params`` (run parameters, injected by name), ``targets`` and
            ``from_tasks`` (run part of the workflow), as ``executor.execute`` takes them.

        :raises WorkflowValidationError: before anything runs, when the graph is invalid.
        :raises WorkflowExecutionError: when any task failed.
        """
        from ._executor import BaseExecutor

        if not isinstance(executor, BaseExecutor):
            raise WorkflowValidationError(
                f"execute needs an executor such as SequentialExecutor(), got {executor!r}"
            )
        executor._run_blocking(self, options)

    def graph(self) -> Graph:
        """The validated graph (cached until a task is added).

        :raises WorkflowValidationError: for unknown dependencies or cycles.
        """
        if self._graph is None:
            for name in self._mapped:
                over = self._tasks[name].map_over
                if over not in self._tasks:
                    # The dependency came from map_over, not from depends_on: say so.
                    raise WorkflowValidationError(
                        f"{unknown_dependency(name, over, list(self._tasks))} (it is what "
                        f"task {name!r} maps over: map_over={over!r})"
                    )
            self._graph = Graph(list(self._tasks), self._depends_on)
        return self._graph

    def subset(
        self,
        targets: Iterable[str] | None = None,
        from_tasks: Iterable[str] | None = None,
    ) -> Workflow:
        """A new workflow of the same name holding part of this one, sharing its tasks.

        ``targets``: those tasks and every task upstream of them. ``from_tasks``: those
        tasks and every task downstream of them; the upstream tasks whose results they need
        come along as tasks that are never run: a run takes their results from the state
        store as saved (and fails before anything runs when one is not saved). Both: the
        tasks between them. ``execute(wf, targets=..., from_tasks=...)`` runs the same
        tasks in the same way.

        :raises WorkflowValidationError: for an unknown name, or an empty selection.
        """
        from ._engine._select import select

        selection = select(self, targets, from_tasks)
        new = Workflow(self.name, self.description)
        if selection is None:
            names, given, forced = list(self._tasks), self._given, self._forced
            depends_on = self._depends_on
        else:
            names, given = selection.names, selection.given
            forced = selection.forced | (self._forced & set(names))
            depends_on = selection.depends_on
        for name in names:
            t = self._tasks[name]
            new._tasks[name] = t
            new._depends_on[name] = depends_on[name]
            if t.trigger != "all_success" and name not in given:
                new._ruled.append(name)
            if t.map_over is not None and name not in given:
                new._mapped.append(name)
        new._given = frozenset(given)
        new._forced = frozenset(forced)
        return new

    # -- describing ----------------------------------------------------------------------------

    def to_mermaid(self) -> str:
        """The DAG as a Mermaid flowchart (text), each task coloured by its status once the
        workflow has run. Paste it into a Markdown file, or ``flowweaver graph FILE``.

        :raises WorkflowValidationError: for unknown dependencies or cycles.
        """
        return _export.to_mermaid(self)

    def to_dot(self) -> str:
        """The DAG as Graphviz DOT (text; render it with ``dot -Tsvg``), each task coloured by
        its status once the workflow has run.

        :raises WorkflowValidationError: for unknown dependencies or cycles.
        """
        return _export.to_dot(self)

    # -- in a notebook: see _notebook.py ---------------------------------------------------

    def _repr_html_(self) -> str:
        """The table of tasks (status, attempts, duration, result, error) with the DAG
        drawn as inline SVG; bounded for big workflows."""
        from ._notebook import repr_html

        return repr_html(self)

    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> dict[str, str]:
        """The HTML of :meth:`_repr_html_`, plain text, and the DAG as Mermaid
        (``text/vnd.mermaid``) when it is small enough for Mermaid to draw."""
        from ._notebook import mimebundle

        return mimebundle(self, include, exclude)

    def _ipython_display_(self) -> None:
        """Under IPython: the DAG (Mermaid where the front-end draws it, SVG elsewhere),
        then the table."""
        from ._notebook import ipython_display

        ipython_display(self)

    def _check_not_running(self, what: str) -> None:
        if self._running:
            raise WorkflowValidationError(
                f"cannot {what} while workflow {self.name!r} is running; wait for the run to end"
            )

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r} tasks={len(self._tasks)} {self._status.value}>"
