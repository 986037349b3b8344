"""How a :class:`~flowweaver.Workflow` shows itself in Jupyter: its DAG and a table of tasks.

Theory of operation: a notebook output shows one MIME type of a bundle, the one its
front-end ranks first, and JupyterLab ranks ``text/html`` (50) before Mermaid's
``text/vnd.mermaid`` (61). So under IPython the workflow displays as two outputs
(``_ipython_display_``): the diagram, as Mermaid with an SVG fallback (JupyterLab 4.1+
draws the Mermaid; VS Code, Notebook 6 and nbconvert take the SVG), then the table as
HTML. Anything else that asks for ``_repr_html_`` or ``_repr_mimebundle_`` gets the
table with the SVG inline, and the Mermaid text beside it.

Bounded whatever the size: at most :data:`MAX_ROWS` rows (failed, retried and running
tasks first, then the others in the order they were added; "and N more" counts the rest
by status), a diagram only up to :data:`MAX_DIAGRAM` tasks, Mermaid only within the
limits Mermaid itself enforces (500 edges and 50,000 characters by default). A mapped
task is one row and one node, with its items counted. Every name, error and result is
escaped (:func:`flowweaver._html.xml_text`).
"""

from __future__ import annotations

import importlib
from collections import Counter
from typing import TYPE_CHECKING, Any

from . import _export, _svg
from ._errors import WorkflowValidationError
from ._html import badge, duration_text, error_text, one_line, result_text, xml_text
from ._remote._protocol import RemoteResult
from ._status import TaskStatus, WorkflowStatus

if TYPE_CHECKING:
    from collections.abc import Container

    from ._task import Task
    from ._workflow import Workflow

MAX_ROWS = 200
MAX_DIAGRAM = 500
# Mermaid refuses bigger diagrams unless the page raised its limits (maxEdges,
# maxTextSize); past them the SVG is drawn instead.
MERMAID_MAX_EDGES = 500
MERMAID_MAX_TEXT = 50_000

MERMAID = "text/vnd.mermaid"
_ORDER = (
    TaskStatus.COMPLETED,
    TaskStatus.FAILED,
    TaskStatus.SKIPPED,
    TaskStatus.RUNNING,
    TaskStatus.RETRYING,
    TaskStatus.PENDING,
)
_CELL = 'style="text-align:left"'
_WORKFLOW_COLOURS = {
    WorkflowStatus.COMPLETED: TaskStatus.COMPLETED,
    WorkflowStatus.FAILED: TaskStatus.FAILED,
    WorkflowStatus.RUNNING: TaskStatus.RUNNING,
    WorkflowStatus.CANCELLED: TaskStatus.SKIPPED,
    WorkflowStatus.IDLE: TaskStatus.PENDING,
}


class Diagram:
    """The DAG in the forms that fit: ``mermaid`` and ``svg`` text, or ``note`` saying why
    there is none (too big, or an invalid graph)."""

    def __init__(self, workflow: Workflow) -> None:
        self.mermaid: str | None = None
        self.svg: str | None = None
        self.note: str | None = None
        n = len(workflow._tasks)
        if n == 0:
            self.note = "no tasks"
            return
        if n > MAX_DIAGRAM:
            self.note = f"no diagram above {MAX_DIAGRAM:,} tasks (this workflow has {n:,})"
            return
        try:
            graph = workflow.graph()
        except WorkflowValidationError as exc:
            self.note = f"no diagram: {error_text(exc)}"
            return
        self.svg = _svg.to_svg(workflow, _tooltips(workflow, graph.names))
        if sum(map(len, graph.upstream)) <= MERMAID_MAX_EDGES:
            text = _export.to_mermaid(workflow)
            if len(text) <= MERMAID_MAX_TEXT:
                self.mermaid = text


def _tooltips(workflow: Workflow, names: list[str]) -> list[str]:
    if workflow.status is WorkflowStatus.IDLE:
        return names
    tips = []
    for name in names:
        status, _, error = workflow._tasks[name]._state
        tip = f"{name}: {status.value}"
        tips.append(f"{tip}\n{one_line(error_text(error), 300)}" if error is not None else tip)
    return tips


def _counts(tasks: list[Task]) -> Counter[TaskStatus]:
    return Counter(t._state[0] for t in tasks)


def _count_text(counts: Counter[TaskStatus], noun: str) -> str:
    parts = [f"{counts[s]:,} {s.value.lower()}" for s in _ORDER if counts[s]]
    total = sum(counts.values())
    head = f"{total:,} {noun}" if total == 1 else f"{total:,} {noun}s"
    return f"{head}: {', '.join(parts)}" if parts else head


def _span(tasks: list[Task]) -> float | None:
    """Seconds from the first task's start to the last one's end."""
    starts = [t._started for t in tasks if t._started is not None]
    ends = [t._finished for t in tasks if t._finished is not None]
    return max(max(ends) - min(starts), 0.0) if starts and ends else None


def _shown(tasks: list[Task]) -> list[Task]:
    """At most :data:`MAX_ROWS` tasks, in the order added: what went wrong or is in
    flight first (failed, retrying, running, retried), then the others."""
    if len(tasks) <= MAX_ROWS:
        return tasks
    notable = {
        i
        for i, t in enumerate(tasks)
        if t._state[0] in (TaskStatus.FAILED, TaskStatus.RETRYING, TaskStatus.RUNNING)
        or t.attempts > 1
    }
    picked = sorted(notable)[:MAX_ROWS]
    if len(picked) < MAX_ROWS:
        rest = (i for i in range(len(tasks)) if i not in notable)
        picked += [i for _, i in zip(range(MAX_ROWS - len(picked)), rest, strict=False)]
    return [tasks[i] for i in sorted(picked)]


