"""Developer sessions: `nox -s tests`, `nox -s lint`, `nox -s typecheck`, `nox -s twins`.

`nox -s tests` runs the same suite as the README's test command. `nox -s bench` (and the
optional `nox -s bench_prefect`) run the benchmark suite; they are not run by default.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "twins"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, every async test under asyncio and trio."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff's lint and format checks (generated twins are excluded in pyproject.toml)."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, generated twins included."""
    session.install("-e", ".[cli]", "mypy>=1.10")
    session.run("mypy")


@nox.session
def twins(session: nox.Session) -> None:
    """Fail when a generated _sync twin differs from its _async source."""
    session.run("python", "scripts/unasync.py", "--check", external=True)


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark suite: writes benchmarks/RESULTS.md (`-- --quick`, `-- --only NAME`)."""
    session.install("-e", ".[bench]")
    session.run(
        "python",
        "benchmarks/run.py",
        *session.posargs,
        env={"FLOWWEAVER_BENCH_VIA": "nox -s bench" + "".join(f" {a}" for a in session.posargs)},
    )


@nox.session
def bench_prefect(session: nox.Session) -> None:
    """Prefect 3 at 1,000 tasks against ThreadedExecutor(4): benchmarks/RESULTS-prefect.md.

    Prefect is installed into this session's own virtualenv only; it is never a dependency
    of FlowWeaver. It runs in its ephemeral mode (a temporary local server), offline.
    """
    session.install("-e", ".[bench]", "prefect>=3,<4")
    session.run(
        "python",
        "benchmarks/run.py",
        "--only",
        "prefect",
        "--output",
        "benchmarks/RESULTS-prefect.md",
        *session.posargs,
        env={"FLOWWEAVER_BENCH_VIA": "nox -s bench_prefect"},
    )
