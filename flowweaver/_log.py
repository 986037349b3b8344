"""The library's logger gets a ``NullHandler`` before FlowWeaver logs anything.

A library logs but never prints: without the handler, Python's last-resort handler would
write FlowWeaver's warnings to stderr of every script that has not configured logging.
The packages whose code logs (the engine, the stores) import this module, and so does
``flowweaver/__init__.py`` when ``logging`` is already loaded: ``import logging`` is a
third of what ``import flowweaver`` would cost otherwise, and until a run or a store
does something there is nothing to log.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("flowweaver")
logger.addHandler(logging.NullHandler())
