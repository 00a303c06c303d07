"""A real home server for a test or benchmark: ``outpost-home run`` with its own CA.

On loopback by default (a free port on 127.0.0.1), or inside a simulated site's namespace
(``site`` and ``netns`` set, port 8443). The database is created before the start so that a
test can register appliances and read rows without racing the server.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from core.wire.keys import Identity
from home.ca import init_ca, issue_cert
from home.db import HomeDB
from home.sql import Target, connect
from simsite.harness import processes
from simsite.harness.ports import free_tcp_port

#: Home's port inside a simulated site (the MSP namespace has the port to itself).
SITE_HOME_PORT: Final = 8443
LOG_TAIL_CHARS: Final = 2000


@dataclass
class Home:
    """One ``outpost-home run`` process, with a CA made for this test."""

    data_dir: Path
    ca_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    faults: str = ""
    proc: subprocess.Popen[bytes] | None = None
    netns: str = ""  # run inside this namespace of ``site`` (a simsite Site)
    site: Any = None
    fleet_password: str = ""
    # "" = the SQLite file DATA_DIR/home.db; else a postgresql:// URL (see databases()).
    database: str = ""
    config: Path | None = None  # home's TOML (`run --config`), e.g. with a [notify] table

    def __post_init__(self) -> None:
        self.database = self.database or new_database()

    @property
    def location(self) -> str:
        """What home opens: the database URL, or the SQLite file's path."""
        return self.database or str(self.db_path)

    def where(self) -> list[str]:
        """The options that point an ``outpost-home`` command at this home's state."""
        return ["--data-dir", str(self.data_dir)] + (
            ["--database", self.database] if self.database else []
        )

    def replica(self, data_dir: Path) -> Home:
        """Another instance of this home (one database, same CA, certificate and keys), as an
        MSP runs several behind a load balancer. Call after :meth:`prepare`."""
        data_dir.mkdir(parents=True, exist_ok=True)
        for item in self.data_dir.iterdir():
            if item.is_file() and not item.name.startswith("home.") and item.suffix != ".log":
                shutil.copy2(item, data_dir / item.name)
        other = Home(
            data_dir, self.ca_dir, host=self.host, database=self.database, config=self.config
        )
        other.port = free_tcp_port(self.host)
        return other

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.ca_dir / "ca.pem"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "home.db"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "home.log"

    def prepare(self) -> None:
        """The CA, the server certificate for ``host`` and an empty database; picks the port."""
        init_ca(self.ca_dir)
        issue_cert(self.ca_dir, self.data_dir, [self.host, "localhost"])
        db = HomeDB(self.location)
        db.open_sync()
        db.close_sync()
        if not self.port:
            self.port = free_tcp_port(self.host) if not self.netns else SITE_HOME_PORT

    def start(self) -> None:
        """Start the server and wait for its "listening" line (RuntimeError with its log if
        it exits first)."""
        argv = [
            *processes.HOME,
            "run",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"{self.host}:{self.port}",
        ]
        if self.database:
            argv += ["--database", self.database]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        if self.faults:
            argv += ["--faults", self.faults]
        if self.fleet_password:
            password_file = self.data_dir / "fleet.password"
            password_file.write_text(self.fleet_password + "\n")
            argv += ["--fleet-password-file", str(password_file)]
        with open(self.log_path, "ab") as errors:
            if self.site is not None:  # inside the simulated site's MSP namespace
                self.proc = self.site.popen_in(
                    self.netns, argv, stdout=subprocess.PIPE, stderr=errors
                )
            else:
                self.proc = subprocess.Popen(
                    argv, stdout=subprocess.PIPE, stderr=errors, start_new_session=True
                )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if b"listening" not in line:
            self.stop()
            log = self.log_path.read_text(errors="replace")
            raise RuntimeError(f"home did not start: {line!r}\n{log[-LOG_TAIL_CHARS:]}")

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        if self.proc is not None:
            processes.kill(self.proc)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc)
            self.proc = None

    def register(self, identity: Identity, site: str = "Test site") -> None:
        db = HomeDB(self.location)
        db.open_sync()
        try:
            db.register_sync(identity.appliance_id, identity.public_text, site)
        finally:
            db.close_sync()

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query of home's database (while it runs), ``?`` parameters."""
        if self.database:
            pg = connect(Target.parse(self.database))
            try:
                return [tuple(row) for row in pg.execute(sql, params).fetchall()]
            finally:
                pg.close()
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def records(self, appliance: str) -> list[tuple[int, int, str, dict[str, Any]]]:
        """(seq, lane, kind, body) in arrival order."""
        return [
            (seq, lane, kind, json.loads(body))
            for seq, lane, kind, body in self.rows(
                "SELECT seq, lane, kind, body FROM records WHERE appliance = ? ORDER BY id",
                (appliance,),
            )
        ]


# Makes the database of each new Home while databases() is in force (the test suite's
# PostgreSQL runs of the home tests); None: SQLite files.
_database_factory: Callable[[], str] | None = None


@contextlib.contextmanager
def databases(factory: Callable[[], str]) -> Iterator[None]:
    """Within the block, every new :class:`Home` gets ``factory()`` as its database URL."""
    global _database_factory  # noqa: PLW0603 - test tooling: one switch for the whole suite
    before, _database_factory = _database_factory, factory
    try:
        yield
    finally:
        _database_factory = before


def new_database() -> str:
    """A database for a new home under databases(), or "" (the SQLite default)."""
    return _database_factory() if _database_factory is not None else ""


@contextlib.contextmanager
def running_home(tmp: Path, faults: str = "", fleet_password: str = "") -> Iterator[Home]:
    """A started home on loopback with its state under ``tmp``; stopped on exit."""
    home = Home(tmp / "home", tmp / "ca", faults=faults, fleet_password=fleet_password)
    home.prepare()
    home.start()
    try:
        yield home
    finally:
        home.stop()
