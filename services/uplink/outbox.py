"""The outbox: every record bound for home, queued in the transaction that stores it.

Sequence numbers and lanes
  ``outbox.seq`` is one AUTOINCREMENT sequence per appliance store (never reused, even after
  rows are deleted). Each row is in a lane: 0 = alerts and events (sent first), 1 = bulk
  measurements. Within a lane, seq only grows, and since one writer thread commits in seq order,
  the sender always sees a gap-free prefix of what was committed.
  Home acknowledges per lane the highest seq it has committed (``acked``); the appliance then,
  in one transaction, raises its pointer in ``uplink_acked`` and deletes the acknowledged rows.
  After any restart the sender starts at the first row above the pointer, never at "now".
  Home skips any record at or below its own per-lane high-water mark, so a batch resent after a
  lost answer changes nothing (exactly once), and per-lane order is kept.

Compact rows
  Measurements are the bulk, and each one is already a row of ``measurements``; copying the full
  JSON record (~230 bytes) into the outbox would triple the bytes written per measurement. The
  outbox row of a measurement holds ``[series, value, mono, boot]`` instead (series and boot are
  the core tables' ids); the sender expands it to the full wire record when it builds a batch.

``stream``: a random id made with this outbox (kv ``uplink.stream``). If the store is ever
replaced (damaged SD card), sequence numbers restart at 1 in a new stream, and home keeps its
high-water marks per (appliance, stream), so new records are not mistaken for duplicates.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.store import Migration, MigrationChain, Tx, sql
from services.uplink.devices import add_sent_firmware, create_sent_table

LANE_PRIORITY = 0
LANE_BULK = 1
LANES = (LANE_PRIORITY, LANE_BULK)
KIND_MEASUREMENT = "measurement"
_COMPACT = (",", ":")


def _init_stream(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO kv (key, value) VALUES ('uplink.stream', ?)",
        (secrets.token_hex(8),),
    )
    for lane in LANES:
        conn.execute("INSERT OR IGNORE INTO uplink_acked (lane, seq) VALUES (?, 0)", (lane,))


UPLINK_CHAIN = MigrationChain(
    "uplink",
    (
        Migration(
            1,
            "ack pointers, quarantine, drop counts",
            sql(
                # The highest seq home acknowledged, per lane.
                "CREATE TABLE uplink_acked (lane INTEGER PRIMARY KEY, seq INTEGER NOT NULL)",
                # Records home refused as bad (4xx naming them): kept for a technician, not sent.
                """CREATE TABLE uplink_quarantine (
                    seq INTEGER PRIMARY KEY,
                    lane INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    body TEXT NOT NULL,
                    ts REAL NOT NULL,
                    reason TEXT NOT NULL,
                    at REAL NOT NULL
                )""",
                # Records dropped before reaching home, by reason and kind (cumulative).
                """CREATE TABLE uplink_drops (
                    reason TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    count INTEGER NOT NULL,
                    PRIMARY KEY (reason, kind)
                )""",
            ),
        ),
        Migration(2, "stream id and lane pointers", _init_stream),
        # What home was told of each device (services/uplink/devices.py).
        Migration(3, "device records sent to home", create_sent_table),
        # The firmware version and SNMP maker in them (filled from the inventory: no flood).
        Migration(4, "device firmware version sent to home", add_sent_firmware),
    ),
)


def forward(tx: Tx, kind: str, body: dict[str, Any], lane: int) -> None:
    """The store's forwarder: append one record to the outbox inside ``tx``."""
    stamp = tx.stamp
    if kind == KIND_MEASUREMENT and lane == LANE_BULK:
        row = tx.conn.execute(
            "SELECT id FROM series WHERE device_id IS ? AND metric = ? AND instance = ?",
            (body.get("device_id"), body.get("metric"), body.get("instance", "")),
        ).fetchone()
        if row is not None:
            text = json.dumps([row[0], body.get("value"), stamp.mono, tx.boot], separators=_COMPACT)
            tx.conn.execute(
                "INSERT INTO outbox (lane, kind, body, ts, synced) VALUES (?, ?, ?, ?, ?)",
                (lane, kind, text, stamp.wall, int(stamp.synced)),
            )
            return
    text = json.dumps(body, separators=_COMPACT, sort_keys=True, default=str)
    tx.conn.execute(
        "INSERT INTO outbox (lane, kind, body, ts, synced) VALUES (?, ?, ?, ?, ?)",
        (lane, kind, text, float(body.get("ts", stamp.wall)), int(stamp.synced)),
    )


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    lane: int
    kind: str
    body: str  # as stored (compact for measurements)
    ts: float
    synced: bool


@dataclass(frozen=True)
class Backlog:
    pending: dict[int, int]  # lane -> rows not yet acknowledged
    oldest_ts: float | None  # ts of the oldest unacknowledged row
    acked: dict[int, int]  # lane -> acknowledged seq


def read_stream(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM kv WHERE key = 'uplink.stream'").fetchone()
    return str(row[0]) if row else ""


def read_acked(conn: sqlite3.Connection) -> dict[int, int]:
    return {int(lane): int(seq) for lane, seq in conn.execute("SELECT lane, seq FROM uplink_acked")}


def read_backlog(conn: sqlite3.Connection) -> Backlog:
    pending = {lane: 0 for lane in LANES}
    for lane, count in conn.execute("SELECT lane, COUNT(*) FROM outbox GROUP BY lane"):
        pending[int(lane)] = int(count)
    row = conn.execute("SELECT MIN(ts) FROM outbox").fetchone()
    return Backlog(pending, row[0] if row else None, read_acked(conn))


def read_due(conn: sqlite3.Connection, bulk_limit: int) -> tuple[bool, int]:
    """(any priority row pending, bulk rows pending counted up to ``bulk_limit``): cheap."""
    priority = conn.execute("SELECT 1 FROM outbox WHERE lane = 0 LIMIT 1").fetchone() is not None
    bulk = conn.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE lane = 1 LIMIT ?)", (bulk_limit,)
    ).fetchone()[0]
    return priority, int(bulk)


