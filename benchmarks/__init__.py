"""FlowWeaver's benchmark suite: the engine against hand-written floors and peers.

Run it with ``nox -s bench`` or ``python benchmarks/run.py [--quick] [--only NAME]``; see
``benchmarks/README.md``. Nothing in here is part of the installed package.
"""
