"""A site's devices as the console shows them: home's inventory (home/inventory.py, kept from
the boxes' ``device`` records) with each device's open alerts and latest readings.

Open alerts belong to a device by their key (``rule:DEVICE_ID[:...]``, e.g. ``icmp.down:7``,
``supply.low:7:black``: home/notify/silences.device_of). Readings come from the ``measurement``
records home received for the device over the last READINGS_WINDOW_S (their bodies carry
``device_id``, ``metric``, ``instance``, ``unit``, ``value``: docs/uplink.md), found by the
index on the body's ``device_id`` (home/migrations.py, migration 14).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from home import inventory
from home.console.fleet import SEVERITIES, open_alerts
from home.migrations import MEASUREMENT_DEVICE
from home.notify.silences import device_of
from home.sql import Connection, Dialect

READINGS_WINDOW_S = 24 * 3600.0
MAX_READING_RECORDS = 20_000  # one device's day at 25 series a minute is 36 000: newest kept
CHART_POINTS = 240
CHART_W = 600
CHART_H = 120


@dataclass(frozen=True)
class Reading:
    metric: str
    instance: str
    unit: str
    latest: float | None
    at: float
    points: str  # SVG polyline points "x,y x,y ..." in a CHART_W x CHART_H box
    low: float | None
    high: float | None
    span_s: float  # the chart's time span, seconds


class _Conn:
    """home/inventory's readers take something with ``.conn``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn


def site_devices(conn: Connection, appliance: str, now: float) -> list[dict[str, Any]]:
    """The site's devices (present first, then by address) with their open alerts."""
    by_device: dict[str, list[str]] = {}
    for alert in open_alerts(conn, now, appliance):
        by_device.setdefault(device_of(alert.key), []).append(alert.severity)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    out = []
    for device in inventory.devices_sync(_Conn(conn), appliance):
        severities = by_device.get(str(device.device_id), [])
        doc = device.as_dict()
        doc["alerts"] = len(severities)
        doc["worst"] = min(severities, key=lambda s: rank.get(s, 99), default="")
        out.append(doc)
    return out


def _points(series: list[tuple[float, float]], since: float, until: float) -> str:
    values = [v for _t, v in series]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = max(1, len(series) // CHART_POINTS)
    coords = []
    for t, v in series[::step]:
        x = (t - since) / max(1.0, until - since) * CHART_W
        y = CHART_H - 4 - (v - low) / span * (CHART_H - 8)
        coords.append(f"{x:.1f},{y:.1f}")
    return " ".join(coords)


def readings_sql(dialect: Dialect) -> str:
    """The newest measurements of one device since a time: parameters appliance, device id
    (int on SQLite; its digits as text on PostgreSQL), since (epoch seconds),
    limit. Read by migration 14's index on this very expression (a planner matches an
    expression index only verbatim)."""
    return (
        "SELECT ts, body FROM records WHERE appliance = ? AND kind = 'measurement'"
        f" AND {MEASUREMENT_DEVICE[dialect]} = ? AND ts >= ? ORDER BY ts DESC LIMIT ?"
    )


def readings(conn: Connection, appliance: str, device_id: int, now: float) -> list[Reading]:
    """Each series of the device over the last READINGS_WINDOW_S: latest value and a chart."""
    since = now - READINGS_WINDOW_S
    device: int | str = int(device_id) if conn.dialect == "sqlite" else str(int(device_id))
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    units: dict[tuple[str, str], str] = {}
    for ts, body in conn.execute(
        readings_sql(conn.dialect), (appliance, device, since, MAX_READING_RECORDS)
    ).fetchall():
        try:
            doc = json.loads(body)
        except ValueError:
            continue
        if doc.get("device_id") != device_id:
            continue
        key = (str(doc.get("metric", "")), str(doc.get("instance", "")))
        value = doc.get("value")
        units.setdefault(key, str(doc.get("unit", "")))
        if isinstance(value, int | float) and not isinstance(value, bool):
            series.setdefault(key, []).append((float(ts), float(value)))
        else:
            series.setdefault(key, [])
    out = []
    for (metric, instance), points in sorted(series.items()):
        points.reverse()  # oldest first
        out.append(
            Reading(
                metric=metric,
                instance=instance,
                unit=units.get((metric, instance), ""),
                latest=points[-1][1] if points else None,
                at=points[-1][0] if points else 0.0,
                # The chart spans the series' own time (a device seen for an hour is not a
                # sliver at the right of a 24 h axis).
                points=_points(points, points[0][0], points[-1][0]) if len(points) > 1 else "",
                span_s=points[-1][0] - points[0][0] if points else 0.0,
                low=min(v for _t, v in points) if points else None,
                high=max(v for _t, v in points) if points else None,
            )
        )
    return out


def device_detail(
    conn: Connection, appliance: str, device_id: int, now: float
) -> dict[str, Any] | None:
    """The device, its open alerts, readings and inventory changes of the last 30 days."""
    device = inventory.device_sync(_Conn(conn), appliance, device_id)
    if device is None:
        return None
    alerts = [a for a in open_alerts(conn, now, appliance) if device_of(a.key) == str(device_id)]
    changes = [
        c
        for c in inventory.inventory_changes_sync(_Conn(conn), appliance, now - 30 * 86400, now + 1)
        if c.device_id == device_id
    ]
    return {
        "device": device.as_dict(),
        "alerts": [dict(vars(a)) for a in alerts],
        "readings": [dict(vars(r)) for r in readings(conn, appliance, device_id, now)],
        "changes": [dict(vars(c)) | {"changed": list(c.changed)} for c in reversed(changes)],
    }
