"""Where the command writes: rich on a terminal, plain aligned text everywhere else.

Plain output is for logs and pipes: no colours, no cursor movement, no wrapping, one
record per line, so ``grep`` and ``awk`` work on it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._errors import describe_exception
from .._html import duration_text
from .._status import TaskStatus

STATUS_STYLES = {
    TaskStatus.COMPLETED.value: "green",
    TaskStatus.FAILED.value: "bold red",
    TaskStatus.SKIPPED.value: "yellow",
    TaskStatus.PENDING.value: "dim",
    TaskStatus.RUNNING.value: "cyan",
    TaskStatus.RETRYING.value: "magenta",
}


def stdout_is_terminal() -> bool:
    """True when stdout is an interactive terminal able to redraw a live display."""
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM") != "dumb"


class Output:
    """The command's stdout, rendered for a terminal or as plain text.

    :param terminal: render with rich (colours, boxes, live display); otherwise plain.
    """

    def __init__(self, terminal: bool) -> None:
        self.terminal = terminal
        self.console = Console(highlight=False) if terminal else None

    def line(self, text: str = "", style: str | None = None) -> None:
        if self.console is not None:
            self.console.print(Text(text, style=style or ""))
        else:
            write_line(text)

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        title: str | None = None,
        status_column: int | None = None,
        styles: Mapping[str, str] = STATUS_STYLES,
    ) -> None:
        """Print ``rows`` under ``columns``; the ``status_column`` is coloured by its
        first word, a key of ``styles`` (task statuses by default)."""
        if self.console is None:
            if title:
                write_line(title)
            for text in plain_table(columns, rows):
                write_line(text)
            return
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
        for name in columns:
            table.add_column(name, overflow="fold")
        for row in rows:
            cells = [Text(cell) for cell in row]
            if status_column is not None:
                word = row[status_column].split(" ", 1)[0]
                cells[status_column].stylize(styles.get(word, ""))
            table.add_row(*cells)
        self.console.print(table)


def write_line(text: str) -> None:
    """One line on stdout, flushed now so a pipe's reader sees it as it happens."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def plain_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell, a dashed rule under the header."""
    clean = [[one_line(cell) for cell in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in clean:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    return [fmt(columns), fmt(["-" * w for w in widths]), *(fmt(row) for row in clean)]


def one_line(text: str) -> str:
    """``text`` with line breaks (and tabs) turned into single spaces."""
    return " ".join(text.split()) if any(c in text for c in "\r\n\t") else text


def describe_error(error: BaseException | None) -> str:
    """``"ValueError: bad value"`` on one line."""
    if error is None:
        return ""
    text = describe_exception(error)  # never trusts the error's own __str__
    return one_line(text[:-2] if text.endswith(": ") else text)


def format_duration(seconds: float | None) -> str:
    """``"0.4 ms"``, ``"12 ms"``, ``"3.40 s"``, ``"2m 05s"``, ``"1h 02m"``; ``"-"`` for None
    (the notebook's wording, ``_html.duration_text``, with the table's dash)."""
    return "-" if seconds is None else duration_text(seconds)


def format_clock(seconds: float) -> str:
    """Elapsed time as ``m:ss`` (``h:mm:ss`` past an hour)."""
    total = max(int(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"
