"""Small pieces of HTML and text that the notebook views share. No I/O.

Every piece of text that comes from a user (task and workflow names, errors, results)
goes through :func:`xml_text` before it is placed in markup. Styles are inline
attributes, never ``<style>`` blocks or classes: a notebook's sanitizer keeps the former,
and an output must look the same in JupyterLab, VS Code and an exported HTML file.
"""

from __future__ import annotations

import re
import reprlib
from typing import Any

from ._errors import describe_exception
from ._export import _COLOURS
from ._status import TaskStatus

# Characters XML 1.0 forbids anywhere (C0 controls but tab, LF, CR; lone surrogates;
# U+FFFE, U+FFFF): an SVG output is parsed as XML, where one of them breaks the image.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})

_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6


def xml_text(text: str) -> str:
    """``text`` safe inside an HTML or XML element or a quoted attribute."""
    return _NOT_XML.sub("\ufffd", text).translate(_ENTITIES)


def one_line(text: str, limit: int) -> str:
    """``text`` on one line (whitespace runs become one space), cut to ``limit``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def error_text(error: BaseException | None) -> str:
    """``"ValueError: bad value"``; an error whose message cannot be read says so."""
    if error is None:
        return ""
    text = describe_exception(error)
    return text[:-2] if text.endswith(": ") else text


def result_text(value: Any) -> str:
    """A short repr of a task's result, bounded however big the value (never raises)."""
    try:
        return one_line(_REPR.repr(value), 80)
    except Exception as exc:  # a hostile __repr__ must not break a display
        return f"(its repr raised {type(exc).__name__})"


def duration_text(seconds: float | None) -> str:
    """``"0.4 ms"``, ``"12 ms"``, ``"3.40 s"``, ``"2m 05s"``, ``"1h 02m"``; ``""`` for None."""
    if seconds is None:
        return ""
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def badge(status: TaskStatus, text: str | None = None) -> str:
    """A status as a coloured label, in the colours of the Mermaid and DOT exports."""
    fill, stroke, ink = _COLOURS[status]
    return (
        f'<span style="background:{fill};color:{ink};border:1px solid {stroke};'
        f'border-radius:4px;padding:0 5px;white-space:nowrap">'
        f"{xml_text(status.value if text is None else text)}</span>"
    )


def bar(parts: list[tuple[TaskStatus, int]], total: int, width: int = 320) -> str:
    """A horizontal bar of ``total`` cells, each part in its status's colour."""
    segments = []
    for status, n in parts:
        if n > 0 and total > 0:
            share = min(n / total, 1.0) * 100
            segments.append(
                f'<div style="width:{share:.3f}%;background:{_COLOURS[status][1]}"></div>'
            )
    return (
        f'<div style="display:flex;width:{width}px;max-width:100%;height:10px;'
        f'background:#e9ecef;border-radius:5px;overflow:hidden">{"".join(segments)}</div>'
    )
