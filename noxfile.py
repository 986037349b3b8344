"""Developer sessions: `nox -s tests`, `nox -s lint`, `nox -s typecheck`, `nox -s twins`.

`nox -s tests` runs the same suite as the README's test command.
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
