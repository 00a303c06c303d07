"""Device records for home: the inventory and its changes as ordinary outbox records.

Home holds each site's device inventory (the MSP console's site page, the monthly report's
"changes") from records of kind ``device`` (docs/uplink.md):

* **changes**: :func:`forward_changes` runs inside the store transaction that changed the
  ``devices`` table (discovery at the end of each of its writes, polling after adding the
  configured devices) and forwards one
  record per device whose state home has not been sent yet. What home was sent is kept in
  ``uplink_device_sent`` (one row per device), so the comparison is one SQL query that returns
  only the rows that differ, whichever code path changed them; the uplink service also runs
  it every :data:`CHANGES_CHECK_S` to catch any writer that does not call it.
* **snapshot**: :func:`forward_snapshot` forwards every device, then one ``snapshot_end``
  record with the count. The box makes one when home's ingest answer says
  ``"inventory": "snapshot"`` (home never saw one for this stream, the box was claimed since,
  or device records were dropped since the last one) and no snapshot of its own is still
  waiting in the outbox (:func:`snapshot_pending`), so repeated answers make one snapshot.

Lane 0 (priority): device records are few (a join, an address change, a name learnt), they
give meaning to the alerts and events of lane 0 that name a device id (so they must not queue
behind a day of measurements after an outage), and the budget keeper drops lane 0 last.

Record body (all strings bounded to :data:`MAX_TEXT_CHARS`)::

    {"device_id": 7, "mac": "00:11:32:..", "ip": "198.18.0.20", "name": "nas",
     "kind": "nas", "vendor": "Synology", "model": "DS920+", "source": "arp",
     "state": "present" | "left", "watched": true, "first_seen": 1795000000.0,
     "last_seen": 1795000300.0,
     "change": "joined" | "baseline" | "added" | "left" | "returned" | "ip_changed"
               | "updated" | "removed" | "snapshot",
     "changed": ["ip"], "old": {"ip": "198.18.0.19"},          # what differs from the last
     "snapshot": "3f2a.."}                                     # snapshot records only
    {"change": "snapshot_end", "snapshot": "3f2a..", "count": 31, "device_drops": 0}
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterable
from typing import Any, Final

from core.logs import get_log
from services.store import Tx

log = get_log("uplink")

KIND_DEVICE: Final = "device"
LANE_DEVICES: Final = 0  # priority: see the module docstring
#: Strings longer than this are cut (a hostile sysName or mDNS name must not bloat home).
MAX_TEXT_CHARS: Final = 256
#: How often the uplink service looks for device changes nobody forwarded (seconds).
CHANGES_CHECK_S: Final = 30.0
#: The fields whose change is news for home (last_seen moves at every sweep: not news).
TRACKED: Final = ("mac", "ip", "name", "kind", "vendor", "model", "state")
_SNAPSHOT_KEY: Final = "uplink.inventory_snapshot"


def create_sent_table(conn: sqlite3.Connection) -> None:
    """Migration: what home was sent per device, filled with today's inventory (an upgraded
    box then sends no false "joined" for the devices it had: home's snapshot request brings
    them)."""
    conn.execute(
        """CREATE TABLE uplink_device_sent (
            device_id INTEGER PRIMARY KEY,
            mac TEXT NOT NULL,
            ip TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            vendor TEXT NOT NULL,
            model TEXT NOT NULL,
            state TEXT NOT NULL
        )"""
    )
    conn.execute(f"INSERT INTO uplink_device_sent {_current_sql(conn)}")


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


def _current_sql(conn: sqlite3.Connection, extra: str = "") -> str:
    """SELECT of each device's tracked state (device_id, then :data:`TRACKED` in order),
    normalised to text, bounded like the records; ``extra`` columns are appended."""
    presence = _has_table(conn, "device_presence")
    state = (
        "CASE WHEN COALESCE(p.present, 1) = 1 THEN 'present' ELSE 'left' END"
        if presence
        else "'present'"
    )
    join = " LEFT JOIN device_presence p ON p.device_id = d.id" if presence else ""
    n = MAX_TEXT_CHARS
    columns = [
        "d.id",
        f"substr(COALESCE(d.mac, ''), 1, {n})",
        f"substr(COALESCE(d.ip, ''), 1, {n})",
        f"substr(COALESCE(d.name, ''), 1, {n})",
        f"substr(COALESCE(d.kind, ''), 1, {n})",
        f"substr(COALESCE(d.vendor, ''), 1, {n})",
        "substr(COALESCE(CASE WHEN json_valid(d.attrs) THEN CAST(json_extract(d.attrs,"
        f" '$.model') AS TEXT) END, ''), 1, {n})",
        state,
    ]
    return f"SELECT {', '.join(columns)}{extra} FROM devices d{join}"


_EXTRA: Final = (
    ", COALESCE(d.source, ''), d.first_seen, d.last_seen,"
    " CASE WHEN json_valid(d.attrs) THEN json_extract(d.attrs, '$.monitored') END"
)


def _body(row: tuple[Any, ...], watched_kinds: frozenset[str]) -> dict[str, Any]:
    """A device record's body from a row of ``_current_sql(conn, _EXTRA)``."""
    device_id, mac, ip, name, kind, vendor, model, state, source, first, last, monitored = row
    return {
        "device_id": int(device_id),
        "mac": mac,
        "ip": ip,
        "name": name,
        "kind": kind,
        "vendor": vendor,
        "model": model,
        "source": str(source)[:MAX_TEXT_CHARS],
        "state": state,
        # Does its going away raise "device down" (services/alerting/rules.watched_for_down)?
        "watched": bool(monitored == 1) or source == "gateway" or kind in watched_kinds,
        "first_seen": float(first),
        "last_seen": float(last),
    }


