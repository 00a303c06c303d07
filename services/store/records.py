"""Typed records that cross between services, and the write functions that store them.

Every function here runs inside a store transaction (``await store.write(lambda tx: ...)``) and
appends what is bound for home to the outbox in that same transaction, so a record is either
stored and queued for the MSP, or neither.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.vocabulary import Severity
from services.store import reach
from services.store.db import Tx

LANE_PRIORITY = 0  # alerts and events: sent before anything else
LANE_BULK = 1  # measurements


@dataclass(frozen=True)
class Measurement:
    device_id: int | None  # None: the appliance itself
    metric: str  # e.g. "icmp.rtt_ms", "storage.used_pct", "if.in_bps"
    value: float | None  # None: measured, but the device reported no usable value
    instance: str = ""  # e.g. the interface or volume the value is about
    unit: str = ""


@dataclass(frozen=True)
class Event:
    kind: str  # e.g. "device.joined", "device.ip_changed", "alert.opened"
    device_id: int | None = None
    severity: Severity = Severity.INFO
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


def _series_id(conn: sqlite3.Connection, m: Measurement) -> int:
    row = conn.execute(
        "SELECT id FROM series WHERE device_id IS ? AND metric = ? AND instance = ?",
        (m.device_id, m.metric, m.instance),
    ).fetchone()
    if row is not None:
        return int(row[0])
    cursor = conn.execute(
        "INSERT INTO series (device_id, metric, instance, unit) VALUES (?, ?, ?, ?)",
        (m.device_id, m.metric, m.instance, m.unit),
    )
    return int(cursor.lastrowid or 0)


def insert_measurements(tx: Tx, items: Iterable[Measurement]) -> int:
    """Store measurements stamped with the batch's time; return how many were stored."""
    stamp = tx.stamp
    rows = []
    verdicts: list[tuple[int, float | None]] = []
    for m in items:
        series = _series_id(tx.conn, m)
        rows.append((series, stamp.wall, stamp.mono, tx.boot, int(stamp.synced), m.value))
        if m.metric == reach.REACHABLE_METRIC and m.device_id is not None:
            verdicts.append((series, m.value))
        tx.forward(
            "measurement",
            {
                "device_id": m.device_id,
                "metric": m.metric,
                "instance": m.instance,
                "unit": m.unit,
                "value": m.value,
                "ts": stamp.wall,
                "mono": stamp.mono,
                "boot_id": stamp.boot_id,
                "synced": stamp.synced,
            },
            LANE_BULK,
        )
    tx.conn.executemany(
        "INSERT INTO measurements (series, ts, mono, boot, synced, value) VALUES (?,?,?,?,?,?)",
        rows,
    )
    for series, value in verdicts:  # the report's summary, in the same transaction
        reach.observe(tx.conn, series, stamp.wall, value)
    return len(rows)


def insert_event(tx: Tx, event: Event) -> int:
    """Store one event; return its id."""
    stamp = tx.stamp
    data = json.dumps(dict(event.data), sort_keys=True, default=str)
    cursor = tx.conn.execute(
        "INSERT INTO events (kind, device_id, severity, message, data, ts, mono, boot, synced)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        (
            event.kind,
            event.device_id,
            event.severity,
            event.message,
            data,
            stamp.wall,
            stamp.mono,
            tx.boot,
            int(stamp.synced),
        ),
    )
    event_id = int(cursor.lastrowid or 0)
    tx.forward(
        "event",
        {
            "id": event_id,
            "kind": event.kind,
            "device_id": event.device_id,
            "severity": event.severity,
            "message": event.message,
            "data": json.loads(data),
            "ts": stamp.wall,
            "mono": stamp.mono,
            "boot_id": stamp.boot_id,
            "synced": stamp.synced,
        },
        LANE_PRIORITY,
    )
    return event_id
