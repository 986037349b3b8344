"""The dependency graph: validation, cycle finding and the ready set. No I/O, no clock.

Theory of operation: a workflow is compiled into integer indices (the order tasks were
added) with, for each task, the indices it depends on and the indices that depend on it.
:class:`ReadySet` then works like :class:`graphlib.TopologicalSorter`: it keeps a counter
of unfinished upstream tasks per node, hands out nodes whose counter reached zero, and is
told when a node is done (its dependents' counters drop) or failed (its whole downstream
is skipped). Each node and edge is touched a constant number of times, so a run costs
O(tasks + edges). Running the nodes, and when, is entirely the caller's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .._errors import CycleError, WorkflowValidationError


class Graph:
    """A validated DAG over ``names`` (indices follow their order).

    :ivar upstream: for each node, the indices it depends on (in declaration order).
    :ivar downstream: for each node, the indices that depend on it.
    :ivar forward: every node depends only on nodes before it (a workflow built in
        order): the indices themselves are then a topological order.
    """

    __slots__ = ("downstream", "forward", "index", "names", "upstream")

    def __init__(self, names: Sequence[str], depends_on: Mapping[str, Sequence[str]]) -> None:
        """Check and compile the graph.

        :raises WorkflowValidationError: for a duplicate name, an unknown dependency (the
            closest existing name is suggested) or a task depending on itself.
        :raises CycleError: when the dependencies form a cycle (shown as ``a -> b -> a``).
        """
        self.names = names = list(names)
        # Built in C (dict, zip, map), each task checked by the loop below only when
        # something is wrong with it: a million tasks compile in about a second.
        self.index = index = dict(zip(names, range(len(names)), strict=True))
        if len(index) != len(names):
            seen_names: set[str] = set()
            for name in names:
                if name in seen_names:
                    raise WorkflowValidationError(
                        f"two tasks are named {name!r}; task names must be unique"
                    )
                seen_names.add(name)
        get = index.get
        self.upstream: list[tuple[int, ...]] = []
        self.downstream: list[list[int]] = [[] for _ in names]
        upstream, downstream = self.upstream, self.downstream
        no_deps: tuple[str, ...] = ()
        # The index's own int objects, not new ones: a million tasks are a million ints
        # of 28 bytes each, made once, not twice.
        # While every task depends only on tasks added before it (a workflow built in
        # order), there can be no cycle: the search for one is skipped.
        backwards_only = True
        for i, name in zip(index.values(), names, strict=True):
            deps = depends_on.get(name, no_deps)
            if not deps:
                upstream.append(())
                continue
            # None: unknown, checked below (typed here: cast() would be a call per task)
            found: tuple[int, ...] = tuple(map(get, deps))  # type: ignore[arg-type]
            if None in found:
                ups = self._checked(i, name, deps)  # raises
            else:
                top = max(found)
                if (top >= i and i in found) or (len(found) > 1 and len(set(found)) < len(found)):
                    ups = self._checked(i, name, deps)  # the task itself, or a repeat
                else:
                    ups = found
                if top > i:
                    backwards_only = False
            upstream.append(ups)
            for j in ups:
                downstream[j].append(i)
        self.forward = backwards_only
        if not backwards_only:
            cycle = self._find_cycle()
            if cycle:
                raise CycleError([self.names[i] for i in cycle])

    def _checked(self, i: int, name: str, deps: Sequence[str]) -> tuple[int, ...]:
        """Task ``i``'s upstream indices, each once, in declaration order.

        :raises WorkflowValidationError: for an unknown dependency or ``i`` itself.
        """
        ups: list[int] = []
        for dep in deps:
            j = self.index.get(dep)
            if j is None:
                raise WorkflowValidationError(unknown_dependency(name, dep, self.names))
            if j == i:
                raise WorkflowValidationError(
                    f"task {name!r} depends on itself; remove {name!r} from its depends_on"
                )
            if j not in ups:
                ups.append(j)
        return tuple(ups)

    def __len__(self) -> int:
        return len(self.names)

    def _find_cycle(self) -> list[int] | None:
        """A cycle as node indices with the first repeated at the end, or None."""
        indegree = [len(u) for u in self.upstream]
        stack = [i for i, d in enumerate(indegree) if d == 0]
        seen = 0
        while stack:
            i = stack.pop()
            seen += 1
            for j in self.downstream[i]:
                indegree[j] -= 1
                if indegree[j] == 0:
                    stack.append(j)
        if seen == len(self.names):
            return None
        # Every node left with a positive in-degree lies on or after a cycle; walking
        # upstream through such nodes must come back to one already on the path.
        start = min(i for i, d in enumerate(indegree) if d > 0)
        path: list[int] = []
        position: dict[int, int] = {}
        node = start
        while node not in position:
            position[node] = len(path)
            path.append(node)
            node = next(j for j in self.upstream[node] if indegree[j] > 0)
        cycle = path[position[node] :]
        # Show it in the direction dependencies flow (a -> b means b depends on a),
        # starting from the task added first.
        cycle.reverse()
        first = cycle.index(min(cycle))
        cycle = cycle[first:] + cycle[:first]
        return [*cycle, cycle[0]]

    def topological_order(self) -> list[int]:
        """The nodes in an order where each comes after everything it depends on."""
        indegree = [len(u) for u in self.upstream]
        order = [i for i, d in enumerate(indegree) if d == 0]
        for i in order:  # the list grows while it is walked
            for j in self.downstream[i]:
                indegree[j] -= 1
                if indegree[j] == 0:
                    order.append(j)
        return order


class ReadySet:
    """Which nodes may start, as nodes finish; the bookkeeping of one run.

    ``done(i)`` and ``fail(i)`` return the nodes that became ready or were skipped; the
    caller starts them. A node already settled (for example restored from a store) is
    passed to ``done`` before the run like any other.
    """

    __slots__ = ("_downstream", "_pending", "_settled", "graph")

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._downstream = graph.downstream
        self._pending = [len(u) for u in graph.upstream]
        self._settled = bytearray(len(graph))

    def initial(self) -> list[int]:
        """The nodes with no upstream at all, in declaration order."""
        return [i for i, n in enumerate(self._pending) if n == 0 and not self._settled[i]]

    def done(self, i: int) -> list[int]:
        """Record ``i`` as completed; return its dependents that are now ready."""
        self._settled[i] = 1
        ready = []
        pending = self._pending
        settled = self._settled
        for j in self._downstream[i]:
            n = pending[j] - 1
            pending[j] = n
            if n == 0 and not settled[j]:
                ready.append(j)
        return ready

    def fail(self, i: int) -> list[int]:
        """Record ``i`` as failed; return the unsettled nodes downstream, now skipped.

        The walk stops at settled nodes: a node skipped earlier already had its whole
        downstream skipped, so many failures still cost O(tasks + edges) in all.
        """
        settled = self._settled
        downstream = self._downstream
        settled[i] = 1
        skipped = []
        stack = [i]
        while stack:
            for j in downstream[stack.pop()]:
                if not settled[j]:
                    settled[j] = 1
                    skipped.append(j)
                    stack.append(j)
        return skipped


def unknown_dependency(task: str, dep: object, names: Sequence[str]) -> str:
    message = f"task {task!r} depends on {dep!r}, which is not a task of this workflow"
    if isinstance(dep, str):
        import difflib  # only a mistake needs it: kept off `import flowweaver`

        close = difflib.get_close_matches(dep, names, n=1, cutoff=0.6)
        if close:
            return f"{message}; did you mean {close[0]!r}?"
    if names:
        shown = ", ".join(repr(n) for n in list(names)[:10])
        more = "" if len(names) <= 10 else f" and {len(names) - 10} more"
        return f"{message}; its tasks are {shown}{more}"
    return message
