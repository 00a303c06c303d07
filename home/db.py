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
import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

T = TypeVar("T")

# Nonces are remembered this long; a signed request older than that (by a synced clock) is
# refused by its time stamp, and any replayed batch is a duplicate anyway.
NONCE_RETENTION_S = 30 * 86400.0
_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_STREAM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_STRING_CHARS = 4096


class Refused(Exception):
    """A request home refuses; ``status`` is the HTTP status, ``doc`` the JSON answer."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.doc = {"ok": False, "error": message, **extra}


@dataclass(frozen=True)
class ApplianceRow:
    id: str
    site: str
    public_key: str
    state: str


SCHEMA = (
    """CREATE TABLE IF NOT EXISTS appliances (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL DEFAULT '',
        public_key TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'registered',
        registered_at REAL NOT NULL,
        last_seen REAL,
        heartbeat_at REAL,
        heartbeat TEXT NOT NULL DEFAULT '{}',
        drops TEXT NOT NULL DEFAULT '{}',
        records INTEGER NOT NULL DEFAULT 0,
        duplicates INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS streams (
        appliance TEXT NOT NULL,
        stream TEXT NOT NULL,
        lane INTEGER NOT NULL,
        hwm INTEGER NOT NULL,
        PRIMARY KEY (appliance, stream, lane)
    )""",
    """CREATE TABLE IF NOT EXISTS records (
        id INTEGER PRIMARY KEY,
        appliance TEXT NOT NULL,
        stream TEXT NOT NULL,
        seq INTEGER NOT NULL,
        lane INTEGER NOT NULL,
        kind TEXT NOT NULL,
        ts REAL NOT NULL,
        synced INTEGER NOT NULL,
        body TEXT NOT NULL,
        received_at REAL NOT NULL,
        UNIQUE (appliance, stream, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS nonces (
        appliance TEXT NOT NULL,
        nonce TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (appliance, nonce)
    )""",
    "CREATE INDEX IF NOT EXISTS nonces_seen ON nonces (seen_at)",
    """CREATE TABLE IF NOT EXISTS alerts (
        appliance TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL,
        severity TEXT NOT NULL DEFAULT '',
        message TEXT NOT NULL DEFAULT '',
        ts REAL NOT NULL,
        PRIMARY KEY (appliance, key)
    )""",
)


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


class HomeDB:
    """The home database. All access goes through one thread (``await db.call(fn)``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="home-db")
        self._conn: sqlite3.Connection | None = None
        self.queued = 0  # operations waiting for the writer: drives "slow down" answers

    # ---- lifecycle (usable without an event loop: the CLI calls these directly) ----

    def open_sync(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 5000")
        for statement in SCHEMA:
            conn.execute(statement)
        self._conn = conn

    def close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self.open_sync)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self.close_sync)
        self._pool.shutdown(wait=True)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("home database is not open")
        return self._conn

    async def call(self, fn: Any, *args: Any) -> Any:
        self.queued += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self.queued -= 1

    # ---- appliances ----

    def register_sync(self, appliance_id: str, public_key: str, site: str) -> None:
        db = sqlite_utils.Database(self.conn)
        db["appliances"].upsert(  # type: ignore[union-attr]
            {
                "id": appliance_id,
                "public_key": public_key,
                "site": site,
                "state": "registered",
                "registered_at": time.time(),
            },
            pk="id",
        )

    def appliance_sync(self, appliance_id: str) -> ApplianceRow | None:
        row = self.conn.execute(
            "SELECT id, site, public_key, state FROM appliances WHERE id = ?", (appliance_id,)
        ).fetchone()
        return ApplianceRow(*row) if row else None

    # ---- ingest ----

    def _take_nonce(self, appliance: str, nonce: str, now: float) -> None:
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
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._take_nonce(appliance, nonce, now)
            hwm = {0: 0, 1: 0}
            for lane, mark in conn.execute(
                "SELECT lane, hwm FROM streams WHERE appliance = ? AND stream = ?",
                (appliance, stream),
            ):
                hwm[int(lane)] = int(mark)
            last_in_batch = {0: 0, 1: 0}
            accepted = duplicates = 0
            for rec in records:
                seq, lane = rec["seq"], rec["lane"]
                if seq <= last_in_batch[lane]:
                    raise Refused(400, f"records of lane {lane} are not in ascending seq order")
                last_in_batch[lane] = seq
                if seq <= hwm[lane]:
                    duplicates += 1
                    continue
                body = json.dumps(rec["body"], separators=(",", ":"), sort_keys=True)
                conn.execute(
                    "INSERT INTO records (appliance, stream, seq, lane, kind, ts, synced, body,"
                    " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    ),
                )
                hwm[lane] = seq
                accepted += 1
                if rec["kind"] == "alert":
                    self._track_alert(appliance, rec)
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
        return {
            "ok": True,
            "stream": stream,
            "acked": {str(lane): mark for lane, mark in hwm.items()},
            "accepted": accepted,
            "duplicates": duplicates,
            "slow_down_s": 0,
            "commands": [],
        }

    def _track_alert(self, appliance: str, rec: dict[str, Any]) -> None:
        body = rec["body"]
        key = body.get("key") or body.get("id")
        state = body.get("state")
        if key is None or state not in ("open", "resolved"):
            return
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

    def heartbeat_sync(self, appliance: str, nonce: str, doc: dict[str, Any]) -> dict[str, Any]:
        conn = self.conn
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._take_nonce(appliance, nonce, now)
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
        now = time.time()
        out = []
        for aid, site, state, last_seen, hb_at, hb, drops, records, dups in self.conn.execute(
            "SELECT id, site, state, last_seen, heartbeat_at, heartbeat, drops, records,"
            " duplicates FROM appliances ORDER BY site, id"
        ).fetchall():
            open_alerts = self.conn.execute(
                "SELECT severity, key, message FROM alerts WHERE appliance = ? AND state = 'open'"
                " ORDER BY ts",
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
