"""The :class:`Workflow` container: tasks, their dependencies and the status of the last run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import _export
from ._engine._graph import Graph
from ._errors import WorkflowValidationError, check_name_text
from ._status import WorkflowStatus
from ._task import Task, TaskSettings

if TYPE_CHECKING:
    from ._executor import BaseExecutor
    from ._settings import TriggerRule


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
        self._depends_on: dict[str, tuple[str, ...]] = {}
        self._graph: Graph | None = None
        self._status = WorkflowStatus.IDLE
        self._running = False

    # -- building --------------------------------------------------------------------------

    def add_task(
        self,
        task_or_func: Task | Callable[..., Any],
        depends_on: Sequence[str | Task | Callable[..., Any]] | None = None,
        *,
        trigger: TriggerRule | None = None,
    ) -> Task:
        """Add a :class:`Task`, or a function (``@task``-decorated or plain and named).

        :param depends_on: the names of upstream tasks (a ``Task`` or a decorated function
            stands for its name).
        :param trigger: the task's trigger rule (see :class:`Task`), replacing the one it
            was made with.
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
        if trigger is not None:
            new.settings = replace(new.settings, trigger=trigger)  # checked, naming the task
            new.trigger = trigger
        if new.name in self._tasks:
            raise WorkflowValidationError(
                f"workflow {self.name!r} already has a task named {new.name!r}; "
                "task names must be unique (pass name= to tell them apart)"
            )
        self._tasks[new.name] = new
        if new.trigger != "all_success":
            self._ruled.append(new.name)
        self._depends_on[new.name] = deps
        self._graph = None
        return new

    def _dependency_names(
        self, name: str, depends_on: Sequence[str | Task | Callable[..., Any]] | None
    ) -> tuple[str, ...]:
        if depends_on is None:
            return ()
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
        """The task called ``name``, or ``None``."""
        return self._tasks.get(name)

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

    def execute(self, executor: BaseExecutor) -> None:
        """Run the workflow with ``executor`` and block until it ends, for every executor.

        ``AsyncExecutor`` included: its scheduling runs on an event loop of its own (or on
        a helper thread when this thread already runs one). In async code, ``await
        executor.execute(workflow)`` instead.

        :raises WorkflowValidationError: before anything runs, when the graph is invalid.
        :raises WorkflowExecutionError: when any task failed.
        """
        from ._executor import BaseExecutor

        if not isinstance(executor, BaseExecutor):
            raise WorkflowValidationError(
                f"execute needs an executor such as SequentialExecutor(), got {executor!r}"
            )
        executor._run_blocking(self)

    def graph(self) -> Graph:
        """The validated graph (cached until a task is added).

        :raises WorkflowValidationError: for unknown dependencies or cycles.
        """
        if self._graph is None:
            self._graph = Graph(list(self._tasks), self._depends_on)
        return self._graph

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

    def _check_not_running(self, what: str) -> None:
        if self._running:
            raise WorkflowValidationError(
                f"cannot {what} while workflow {self.name!r} is running; wait for the run to end"
            )

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r} tasks={len(self._tasks)} {self._status.value}>"