def _remember(tx: Tx, rows: Iterable[tuple[Any, ...]]) -> None:
    tx.conn.executemany(
        "INSERT INTO uplink_device_sent (device_id, mac, ip, name, kind, vendor, model, state)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET"
        " mac = excluded.mac, ip = excluded.ip, name = excluded.name, kind = excluded.kind,"
        " vendor = excluded.vendor, model = excluded.model, state = excluded.state",
        [tuple(r[:8]) for r in rows],
    )


def _announced_join(tx: Tx, device_id: int) -> bool:
    """Did this transaction store a ``device.joined`` event for the device? (Discovery's
    first sweep on a fresh box, the baseline, adds devices without one: not news.)"""
    row = tx.conn.execute(
        "SELECT 1 FROM events WHERE ts >= ? AND kind = 'device.joined' AND device_id = ? LIMIT 1",
        (tx.stamp.wall, device_id),
    ).fetchone()
    return row is not None


def _classify(tx: Tx, body: dict[str, Any], sent: tuple[Any, ...] | None) -> dict[str, Any]:
    """Add ``change`` (and ``changed``/``old``) to ``body`` against what home was sent."""
    if sent is None:
        if body["source"] in ("config", "gateway"):
            body["change"] = "added"  # a technician's device, or the gateway role's row
        elif _announced_join(tx, body["device_id"]):
            body["change"] = "joined"
        else:
            body["change"] = "baseline"
        return body
    old = dict(zip(TRACKED, sent, strict=True))
    changed = [f for f in TRACKED if old[f] != body[f]]
    body["changed"] = changed
    body["old"] = {f: old[f] for f in changed}
    if "state" in changed:
        body["change"] = "left" if body["state"] == "left" else "returned"
    elif "ip" in changed and old["ip"] and body["ip"]:
        body["change"] = "ip_changed"
    else:
        body["change"] = "updated"
    return body


def forward_changes(tx: Tx, watched_kinds: Iterable[str] = ()) -> int:
    """Forward a ``device`` record for each device that changed since home was last told;
    return how many. Call inside the transaction that changed the inventory. Does nothing
    in a store without the uplink's tables (discovery run alone).

    Never fails the caller's write: an error (a damaged attrs JSON, say) undoes only this
    function's work and is logged; the devices stay "not sent" and go with a later check.
    """
    conn = tx.conn
    if not _has_table(conn, "uplink_device_sent"):
        return 0
    conn.execute("SAVEPOINT device_records")
    try:
        count = _forward_changes(tx, frozenset(watched_kinds))
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK TO device_records")
        log.warning("uplink.device_records_failed", error=str(exc))
        count = 0
    conn.execute("RELEASE device_records")
    return count


