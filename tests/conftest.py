"""Shared fixtures: paths, the outpost command, root detection with a printed skip reason.

The paths and commands come from simsite.harness (bench/ uses the same ones)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from simsite.harness import home as home_harness
from simsite.harness import postgres
from simsite.harness.paths import CORPUS, REPO
from simsite.harness.processes import OUTPOST

__all__ = ["CORPUS", "IS_ROOT", "OUTPOST", "REPO", "needs_root"]

IS_ROOT = os.geteuid() == 0

needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root for network namespaces")


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    """One PostgreSQL server for the whole run (each test gets its own database in it)."""
    try:
        postgres.bin_dir()
    except postgres.PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL back end not tested: {exc}")
    with postgres.running() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def home_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test once per home database back end (issue: the same tests against both).

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("home_backend")``; every home the
    test starts (simsite.harness.home.Home) then uses a fresh PostgreSQL database in the
    PostgreSQL run, the SQLite file otherwise.
    """
    if request.param == "sqlite":
        yield "sqlite"
        return
    server: postgres.PostgresServer = request.getfixturevalue("postgres_server")
    with home_harness.databases(lambda: postgres.fresh_database(server)):
        yield "postgresql"


@pytest.fixture
def home_database(home_backend: str, tmp_path: Path) -> str:
    """Where a test's own HomeDB lives: a fresh PostgreSQL URL or a SQLite file."""
    assert home_backend in ("sqlite", "postgresql")
    return home_harness.new_database() or str(tmp_path / "home.db")
