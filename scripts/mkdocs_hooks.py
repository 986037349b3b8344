"""MkDocs hooks of the documentation site (mkdocs.yml `hooks:`).

- ``<!-- results: benchmarks/RESULTS.md "Heading" -->`` on a page is replaced by that
  section of the benchmark results, so every figure the site shows comes from a run of
  the suite and none is typed by hand. A missing file or heading fails the build.
- The docstrings are written for Sphinx-style readers (``:class:`Task```); mkdocstrings
  renders the role's name as text before the code span, which the reference pages drop.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = re.compile(r'<!-- results: (\S+) "([^"]+)" -->')
ROLE = re.compile(r":(?:class|func|meth|mod|attr|exc|data|obj):(?=<code)")


def section(path: str, heading: str) -> str:
    """The lines under ``heading`` (any level) up to the next heading of its level or
    above, with the heading itself left out: the page gives its own."""
    file = ROOT / path
    if not file.is_file():
        # RESULTS.md comes from `nox -s bench`, RESULTS-<name>.md from `nox -s bench_<name>`
        name = file.stem.partition("-")[2]
        session = f"bench_{name}" if name else "bench"
        raise LookupError(f"results file {path} does not exist (run `nox -s {session}`)")
    lines = file.read_text(encoding="utf-8").splitlines()
    for start, line in enumerate(lines):
        level = len(line) - len(line.lstrip("#"))
        if level and line[level:].strip() == heading:
            body = []
            for later in lines[start + 1 :]:
                depth = len(later) - len(later.lstrip("#"))
                if depth and depth <= level and later[depth : depth + 1] == " ":
                    break
                # Subheadings sit under the page's own heading for this section.
                body.append("#" * (3 - level) + later if depth > level else later)
            return "\n".join(body).strip() + "\n"
    raise LookupError(
        f'{path} has no heading "{heading}": the page names a results section that is not '
        "there (renamed, or the file is from an older run); fix the page or rerun the bench"
    )


def on_page_markdown(markdown: str, **_: Any) -> str:
    try:
        return RESULTS.sub(lambda m: section(m.group(1), m.group(2)), markdown)
    except LookupError as exc:
        # Imported only here: the hook's tests run where MkDocs is not installed (the
        # README's test command installs the test extra, not the docs one).
        from mkdocs.exceptions import PluginError

        raise PluginError(str(exc)) from None


def on_page_content(html: str, **_: Any) -> str:
    return ROLE.sub("", html)
