"""``import flowweaver`` stays cheap: the modules only some programs need load on first use.

Each check runs in a fresh interpreter: this test process has long imported everything.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import pytest

import flowweaver
import flowweaver.aio

# What `import flowweaver` used to pay for and a plain workflow run never needs (or needs
# only once it runs): the stores, the command, the displays, the clusters, tracing.
HEAVY = (
    "asyncio",
    "sqlite3",
    "pickle",
    "hashlib",
    "uuid",
    "json",
    "datetime",
    "difflib",
    "random",
    "logging",  # a third of the rest: the engine and the stores load it (see _log)
    "flowweaver._cli",
    "flowweaver._store",
    "flowweaver._live",
    "flowweaver._notebook",
    "flowweaver._engine._processes",
    "flowweaver._engine._driver",
    "flowweaver.otel",
    "click",
    "rich",
    "dask",
    "distributed",
    "opentelemetry",
    "aiosqlite",
    "aiofiles",
)


def _loaded_after(code: str) -> set[str]:
    """The modules (and packages) in ``sys.modules`` after ``code``, in a new interpreter."""
    # listed before json is imported to print them
    script = (
        f"{code}\nimport sys\nloaded = sorted(sys.modules)\nimport json\nprint(json.dumps(loaded))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


@functools.lru_cache(maxsize=1)
def _anyio_loads() -> frozenset[str]:
    """What ``import anyio`` loads by itself (older anyio releases load ``random`` and
    ``logging``, through tempfile and concurrent.futures): not FlowWeaver's to avoid."""
    return frozenset(_loaded_after("import anyio"))


def _heavy(loaded: set[str]) -> list[str]:
    return [
        m
        for m in HEAVY
        if (m in loaded or any(n.startswith(m + ".") for n in loaded)) and m not in _anyio_loads()
    ]


@pytest.mark.parametrize(
    "code",
    [
        "import flowweaver",
        "import flowweaver.aio",
        "from flowweaver import Workflow, task, SequentialExecutor, ThreadedExecutor",
    ],
)
def test_import_loads_no_heavy_module(code: str) -> None:
    assert _heavy(_loaded_after(code)) == []


def test_a_lazy_name_loads_its_module_and_is_then_bound() -> None:
    code = (
        "import flowweaver\n"
        "before = 'SQLiteStateStore' in vars(flowweaver)\n"
        "store = flowweaver.SQLiteStateStore\n"
        "assert not before and vars(flowweaver)['SQLiteStateStore'] is store\n"
    )
    loaded = _loaded_after(code)
    assert "sqlite3" in loaded
    assert "flowweaver._sync._sqlite_store" in loaded
    assert "flowweaver._sync._json_store" not in loaded  # only the module asked for


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    code = (
        "import json, flowweaver, flowweaver.aio\n"
        "ns = {}\n"
        "exec('from flowweaver import *', ns)\n"
        "aio = {}\n"
        "exec('from flowweaver.aio import *', aio)\n"
        "print(json.dumps([sorted(ns), sorted(aio), dir(flowweaver), dir(flowweaver.aio)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    star, star_aio, dir_fw, dir_aio = json.loads(out)
    assert set(star) - {"__builtins__"} == set(flowweaver.__all__)
    assert set(star_aio) - {"__builtins__"} == set(flowweaver.aio.__all__)
    assert set(flowweaver.__all__) <= set(dir_fw)
    assert set(flowweaver.aio.__all__) <= set(dir_aio)


def test_the_awaitable_stores_are_the_async_classes() -> None:
    from flowweaver._async._json_store import AsyncJSONStateStore
    from flowweaver._async._sqlite_store import AsyncSQLiteStateStore
    from flowweaver._async._store_base import AsyncBaseStateStore

    assert flowweaver.aio.JSONStateStore is AsyncJSONStateStore
    assert flowweaver.aio.SQLiteStateStore is AsyncSQLiteStateStore
    assert flowweaver.aio.BaseStateStore is AsyncBaseStateStore
    assert flowweaver.JSONStateStore is not AsyncJSONStateStore


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'flowweaver' has no attribute 'Nope'"):
        getattr(flowweaver, "Nope")  # noqa: B009
    with pytest.raises(AttributeError, match=r"module 'flowweaver\.aio' has no attribute"):
        getattr(flowweaver.aio, "Nope")  # noqa: B009
    assert not hasattr(flowweaver, "Nope")


def test_the_library_logger_has_its_null_handler_before_anything_logs() -> None:
    if "logging" in _anyio_loads():
        pytest.skip("this anyio release loads logging itself")
    # flowweaver first, logging after: the run that logs attaches the handler itself, so
    # Python's last-resort handler never prints the warning of a callback that raised
    code = (
        "import flowweaver, sys\n"
        "assert 'logging' not in sys.modules\n"
        "def bad(task):\n"
        "    raise RuntimeError('callback')\n"
        "wf = flowweaver.Workflow('w')\n"
        "wf.add_task(flowweaver.Task('a', lambda: 1, callbacks=[bad]))\n"
        "flowweaver.SequentialExecutor().execute(wf)\n"
        "import logging\n"
        "handlers = logging.getLogger('flowweaver').handlers\n"
        "assert any(isinstance(h, logging.NullHandler) for h in handlers), handlers\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    # and at once when logging is already loaded (no cost then)
    code = (
        "import logging, flowweaver\n"
        "assert any(isinstance(h, logging.NullHandler)"
        " for h in logging.getLogger('flowweaver').handlers)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
