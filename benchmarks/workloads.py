"""The DAG shapes the suite runs, as plain data, and the no-op task functions.

A :class:`Dag` is task names plus, for each task, the indices of its upstream tasks; every
system (FlowWeaver's executors, the floors, the peers) builds its own objects from the same
``Dag`` so that all of them run exactly the same graph. Task functions do nothing but take
their upstream results as keyword arguments, so what is measured is the orchestration.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# The seed of the ``layered`` workload: fixed, so every run and every system gets one graph.
SEED = 20240415
LAYER_WIDTH = 100


def noop(**kw: object) -> None:
    """The sync task: takes its upstream results by keyword and does nothing."""
    return None


async def anoop(**kw: object) -> None:
    """The async task: takes its upstream results by keyword and does nothing."""
    return None


@dataclass(frozen=True)
class Dag:
    """A DAG as data: ``deps[i]`` holds the indices task ``names[i]`` depends on.

    Indices always point backwards (``j < i``), so index order is a topological order.
    """

    workload: str
    names: tuple[str, ...]
    deps: tuple[tuple[int, ...], ...]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def edges(self) -> int:
        return sum(len(d) for d in self.deps)

    def dependents(self) -> list[list[int]]:
        """For each task, the indices of the tasks that depend on it."""
        down: list[list[int]] = [[] for _ in self.names]
        for i, ups in enumerate(self.deps):
            for j in ups:
                down[j].append(i)
        return down


def _names(n: int) -> tuple[str, ...]:
    return tuple(f"t{i}" for i in range(n))


def wide(n: int) -> Dag:
    """``n`` independent tasks plus one task that depends on all of them (``n + 1`` tasks)."""
    deps: list[tuple[int, ...]] = [() for _ in range(n)]
    deps.append(tuple(range(n)))
    return Dag("wide", _names(n + 1), tuple(deps))


def chain(n: int) -> Dag:
    """``n`` tasks in a line, each depending on the one before."""
    deps = [()] + [(i - 1,) for i in range(1, n)]
    return Dag("chain", _names(n), tuple(deps))


def layered(n: int, width: int = LAYER_WIDTH, seed: int = SEED, fan_in: int = 2) -> Dag:
    """Layers of ``width`` tasks; each task depends on ``fan_in`` random tasks of the layer
    before (2 unless said: the building section of issue 15 uses 3).

    The randomness comes from a ``random.Random(seed)``, so the graph is the same every time.
    """
    rnd = random.Random(seed)
    deps: list[tuple[int, ...]] = []
    for i in range(n):
        layer = i // width
        if layer == 0:
            deps.append(())
        else:
            start = (layer - 1) * width
            deps.append(tuple(sorted(rnd.sample(range(start, start + width), fan_in))))
    return Dag("layered", _names(n), tuple(deps))


def fan_out(n: int) -> Dag:
    """A source task, ``n`` tasks that each depend on it, and one task that depends on all
    of them (``n + 2`` tasks): the static twin of a map of ``n`` items (see
    ``systems.build_map_workflow``). Not in :data:`WORKLOADS`: only the maps section runs it.
    """
    deps: list[tuple[int, ...]] = [()]
    deps += [(0,)] * n
    deps.append(tuple(range(1, n + 1)))
    return Dag("fan_out", _names(n + 2), tuple(deps))


WORKLOADS: dict[str, Callable[[int], Dag]] = {"wide": wide, "chain": chain, "layered": layered}


def make(workload: str, n: int) -> Dag:
    """The ``workload`` DAG of size ``n``."""
    return WORKLOADS[workload](n)
