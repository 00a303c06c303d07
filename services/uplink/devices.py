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
  waiting in the outbox (:func:`snapshot_pending`), so repeated answers make one snapshot;
  and once on its own after an upgrade that added a field (:func:`forward_due_snapshot`).

Firmware version (``version``, discovery's SNMP identity ``attrs.snmp.version``) and the maker
the device names itself (``snmp_vendor``, ``attrs.snmp.vendor``: "Brother", where ``vendor``
is the network card's "Brother industries, LTD.") are tracked like the rest: an upgrade is an
``updated`` record with ``changed: ["version"]``. A box upgraded to this release (uplink
migration 4) fills both into ``uplink_device_sent`` from its inventory, so the new columns alone
send nothing (no "updated" for every device), and marks one snapshot due, which the uplink
service sends (:func:`forward_due_snapshot`): home learns the versions of the devices it
already had from ``snapshot`` records, which are states, not changes.

Lane 0 (priority): device records are few (a join, an address change, a name learnt), they
give meaning to the alerts and events of lane 0 that name a device id (so they must not queue
behind a day of measurements after an outage), and the budget keeper drops lane 0 last.

Record body (all strings bounded to :data:`MAX_TEXT_CHARS`)::

    {"device_id": 7, "mac": "00:11:32:..", "ip": "198.18.0.20", "name": "nas",
     "kind": "nas", "vendor": "Synology", "model": "DS920+", "source": "arp",
     "version": "DSM 7.2.1-69057", "snmp_vendor": "Synology",   # "" when not read
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
#: The fields whose change is news for home (last_seen moves at every sweep: not news), in
#: the order of ``uplink_device_sent``'s columns.
TRACKED: Final = ("mac", "ip", "name", "kind", "vendor", "model", "state", "version", "snmp_vendor")
#: The fields ``uplink_device_sent`` had at its creation (uplink migration 3).
_TRACKED_V3: Final = TRACKED[:7]
#: Fields read out of the attrs JSON (the costly part of the comparison: compared last).
_FROM_ATTRS: Final = frozenset({"model", "version", "snmp_vendor"})
_SNAPSHOT_KEY: Final = "uplink.inventory_snapshot"
#: Set by a migration that added a tracked field: one snapshot is due (see the module).
_SNAPSHOT_DUE_KEY: Final = "uplink.inventory_snapshot_due"


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
    columns = ", ".join(("device_id", *_TRACKED_V3))
    conn.execute(
        f"INSERT INTO uplink_device_sent ({columns}) {_current_sql(conn, fields=_TRACKED_V3)}"
    )


def add_sent_firmware(conn: sqlite3.Connection) -> None:
    """Migration: ``version`` and ``snmp_vendor`` in what home was sent, filled from today's
    inventory (the new columns alone must not make an "updated" record of every device), and
    one snapshot marked due so home learns them (:func:`forward_due_snapshot`). Additive:
    older firmware names its columns and runs on this table unharmed."""
    for field in ("version", "snmp_vendor"):
        conn.execute(f"ALTER TABLE uplink_device_sent ADD COLUMN {field} TEXT NOT NULL DEFAULT ''")
    if not _has_table(conn, "devices"):
        return
    conn.execute(
        "UPDATE uplink_device_sent SET"
        f" version = COALESCE((SELECT {_EXPR['version']} FROM devices d"
        " WHERE d.id = uplink_device_sent.device_id), ''),"
        f" snmp_vendor = COALESCE((SELECT {_EXPR['snmp_vendor']} FROM devices d"
        " WHERE d.id = uplink_device_sent.device_id), '')"
    )
    if conn.execute("SELECT 1 FROM devices LIMIT 1").fetchone() is not None:
        conn.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_SNAPSHOT_DUE_KEY, json.dumps({"why": "uplink migration 4: version, snmp_vendor"})),
        )


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


def _column(name: str) -> str:
    return f"substr(COALESCE(d.{name}, ''), 1, {MAX_TEXT_CHARS})"


def _attr(path: str) -> str:
    """A text out of the attrs JSON ("" when absent or the JSON is damaged), bounded."""
    return (
        "substr(COALESCE(CASE WHEN json_valid(d.attrs) THEN CAST(json_extract(d.attrs,"
        f" '{path}') AS TEXT) END, ''), 1, {MAX_TEXT_CHARS})"
    )


#: Each tracked field but ``state`` as an SQL expression over ``devices d``: text, bounded.
_EXPR: Final = {
    **{f: _column(f) for f in ("mac", "ip", "name", "kind", "vendor")},
    "model": _attr("$.model"),
    # discovery's SNMP identity (services/discovery/snmp_identity.py SnmpIdentity.as_attrs)
    "version": _attr("$.snmp.version"),
    "snmp_vendor": _attr("$.snmp.vendor"),
}


def _current_sql(
    conn: sqlite3.Connection, extra: str = "", fields: tuple[str, ...] = TRACKED
) -> str:
    """SELECT of each device's tracked state (device_id, then ``fields`` in order, by default
    :data:`TRACKED`), normalised to text, bounded like the records; ``extra`` columns are
    appended."""
    presence = _has_table(conn, "device_presence")
    state = (
        "CASE WHEN COALESCE(p.present, 1) = 1 THEN 'present' ELSE 'left' END"
        if presence
        else "'present'"
    )
    join = " LEFT JOIN device_presence p ON p.device_id = d.id" if presence else ""
    columns = ["d.id", *(state if f == "state" else _EXPR[f] for f in fields)]
    return f"SELECT {', '.join(columns)}{extra} FROM devices d{join}"


#: Columns of ``_current_sql``: device_id and :data:`TRACKED`.
_WIDTH: Final = 1 + len(TRACKED)
_EXTRA: Final = (
    ", COALESCE(d.source, ''), d.first_seen, d.last_seen,"
    " CASE WHEN json_valid(d.attrs) THEN json_extract(d.attrs, '$.monitored') END"
)


def _body(row: tuple[Any, ...], watched_kinds: frozenset[str]) -> dict[str, Any]:
    """A device record's body from a row of ``_current_sql(conn, _EXTRA)``."""
    device_id, mac, ip, name, kind, vendor, model, state, version, snmp_vendor = row[:_WIDTH]
    source, first, last, monitored = row[_WIDTH:]
    return {
        "device_id": int(device_id),
        "mac": mac,
        "ip": ip,
        "name": name,
        "kind": kind,
        "vendor": vendor,
        "model": model,
        "version": version,
        "snmp_vendor": snmp_vendor,
        "source": str(source)[:MAX_TEXT_CHARS],
        "state": state,
        # Does its going away raise "device down" (services/alerting/rules.watched_for_down)?
        "watched": bool(monitored == 1) or source == "gateway" or kind in watched_kinds,
        "first_seen": float(first),
        "last_seen": float(last),
    }


def _remember(tx: Tx, rows: Iterable[tuple[Any, ...]]) -> None:
    columns = ", ".join(("device_id", *TRACKED))
    marks = ", ".join("?" * _WIDTH)
    updates = ", ".join(f"{f} = excluded.{f}" for f in TRACKED)
    tx.conn.executemany(
        f"INSERT INTO uplink_device_sent ({columns}) VALUES ({marks})"
        f" ON CONFLICT (device_id) DO UPDATE SET {updates}",
        [tuple(r[:_WIDTH]) for r in rows],
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
    # The fields read out of the attrs JSON (the costly part) are compared last: SQLite stops
    # at the first difference, and most rows differ in nothing.
    order = sorted(range(len(TRACKED)), key=lambda i: TRACKED[i] in _FROM_ATTRS)
    differs = " OR ".join(f"s.{TRACKED[i]} IS NOT cur.c{i + 1}" for i in order)
    current = _current_sql(conn, _EXTRA)
    # The current state's columns named (c0 = id, c1.. = TRACKED, then the extra four).
    width = _WIDTH + 4
    names = ", ".join(f"c{i}" for i in range(width))
    rows = conn.execute(
        f"WITH cur ({names}) AS"
        f" ({current}) SELECT cur.*, s.device_id, {sent_cols} FROM cur"
        " LEFT JOIN uplink_device_sent s ON s.device_id = cur.c0"
        f" WHERE s.device_id IS NULL OR {differs} ORDER BY cur.c0"
    ).fetchall()
    for row in rows:
        sent = None if row[width] is None else tuple(row[width + 1 :])
        tx.forward(KIND_DEVICE, _classify(tx, _body(row[:width], kinds), sent), LANE_DEVICES)
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
    # Every snapshot of this release carries every tracked field: none is due any more.
    conn.execute("DELETE FROM kv WHERE key = ?", (_SNAPSHOT_DUE_KEY,))
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


def snapshot_due(conn: sqlite3.Connection) -> bool:
    """Did a migration mark a snapshot due (a tracked field home does not know yet)?"""
    row = conn.execute("SELECT 1 FROM kv WHERE key = ?", (_SNAPSHOT_DUE_KEY,)).fetchone()
    return row is not None


def forward_due_snapshot(tx: Tx, watched_kinds: Iterable[str] = ()) -> str:
    """Forward the snapshot a migration marked due (uplink migration 4: the firmware version
    and SNMP maker home has not been told of the devices it already had); returns its id, or
    "" when none is due. Made even while an older snapshot waits in the outbox: that one was
    made by older firmware (any snapshot of this release clears the mark) and lacks the fields.
    The uplink service calls it before each changes check; one snapshot per upgrade."""
    if not snapshot_due(tx.conn):
        return ""
    made = forward_snapshot(tx, watched_kinds)
    tx.conn.execute("DELETE FROM kv WHERE key = ?", (_SNAPSHOT_DUE_KEY,))
    return made
