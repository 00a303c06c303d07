"""The monthly report from the appliance's own store: rows read and adapted to core.report.

Sources (services/store/schema.py): ``devices``; ``measurements`` joined to ``series`` for
``device.reachable`` (every poll's liveness verdict), ``storage.used_pct`` and
``supply.level_pct``; ``alerts``; ``events`` (discovery's device.joined/left/returned/
ip_changed, the page's alert.acked). Runs on a store reader thread (``store.read``).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable

from core.report.forecast import DAY_S, WINDOW_DAYS
from core.report.hours import BusinessHours, Period
from core.report.inputs import Alert, Device, Happening, Point, ReportInput

REACHABLE_METRIC = "device.reachable"  # written by services/polling/service.py:store_result
_MARGIN_S = 3600.0  # read a little before the period: the verdict in force at its start
_EVENT_KINDS = (
    "device.joined",
    "device.left",
    "device.returned",
    "device.ip_changed",
    "alert.acked",
)


def _series(
    conn: sqlite3.Connection, metric: str, start_s: float, end_s: float
) -> dict[tuple[int, str], list[Point]]:
    out: dict[tuple[int, str], list[Point]] = defaultdict(list)
    rows = conn.execute(
        "SELECT s.device_id, s.instance, m.ts, m.value FROM series s"
        " JOIN measurements m ON m.series = s.id"
        " WHERE s.metric = ? AND s.device_id IS NOT NULL AND m.ts >= ? AND m.ts < ?"
        " ORDER BY s.id, m.ts",
        (metric, start_s, end_s),
    )
    for device_id, instance, ts, value in rows:
        out[(int(device_id), str(instance))].append((float(ts), value))
    return out


def _devices(conn: sqlite3.Connection, gateway_ip: str) -> list[Device]:
    return [
        Device(
            int(i), str(name or ""), str(kind or "unknown"), str(ip or ""), str(vendor or ""),
            float(first_seen or 0.0), bool(gateway_ip) and ip == gateway_ip,
        )
        for i, name, kind, ip, vendor, first_seen in conn.execute(
            "SELECT id, name, kind, ip, vendor, first_seen FROM devices ORDER BY id"
        )
    ]  # fmt: skip


def _alerts(conn: sqlite3.Connection, start_s: float, end_s: float) -> list[Alert]:
    return [
        Alert(
            int(i), str(key), str(rule), None if dev is None else int(dev), str(sev),
            str(msg or ""), float(opened), None if resolved is None else float(resolved),
            bool(acked),
        )
        for i, key, rule, dev, sev, msg, opened, resolved, acked in conn.execute(
            "SELECT id, key, rule, device_id, severity, message, opened_ts, resolved_ts, acked"
            " FROM alerts WHERE opened_ts < ? AND (resolved_ts IS NULL OR resolved_ts >= ?)"
            " ORDER BY opened_ts, id",
            (end_s, start_s - _MARGIN_S),
        )
    ]  # fmt: skip


def _happenings(conn: sqlite3.Connection, start_s: float, end_s: float) -> list[Happening]:
    marks = ",".join("?" for _ in _EVENT_KINDS)
    out = []
    for kind, device_id, ts, message, data in conn.execute(
        f"SELECT kind, device_id, ts, message, data FROM events WHERE kind IN ({marks})"
        " AND ts >= ? AND ts < ? ORDER BY ts, id",
        (*_EVENT_KINDS, start_s, end_s),
    ):
        try:
            body = json.loads(data or "{}")
        except ValueError:
            body = {}
        out.append(
            Happening(
                str(kind), float(ts), None if device_id is None else int(device_id),
                str(message or ""), body if isinstance(body, dict) else {},
            )
        )  # fmt: skip
    return out


def _by_device(series: dict[tuple[int, str], list[Point]]) -> dict[int, list[Point]]:
    return {device_id: points for (device_id, _), points in series.items()}


def load_input(
    conn: sqlite3.Connection,
    *,
    site: str,
    period: Period,
    hours: BusinessHours,
    gateway_ip: str,
    msp_name: str = "",
) -> ReportInput:
    """Everything the report of ``period`` needs, from the appliance's store."""
    start_s, end_s = period.start_s, period.end_s
    trend_from = end_s - WINDOW_DAYS * DAY_S
    return ReportInput(
        site=site,
        period=period,
        hours=hours,
        devices=_devices(conn, gateway_ip),
        reach=_by_device(_series(conn, REACHABLE_METRIC, start_s - _MARGIN_S, end_s)),
        volumes=_series(conn, "storage.used_pct", trend_from, end_s),
        supplies=_series(conn, "supply.level_pct", trend_from, end_s),
        alerts=_alerts(conn, start_s, end_s),
        happenings=_happenings(conn, start_s, end_s),
        msp_name=msp_name,
        source="this monitoring appliance's own records",
    )


def months_with_data(conn: sqlite3.Connection) -> Iterable[float]:
    """The first and last measurement times (for the page's month picker)."""
    row = conn.execute("SELECT MIN(ts), MAX(ts) FROM measurements").fetchone()
    return () if row is None or row[0] is None else (float(row[0]), float(row[1]))
