"""Home's SQLite database: registered appliances, every record received, exactly once.

One writer: every operation runs on a single thread with a single connection, so ingest
transactions never interleave. De-duplication is persisted with the data: the records and the
per-(appliance, stream, lane) high-water mark are written in the same transaction, so a crash
between them is impossible and a batch resent after a lost answer is recognised and skipped.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from core.clock import Clock, system_clock
from core.logs import get_log
from home import inventory
from home.migrations import BASE_SCHEMA, migrate
from home.sql import Connection, Dialect, Target, connect

T = TypeVar("T")
log = get_log("home")

# Nonces are remembered this long; a signed request older than that (by a synced clock) is
# refused by its time stamp, and any replayed batch is a duplicate anyway.
NONCE_RETENTION_S = 30 * 86400.0
_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_STREAM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_STRING_CHARS = 4096
# Database threads (and connections) of one home process on PostgreSQL: ingest of different
# appliances runs in parallel; one SQLite file has one writer.
PG_THREADS = 4


class Refused(Exception):
    """A request home refuses; ``status`` is the HTTP status, ``doc`` the JSON answer."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.doc = {"ok": False, "error": message, **extra}


SCHEMA = BASE_SCHEMA  # migration 1 of home/migrations.py


@dataclass(frozen=True)
class AlertChange:
    """An alert record that changed an alert's state at home, handed to the alert hooks.

    ``body`` is the record's body as the box sent it (docs/uplink.md: key, id, state, severity,
    message, rule, device_id, data, ts); ``previous`` the state home had before ('' if none).
    """

    appliance: str
    site: str
    key: str
    state: str
    previous: str
    severity: str
    body: dict[str, Any]


# Called on the database thread inside the ingest transaction, so whatever a hook writes
# (home/notify's outbox) commits or rolls back with the alert change that caused it.
AlertHook = Callable[[Connection, AlertChange], None]


@dataclass(frozen=True)
class ApplianceRow:
    id: str
    site: str
    public_key: str
    state: str