def _row(t: Task, ran: bool) -> str:
    status, value, error = t._state
    name = xml_text(t.name)
    if t.map_over is not None:
        items = t._items
        if items:
            note = _count_text(_counts(items), "item")
        elif not ran or status is not TaskStatus.COMPLETED:
            note = f"map over {t.map_over}"
        else:
            note = ""  # restored whole: its result is the list
        if note:
            name += f'<br><small style="opacity:.75">{xml_text(note)}</small>'
    result = ""
    if status is TaskStatus.COMPLETED:
        result = "(on the cluster)" if type(value) is RemoteResult else result_text(value)
    err = error_text(error)
    tip = f' title="{xml_text(err[:2000])}"' if len(err) > 160 else ""
    cells = [
        name,
        badge(status),
        str(t.attempts) if t.attempts else "",
        xml_text(duration_text(t.duration)),
        f"<code>{xml_text(result)}</code>" if result else "",
        f"<span{tip}>{xml_text(one_line(err, 160))}</span>" if err else "",
    ]
    return "<tr>" + "".join(f"<td {_CELL}>{c}</td>" for c in cells) + "</tr>"


def table_html(workflow: Workflow) -> str:
    """The header line and the table of tasks (bounded), as an HTML fragment."""
    tasks = list(workflow._tasks.values())
    ran = workflow.status is not WorkflowStatus.IDLE
    counts = _counts(tasks)
    status = workflow.status
    head = f"<b>{xml_text(workflow.name)}</b> {badge(_WORKFLOW_COLOURS[status], status.value)}"
    summary = _count_text(counts, "task") if ran else f"{len(tasks):,} tasks, not run yet"
    span = _span(tasks) if ran else None
    if span is not None:
        summary += f" · {duration_text(span)}"
    out = [f'<div style="margin:2px 0 6px 0">{head} {xml_text(summary)}</div>']
    if workflow.description:
        out.append(f"<div><i>{xml_text(one_line(workflow.description, 300))}</i></div>")
    if not tasks:
        return "".join(out)
    shown = _shown(tasks)
    columns = ("task", "status", "attempts", "duration", "result", "error")
    out.append('<table style="border-collapse:collapse;font-size:90%">')
    out.append("<thead><tr>" + "".join(f"<th {_CELL}>{c}</th>" for c in columns) + "</tr></thead>")
    out.append("<tbody>")
    out.extend(_row(t, ran) for t in shown)
    out.append("</tbody></table>")
    if len(shown) < len(tasks):
        seen = {id(t) for t in shown}
        hidden = _counts([t for t in tasks if id(t) not in seen])
        more = _count_text(hidden, "more task")
        out.append(f"<div><i>and {xml_text(more)}</i></div>")
    return "".join(out)


def _svg_block(diagram: Diagram) -> str:
    if diagram.svg is None:
        note = diagram.note or ""
        return f'<div style="opacity:.75"><i>{xml_text(note)}</i></div>' if note else ""
    return f'<div style="max-height:480px;overflow:auto">{diagram.svg}</div>'


def repr_html(workflow: Workflow) -> str:
    """The table with the diagram drawn inline as SVG."""
    return f"<div>{_svg_block(Diagram(workflow))}{table_html(workflow)}</div>"


def mimebundle(
    workflow: Workflow,
    include: Container[str] | None = None,
    exclude: Container[str] | None = None,
) -> dict[str, str]:
    """``text/plain``, ``text/html`` (the table, the SVG inline) and, when the diagram
    fits Mermaid's limits, ``text/vnd.mermaid``; filtered by ``include`` / ``exclude``."""
    diagram = Diagram(workflow)
    bundle = {
        "text/plain": repr(workflow),
        "text/html": f"<div>{_svg_block(diagram)}{table_html(workflow)}</div>",
    }
    if diagram.mermaid is not None:
        bundle[MERMAID] = diagram.mermaid
    return {
        k: v
        for k, v in bundle.items()
        if (include is None or k in include) and (exclude is None or k not in exclude)
    }


def display(obj: Any, **options: Any) -> Any:
    """IPython's ``display`` (imported here, by name: IPython is there only in a kernel,
    and not a dependency)."""
    return importlib.import_module("IPython.display").display(obj, **options)


def ipython_display(workflow: Workflow) -> None:
    """Under IPython: the diagram as one output (Mermaid, or the SVG where the front-end
    has no Mermaid renderer), then the table as another."""
    diagram = Diagram(workflow)
    if diagram.svg is not None:
        bundle: dict[str, Any] = {
            "text/plain": f"<diagram of workflow {workflow.name!r}>",
            "image/svg+xml": diagram.svg,
        }
        if diagram.mermaid is not None:
            bundle[MERMAID] = diagram.mermaid
        display(bundle, raw=True)
    table = f"<div>{_svg_block(diagram) if diagram.svg is None else ''}{table_html(workflow)}</div>"
    display({"text/plain": repr(workflow), "text/html": table}, raw=True)
