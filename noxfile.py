"""Developer and CI entry points: `nox -s lint typecheck tests docs`, and `nox -s bench`.

Each session installs the project with the extras it needs into its own
virtualenv; `scripts/test.sh` runs the first four after installing the
system programs the tests need (redis-server, chromium).
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and this file."""
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole pytest suite, Redis-backed tests against a real redis-server."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (Sphinx), built strictly: any warning fails the build."""
    # Extras and FastAPI so autodoc can import every public module it documents.
    session.install("-e", ".[docs,redis,argon2,httpx]", "fastapi>=0.110")
    out = "docs/_build/html"
    session.run("sphinx-build", "-W", "--keep-going", "-E", "-q", "-b", "html", "docs", out)
    session.log(f"site built in {out}/index.html")


@nox.session
def bench(session: nox.Session) -> None:
    """Every side-by-side benchmark, then docs/benchmarks.md and its charts from their JSON.

    `nox -s bench -- --quick` passes --quick to every benchmark (a smoke run).
    """
    session.install("-e", ".[dev,bench]")
    results = Path("benchmarks/results")
    results.mkdir(exist_ok=True)
    for stale in results.glob("*.json"):
        stale.unlink()
    for script in sorted(Path("benchmarks").glob("bench_*.py")):
        name = script.stem.removeprefix("bench_").replace("_", "-")
        out = results / f"{name}.json"
        session.run("python", str(script), "--json", str(out), *session.posargs)
    session.run("python", "benchmarks/report.py")
