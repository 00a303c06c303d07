"""Work that must run on one home instance at a time: a lease row in the shared database.

Several home instances serve one PostgreSQL database behind a load balancer. Ingest runs on all
of them; the notification worker, escalation and digest timers, monthly reports and retention
must run on one. Each such job has a lease row ``leases(name, holder, expires_at)``: an instance
takes it when it is free or expired, renews it every :data:`RENEW_S` while the job runs, and
stops the job the moment a renewal fails or finds another holder. When an instance dies, its
lease expires after :data:`LEASE_S` and another instance takes the job over: a job never stops
for longer than ``LEASE_S + RETRY_S``.

Time comes from the database (PostgreSQL's ``clock_timestamp()``), so instances on machines
whose clocks differ still agree on when a lease expires; on SQLite (one machine) from the
injected clock.

The lease makes the job single; it is not what keeps a notification from going out twice.
That is the outbox's claim (an atomic state change of the row), which holds even in the
window where an old holder has not yet noticed it lost the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from core.logs import get_log
from home.db import HomeDB
from home.sql import Connection

log = get_log("home")

LEASE_S = 15.0  # a holder that has not renewed for this long has lost the job
RENEW_S = 5.0  # how often the holder renews (three tries before the lease runs out)
RETRY_S = 2.0  # how often a waiting instance looks whether the lease is free

Clock = Callable[[], float]


def instance_name() -> str:
    """This process's name as a lease holder: host and pid (unique while it lives)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def db_time(conn: Connection, clock: Clock) -> float:
    """Seconds since the epoch by the database's clock (PostgreSQL), else by ``clock``."""
    if conn.dialect == "postgresql":
        row = conn.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())").fetchone()
        return float(row[0])
    return clock()


def take_sync(
    conn: Connection, name: str, holder: str, clock: Clock, lease_s: float = LEASE_S
) -> bool:
    """Take or renew lease ``name`` for ``holder``; True if ``holder`` now holds it."""
    now = db_time(conn, clock)
    conn.execute(
        "INSERT INTO leases (name, holder, expires_at, taken_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
        " expires_at = excluded.expires_at,"
        " taken_at = CASE WHEN leases.holder = excluded.holder THEN leases.taken_at"
        " ELSE excluded.taken_at END"
        " WHERE leases.holder = excluded.holder OR leases.expires_at < ?",
        (name, holder, now + lease_s, now, now),
    )
    row = conn.execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
    return bool(row) and row[0] == holder


def release_sync(conn: Connection, name: str, holder: str) -> None:
    """Give the lease up at a clean stop, so another instance need not wait for it to expire."""
    conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


def holder_sync(conn: Connection, name: str, clock: Clock) -> str:
    """Who holds lease ``name`` now ('' when nobody does)."""
    row = conn.execute("SELECT holder, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
    if not row or float(row[1]) < db_time(conn, clock):
        return ""
    return str(row[0])


@dataclass
class Lease:
    """Runs ``job`` while this instance holds lease ``name``; see the module docstring."""

    db: HomeDB
    name: str
    clock: Clock
    holder: str = ""
    lease_s: float = LEASE_S
    renew_s: float = RENEW_S
    retry_s: float = RETRY_S
    leading: bool = False
    takeovers: int = 0  # times this instance took the job (for /metrics)

    def __post_init__(self) -> None:
        self.holder = self.holder or instance_name()

    async def _take(self) -> bool:
        def take() -> bool:
            return take_sync(self.db.conn, self.name, self.holder, self.clock, self.lease_s)

        try:
            taken: bool = await self.db.call(take)
        except Exception as exc:  # noqa: BLE001 - a database fault means "not leading"
            log.warning("home.lease_error", lease=self.name, error=str(exc))
            return False
        return taken

    async def _release(self) -> None:
        def release() -> None:
            release_sync(self.db.conn, self.name, self.holder)

        with contextlib.suppress(Exception):
            await self.db.call(release)

    async def run(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Forever (until cancelled): wait for the lease, run ``job`` while holding it."""
        held = False
        try:
            while True:
                if not await self._take():
                    await asyncio.sleep(self.retry_s)
                    continue
                self.leading = held = True
                self.takeovers += 1
                log.info("home.lease_taken", lease=self.name, holder=self.holder)
                task = asyncio.create_task(job())
                try:
                    while not task.done():
                        done, _ = await asyncio.wait({task}, timeout=self.renew_s)
                        if done:
                            break
                        if not await self._take():
                            log.warning("home.lease_lost", lease=self.name, holder=self.holder)
                            break
                finally:
                    self.leading = False
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error("home.lease_job_failed", lease=self.name, error=str(task.exception()))
                await asyncio.sleep(self.retry_s)
        finally:
            if held:
                await self._release()
