"""Data that grows: monthly partitions, hourly roll-ups after an age, removal after retention.

Every record a box sends is kept in ``records`` (the exactly-once log). Measurements are
almost all of it (a 30-device site sends about 430,000 a day), so:

* on PostgreSQL ``records`` is partitioned by month of the record's time (``ts``, declarative
  range partitioning, migration 7); :func:`ensure_partitions_sync` creates the current month's
  and the next :data:`MONTHS_AHEAD` partitions before they are needed, moving any rows that
  landed in the default partition meanwhile (records of a box whose clock was wrong stay there);
* measurements older than ``rollup_after_days`` become one row an hour per series in
  ``rollups_hourly`` (count, min, max, sum: averages and extremes survive) and the raw rows go;
* everything older than ``retention_days`` goes: whole monthly partitions are dropped on
  PostgreSQL (no vacuum debt), rows are deleted on SQLite; roll-ups likewise.

The job runs on one home instance at a time (home/leader.py, lease "retention"), hourly.
Alerts, events and device records are never rolled up: the monthly report reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from core.logs import get_log
from home.db import HomeDB
from home.leader import Lease
from home.sql import Connection

log = get_log("home")

HOUR_S = 3600.0
DAY_S = 86400.0
MONTHS_AHEAD = 2
RUN_EVERY_S = 3600.0
ROLLUP_CHUNK_S = 6 * HOUR_S  # one transaction rolls up at most this much time (bounded work)

Clock = Callable[[], float]


@dataclass(frozen=True)
class RetentionPolicy:
    """Home's data ages (TOML keys ``rollup_after_days``, ``retention_days``)."""

    # 40, not 30: the monthly report goes out on the first business day after the month, when
    # its first day is 31 to 35 days old; its availability then still reads every poll (older
    # months read the hourly counts: home/report/source.py, exact per hour).
    rollup_after_days: float = 40.0
    retention_days: float = 400.0  # a year of monthly reports, and their comparison month

    def __post_init__(self) -> None:
        if not 1 <= self.rollup_after_days <= self.retention_days:
            raise ValueError(
                f"rollup_after_days ({self.rollup_after_days}) must be at least 1 and at most "
                f"retention_days ({self.retention_days})"
            )


