"""Each site's device inventory at home, kept from the boxes' ``device`` records at ingest.

The box sends a ``device`` record (docs/uplink.md, services/uplink/devices.py) whenever a
device joins, changes address, name, kind, vendor, model or firmware version, leaves or
returns, and a full
snapshot (every device, then ``snapshot_end``) when home's ingest answer asks for one with
``"inventory": "snapshot"``. Home asks (:func:`snapshot_wanted`) while it holds no complete
snapshot for the (appliance, stream), when the appliance was claimed (registered) again after
its last snapshot, or when the box reports more dropped device records than at its last one.

:func:`track` runs inside the ingest transaction (home/db.py ``ingest_sync``), only for records
above the high-water mark, so a resent batch changes nothing (exactly once), and writes:

* ``devices``: one row per (appliance, device_id): the latest state;
* ``device_changes``: one row per change (joined, baseline, added, left, returned,
  ip_changed, updated, removed), dated by the box's record time, for the monthly report's "changes";
* ``inventory_snapshots``: the last complete snapshot per (appliance, stream).

Everything from the box is untrusted text: stored as text (the pages escape it), NUL removed
(PostgreSQL refuses it in text), each field cut to :data:`MAX_TEXT_CHARS`. A malformed record is
skipped (it stays in ``records``); a failure of the tracking itself is rolled back alone and
forgets the stream's snapshot, so home asks for a new one instead of keeping a wrong inventory.

Each device's firmware version (``version``: what discovery read over SNMP, "" when unknown)
and the maker it names itself (``snmp_vendor``) came with migration 15 (:data:`FIRMWARE_SCHEMA`),
which also forgets every stream's snapshot so each box is asked for one and home learns the
versions of the devices it already had.

Readers for the console and the report: :func:`devices_sync`, :func:`device_sync`,
:func:`inventory_changes_sync`, :func:`firmware_sync` (pass the ``HomeDB`` or a connection;
call on a database thread, e.g. ``await db.call(devices_sync, db, appliance)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Protocol

from core.logs import get_log
from core.report.inputs import DeviceFirmware
from home.sql import Connection

log = get_log("home")

KIND: Final = "device"
MAX_TEXT_CHARS: Final = 256
#: Changes stored in ``device_changes`` (a snapshot is a state, not a change).
CHANGES: Final = frozenset(
    {"joined", "baseline", "added", "left", "returned", "ip_changed", "updated", "removed"}
)
_FIELDS: Final = (
    "mac", "ip", "name", "kind", "vendor", "model", "source", "state", "version", "snmp_vendor"
)  # fmt: skip
_STATES: Final = frozenset({"present", "left"})
_MAX_DEVICE_ID: Final = 2**62

# Migration of home/migrations.py (appended there as the next free number).
INVENTORY_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS devices (
        appliance TEXT NOT NULL,
        device_id INTEGER NOT NULL,
        mac TEXT NOT NULL DEFAULT '',
        ip TEXT NOT NULL DEFAULT '',
        name TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL DEFAULT 'unknown',
        vendor TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'present',
        watched INTEGER NOT NULL DEFAULT 0,
        first_seen REAL,
        last_seen REAL,
        updated_at REAL NOT NULL,
        snapshot TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (appliance, device_id)
    )""",
    """CREATE TABLE IF NOT EXISTS device_changes (
        id INTEGER PRIMARY KEY,
        appliance TEXT NOT NULL,
        device_id INTEGER NOT NULL,
        at REAL NOT NULL,
        change TEXT NOT NULL,
        mac TEXT NOT NULL DEFAULT '',
        ip TEXT NOT NULL DEFAULT '',
        old_ip TEXT NOT NULL DEFAULT '',
        name TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL DEFAULT '',
        vendor TEXT NOT NULL DEFAULT '',
        changed TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX IF NOT EXISTS device_changes_at ON device_changes (appliance, at)",
    """CREATE TABLE IF NOT EXISTS inventory_snapshots (
        appliance TEXT NOT NULL,
        stream TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        count INTEGER NOT NULL,
        device_drops INTEGER NOT NULL,
        received_at REAL NOT NULL,
        PRIMARY KEY (appliance, stream)
    )""",
)

# Migration 15 of home/migrations.py: each device's firmware version and SNMP maker, the
# version before and after an upgrade in its change, and every stream's snapshot forgotten (home
# asks each box for one: the versions of the devices it already had; a box of an older release
# sends one without them, harmlessly).
FIRMWARE_SCHEMA: Final = (
    "ALTER TABLE devices ADD COLUMN version TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE devices ADD COLUMN snmp_vendor TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE device_changes ADD COLUMN version TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE device_changes ADD COLUMN old_version TEXT NOT NULL DEFAULT ''",
    "DELETE FROM inventory_snapshots",
)


class HasConn(Protocol):
    """What the readers need of ``home.db.HomeDB``: this thread's connection."""

    @property
    def conn(self) -> Connection: ...


