"""The rows of issue 15 (performance round 2), read off one run's sections.

Each row names the section it comes from; a row whose section did not run says so. The
verdicts compare the measured figure with the issue's *must reach* and *aim*; figures are
ratios taken in one process (the machine is shared), except the million-task row, which
the issue states in seconds and bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Row:
    what: str
    value: float | None
    must: float
    aim: float
    unit: str = "x"
    note: str = ""

    def shown(self) -> str:
        if self.value is None:
            return "not measured"
        if self.unit == "x":
            return f"{self.value:.2f}x"
        return f"{self.value:,.2f} {self.unit}"

    def verdict(self) -> str:
        if self.value is None:
            return "-"
        if self.value <= self.aim:
            return "aim met"
        return "met" if self.value <= self.must else "**not met**"


def _get(f: Callable[[], float | None]) -> float | None:
    try:
        return f()
    except (AttributeError, IndexError, KeyError, TypeError, ZeroDivisionError):
        return None


def rows(res: Any) -> list[Row]:
    d = res.durability
    out = [
        Row(
            f"{_k(lambda: d.chain_n)} chain, Sequential: SQLite / no store (durability normal)",
            _get(lambda: d.chain_ratio("SQLiteStateStore/normal")),
            3,
            1.5,
            note="ordered: " + _x(_get(lambda: d.chain_ratio("SQLiteStateStore/ordered"))),
        ),
        Row(
            "same, JSON / no store (durability normal)",
            _get(lambda: d.chain_ratio("JSONStateStore/normal")),
            4,
            2,
            note="ordered: " + _x(_get(lambda: d.chain_ratio("JSONStateStore/ordered"))),
        ),
    ]
    stores = {r.executor: r for r in res.stores}
    for name, must, aim in (("SQLiteStateStore", 1.5, 1.2), ("JSONStateStore", 2, 1.5)):
        for executor, r in stores.items():
            out.append(
                Row(
                    f"{r.n:,}-task layered, {executor}: {name} / no store",
                    _get(lambda r=r, name=name: r.ratio(name)),
                    must,
                    aim,
                )
            )
    for label in d.small if d is not None else []:
        out.append(
            Row(
                f"10-task run repeated, one SQLite store, {label}: CPU / no store",
                _get(
                    lambda label=label: (
                        d.small_ms(label, "SQLiteStateStore") / d.small_ms(label, "none")
                    )
                ),
                1.5,
                1.2,
            )
        )
    hand = {r.executor: r for r in res.handoff}
    out.append(
        Row(
            "2,000-task chain, ThreadedExecutor(4) / graphlib + ThreadPoolExecutor(4)",
            _get(lambda: hand["chain"].ratio("ThreadedExecutor(4)")),
            1.3,
            1.1,
            note="awaited on trio: " + _x(_get(lambda: hand["chain"].ratio("aio, trio"))),
        )
    )
    out.append(
        Row(
            "10,000 layered, Sequential / plain loop in graphlib order",
            _get(lambda: _seq_ratio(res)),
            1.5,
            1.2,
        )
    )
    out.append(
        Row(
            f"resume restoring every task ({_k(lambda: d.resume_n)} layered, SQLite): CPU / "
            "executing them",
            _get(lambda: d.resume_ratio()),
            0.5,
            0.1,
        )
    )
    b = res.building
    out.append(
        Row(
            "second execute of an unchanged 10,000-task workflow / first",
            _get(lambda: b.repeat.ratio()),
            1.0,
            0.6,
            note="graph and plan kept by the workflow",
        )
    )
    out.append(
        Row(
            "blocking execute inside a running asyncio loop / on a plain thread",
            _get(lambda: res.inloop.ratio()),
            1.5,
            1.5,
        )
    )
    out.append(
        Row(
            "import flowweaver / import anyio (CPU)",
            _get(lambda: res.imports["import flowweaver / import anyio (CPU)"]),
            3,
            2,
        )
    )
    out.append(
        Row(
            "add_task per task, 100,000 tasks, fan-in 3 (CPU)",
            _get(lambda: b.add.us_per_task("build")),
            3,
            1.5,
            unit="us",
            note="this machine; the issue's figures come from a faster one",
        )
    )
    out.append(
        Row(
            f"{_n(b)} layered (fan-in 3), Sequential: build + run",
            _get(lambda: b.big.seconds),
            12,
            6,
            unit="s",
            note="per million tasks: " + _num(_get(lambda: b.big.seconds * 1e6 / b.big.n)),
        )
    )
    out.append(
        Row(
            "same: peak memory per task",
            _get(lambda: b.big.per_task()),
            1024,
            600,
            unit="B",
        )
    )
    return out


def _seq_ratio(res: Any) -> float | None:
    from .report import ratio_to_floor

    value: float | None = ratio_to_floor(res, "SequentialExecutor", "layered", 10_000)
    return value


def _k(f: Callable[[], Any]) -> str:
    n = _get(f)
    return "?" if n is None else f"{int(n):,}-task"


def _n(b: Any) -> str:
    n = _get(lambda: b.big.n)
    return "big" if n is None else f"{int(n):,}-task"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} s"


def table(res: Any) -> list[str]:
    if res.durability is None and not res.handoff and res.building is None:
        return []
    lines = [
        "## The targets of issue 15",
        "",
        "Ratios in one process, from the sections below (the machine's load is in the "
        "header). *met*: at or under the issue's *must reach*; *aim met*: at or under its "
        "*aim*.",
        "",
        "| what | measured | must reach | aim | verdict | note |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in rows(res):
        unit = "x" if r.unit == "x" else f" {r.unit}"
        lines.append(
            f"| {r.what} | {r.shown()} | <= {r.must:g}{unit} | <= {r.aim:g}{unit} "
            f"| {r.verdict()} | {r.note} |"
        )
    lines.append("")
    return lines
