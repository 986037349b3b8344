"""A workflow's DAG drawn as a standalone SVG, for front-ends without Mermaid. No I/O.

Theory of operation: a layered drawing in one pass over the graph. Each task's column is
its depth (one more than its deepest upstream task), so edges always point right; within
a column tasks are ordered by the mean row of their upstream tasks (the barycenter
heuristic, one sweep), which removes most crossings of the usual fan-out and fan-in
shapes. Coordinates are computed, not measured: a label's width is estimated from its
length (monospace), and long labels are cut with an ellipsis (the full name, status and
error are in each node's ``<title>``, the tooltip). Everything is O(tasks + edges).

All text goes through :func:`flowweaver._html.xml_text`, so no task name or error can
change the SVG's structure, and characters XML cannot hold become U+FFFD.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._export import _COLOURS, _labels, _statuses
from ._html import xml_text

if TYPE_CHECKING:
    from ._status import TaskStatus
    from ._workflow import Workflow

_LABEL_MAX = 32  # characters shown in a node; the tooltip has the rest
_CHAR_W = 7.2  # px per character of 12px monospace
_NODE_H = 26
_ROW_GAP = 10
_COL_GAP = 56
_PAD = 10
# Before a run: a neutral node.
_IDLE = ("#ffffff", "#9e9e9e", "#212121")


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_MAX else label[: _LABEL_MAX - 1] + "…"


def _columns(upstream: list[tuple[int, ...]], order: list[int]) -> list[list[int]]:
    """Tasks per column (depth), each column sorted by its tasks' upstream barycenters."""
    depth = [0] * len(upstream)
    for i in order:  # topological: every upstream task has its depth already
        ups = upstream[i]
        if ups:
            depth[i] = 1 + max(depth[j] for j in ups)
    columns: list[list[int]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for i in order:
        columns[depth[i]].append(i)
    row = [0.0] * len(upstream)
    for column in columns:
        if column is not columns[0]:
            # sorted() is stable: tasks with the same barycenter keep their added order
            column.sort(key=lambda i: sum(row[j] for j in upstream[i]) / len(upstream[i]))
        for r, i in enumerate(column):
            row[i] = r
    return columns


def to_svg(workflow: Workflow, tooltips: list[str] | None = None) -> str:
    """The workflow's DAG as an ``<svg>`` element (left to right), coloured by status once
    it has run, as :func:`flowweaver._export.to_mermaid` colours it.

    :param tooltips: per task in graph order, the text of its tooltip (default: its name).
    :raises WorkflowValidationError: when the graph is invalid, as a run would.
    """
    graph = workflow.graph()
    labels = [_short(label) for label in _labels(workflow, graph.names)]
    statuses: list[TaskStatus] | None = _statuses(workflow)
    columns = _columns(graph.upstream, graph.topological_order())
    widths = [max((len(labels[i]) for i in column), default=1) * _CHAR_W + 16 for column in columns]
    x: list[float] = [0.0] * len(labels)
    y: list[float] = [0.0] * len(labels)
    left = float(_PAD)
    for column, width in zip(columns, widths, strict=True):
        for r, i in enumerate(column):
            x[i] = left
            y[i] = _PAD + r * (_NODE_H + _ROW_GAP)
        left += width + _COL_GAP
    width_of = {i: w for column, w in zip(columns, widths, strict=True) for i in column}
    total_w = left - _COL_GAP + _PAD if columns else 2 * _PAD
    tallest = max((len(c) for c in columns), default=0)
    total_h = _PAD * 2 + max(tallest * (_NODE_H + _ROW_GAP) - _ROW_GAP, 0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0f}" height="{total_h:.0f}" '
        f'viewBox="0 0 {total_w:.0f} {total_h:.0f}" role="img" '
        f'aria-label="{xml_text(workflow.name)}" font-family="monospace" font-size="12">',
        f"<title>{xml_text(workflow.name)}</title>",
        '<g fill="none" stroke="#9e9e9e" stroke-width="1.2">',
    ]
    mid = _NODE_H / 2
    for i, ups in enumerate(graph.upstream):
        x1, y1 = x[i], y[i] + mid
        for j in ups:
            x0, y0 = x[j] + width_of[j], y[j] + mid
            bend = (x1 - x0) / 2
            out.append(
                f'<path d="M{x0:.1f},{y0:.1f} C{x0 + bend:.1f},{y0:.1f} '
                f'{x1 - bend:.1f},{y1:.1f} {x1 - 5:.1f},{y1:.1f}"/>'
                f'<path d="M{x1 - 6:.1f},{y1 - 3.5:.1f} L{x1:.1f},{y1:.1f} '
                f'L{x1 - 6:.1f},{y1 + 3.5:.1f}" stroke-linejoin="round"/>'
            )
    out.append("</g>")
    for i, label in enumerate(labels):
        fill, stroke, ink = _IDLE if statuses is None else _COLOURS[statuses[i]]
        tip = graph.names[i] if tooltips is None else tooltips[i]
        out.append(
            f'<g><title>{xml_text(tip)}</title><rect x="{x[i]:.1f}" y="{y[i]:.1f}" '
            f'width="{width_of[i]:.1f}" height="{_NODE_H}" rx="5" fill="{fill}" '
            f'stroke="{stroke}"/><text x="{x[i] + 8:.1f}" y="{y[i] + mid + 4:.1f}" '
            f'fill="{ink}">{xml_text(label)}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)
