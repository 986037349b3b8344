"""Reading and running the code blocks of the documentation (docs/**/*.md, README.md).

Each page runs on its own, top to bottom, in a fresh scratch folder that is also its
working directory. How a block is treated follows from its fence (what a reader sees):

- ```python: run in the page's namespace, in order (``__name__`` is ``"__main__"``).
- a block whose ``title`` is a file name (```python title="pipeline.py"```, also toml,
  json, csv, text...): written to that file in the scratch folder, not run by itself;
  a later ``console`` block runs it as a reader would.
- ```text title="Output"```: what the block before it printed (python, pycon or a file
  run by no console block is not allowed before it). ``...`` matches any text (doctest's
  ELLIPSIS) and runs of whitespace compare equal.
- ```console: ``$ command`` lines run by bash in the scratch folder, with this Python's
  ``bin`` first on PATH; the lines under a command are its output (stdout and stderr),
  checked as above. A command must exit 0: a page that shows a failing command shows its
  status too (``$ flowweaver run p.py; echo "exit status $?"``).
- ```pycon: ``>>>`` examples, run as doctests in the page's namespace.
- ```bash: the install steps and nox sessions in it (``SHOWN_ONLY``) are shown, not run
  (CI runs the README's two setup commands in a fresh clone); every other command runs
  and must exit 0, its output unchecked. The project's ``examples/`` folder is copied
  into every scratch folder, so a page may run ``examples/etl_pipeline.py``.
- ```toml, ```json, ```yaml: parsed. ```mermaid, ```text, ```csv: not code.

A page may start with ``<!-- docs-test: slow timeout=300 notebook -->``: ``slow`` gives its
test the slow marker, ``timeout=N`` its hard timeout in seconds, ``notebook`` runs its
python blocks as the cells of a notebook in a real Jupyter kernel (top-level ``await``
works there as in Jupyter), in page order with its file and console blocks.
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)\n"
    r"(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
    re.M | re.S,
)
ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')
FILE_NAME = re.compile(r"^[\w./-]+\.\w+$")
MARKER = re.compile(r"<!--\s*docs-test:([^>]*)-->")
# What a ```bash block may hold: it is shown, never run (see the module docstring).
SHOWN_ONLY = (
    "python3 -m venv",
    "python -m venv",
    ". .venv/bin/activate",
    "pip install",
    "python -m pip install",
    "nox ",
    "bash .ci/run",
    # the README's test command: CI runs it; the suite cannot run itself
    "python -m pytest",
)
KNOWN = {"python", "pycon", "console", "bash", "text", "toml", "json", "yaml", "mermaid", "csv"}


@dataclass
class Block:
    language: str
    attributes: dict[str, str]
    body: str
    line: int

    @property
    def file(self) -> str | None:
        title = self.attributes.get("title", "")
        return title if FILE_NAME.match(title) else None

    @property
    def is_output(self) -> bool:
        return self.language == "text" and self.attributes.get("title") == "Output"


@dataclass
class Page:
    path: Path
    blocks: list[Block]
    slow: bool = False
    notebook: bool = False
    timeout: int = 120
    name: str = field(init=False)

    def __post_init__(self) -> None:
        path = self.path.resolve()
        self.name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def pages() -> list[Page]:
    """Every page of the site, then the README."""
    paths = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]
    return [read_page(path) for path in paths]


def read_page(path: Path) -> Page:
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        info = match["info"].strip()
        language = info.split(" ", 1)[0].strip("{}.").lower()
        body = "\n".join(
            line[len(match["indent"]) :] if line.startswith(match["indent"]) else line
            for line in match["body"].splitlines()
        )
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(language, dict(ATTRIBUTE.findall(info)), body + "\n", line))
    page = Page(path, blocks)
    for marker in MARKER.findall(text):
        for word in marker.split():
            if word == "slow":
                page.slow = True
            elif word == "notebook":
                page.notebook = True
            elif word.startswith("timeout="):
                page.timeout = int(word.split("=", 1)[1])
            else:
                raise ValueError(f"{page.name}: unknown docs-test marker {word!r}")
    return page


class DocsError(AssertionError):
    """A block of a page did not do what the page says."""


def where(page: Page, block: Block) -> str:
    return f"{page.name}, line {block.line} ({block.language})"


def check_output(page: Page, block: Block, expected: str, got: str) -> None:
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    if not checker.check_output(expected.strip() + "\n", got.strip() + "\n", flags):
        raise DocsError(
            f"{where(page, block)}: the output differs from the page's\n"
            f"--- the page shows:\n{expected}--- it printed:\n{got}"
        )


def console_steps(body: str) -> Iterator[tuple[str, str]]:
    """(command, expected output) for each ``$ `` line; ``\\`` continues a command."""
    command: list[str] = []
    output: list[str] = []
    continuing = False
    for line in body.splitlines():
        if continuing:
            command.append(line)
            continuing = line.endswith("\\")
        elif line.startswith("$ "):
            if command:
                yield "\n".join(command), "\n".join(output)
            command, output = [line[2:]], []
            continuing = line.endswith("\\")
        elif command:
            output.append(line)
        elif line.strip():
            raise DocsError(f"console block text before its first '$ ' command: {line!r}")
    if command:
        yield "\n".join(command), "\n".join(output)


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # What a reader's terminal would not add: colours, a width that wraps tables.
    env.update(NO_COLOR="1", TERM="dumb", COLUMNS="100", PYTHONUNBUFFERED="1")
    env.pop("FORCE_COLOR", None)
    return env


def run_command(page: Page, block: Block, command: str, cwd: Path, advice: str = "") -> str:
    """Run ``command`` with bash as a reader would; its output (stdout and stderr), or a
    :class:`DocsError` when it exits with another status than 0."""
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=page.timeout,
        check=False,
    )
    if done.returncode != 0:
        raise DocsError(
            f"{where(page, block)}: `{command}` exited with {done.returncode}{advice}:\n"
            f"{done.stdout}"
        )
    return done.stdout


def run_console(page: Page, block: Block, cwd: Path) -> None:
    advice = " (a page shows a failing command's status with `; echo $?`)"
    for command, expected in console_steps(block.body):
        check_output(page, block, expected, run_command(page, block, command, cwd, advice))


def run_python(page: Page, block: Block, namespace: dict[str, Any]) -> str:
    code = compile(block.body, f"{page.name}:{block.line}", "exec")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, namespace)
    return out.getvalue()


def run_pycon(page: Page, block: Block, namespace: dict[str, Any]) -> None:
    test = doctest.DocTestParser().get_doctest(
        block.body, namespace, page.name, page.name, block.line
    )
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out = io.StringIO()
    runner.run(test, out=out.write, clear_globs=False)
    if runner.failures:
        raise DocsError(f"{where(page, block)}: a doctest failed\n{out.getvalue()}")


def run_bash(page: Page, block: Block, cwd: Path) -> None:
    """The commands of a bash block but its install steps, each of which must exit 0."""
    for line in block.body.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line.startswith("#"):
            continue
        for part in filter(None, (p.strip() for p in line.split("&&"))):
            if not part.startswith(SHOWN_ONLY):
                run_command(page, block, part, cwd)


def write_file(scratch: Path, block: Block) -> None:
    """A file block, written where the page's programs will look for it."""
    assert block.file is not None
    target = scratch / block.file
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(block.body, encoding="utf-8")