def _forward_changes(tx: Tx, kinds: frozenset[str]) -> int:
    conn = tx.conn
    sent_cols = ", ".join(f"s.{c}" for c in TRACKED)
    # The model (read out of the attrs JSON, the costly part) is compared last: SQLite stops
    # at the first difference, and most rows differ in nothing.
    order = sorted(range(len(TRACKED)), key=lambda i: TRACKED[i] == "model")
    differs = " OR ".join(f"s.{TRACKED[i]} IS NOT cur.c{i + 1}" for i in order)
    current = _current_sql(conn, _EXTRA)
    # The current state's columns named (c0 = id, c1..c7 = TRACKED, c8.. = extra).
    rows = conn.execute(
        "WITH cur (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11) AS"
        f" ({current}) SELECT cur.*, s.device_id, {sent_cols} FROM cur"
        " LEFT JOIN uplink_device_sent s ON s.device_id = cur.c0"
        f" WHERE s.device_id IS NULL OR {differs} ORDER BY cur.c0"
    ).fetchall()
    for row in rows:
        sent = None if row[12] is None else tuple(row[13:])
        tx.forward(KIND_DEVICE, _classify(tx, _body(row[:12], kinds), sent), LANE_DEVICES)
    _remember(tx, rows)
    gone = conn.execute(
        "SELECT device_id FROM uplink_device_sent WHERE device_id NOT IN (SELECT id FROM devices)"
    ).fetchall()
    for (device_id,) in gone:
        tx.forward(KIND_DEVICE, {"device_id": int(device_id), "change": "removed"}, LANE_DEVICES)
        conn.execute("DELETE FROM uplink_device_sent WHERE device_id = ?", (device_id,))
    return len(rows) + len(gone)


def _device_drops(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT SUM(count) FROM uplink_drops WHERE kind = ?", (KIND_DEVICE,))
    return int(row.fetchone()[0] or 0)


def snapshot_pending(conn: sqlite3.Connection) -> bool:
    """Is a snapshot this box made still waiting in the outbox (not acknowledged by home)?"""
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (_SNAPSHOT_KEY,)).fetchone()
    if row is None:
        return False
    try:
        seq = int(json.loads(row[0]).get("seq", 0))
    except (ValueError, AttributeError, TypeError):
        return False
    return conn.execute("SELECT 1 FROM outbox WHERE seq = ?", (seq,)).fetchone() is not None


def forward_snapshot(tx: Tx, watched_kinds: Iterable[str] = ()) -> str:
    """Forward every device (``change: "snapshot"``) and a closing ``snapshot_end`` record in
    this transaction; what home was sent becomes today's inventory. Returns the snapshot id,
    or "" (nothing forwarded) while the box knows no device.

    The records of one snapshot are consecutive in lane 0 (one write function, one writer
    thread), so when home reads ``snapshot_end`` it has all of them and forgets the devices
    the snapshot did not name (those of a replaced store, for instance).
    """
    conn = tx.conn
    kinds = frozenset(watched_kinds)
    snapshot = secrets.token_hex(8)
    rows = conn.execute(f"{_current_sql(conn, _EXTRA)} ORDER BY d.id").fetchall()
    if not rows:
        # Nothing to tell (no discovery, nothing configured): home keeps asking, and gets
        # the snapshot once a device is known.
        return ""
    for row in rows:
        body = _body(row, kinds)
        body.update(change="snapshot", snapshot=snapshot)
        tx.forward(KIND_DEVICE, body, LANE_DEVICES)
    end = {
        "change": "snapshot_end",
        "snapshot": snapshot,
        "count": len(rows),
        # Device records dropped before this snapshot: home asks again when it grows.
        "device_drops": _device_drops(conn),
    }
    tx.forward(KIND_DEVICE, end, LANE_DEVICES)
    conn.execute("DELETE FROM uplink_device_sent")
    _remember(tx, rows)
    last = conn.execute(
        "SELECT MAX(seq) FROM outbox WHERE lane = ? AND kind = ?", (LANE_DEVICES, KIND_DEVICE)
    ).fetchone()
    conn.execute(
        "INSERT INTO kv (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (_SNAPSHOT_KEY, json.dumps({"id": snapshot, "seq": int(last[0] or 0)})),
    )
    return snapshot
