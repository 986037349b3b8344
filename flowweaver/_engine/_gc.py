"""Keep the garbage collector from rescanning a big workflow over and over during a run.

Every few thousand allocations CPython's collector walks its generations, and a full
collection walks every tracked object: with 100,000 tasks that is millions of objects,
several times a run, for nothing (a workflow's tasks live as long as it does). A run
therefore moves the objects that exist when it starts to the collector's permanent
generation (``gc.freeze``) and back at its end (``gc.unfreeze``); a map's items, made
during the run and kept as long, are frozen once made (``refreeze``). Garbage made during
the run is collected as usual. Overlapping runs share one freeze; a program that froze
objects itself is left alone.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_runs = 0
_ours = False


def hold() -> None:
    """A run starts: freeze what exists, unless someone else already has."""
    global _runs, _ours
    with _lock:
        if _runs == 0:
            _ours = gc.isenabled() and gc.get_freeze_count() == 0
            if _ours:
                gc.freeze()
        _runs += 1


def refreeze() -> None:
    """A run made many objects that live as long as it does (a map's items): freeze them
    too, when the freeze is ours."""
    with _lock:
        if _runs and _ours:
            gc.freeze()


def release() -> None:
    """A run ended: unfreeze once the last overlapping run has ended."""
    global _runs, _ours
    with _lock:
        _runs -= 1
        if _runs == 0 and _ours:
            gc.unfreeze()
            _ours = False
