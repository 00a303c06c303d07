"""A throw-away PostgreSQL server for tests and benchmarks: initdb, start, DSN, stop, remove.

It runs Debian's own binaries (package ``postgresql``) on a loopback port and a Unix socket in
its own directory, so it never touches the machine's cluster (which stays stopped) or any other
address. PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user
that Debian's package creates; otherwise as the calling user. Authentication is ``trust`` on
loopback only: this is a test server holding test data.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from simsite import procs

START_TIMEOUT_S = 30.0
PG_ROOT = Path("/usr/lib/postgresql")
_serial = itertools.count(1)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here; the message says how to get them."""


def bin_dir() -> Path:
    """The newest installed PostgreSQL's bin directory; PostgresUnavailable when none is."""
    versions = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        raise PostgresUnavailable(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "run `make test` as root, or `apt-get install postgresql`"
        )
    return versions[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    """A running server. ``dsn`` names the database ``outpost`` as user ``outpost``."""

    root: Path
    port: int
    pid: int

    @property
    def dsn(self) -> str:
        return f"postgresql://outpost@127.0.0.1:{self.port}/outpost"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://outpost@127.0.0.1:{self.port}/postgres"


def _as_owner(owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--"] if owner else []


def _owner() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root but there is no 'postgres' user to run the server as: "
            "`apt-get install postgresql` creates it"
        ) from None
    return "postgres"


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd="/")
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def start(parent: Path | None = None) -> PostgresServer:
    """initdb and start a server in a new directory under ``parent`` (or the temp dir)."""
    binaries = bin_dir()
    owner = _owner()
    root = Path(tempfile.mkdtemp(prefix="outpost-pg-", dir=parent))
    data, sock = root / "data", root / "sock"
    data.mkdir()
    sock.mkdir()
    if owner:
        info = pwd.getpwnam(owner)
        for path in (root, data, sock):
            os.chown(path, info.pw_uid, info.pw_gid)
    _run(
        [
            *_as_owner(owner),
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "outpost",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",  # a test cluster: durability of initdb's own files does not matter
        ],
        "initdb",
    )
    port = _free_port()
    log = root / "server.log"
    # fsync stays on: the crash tests rely on committed data surviving SIGKILL of home, and
    # PostgreSQL's own durability is part of what they exercise.
    server = subprocess.Popen(
        [
            *_as_owner(owner),
            str(binaries / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={sock}",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=64MB",
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd="/",
        start_new_session=True,
        preexec_fn=procs.preexec_for_current_thread(),  # noqa: PLW1509
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        ready = subprocess.run(
            [str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"],
            check=False,
        )
        if ready.returncode == 0:
            break
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"PostgreSQL did not start: {text}")
        time.sleep(0.1)
    pg = PostgresServer(root=root, port=port, pid=server.pid)
    _run(
        [
            str(binaries / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "outpost",
            "outpost",
        ],
        "createdb",
    )
    return pg


def stop(pg: PostgresServer) -> None:
    """Stop the server (fast shutdown, then SIGKILL) and remove its directory."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pg.pid, 2)  # SIGINT: PostgreSQL's "fast" shutdown
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        try:
            os.kill(pg.pid, 0)
        except ProcessLookupError:
            break
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pg.pid, os.WNOHANG)
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pg.pid, 9)
    shutil.rmtree(pg.root, ignore_errors=True)


@contextlib.contextmanager
def running(parent: Path | None = None) -> Iterator[PostgresServer]:
    """A server for the duration of the block, removed afterwards even on failure."""
    pg = start(parent)
    try:
        yield pg
    finally:
        stop(pg)


def fresh_database(pg: PostgresServer) -> str:
    """A new, empty database on ``pg`` (one a test, so tests never see each other's rows)."""
    import psycopg

    name = f"t_{os.getpid()}_{next(_serial)}"
    with psycopg.connect(pg.admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://outpost@127.0.0.1:{pg.port}/{name}"