def _conn(db: HasConn | Connection) -> Connection:
    """The readers take the ``HomeDB`` or a connection (inside a caller's transaction)."""
    return db if isinstance(db, Connection) else db.conn


@dataclass(frozen=True)
class HomeDevice:
    """One device of a site as home holds it (a row of ``devices``).

    ``state``: "present" or "left" (discovery's presence: a device unseen for its leave time);
    ``watched``: its going away raises a "device down" alert on the box; ``first_seen`` /
    ``last_seen``: the box's wall clock (Unix seconds) as of the latest record;
    ``updated_at``: home's clock when the row last changed; ``version``: the firmware / OS
    version the device gave discovery over SNMP ("V2.10.3 build 7"; "" when not known);
    ``snmp_vendor``: the maker it names itself over SNMP ("Brother"; ``vendor`` is its network
    card's maker, "Brother industries, LTD."), "" when not known.
    """

    appliance: str
    device_id: int
    mac: str
    ip: str
    name: str
    kind: str
    vendor: str
    model: str
    source: str
    state: str
    watched: bool
    first_seen: float | None
    last_seen: float | None
    updated_at: float
    version: str = ""
    snmp_vendor: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeviceChange:
    """One change of a site's inventory (a row of ``device_changes``).

    ``change``: joined (a new device discovered), baseline (found by a fresh box's first
    sweep: already there, not news), added (configured by a technician, or the gateway role),
    left, returned, ip_changed (``old_ip`` -> ``ip``), updated (``changed`` names the fields:
    name, kind, vendor, model, mac, version, ...), removed; ``at``: the box's wall clock when
    it happened. ``name``/``kind``/``vendor``/``mac``/``ip``/``version``: the device as it was
    after the change; ``old_version``: its firmware version before (when ``version`` changed).
    """

    appliance: str
    device_id: int
    at: float
    change: str
    mac: str
    ip: str
    old_ip: str
    name: str
    kind: str
    vendor: str
    changed: tuple[str, ...]
    version: str = ""
    old_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "changed": list(self.changed)}


# ---- ingest (inside home/db.py's transaction) ----


def _text(value: Any) -> str:
    """Untrusted text from a box: str only, NUL removed, bounded."""
    if not isinstance(value, str):
        return ""
    return value.replace("\x00", "\ufffd")[:MAX_TEXT_CHARS]