def _check_value(value: Any, where: str, depth: int = 0) -> None:
    """Refuse non-finite numbers, oversized strings and absurd nesting anywhere in a body."""
    if depth > 8:
        raise ValueError(f"{where} is nested too deeply")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is not a finite number")
    if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
        raise ValueError(f"{where} is longer than {MAX_STRING_CHARS} characters")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_value(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(item, f"{where}[{index}]", depth + 1)


def check_record(rec: Any) -> str | None:
    """Why one record is unacceptable, or None."""
    if not isinstance(rec, dict):
        return "record is not an object"
    kind = rec.get("kind")
    if not isinstance(kind, str) or not _KIND.match(kind):
        return f"bad kind {kind!r}"
    ts = rec.get("ts")
    if not isinstance(ts, int | float) or isinstance(ts, bool) or not math.isfinite(ts):
        return "ts is not a finite number"
    body = rec.get("body")
    if not isinstance(body, dict):
        return "body is not an object"
    try:
        _check_value(body, "body")
    except ValueError as exc:
        return str(exc)
    if kind == "measurement":
        value = body.get("value")
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            return "measurement value is not a number or null"
    return None


# Where home's database is when no --database option or `database` config key says: this
# variable, else DATA_DIR/home.db (SQLite). A postgresql:// URL selects PostgreSQL.
DATABASE_ENV = "OUTPOST_HOME_DATABASE"


def database_location(data_dir: str | Path, database: str = "") -> str:
    """The database to open: ``database`` if given, else $OUTPOST_HOME_DATABASE, else the
    SQLite file ``DATA_DIR/home.db``."""
    return database or os.environ.get(DATABASE_ENV, "") or str(Path(data_dir) / "home.db")


class HomeDB:
    """The home database: SQLite (a file path) or PostgreSQL (a ``postgresql://`` URL).

    All access goes through database threads (``await db.call(fn)``). SQLite has one thread and
    one connection: its single writer. PostgreSQL has :data:`PG_THREADS` threads with a
    connection each; transactions that must not interleave (one appliance's stream) take an
    advisory lock (``home/sql.py``). Raises :class:`home.sql.DatabaseUnavailable` at open when
    the database cannot be reached, naming it and the fix.
    """

    def __init__(self, database: str | Path, clock: Clock | None = None) -> None:
        self.clock = clock or system_clock()  # wall time of registrations, heartbeats, nonces
        self.target = Target.parse(str(database))
        self.path = self.target.location
        workers = 1 if self.target.dialect == "sqlite" else PG_THREADS
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="home-db")
        self._shared: Connection | None = None  # SQLite: the one connection
        self._local = threading.local()  # PostgreSQL: one connection per database thread
        self._all: list[Connection] = []
        self._lock = threading.Lock()
        self._open = False
        self.queued = 0  # operations waiting for the writer: drives "slow down" answers
        self.ingested_batches = 0  # since this process started (home/ops.py: /metrics)
        self.ingested_records = 0
        self.ingested_duplicates = 0
        self.alert_hooks: list[AlertHook] = []

    @property
    def dialect(self) -> Dialect:
        return self.target.dialect

    # ---- lifecycle (usable without an event loop: the CLI calls these directly) ----

    def open_sync(self) -> None:
        conn = connect(self.target)
        if self.target.dialect == "sqlite":
            self._shared = conn
        else:
            self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        self._open = True
        # home/migrations.py: SCHEMA is migration 1, notifications 2, ...
        migrate(conn, clock=self.clock)

    def close_sync(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._shared = None
        self._local = threading.local()
        self._open = False

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self.open_sync)

    async def close(self) -> None:
        # Every thread's connection is closed from one thread: psycopg and sqlite3 (with
        # check_same_thread off) allow it once no operation runs, which shutdown guarantees.
        self._pool.shutdown(wait=True)
        self.close_sync()

    @property
    def conn(self) -> Connection:
        """This thread's connection (opened on first use by a PostgreSQL database thread)."""
        if not self._open:
            raise RuntimeError("home database is not open")
        if self._shared is not None:
            return self._shared
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.target)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    async def call(self, fn: Any, *args: Any) -> Any:
        self.queued += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self.queued -= 1

    # ---- appliances ----

    def register_sync(self, appliance_id: str, public_key: str, site: str) -> None:
        self.conn.execute(
            "INSERT INTO appliances (id, public_key, site, state, registered_at)"
            " VALUES (?, ?, ?, 'registered', ?) ON CONFLICT (id) DO UPDATE SET"
            " public_key = excluded.public_key, site = excluded.site, state = excluded.state,"
            " registered_at = excluded.registered_at",
            (appliance_id, public_key, site, self.clock.wall()),
        )

    def appliance_sync(self, appliance_id: str) -> ApplianceRow | None:
        row = self.conn.execute(
            "SELECT id, site, public_key, state FROM appliances WHERE id = ?", (appliance_id,)
        ).fetchone()
        return ApplianceRow(*row) if row else None

    # ---- ingest ----

    def take_nonce(self, appliance: str, nonce: str, now: float) -> None:
        """Record a request nonce inside the caller's transaction; a replay is refused (409)."""
        try:
            self.conn.execute(
                "INSERT INTO nonces (appliance, nonce, seen_at) VALUES (?, ?, ?)",
                (appliance, nonce, now),
            )
        except sqlite3.IntegrityError:
            raise Refused(409, "replayed request: this nonce was already used") from None

    def ingest_sync(self, appliance: str, nonce: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Commit a batch's new records and the high-water marks together; answer the acks."""
        stream = doc.get("stream")
        records = doc.get("records")
        if not isinstance(stream, str) or not _STREAM.match(stream):
            raise Refused(400, "batch lacks a valid 'stream'")
        if not isinstance(records, list):
            raise Refused(400, "batch lacks a 'records' list")
        for rec in records:
            problem = check_record(rec)
            seq = rec.get("seq") if isinstance(rec, dict) else None
            lane = rec.get("lane") if isinstance(rec, dict) else None
            if type(seq) is not int or seq <= 0 or lane not in (0, 1):
                raise Refused(400, "a record lacks a positive integer 'seq' or a lane 0/1")
            if problem is not None:
                raise Refused(422, f"record {seq} refused: {problem}", bad_seq=seq, reason=problem)
        conn = self.conn
        now = self.clock.wall()
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Two home instances may hold the same stream's batch (a retry after a lost
            # answer): they take turns, so the second sees the first's high-water mark.
            conn.lock(f"stream:{appliance}:{stream}")
            # Partition maintenance (home/retention.py) attaches months under the exclusive
            # form of this lock: a row routed to the default partition while a month was being
            # attached would violate its new constraint.
            conn.lock_shared("records-partitions")
            self.take_nonce(appliance, nonce, now)
            hwm = {0: 0, 1: 0}
            for lane, mark in conn.execute(
                "SELECT lane, hwm FROM streams WHERE appliance = ? AND stream = ?",
                (appliance, stream),
            ):
                hwm[int(lane)] = int(mark)
            last_in_batch = {0: 0, 1: 0}
            duplicates = 0
            rows: list[tuple[Any, ...]] = []
            alerts: list[dict[str, Any]] = []
            devices: list[dict[str, Any]] = []
            for rec in records:
                seq, lane = rec["seq"], rec["lane"]
                if seq <= last_in_batch[lane]:
                    raise Refused(400, f"records of lane {lane} are not in ascending seq order")
                last_in_batch[lane] = seq
                if seq <= hwm[lane]:
                    duplicates += 1
                    continue
                body = json.dumps(rec["body"], separators=(",", ":"), sort_keys=True)
                rows.append(
                    (
                        appliance,
                        stream,
                        seq,
                        lane,
                        rec["kind"],
                        rec["ts"],
                        int(bool(rec.get("synced", True))),
                        body,
                        now,
                    )
                )
                hwm[lane] = seq
                if rec["kind"] == "alert":
                    alerts.append(rec)
                elif rec["kind"] == inventory.KIND:
                    devices.append(rec)
            # One statement for the batch, rows in arrival order (ids follow it): PostgreSQL
            # then pipelines them instead of paying a round trip a record.
            if rows:
                conn.executemany(
                    "INSERT INTO records (appliance, stream, seq, lane, kind, ts, synced, body,"
                    " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            accepted = len(rows)
            for rec in alerts:
                self._track_alert(appliance, rec)
            # Each site's device inventory (home/inventory.py), in this same transaction.
            inventory.track(conn, appliance, stream, devices, now)
            wants_snapshot = inventory.snapshot_wanted(conn, appliance, stream, doc.get("drops"))
            for lane, mark in hwm.items():
                conn.execute(
                    "INSERT INTO streams (appliance, stream, lane, hwm) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (appliance, stream, lane) DO UPDATE SET hwm = excluded.hwm",
                    (appliance, stream, lane, mark),
                )
            drops = doc.get("drops")
            conn.execute(
                "UPDATE appliances SET last_seen = ?, records = records + ?,"
                " duplicates = duplicates + ?, drops = COALESCE(?, drops) WHERE id = ?",
                (
                    now,
                    accepted,
                    duplicates,
                    json.dumps(drops) if isinstance(drops, dict) else None,
                    appliance,
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        # Counted after COMMIT, so /metrics never counts what a rollback undid. Plain ints
        # updated by database threads: a scrape may be one batch behind, never wrong for long.
        self.ingested_batches += 1
        self.ingested_records += accepted
        self.ingested_duplicates += duplicates
        return {
            "ok": True,
            "stream": stream,
            "acked": {str(lane): mark for lane, mark in hwm.items()},
            "accepted": accepted,
            "duplicates": duplicates,
            "slow_down_s": 0,
            "commands": [],
            **({"inventory": "snapshot"} if wants_snapshot else {}),
        }

    def _track_alert(self, appliance: str, rec: dict[str, Any]) -> None:
        body = rec["body"]
        key = body.get("key") or body.get("id")
        state = body.get("state")
        if key is None or state not in ("open", "resolved"):
            return
        before = self.conn.execute(
            "SELECT state FROM alerts WHERE appliance = ? AND key = ?", (appliance, str(key))
        ).fetchone()
        self.conn.execute(
            "INSERT INTO alerts (appliance, key, state, severity, message, ts)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (appliance, key) DO UPDATE SET"
            " state = excluded.state, severity = excluded.severity,"
            " message = excluded.message, ts = excluded.ts",
            (
                appliance,
                str(key),
                state,
                str(body.get("severity", "")),
                str(body.get("message", ""))[:500],
                rec["ts"],
            ),
        )
        if self.alert_hooks:
            site_row = self.conn.execute(
                "SELECT site FROM appliances WHERE id = ?", (appliance,)
            ).fetchone()
            change = AlertChange(
                appliance=appliance,
                site=str(site_row[0]) if site_row else "",
                key=str(key),
                state=state,
                previous=str(before[0]) if before else "",
                severity=str(body.get("severity", "")),
                body=body,
            )
            for hook in self.alert_hooks:
                self._run_hook(hook, change)

    def _run_hook(self, hook: AlertHook, change: AlertChange) -> None:
        """One alert hook in a savepoint of the ingest transaction: what it writes commits with
        the alert; if it fails, its writes are undone and the alert is stored anyway (logged),
        because a fault in notifications must never stop the box's records from being taken."""
        conn = self.conn
        conn.execute("SAVEPOINT alert_hook")
        try:
            hook(conn, change)
        except Exception as exc:  # noqa: BLE001 - logged; ingest goes on without the hook's rows
            conn.execute("ROLLBACK TO SAVEPOINT alert_hook")
            log.error(
                "home.alert_hook_failed",
                appliance=change.appliance,
                key=change.key,
                error=f"{type(exc).__name__}: {exc}",
            )
        conn.execute("RELEASE SAVEPOINT alert_hook")

    def heartbeat_sync(self, appliance: str, nonce: str, doc: dict[str, Any]) -> dict[str, Any]:
        conn = self.conn
        now = self.clock.wall()
        conn.execute("BEGIN IMMEDIATE")
        try:
            self.take_nonce(appliance, nonce, now)
            drops = doc.get("drops")
            conn.execute(
                "UPDATE appliances SET last_seen = ?, heartbeat_at = ?, heartbeat = ?,"
                " drops = COALESCE(?, drops) WHERE id = ?",
                (
                    now,
                    now,
                    json.dumps(doc, separators=(",", ":"))[:20000],
                    json.dumps(drops) if isinstance(drops, dict) else None,
                    appliance,
                ),
            )
            # Prune old nonces here: heartbeats are regular and small.
            conn.execute("DELETE FROM nonces WHERE seen_at < ?", (now - NONCE_RETENTION_S,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return {"ok": True, "stream": str(doc.get("stream", "")), "acked": {}, "commands": []}

    # ---- fleet view ----

    def fleet_sync(self) -> list[dict[str, Any]]:
        now = self.clock.wall()
        out = []
        for aid, site, state, last_seen, hb_at, hb, drops, records, dups in self.conn.execute(
            "SELECT id, site, state, last_seen, heartbeat_at, heartbeat, drops, records,"
            " duplicates FROM appliances ORDER BY site, id"
        ).fetchall():
            open_alerts = self.conn.execute(
                "SELECT severity, key, message FROM alerts WHERE appliance = ? AND state = 'open'"
                " AND severity != 'info' ORDER BY ts",
                (aid,),
            ).fetchall()
            heartbeat = json.loads(hb or "{}")
            out.append(
                {
                    "appliance": aid,
                    "site": site,
                    "state": state,
                    "last_seen_age_s": None if last_seen is None else round(now - last_seen, 1),
                    "last_heartbeat_age_s": None if hb_at is None else round(now - hb_at, 1),
                    "version": heartbeat.get("version"),
                    "queue": heartbeat.get("queue"),
                    "oldest_unsent_age_s": heartbeat.get("oldest_unsent_age_s"),
                    "drops": json.loads(drops or "{}"),
                    "records": records,
                    "duplicates_skipped": dups,
                    "open_alerts": [
                        {"severity": s, "key": k, "message": m} for s, k, m in open_alerts
                    ],
                }
            )
        return out
