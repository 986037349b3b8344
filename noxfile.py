"""Developer sessions: `nox -s tests`, `nox -s lint`, `nox -s typecheck`, `nox -s twins`,
`nox -s docs`.

`nox -s tests` runs the README's test suite on every supported Python (`tests-3.10` ...
`tests-3.13` one at a time; arguments after `--` go to pytest). `nox -s lowest` runs it
with every dependency at the lower bound pyproject.toml declares. `nox -s bench` (and the
optional `nox -s bench_prefect` and `nox -s bench_peers`) run the benchmark suite; they are
not run by default.

A supported Python that cannot be found fails its session (it is never skipped).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

try:
    import tomllib
except ImportError:  # Python 3.10: nox depends on tomli there
    import tomli as tomllib  # type: ignore[no-redef]
from packaging.requirements import Requirement

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
ROOT = Path(__file__).resolve().parent

nox.options.sessions = ["tests", "lint", "typecheck", "twins", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


def _find_pyenv_pythons() -> None:
    """Put pyenv's ``versions/3.X.Y/bin`` on PATH for each supported Python that PATH
    cannot run itself: pyenv's shim for ``python3.10`` exists but fails unless 3.10 is a
    selected pyenv version, and nox would take the shim. A Python found elsewhere (not a
    shim) is left alone; a missing one stays missing, so its session fails by name."""
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for python in PYTHONS:
        found = shutil.which(f"python{python}")
        if found and "shims" not in Path(found).parts:
            continue
        installs = [
            path
            for path in versions.glob(f"{python}.*/bin/python{python}")
            if path.parent.parent.name.replace(".", "").isdigit()
        ]
        if installs:
            newest = max(installs, key=lambda p: [int(n) for n in p.parent.parent.name.split(".")])
            os.environ["PATH"] = f"{newest.parent}{os.pathsep}{os.environ['PATH']}"


_find_pyenv_pythons()


def lowest_constraints() -> list[str]:
    """``name==X`` (with its environment marker) for every ``name>=X`` that pyproject.toml
    declares for the core and the extras the tests install."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    pending = [Requirement(r) for r in project["dependencies"]]
    pending += [Requirement(r) for r in extras["test"]]
    pins: dict[str, str] = {}
    seen = set()
    while pending:
        req = pending.pop(0)
        if req.name == project["name"]:
            for extra in sorted(req.extras - seen):
                seen.add(extra)
                pending += [Requirement(r) for r in extras[extra]]
            continue
        for spec in req.specifier:
            if spec.operator == ">=":
                marker = f"; {req.marker}" if req.marker else ""
                pins[req.name] = f"{req.name}=={spec.version}{marker}"
    return [pins[name] for name in sorted(pins)]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite, every async test under asyncio and trio."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHONS[0])
def lowest(session: nox.Session) -> None:
    """The test suite with each dependency at its declared lower bound, on the oldest
    supported Python (where the ``python_version < '3.11'`` dependencies install too).
    Dependencies of dependencies resolve as pip chooses."""
    constraints = Path(session.create_tmp()) / "lowest-constraints.txt"
    constraints.write_text("\n".join(lowest_constraints()) + "\n", encoding="utf-8")
    session.log("constraints: " + ", ".join(lowest_constraints()))
    session.install("-c", str(constraints), "-e", ".[test]")
    session.run("python", "-m", "pip", "list", "--format=freeze")
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
def docs(session: nox.Session) -> None:
    """The documentation site built with ``--strict``: a broken link, a name the API
    reference cannot find or any other warning fails it (the site goes to ``site/``).
    ``nox -s docs -- serve`` serves it at http://127.0.0.1:8000 while you edit."""
    session.install("-e", ".[docs]")
    # Material's notice about MkDocs 2 is printed on every build; it is not about the site.
    env = {"NO_MKDOCS_2_WARNING": "1"}
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", "--strict", *session.posargs[1:], env=env)
    else:
        session.run("mkdocs", "build", "--strict", *session.posargs, env=env)


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
    optional_bench(session, "prefect", "prefect>=3,<4")


@nox.session
def bench_peers(session: nox.Session) -> None:
    """FlowWeaver against Hamilton, pipefunc and Dagster at 1,000 tasks, in one process:
    benchmarks/RESULTS-peers.md (the docs' comparison page includes its table).

    The peers are installed into this session's own virtualenv only; none is a dependency
    of FlowWeaver. Each runs in process and offline (no server, no telemetry).
    """
    optional_bench(session, "peers", "sf-hamilton>=1.80", "pipefunc>=0.80", "dagster>=1.9")


def optional_bench(session: nox.Session, section: str, *packages: str) -> None:
    """Run the optional benchmark ``section`` with ``packages`` installed into the session's
    own virtualenv: it writes ``benchmarks/RESULTS-<section>.md``."""
    session.install("-e", ".[bench]", *packages)
    session.run(
        "python",
        "benchmarks/run.py",
        "--only",
        section,
        "--output",
        f"benchmarks/RESULTS-{section}.md",
        *session.posargs,
        env={"FLOWWEAVER_BENCH_VIA": f"nox -s bench_{section}"},
    )