def _time(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _device_id(body: Mapping[str, Any]) -> int | None:
    value = body.get("device_id")
    if type(value) is int and 0 <= value < _MAX_DEVICE_ID:
        return value
    return None


def track(conn: Connection, appliance: str, stream: str, records: Iterable[dict[str, Any]],
          now: float) -> None:  # fmt: skip
    """Apply a batch's new ``device`` records (in arrival order) to the inventory tables.

    Runs in a savepoint of the caller's transaction: if it fails, its writes are undone, the
    stream's snapshot is forgotten (home asks for a new one) and the batch is stored anyway.
    """
    batch = list(records)
    if not batch:
        return
    conn.execute("SAVEPOINT inventory")
    try:
        for rec in batch:
            _apply(conn, appliance, stream, rec, now)
    except Exception as exc:  # noqa: BLE001 - logged; the box's records are taken regardless
        conn.execute("ROLLBACK TO SAVEPOINT inventory")
        conn.execute(
            "DELETE FROM inventory_snapshots WHERE appliance = ? AND stream = ?",
            (appliance, stream),
        )
        log.error(
            "home.inventory_failed", appliance=appliance, error=f"{type(exc).__name__}: {exc}"
        )
    conn.execute("RELEASE SAVEPOINT inventory")


def _apply(conn: Connection, appliance: str, stream: str, rec: dict[str, Any], now: float) -> None:
    body = rec.get("body")
    if not isinstance(body, dict):
        return
    change = body.get("change")
    if change == "snapshot_end":
        _snapshot_end(conn, appliance, stream, body, now)
        return
    device_id = _device_id(body)
    if device_id is None or not isinstance(change, str):
        log.warning("home.device_record_skipped", appliance=appliance, seq=rec.get("seq"))
        return
    at = _time(rec.get("ts")) or now
    if change == "removed":
        conn.execute(
            "DELETE FROM devices WHERE appliance = ? AND device_id = ?", (appliance, device_id)
        )
        _change(conn, appliance, device_id, at, "removed", fields={})
        return
    fields = {f: _text(body.get(f)) for f in _FIELDS}
    if fields["state"] not in _STATES:
        fields["state"] = "present"
    fields["kind"] = fields["kind"] or "unknown"
    snapshot = _text(body.get("snapshot")) if change == "snapshot" else ""
    conn.execute(
        "INSERT INTO devices (appliance, device_id, mac, ip, name, kind, vendor, model, source,"
        " state, version, snmp_vendor, watched, first_seen, last_seen, updated_at, snapshot)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (appliance, device_id) DO UPDATE SET mac = excluded.mac,"
        " ip = excluded.ip, name = excluded.name, kind = excluded.kind,"
        " vendor = excluded.vendor, model = excluded.model, source = excluded.source,"
        " state = excluded.state, version = excluded.version,"
        " snmp_vendor = excluded.snmp_vendor, watched = excluded.watched,"
        " first_seen = excluded.first_seen, last_seen = excluded.last_seen,"
        " updated_at = excluded.updated_at, snapshot = excluded.snapshot",
        (
            appliance,
            device_id,
            *(fields[f] for f in _FIELDS),
            int(body.get("watched") is True),
            _time(body.get("first_seen")),
            _time(body.get("last_seen")),
            now,
            snapshot,
        ),
    )
    if change not in CHANGES:
        return
    old = body.get("old") if isinstance(body.get("old"), dict) else {}
    assert isinstance(old, dict)
    listed = body.get("changed")
    changed = tuple(_text(f) for f in listed[:16]) if isinstance(listed, list) else ()
    old_ip = _text(old.get("ip"))
    old_version = _text(old.get("version")) if "version" in changed else ""
    _change(
        conn,
        appliance,
        device_id,
        at,
        change,
        fields=fields,
        old_ip=old_ip,
        changed=changed,
        old_version=old_version,
    )
    if change in ("left", "returned") and "ip" in changed and old_ip and fields["ip"]:
        # It came back (or was last seen) at another address: that is a change of its own.
        _change(
            conn,
            appliance,
            device_id,
            at,
            "ip_changed",
            fields=fields,
            old_ip=old_ip,
            changed=("ip",),
        )


def _change(
    conn: Connection,
    appliance: str,
    device_id: int,
    at: float,
    change: str,
    *,
    fields: Mapping[str, str],
    old_ip: str = "",
    changed: tuple[str, ...] = (),
    old_version: str = "",
) -> None:
    conn.execute(
        "INSERT INTO device_changes (appliance, device_id, at, change, mac, ip, old_ip, name,"
        " kind, vendor, changed, version, old_version)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            appliance,
            device_id,
            at,
            change,
            fields.get("mac", ""),
            fields.get("ip", ""),
            old_ip,
            fields.get("name", ""),
            fields.get("kind", ""),
            fields.get("vendor", ""),
            ",".join(changed),
            fields.get("version", ""),
            old_version,
        ),
    )


def _snapshot_end(conn: Connection, appliance: str, stream: str, body: Mapping[str, Any],
                  now: float) -> None:  # fmt: skip
    snapshot = _text(body.get("snapshot"))
    count = body.get("count")
    drops = body.get("device_drops", 0)
    if not snapshot or type(count) is not int or type(drops) is not int:
        log.warning("home.snapshot_end_skipped", appliance=appliance)
        return
    got = conn.execute(
        "SELECT COUNT(*) FROM devices WHERE appliance = ? AND snapshot = ?", (appliance, snapshot)
    ).fetchone()
    if int(got[0]) != count:
        # Some of its records never came (quarantined, dropped): not complete, ask again.
        log.warning("home.snapshot_incomplete", appliance=appliance, got=got[0], count=count)
        return
    # Its records are consecutive in lane 0: every device it did not name is gone (a store
    # replaced under a new stream, a device the box forgot).
    conn.execute("DELETE FROM devices WHERE appliance = ? AND snapshot != ?", (appliance, snapshot))
    conn.execute(
        "INSERT INTO inventory_snapshots (appliance, stream, snapshot, count, device_drops,"
        " received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (appliance, stream) DO UPDATE SET"
        " snapshot = excluded.snapshot, count = excluded.count,"
        " device_drops = excluded.device_drops, received_at = excluded.received_at",
        (appliance, stream, snapshot, count, drops, now),
    )


