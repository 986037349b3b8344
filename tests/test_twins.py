"""``scripts/unasync.py``: the blocking twins differ from their sources in code only.

The script rewrites code tokens and copies every comment, docstring and string literal as
it is, so the prose of an ``_async`` module must be true of both forms; these tests hold it
to that, and (run on each supported Python by nox) show its output is the same on each.
"""

from __future__ import annotations

import importlib.util
import inspect
import io
import sys
import tokenize
from pathlib import Path
from types import ModuleType

import pytest

import flowweaver
import flowweaver.aio
from flowweaver._sync import _executors, _json_store, _sqlite_store, _store_base

ROOT = Path(__file__).resolve().parent.parent


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync_script", ROOT / "scripts/unasync.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


unasync = _load_script()
_LITERALS = {tokenize.COMMENT, tokenize.STRING} | {
    getattr(tokenize, name)
    for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    if hasattr(tokenize, name)
}


# a method's name in the async source, from its name in the twin (``close`` <- ``aclose``)
_RENAMED_FROM = {new: old for old, new in unasync.RENAMES.items()}


def _prose(text: str) -> list[str]:
    """Every comment and string literal of ``text`` (docstrings included), in order."""
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return [tok.string for tok in tokens if tok.type in _LITERALS]


def _rewrite(text: str) -> str:
    return str(unasync.unasync_text("snippet.py", text, set()))


@pytest.mark.parametrize(("source", "twin"), unasync.files())
def test_no_comment_docstring_or_string_differs_between_a_source_and_its_twin(
    source: str, twin: str
) -> None:
    header = _prose(unasync.HEADER.format(source=source))
    twin_prose = _prose((ROOT / twin).read_text(encoding="utf-8"))
    assert twin_prose[: len(header)] == header
    assert twin_prose[len(header) :] == _prose((ROOT / source).read_text(encoding="utf-8"))


@pytest.mark.parametrize("module", [_executors, _json_store, _sqlite_store, _store_base])
def test_each_generated_class_has_the_docstrings_of_its_async_source(module: ModuleType) -> None:
    source = importlib.import_module(module.__name__.replace("._sync.", "._async."))
    classes = [c for c in vars(module).values() if inspect.isclass(c)]
    checked = 0
    for cls in classes:
        if cls.__module__ != module.__name__:
            continue
        twin = getattr(source, f"Async{cls.__name__}", None) or getattr(source, cls.__name__)
        assert cls.__doc__ == twin.__doc__, cls.__qualname__
        for name, member in vars(cls).items():
            if inspect.isfunction(member):
                source_name = _RENAMED_FROM.get(name, name)
                assert member.__doc__ == getattr(twin, source_name).__doc__, (cls, name)
        checked += 1
    assert checked


def test_public_blocking_classes_read_as_written_for_both_forms() -> None:
    # the garbling the old line-by-line substitutions made: "``async def`` tasks" became
    # "``def`` tasks" in flowweaver.ThreadedExecutor's docstring
    assert flowweaver.ThreadedExecutor.__doc__ == flowweaver.aio.ThreadedExecutor.__doc__
    assert flowweaver.ConcurrentExecutor.__doc__ == flowweaver.aio.AsyncExecutor.__doc__
    for name in ("SequentialExecutor", "DaskExecutor", "JSONStateStore", "SQLiteStateStore"):
        assert getattr(flowweaver, name).__doc__ == getattr(flowweaver.aio, name).__doc__, name
    assert flowweaver.BaseStateStore.__doc__ == flowweaver.aio.BaseStateStore.__doc__


def test_code_is_rewritten_and_prose_is_not() -> None:
    text = (
        '"""``async def`` tasks; ``await x``; AsyncThing; aclose."""\n'
        "from flowweaver.aio import AsyncExecutor  # flowweaver.aio's AsyncExecutor\n"
        "\n"
        "class AsyncThing(AsyncBase):\n"
        '    """Use ``async with AsyncThing()``."""\n'
        "\n"
        "    async def __aenter__(self) -> AsyncThing:  # await me\n"
        '        await self._run_async("AsyncThing", await other.aclose())\n'
        "        async with lock:\n"
        "            async for x in f'{AsyncThing}':\n"
        "                pass\n"
        "        return self\n"
    )
    assert _rewrite(text) == (
        '"""``async def`` tasks; ``await x``; AsyncThing; aclose."""\n'
        "from flowweaver import ConcurrentExecutor  # flowweaver.aio's AsyncExecutor\n"
        "\n"
        "class Thing(Base):\n"
        '    """Use ``async with AsyncThing()``."""\n'
        "\n"
        "    def __enter__(self) -> Thing:  # await me\n"
        '        self._run_blocking("AsyncThing", other.close())\n'
        "        with lock:\n"
        "            for x in f'{AsyncThing}':\n"
        "                pass\n"
        "        return self\n"
    )


def test_an_anyio_mark_line_is_dropped_and_one_with_more_on_it_is_refused() -> None:
    text = "@pytest.mark.anyio\nasync def test_x() -> None:\n    await f()\n"
    assert _rewrite(text) == "def test_x() -> None:\n    f()\n"
    with pytest.raises(SystemExit, match=r"snippet\.py:1: put `@pytest\.mark\.anyio` on a line"):
        _rewrite("@pytest.mark.anyio  # why\nasync def test_x() -> None: ...\n")


def test_check_fails_when_a_rule_goes_unused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(unasync.RENAMES, "never_written_anywhere", "x")
    monkeypatch.setattr(unasync, "RULES", [*unasync.RULES, "never_written_anywhere"])
    assert unasync.main(["--check"]) == 1
    assert "never_written_anywhere" in capsys.readouterr().out


def test_the_twins_are_what_the_script_generates_on_this_python(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # nox runs this on every supported Python: the twins must not depend on the tokenizer
    # of the version that generated them
    assert unasync.main(["--check"]) == 0, (sys.version, capsys.readouterr().out)