def check_printed(page: Page, block: Block, printed: str | None) -> None:
    """An Output block against what the python block (or cell) before it printed."""
    if printed is None:
        raise DocsError(f"{where(page, block)}: an Output block after no python")
    check_output(page, block, block.body, printed)


def run_page(page: Page, scratch: Path) -> int:
    """Run every block of ``page`` in ``scratch``; the number of blocks checked."""
    if page.notebook:
        return run_notebook_page(page, scratch)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    printed: str | None = None  # what the last python block printed, for an Output block
    shutil.copytree(ROOT / "examples", scratch / "examples", dirs_exist_ok=True)
    sys.path.insert(0, str(scratch))
    try:
        with _chdir(scratch):
            for block in page.blocks:
                if block.is_output:
                    check_printed(page, block, printed)
                    printed = None
                    continue
                printed = None
                if block.file:
                    write_file(scratch, block)
                    if block.language == "python":
                        ast.parse(block.body, block.file)
                elif block.language == "python":
                    printed = run_python(page, block, namespace)
                elif block.language == "pycon":
                    run_pycon(page, block, namespace)
                elif block.language == "console":
                    run_console(page, block, scratch)
                elif block.language == "bash":
                    run_bash(page, block, scratch)
                elif block.language == "toml":
                    tomllib.loads(block.body)
                elif block.language == "json":
                    json.loads(block.body)
                elif block.language == "yaml":
                    yaml.safe_load(block.body)  # PyYAML comes with the dask extra
                elif block.language not in KNOWN:
                    raise DocsError(
                        f"{where(page, block)}: no way to test a {block.language or 'bare'!r} "
                        f"block; use one of {sorted(KNOWN)}"
                    )
    finally:
        sys.path.remove(str(scratch))
        for name in [n for n, m in sys.modules.items() if _from(m, scratch)]:
            del sys.modules[name]
    return len(page.blocks)


def _from(module: Any, folder: Path) -> bool:
    file = getattr(module, "__file__", None)
    return bool(file) and Path(file).is_relative_to(folder)


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:  # contextlib.chdir, which Python 3.10 lacks
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_notebook_page(page: Page, scratch: Path) -> int:
    """The page's python blocks as a notebook's cells, in a real kernel, run in page order
    with its file and console blocks (a page may end on the same code run as a script);
    each Output block is checked against the text the cell before it printed."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    client = NotebookClient(
        nb,
        timeout=page.timeout,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(scratch)}},
    )
    client.reset_execution_trackers()
    printed: str | None = None  # the stream text of the cell run last
    with client.setup_kernel():
        for block in page.blocks:
            if block.is_output:
                check_printed(page, block, printed)
                printed = None
                continue
            printed = None
            if block.file:
                write_file(scratch, block)
            elif block.language == "python":
                cell = nbformat.v4.new_code_cell(block.body.strip())
                nb.cells.append(cell)
                client.execute_cell(cell, len(nb.cells) - 1)
                printed = "".join(
                    o.get("text", "") for o in cell.outputs if o["output_type"] == "stream"
                )
            elif block.language == "console":
                run_console(page, block, scratch)
            elif block.language not in {"text", "mermaid"}:
                raise DocsError(
                    f"{where(page, block)}: a notebook page holds python cells, files and "
                    "console blocks only"
                )
    return len(page.blocks)