def _reported_device_drops(drops: Any) -> int:
    """Device records the box says it dropped (cumulative, all reasons) from a batch's
    ``drops``: {reason: {kind: count}}."""
    if not isinstance(drops, dict):
        return 0
    total = 0
    for by_kind in drops.values():
        if isinstance(by_kind, dict):
            count = by_kind.get(KIND)
            if type(count) is int and count > 0:
                total += count
    return total


def snapshot_wanted(conn: Connection, appliance: str, stream: str, drops: Any) -> bool:
    """Should the ingest answer ask for a snapshot (``"inventory": "snapshot"``)? Yes while
    home holds no complete snapshot of this stream, when the appliance was registered
    (claimed) after it, or when the box dropped device records since."""
    row = conn.execute(
        "SELECT s.received_at, s.device_drops, a.registered_at FROM inventory_snapshots s"
        " LEFT JOIN appliances a ON a.id = s.appliance WHERE s.appliance = ? AND s.stream = ?",
        (appliance, stream),
    ).fetchone()
    if row is None:
        return True
    received_at, dropped_then, registered_at = row
    if registered_at is not None and registered_at > received_at:
        return True
    return _reported_device_drops(drops) > int(dropped_then)


# ---- readers (the console's site and device pages, the monthly report) ----

_DEVICE_COLUMNS: Final = (
    "appliance, device_id, mac, ip, name, kind, vendor, model, source, state, watched,"
    " first_seen, last_seen, updated_at, version, snmp_vendor"
)


def _device(row: Any) -> HomeDevice:
    values = list(row)
    values[10] = bool(values[10])
    return HomeDevice(*values)


def devices_sync(db: HasConn | Connection, appliance: str) -> list[HomeDevice]:
    """The devices of one appliance (its site), present first, then by address."""
    rows = (
        _conn(db)
        .execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE appliance = ?"
            " ORDER BY CASE WHEN state = 'present' THEN 0 ELSE 1 END, ip, device_id",
            (appliance,),
        )
        .fetchall()
    )
    return [_device(r) for r in rows]


def device_sync(db: HasConn | Connection, appliance: str, device_id: int) -> HomeDevice | None:
    """One device of an appliance, or None."""
    row = (
        _conn(db)
        .execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE appliance = ? AND device_id = ?",
            (appliance, device_id),
        )
        .fetchone()
    )
    return _device(row) if row else None


def inventory_changes_sync(
    db: HasConn | Connection, appliance: str, since: float, until: float
) -> list[DeviceChange]:
    """Changes of one appliance's inventory with ``since <= at < until`` (box wall clock,
    Unix seconds), oldest first."""
    rows = (
        _conn(db)
        .execute(
            "SELECT appliance, device_id, at, change, mac, ip, old_ip, name, kind, vendor, changed,"
            " version, old_version FROM device_changes WHERE appliance = ? AND at >= ? AND at < ?"
            " ORDER BY at, id",
            (appliance, since, until),
        )
        .fetchall()
    )
    return [
        DeviceChange(
            appliance=str(r[0]),
            device_id=int(r[1]),
            at=float(r[2]),
            change=str(r[3]),
            mac=str(r[4]),
            ip=str(r[5]),
            old_ip=str(r[6]),
            name=str(r[7]),
            kind=str(r[8]),
            vendor=str(r[9]),
            changed=tuple(f for f in str(r[10]).split(",") if f),
            version=str(r[11]),
            old_version=str(r[12]),
        )
        for r in rows
    ]


def firmware_sync(db: HasConn | Connection, appliance: str) -> list[DeviceFirmware]:
    """The firmware of each device of one appliance whose version home knows (non-blank), by
    device id, for the monthly report's firmware check (core/report/firmware.py): the version
    as the device gave it (stripped), the maker it names itself over SNMP else its network
    card's (as the box's own report does, web/report_data.py), and its model."""
    rows = (
        _conn(db)
        .execute(
            "SELECT device_id, version, snmp_vendor, vendor, model FROM devices"
            " WHERE appliance = ? AND version <> '' ORDER BY device_id",
            (appliance,),
        )
        .fetchall()
    )
    return [
        DeviceFirmware(int(i), str(version).strip(), str(snmp_vendor or vendor), str(model))
        for i, version, snmp_vendor, vendor, model in rows
        if str(version).strip()
    ]