def read_pending(conn: sqlite3.Connection, max_records: int, max_bytes: int) -> list[OutboxRow]:
    """The next batch: priority rows first, then bulk, each lane in seq order above its pointer.

    At least one row is returned when any is pending, whatever its size, so one large record
    can never block the queue.
    """
    acked = read_acked(conn)
    rows: list[OutboxRow] = []
    size = 0
    for lane in LANES:
        cursor = conn.execute(
            "SELECT seq, lane, kind, body, ts, synced FROM outbox WHERE lane = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (lane, acked.get(lane, 0), max_records - len(rows)),
        )
        for seq, lane_, kind, body, ts, synced in cursor:
            if rows and size + len(body) > max_bytes:
                return rows
            rows.append(OutboxRow(seq, lane_, kind, body, ts, bool(synced)))
            size += len(body) + 60
        if len(rows) >= max_records:
            break
    return rows


def apply_ack(tx: Tx, acked: dict[int, int], sent: dict[int, int]) -> dict[int, int]:
    """Advance each lane's pointer to what home committed; delete those rows. One transaction.

    ``sent`` is the highest seq sent per lane in the batch: home cannot acknowledge more than
    that, so a larger number (a confused or hostile answer) is capped to it.
    """
    advanced: dict[int, int] = {}
    for lane, home_seq in acked.items():
        if lane not in sent:
            continue
        seq = min(home_seq, sent[lane])
        row = tx.conn.execute("SELECT seq FROM uplink_acked WHERE lane = ?", (lane,)).fetchone()
        current = int(row[0]) if row else 0
        if seq <= current:
            continue
        tx.conn.execute(
            "INSERT INTO uplink_acked (lane, seq) VALUES (?, ?)"
            " ON CONFLICT (lane) DO UPDATE SET seq = excluded.seq",
            (lane, seq),
        )
        tx.conn.execute("DELETE FROM outbox WHERE lane = ? AND seq <= ?", (lane, seq))
        advanced[lane] = seq
    return advanced


def quarantine(tx: Tx, seq: int, reason: str) -> bool:
    """Move one record home refused out of the queue, keeping it and the reason locally."""
    row = tx.conn.execute(
        "SELECT seq, lane, kind, body, ts FROM outbox WHERE seq = ?", (seq,)
    ).fetchone()
    if row is None:
        return False
    tx.conn.execute(
        "INSERT OR REPLACE INTO uplink_quarantine (seq, lane, kind, body, ts, reason, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*row, reason[:500], tx.stamp.wall),
    )
    tx.conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
    count_drops(tx.conn, "quarantined", {str(row[2]): 1})
    return True


def count_drops(conn: sqlite3.Connection, reason: str, by_kind: dict[str, int]) -> None:
    for kind, count in by_kind.items():
        if count:
            conn.execute(
                "INSERT INTO uplink_drops (reason, kind, count) VALUES (?, ?, ?)"
                " ON CONFLICT (reason, kind) DO UPDATE SET count = count + excluded.count",
                (reason, kind, count),
            )


def read_drops(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """Cumulative drop counts: {reason: {kind: count}}."""
    out: dict[str, dict[str, int]] = {}
    for reason, kind, count in conn.execute("SELECT reason, kind, count FROM uplink_drops"):
        out.setdefault(str(reason), {})[str(kind)] = int(count)
    return out


class Expander:
    """Turns stored rows into wire records, expanding compact measurement rows."""

    def __init__(self) -> None:
        self._series: dict[int, tuple[Any, str, str, str]] = {}
        self._boots: dict[int, str] = {}

    def _load(self, conn: sqlite3.Connection) -> None:
        for sid, device_id, metric, instance, unit in conn.execute(
            "SELECT id, device_id, metric, instance, unit FROM series"
        ):
            self._series[int(sid)] = (device_id, metric, instance, unit)
        for bid, boot_id in conn.execute("SELECT id, boot_id FROM boots"):
            self._boots[int(bid)] = str(boot_id)

    def records(self, conn: sqlite3.Connection, rows: Iterable[OutboxRow]) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            body = json.loads(row.body)
            if row.kind == KIND_MEASUREMENT and isinstance(body, list):
                body = self._measurement(conn, body)
            out.append(
                {
                    "seq": row.seq,
                    "lane": row.lane,
                    "kind": row.kind,
                    "ts": row.ts,
                    "synced": row.synced,
                    "body": body,
                }
            )
        return out

    def _measurement(self, conn: sqlite3.Connection, compact: list[Any]) -> dict[str, Any]:
        series, value, mono, boot = compact[:4]
        if series not in self._series or boot not in self._boots:
            self._load(conn)
        device_id, metric, instance, unit = self._series.get(series, (None, "?", "", ""))
        body: dict[str, Any] = {
            "device_id": device_id,
            "metric": metric,
            "instance": instance,
            "unit": unit,
            "value": value,
            "mono": mono,
            "boot_id": self._boots.get(boot, "unknown"),
        }
        if len(compact) >= 8:  # a roll-up made by thinning: [.., n, min, max, span_s]
            body["rollup"] = {
                "n": compact[4],
                "min": compact[5],
                "max": compact[6],
                "span_s": compact[7],
            }
        return body
