"""A workflow as text for diagram tools: Mermaid flowcharts and Graphviz DOT. No I/O.

Theory of operation: nodes get generated ids (``t0``, ``t1``... in the order tasks were
added) and carry the task's name only as an escaped label, so no task name, however odd,
can change the structure of the output: quotes, ``#``, ``<``, line breaks and the words a
format reserves (Mermaid's ``end``, DOT's ``node``) are all harmless in a label. Edges
point from an upstream task to the task that depends on it. Once the workflow has run
(its status is no longer ``IDLE``), each node is coloured by its task's status.

A mapped task (``map_over``) is one node, never one per item: its label says what it maps
over before it expands (``process_file [map over list_files]``) and how many items it had
after (``process_file (120 items, 2 failed)``), so a map of 100,000 elements draws as
small as a map of three.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._status import TaskStatus, WorkflowStatus

if TYPE_CHECKING:
    from ._task import Task
    from ._workflow import Workflow

# status -> (fill, stroke, text); readable on light and dark backgrounds alike.
_COLOURS: dict[TaskStatus, tuple[str, str, str]] = {
    TaskStatus.PENDING: ("#eeeeee", "#9e9e9e", "#424242"),
    TaskStatus.RUNNING: ("#cfe2ff", "#0d6efd", "#052c65"),
    TaskStatus.RETRYING: ("#fff3cd", "#ffc107", "#664d03"),
    TaskStatus.COMPLETED: ("#d1e7dd", "#198754", "#0a3622"),
    TaskStatus.FAILED: ("#f8d7da", "#dc3545", "#58151c"),
    TaskStatus.SKIPPED: ("#e2e3e5", "#6c757d", "#2b2f32"),
}

# Characters a Mermaid label may carry as they are; everything else becomes an entity code.
_MERMAID_PLAIN = frozenset(" _-.")


def _statuses(workflow: Workflow) -> list[TaskStatus] | None:
    """Each task's status in graph order, or None when the workflow has never run."""
    if workflow.status is WorkflowStatus.IDLE:
        return None
    return [t.status for t in workflow.tasks]


def _labels(workflow: Workflow, names: list[str]) -> list[str]:
    """Each task's label in graph order: its name, plus what a mapped task maps over or,
    once it expanded, its item count."""
    ran = workflow.status is not WorkflowStatus.IDLE
    by_name = {t.name: t for t in workflow.tasks}
    return [_label(by_name[name], ran) for name in names]


def _label(task: Task, ran: bool) -> str:
    over = task.map_over
    if over is None:
        return task.name
    items = task.items
    n = len(items) if items else None
    if n is None and ran and task.status is TaskStatus.COMPLETED and type(task.result) is list:
        n = len(task.result)  # restored whole: no items this run, its saved list counts them
    if n is None:
        # never run, skipped, or its source gave no list: say what it maps over
        return f"{task.name} [map over {over}]"
    count = f"{n} item" if n == 1 else f"{n} items"
    failed = len(task.failed_items)
    return f"{task.name} ({count}, {failed} failed)" if failed else f"{task.name} ({count})"


def mermaid_label(text: str) -> str:
    """``text`` as the inside of a double-quoted Mermaid label.

    Letters, digits, spaces and ``_-.`` stay; every other character becomes Mermaid's
    decimal entity code ``#NNN;`` (Mermaid has no backslash escapes), so quotes, ``#``,
    ``<``/``>``, backticks and line breaks show as themselves.
    """
    return "".join(c if c.isalnum() or c in _MERMAID_PLAIN else f"#{ord(c)};" for c in text)


def to_mermaid(workflow: Workflow) -> str:
    """The workflow as a Mermaid ``flowchart`` (left to right), ending with a newline.

    :raises WorkflowValidationError: when the graph is invalid (an unknown dependency or
        a cycle), as a run would.
    """
    import json  # here: a diagram is drawn rarely, `import flowweaver` happens always

    graph = workflow.graph()
    lines = [
        "---",
        # A JSON string is a valid YAML double-quoted scalar, escapes included.
        f"title: {json.dumps(workflow.name)}",
        "---",
        "flowchart LR",
    ]
    for i, label in enumerate(_labels(workflow, graph.names)):
        lines.append(f'    t{i}["{mermaid_label(label)}"]')
    for i, ups in enumerate(graph.upstream):
        for j in ups:
            lines.append(f"    t{j} --> t{i}")
    statuses = _statuses(workflow)
    if statuses is not None:
        for status in TaskStatus:
            members = [f"t{i}" for i, s in enumerate(statuses) if s is status]
            if not members:
                continue
            fill, stroke, text = _COLOURS[status]
            cls = status.value.lower()
            lines.append(f"    classDef {cls} fill:{fill},stroke:{stroke},color:{text}")
            lines.append(f"    class {','.join(members)} {cls}")
    return "\n".join(lines) + "\n"


def dot_string(text: str) -> str:
    """``text`` as a double-quoted DOT string, quotes included.

    Backslashes are doubled (a lone one starts a label escape such as ``\\N``, the node's
    id), quotes are escaped and line breaks become ``\\n``.
    """
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    out = out.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")
    return f'"{out}"'


def to_dot(workflow: Workflow) -> str:
    """The workflow as a Graphviz ``digraph`` (left to right), ending with a newline.

    :raises WorkflowValidationError: when the graph is invalid, as a run would.
    """
    graph = workflow.graph()
    statuses = _statuses(workflow)
    lines = [
        f"digraph {dot_string(workflow.name)} {{",
        "    rankdir=LR;",
        '    node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];',
    ]
    for i, label in enumerate(_labels(workflow, graph.names)):
        attrs = [f"label={dot_string(label)}"]
        if statuses is not None:
            fill, stroke, text = _COLOURS[statuses[i]]
            attrs += [
                f'fillcolor="{fill}"',
                f'color="{stroke}"',
                f'fontcolor="{text}"',
                f'tooltip="{statuses[i].value}"',
            ]
        lines.append(f"    t{i} [{', '.join(attrs)}];")
    for i, ups in enumerate(graph.upstream):
        for j in ups:
            lines.append(f"    t{j} -> t{i};")
    lines.append("}")
    return "\n".join(lines) + "\n"