def month_start(ts: float) -> datetime:
    moment = datetime.fromtimestamp(ts, UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"records_{start.year:04d}_{start.month:02d}"


def _partitions(conn: Connection) -> dict[str, tuple[float, float]]:
    """Monthly partitions of ``records``: name -> (from, to) epoch seconds."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'records'"
    ).fetchall()
    out = {}
    for (name,) in rows:
        if name.startswith("records_") and name[8:12].isdigit():
            start = datetime(int(name[8:12]), int(name[13:15]), 1, tzinfo=UTC)
            out[name] = (start.timestamp(), next_month(start).timestamp())
    return out


def ensure_partitions_sync(conn: Connection, now: float) -> list[str]:
    """Create this month's and the next MONTHS_AHEAD partitions (PostgreSQL); their names."""
    if conn.dialect != "postgresql":
        return []
    made = []
    existing = _partitions(conn)
    start = month_start(now)
    for _ in range(MONTHS_AHEAD + 1):
        name, end = partition_name(start), next_month(start)
        if name not in existing:
            low, high = start.timestamp(), end.timestamp()
            conn.execute("BEGIN")
            try:
                conn.lock("records-partitions")
                conn.execute(f"CREATE TABLE {name} (LIKE records INCLUDING DEFAULTS)")
                # Rows of this month that arrived before the partition existed are in the
                # default partition; they move in the same transaction as the attach.
                conn.execute(
                    f"WITH moved AS (DELETE FROM records_default WHERE ts >= ? AND ts < ?"
                    f" RETURNING *) INSERT INTO {name} SELECT * FROM moved",
                    (low, high),
                )
                conn.execute(
                    f"ALTER TABLE records ATTACH PARTITION {name} FOR VALUES FROM ({low!r})"
                    f" TO ({high!r})"
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            made.append(name)
        start = end
    return made


def rollup_sync(conn: Connection, cutoff: float) -> int:
    """Roll measurements older than ``cutoff`` into hourly rows, oldest first, one chunk;
    return how many raw measurements it replaced (0 when nothing is left to do)."""
    row = conn.execute(
        "SELECT MIN(ts) FROM records WHERE kind = 'measurement' AND ts < ?", (cutoff,)
    ).fetchone()
    if row is None or row[0] is None:
        return 0
    low = float(row[0]) // HOUR_S * HOUR_S
    high = min(low + ROLLUP_CHUNK_S, cutoff // HOUR_S * HOUR_S)
    if high <= low:
        return 0
    value = conn.json_number("body", "value")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "INSERT INTO rollups_hourly (appliance, device_id, metric, instance, hour, n, vmin,"
            " vmax, vsum)"
            f" SELECT appliance, COALESCE({conn.json_number('body', 'device_id')}, -1),"
            f" COALESCE({conn.json_text('body', 'metric')}, ''),"
            f" COALESCE({conn.json_text('body', 'instance')}, ''),"
            f" {conn.floor_div('ts', HOUR_S)} * {HOUR_S!r}, COUNT({value}), MIN({value}),"
            f" MAX({value}), SUM({value})"
            " FROM records WHERE kind = 'measurement' AND ts >= ? AND ts < ?"
            " GROUP BY 1, 2, 3, 4, 5"
            " ON CONFLICT (appliance, device_id, metric, instance, hour) DO UPDATE SET"
            " n = rollups_hourly.n + excluded.n,"
            " vmin = CASE WHEN excluded.vmin < rollups_hourly.vmin OR rollups_hourly.vmin IS NULL"
            " THEN excluded.vmin ELSE rollups_hourly.vmin END,"
            " vmax = CASE WHEN excluded.vmax > rollups_hourly.vmax OR rollups_hourly.vmax IS NULL"
            " THEN excluded.vmax ELSE rollups_hourly.vmax END,"
            " vsum = COALESCE(rollups_hourly.vsum, 0) + COALESCE(excluded.vsum, 0)",
            (low, high),
        )
        gone = conn.execute(
            "DELETE FROM records WHERE kind = 'measurement' AND ts >= ? AND ts < ?", (low, high)
        ).rowcount
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return max(int(gone), 1)


def expire_sync(conn: Connection, cutoff: float) -> int:
    """Remove records and roll-ups older than ``cutoff``; on PostgreSQL whole months that end
    before it are dropped. Return the number of partitions dropped or rows deleted."""
    removed = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.dialect == "postgresql":
            conn.lock("records-partitions")
            for name, (_low, high) in sorted(_partitions(conn).items()):
                if high <= cutoff:
                    conn.execute(f"DROP TABLE {name}")
                    removed += 1
        removed += conn.execute("DELETE FROM records WHERE ts < ?", (cutoff,)).rowcount
        removed += conn.execute("DELETE FROM rollups_hourly WHERE hour < ?", (cutoff,)).rowcount
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return removed


def run_once_sync(db: HomeDB, policy: RetentionPolicy, now: float) -> dict[str, int]:
    """One pass of the whole job (partitions, roll-ups until done, expiry): what it did."""
    conn = db.conn
    made = ensure_partitions_sync(conn, now)
    rolled = 0
    while step := rollup_sync(conn, now - policy.rollup_after_days * DAY_S):
        rolled += step
    expired = expire_sync(conn, now - policy.retention_days * DAY_S)
    return {"partitions_made": len(made), "rolled_up": rolled, "expired": expired}


async def run_forever(db: HomeDB, policy: RetentionPolicy, clock: Clock) -> None:
    while True:
        done = await db.call(run_once_sync, db, policy, clock())
        log.info("home.retention", **done)
        await asyncio.sleep(RUN_EVERY_S)


def install(app: web.Application, db: HomeDB, policy: RetentionPolicy, clock: Clock) -> Lease:
    """Run the job while this instance holds the "retention" lease, for the app's lifetime."""
    lease = Lease(db, "retention", clock)

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(lease.run(lambda: run_forever(db, policy, clock)))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(ctx)
    return lease
