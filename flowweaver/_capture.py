"""``capture_logs``: the tail of each attempt's log records and ``print`` output.

Theory of operation. A run with ``capture_logs=True`` gives each task a :class:`Tail`
when its first attempt starts (a retry adds a ``--- attempt N ---`` line to the same
tail, so the lines of the attempts before stay above it, as far as the bound allows) and
takes its lines when the task ends; the engine saves them with the task's record.

What fills a tail is found the way :func:`flowweaver.current` finds the running task
(``_context.marker``: the context variable, the inline call, the worker process's job),
so only the code of the attempt itself is captured:

* log records: the run's record factory (``_context``) hands each record made while an
  attempt runs to :func:`_on_record` (any logger whose level lets the record be made;
  a logger's own filters and handlers decide nothing here);
* ``sys.stdout`` and ``sys.stderr``: while at least one capturing run is under way both
  are :class:`Tee` objects, which write everything to the stream they replaced and copy
  what the running attempt writes from its own thread or coroutine. Writes from other
  threads (ones a task started itself included) and from the engine are not copied,
  nor are those of logging's handlers (the record is in the tail already).

The tees are installed by the first capturing run and put back by the last one, even
when it ends by Ctrl-C (the run's cleanup); a run without ``capture_logs`` installs
nothing and pays nothing. A tee that someone else wrapped or replaced meanwhile is left
where it is: it keeps writing through, and copies nothing once no run captures.

A worker process (``_proc_child``) captures its job the same way with code of its own
(it imports no flowweaver) and sends the lines back with its reply.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections import deque
from typing import Any, TextIO

from . import _context
from ._context import Source, marker

_LOGGING = logging.__file__

#: A longer line is cut to this many characters (a record stays small, whatever is printed).
MAX_LINE = 10_000


class Tail:
    """The last ``n`` lines of one task's attempts: log records and stream writes.

    Written from the attempt's thread, read by the engine once the attempt has ended.
    """

    __slots__ = ("lines", "partial", "pending")

    def __init__(self, n: int) -> None:
        self.lines: deque[str] = deque(maxlen=n)
        # a retry's "--- attempt N ---", written only once that attempt writes a line: an
        # attempt that wrote nothing leaves no separator alone at the end of the tail
        self.pending: str | None = None
        # what each stream wrote after its last newline, by stream
        self.partial: dict[str, str] = {}

    def add(self, lines: list[str]) -> None:
        if not lines:
            return
        if self.pending is not None:
            self.lines.append(self.pending)
            self.pending = None
        self.lines.extend(line if len(line) <= MAX_LINE else _cut(line) for line in lines)

    def write(self, stream: str, text: str) -> None:
        *complete, rest = (self.partial.pop(stream, "") + text).split("\n")
        if complete:
            self.add([line[:-1] if line.endswith("\r") else line for line in complete])
        if len(rest) > MAX_LINE:  # a progress bar that never ends its line
            self.add([rest])
        elif rest:
            self.partial[stream] = rest

    def record(self, record: logging.LogRecord) -> None:
        self.add(format_record(record))

    def new_attempt(self, attempt: int) -> None:
        self.end_lines()
        self.pending = f"--- attempt {attempt} ---"

    def end_lines(self) -> None:
        """Lines left without their newline count as lines."""
        if self.partial:
            self.add([text for text in self.partial.values() if text])
            self.partial.clear()

    def take(self) -> list[str]:
        """The lines, once the task has ended."""
        self.end_lines()
        return list(self.lines)


def _cut(line: str) -> str:
    return f"{line[:MAX_LINE]}... ({len(line) - MAX_LINE} more characters)"


def format_record(record: logging.LogRecord) -> list[str]:
    """``["WARNING etl: message", <traceback lines>...]`` (``_proc_child`` spells the
    same; tests check that both agree)."""
    try:
        message = record.getMessage()
    except Exception:  # the arguments do not fit the format: logging would complain later
        message = f"{record.msg!r} % {record.args!r} (the arguments do not fit the format)"
    text = f"{record.levelname} {record.name}: {message}"
    if record.exc_info and record.exc_info[0] is not None:
        text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.stack_info:
        text += "\n" + record.stack_info
    return text.split("\n")


def tail_here() -> Tail | None:
    """The tail of the attempt running in this thread or coroutine, if it captures."""
    value = marker()
    if value is None:
        return None
    return value[0].tail_of(value[1])


def _on_record(value: tuple[Source, int], record: logging.LogRecord) -> None:
    tail = value[0].tail_of(value[1])
    if tail is not None:
        tail.record(record)


class Tee:
    """``sys.stdout`` or ``sys.stderr`` during capturing runs: everything goes on to
    ``stream``; what a capturing attempt writes from its own thread is copied too."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self._name = name
        # One write at a time: the C TextIOWrapper of CPython 3.10-3.12 lets the GIL go
        # while it flushes, and a second thread's write then can corrupt its pending
        # buffer (a test that prints from another thread during a capturing run crashed
        # in this write once). Everything that prints while a run captures comes here.
        self._lock = threading.RLock()

    def write(self, text: str) -> int:
        with self._lock:
            n = self._stream.write(text)
        if _runs:
            tail = tail_here()
            # A logging handler writing here (logging's last resort, which writes to
            # whatever sys.stderr is, or one made during the run) shows a record that
            # the tail has already: taken twice, every warning would show twice.
            if (
                tail is not None
                and isinstance(text, str)
                and sys._getframe(1).f_code.co_filename != _LOGGING
            ):
                tail.write(self._name, text)
        return n

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        # encoding, flush, fileno, isatty, buffer...: the stream's own
        return getattr(self._stream, name)

    def __repr__(self) -> str:
        return f"<flowweaver capture of {self._stream!r}>"


_lock = threading.Lock()
_runs = 0  # capturing runs under way in this process
_saved: dict[str, tuple[Any, Tee]] = {}  # stream name -> (what it replaced, the tee)


def capture_on() -> None:
    """A capturing run begins (see the module doc)."""
    global _runs
    with _lock:
        _runs += 1
        if _runs > 1:
            return
        _context.capture_record = _on_record
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is None:  # pythonw: nothing to write to, nothing to copy
                continue
            tee = Tee(stream, name)
            _saved[name] = (stream, tee)
            setattr(sys, name, tee)


def capture_off() -> None:
    """A capturing run ended: the last one puts the streams back (unless replaced since)."""
    global _runs
    with _lock:
        _runs -= 1
        if _runs > 0:
            return
        _context.capture_record = None
        for name, (stream, tee) in _saved.items():
            if getattr(sys, name) is tee:
                setattr(sys, name, stream)
        _saved.clear()
