"""Finding the workflow a user means: ``FILE[:NAME]`` -> an imported module -> a Workflow.

The file is imported the way ``python FILE`` would run it (its folder first on
``sys.path``, so it can import its neighbours) but as a module named after the file, so
its ``if __name__ == "__main__":`` block, which usually runs the workflow itself, stays
quiet. The module is registered in ``sys.modules`` while it runs, as an import would, so
dataclasses, pickling and ``import <itself>`` inside it behave; cloudpickle sends its
functions to worker processes by value.
"""

from __future__ import annotations

import difflib
import sys
import traceback
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType, TracebackType
from typing import IO, Any

import click

from .._errors import WorkflowValidationError
from .._workflow import Workflow
from ._errors import BadInput


class ImportFailed(BadInput):
    """The workflow file raised while it was imported.

    Shown as the traceback (from the file's own code on) followed by the error line.
    """

    def __init__(self, path: Path, error: BaseException, traceback_text: str) -> None:
        self.path = path
        self.error = error
        self.traceback_text = traceback_text
        super().__init__(
            f"could not import {path}: {type(error).__name__}: {error} (traceback above); "
            "fix the file and run the command again"
        )

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.traceback_text, file=file if file is not None else sys.stderr, nl=False)
        super().show(file)


def split_target(target: str) -> tuple[Path, str | None]:
    """``"pipeline.py:etl"`` -> ``(Path("pipeline.py"), "etl")``; no NAME -> ``None``.

    A path that exists as given wins, so a file whose name has a colon still works.
    """
    if ":" in target and not Path(target).exists():
        file_part, _, name = target.rpartition(":")
        # "C:\\x.py" or "dir:x/y.py": what follows the colon is a path, not a NAME
        if file_part and name and "/" not in name and "\\" not in name:
            return Path(file_part), name
    return Path(target), None


def import_file(path: Path) -> ModuleType:
    """Run ``path`` as a module named after the file and return it.

    :raises BadInput: when the file does not exist or is a folder.
    :raises ImportFailed: when running the file raised an exception (SyntaxError
        included); the traceback starts at the file's own code.
    """
    if not path.exists():
        raise BadInput(f"no such file: {path}")
    if path.is_dir():
        raise BadInput(f"{path} is a folder; give the Python file that defines the workflow")
    resolved = path.resolve()
    name = resolved.stem
    folder = str(resolved.parent)
    if not sys.path or sys.path[0] != folder:
        sys.path.insert(0, folder)
    # SourceFileLoader takes any file name ("etl.flow" too, as python FILE does) and lets
    # inspect and tracebacks find the source.
    loader = SourceFileLoader(name, str(resolved))
    spec = spec_from_file_location(name, str(resolved), loader=loader)
    assert spec is not None
    module = module_from_spec(spec)
    # A module of that name already imported (the file is called json.py, say) keeps its
    # place: replacing it would break everything else that uses it.
    register = name not in sys.modules
    if register:
        sys.modules[name] = module
    try:
        # Compiled and run here rather than by loader.exec_module, which would leave a
        # __pycache__ folder beside the user's file; python FILE leaves none either.
        code = compile(resolved.read_bytes(), str(resolved), "exec", dont_inherit=True)
        exec(code, module.__dict__)
    except Exception as exc:
        if register:
            sys.modules.pop(name, None)
        raise ImportFailed(path, exc, _user_traceback(exc, str(resolved))) from exc
    if register:
        # A worker process (isolation="process") could only import the file by running
        # it again; its functions and classes travel by value instead.
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    return module


def _user_traceback(exc: BaseException, filename: str) -> str:
    """The traceback from the first frame in ``filename`` on (the import machinery and
    this command are not the user's concern); a SyntaxError shows the bad line."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def module_workflows(module: ModuleType) -> list[tuple[str, Workflow]]:
    """``(attribute, workflow)`` for each Workflow at the module's top level, each once."""
    found: list[tuple[str, Workflow]] = []
    seen: set[int] = set()
    for attribute, value in vars(module).items():
        if isinstance(value, Workflow) and id(value) not in seen:
            seen.add(id(value))
            found.append((attribute, value))
    return found


def _describe(attribute: str, workflow: Workflow) -> str:
    if attribute == workflow.name:
        return attribute
    return f"{attribute} (Workflow {workflow.name!r})"


def choose_workflow(module: ModuleType, path: Path, name: str | None) -> Workflow:
    """The workflow ``name`` picks: a module attribute, else a ``Workflow.name``.

    With no ``name``, the module's only workflow.

    :raises BadInput: when the module has no workflow, several and no ``name``, or none
        that ``name`` picks; the message lists the choices.
    """
    found = module_workflows(module)
    if not found:
        raise BadInput(
            f"{path} defines no Workflow at module level; create one there, for example "
            "workflow = Workflow('my_pipeline') (a Workflow made inside a function or under "
            "if __name__ == '__main__': cannot be found)"
        )
    choices = ", ".join(_describe(a, w) for a, w in found)
    if name is None:
        if len(found) == 1:
            return found[0][1]
        raise BadInput(
            f"{path} defines {len(found)} workflows; pick one with {path}:NAME, where NAME "
            f"is one of: {choices}"
        )
    for attribute, workflow in found:
        if attribute == name:
            return workflow
    by_name = [w for _, w in found if w.name == name]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise BadInput(
            f"{path} has {len(by_name)} workflows named {name!r}; pick one by its variable "
            f"name, one of: {choices}"
        )
    known = [a for a, _ in found] + [w.name for _, w in found]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise BadInput(f"{path} has no workflow named {name!r}; {hint}choose one of: {choices}")


def load_workflow(target: str) -> tuple[Path, Workflow]:
    """Import ``FILE[:NAME]`` and return the file's path and the workflow it names."""
    path, name = split_target(target)
    module = import_file(path)
    return path, choose_workflow(module, path, name)


def load_valid_workflow(target: str) -> tuple[Path, Workflow]:
    """:func:`load_workflow`, and the workflow's graph validated (``run``, ``plan``).

    :raises BadInput: as :func:`load_workflow` does, and for an invalid graph (a cycle,
        an unknown dependency), naming the workflow and the file.
    """
    path, workflow = load_workflow(target)
    try:
        workflow.graph()
    except WorkflowValidationError as exc:
        raise BadInput(f"workflow {workflow.name!r} in {path} is invalid: {exc}") from exc
    return path, workflow
