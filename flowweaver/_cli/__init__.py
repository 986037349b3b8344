"""The ``flowweaver`` command (``python -m flowweaver`` too): run, status, graph, reset.

It needs the ``cli`` extra (click and rich). This module imports neither, so the command
can say how to install them instead of failing with an ImportError; the core library never
imports this package at all.
"""

from __future__ import annotations

import importlib.util
import sys

# module name -> the distribution to install
_NEEDS = {"click": "click", "rich": "rich"}

USAGE_ERROR = 2


def missing_dependencies() -> list[str]:
    """The distributions of the ``cli`` extra that cannot be imported."""
    missing = []
    for module, dist in _NEEDS.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or blocked module counts as missing
            found = False
        if not found:
            missing.append(dist)
    return missing


def main() -> None:
    """The console script's entry point; exits with the command's exit code."""
    missing = missing_dependencies()
    if missing:
        sys.stderr.write(
            f"flowweaver: the command line needs {' and '.join(missing)}, which are not "
            "installed.\n"
            "Install FlowWeaver with its 'cli' extra:\n\n"
            '    pip install "flowweaver[cli]"\n\n'
            '(from a clone of the repository: pip install -e ".[cli]")\n'
        )
        sys.exit(USAGE_ERROR)
    from ._app import cli

    cli()
