"""Read models of the status page: what each page and API endpoint shows, from the store.

Every function here takes a read-only sqlite3 connection and runs on a store reader thread
(``await ctx.store.read(fn)``), never on the event loop. Values are returned raw (names and
descriptions exactly as the network sent them); escaping is the renderer's job.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.vocabulary import DEVICE_KINDS, Severity, severity_rank_sql

SEVERITIES: tuple[str, ...] = tuple(str(s) for s in Severity.worst_first())  # critical first
KINDS = DEVICE_KINDS
# Alert rules that mean "the device does not answer at all" (alerting's rule names).
DOWN_RULES = ("device.down", "icmp.down", "device.unreachable")
RTT_METRIC = "icmp.rtt_ms"
# A latency sample older than this no longer says the device is up.
STALE_AFTER_S = 15 * 60.0
SORT_KEYS = ("name", "ip", "kind", "state", "last_seen", "rtt")
RANGES_S = {"24h": 24 * 3600.0, "7d": 7 * 24 * 3600.0}
CHART_POINTS = 288  # buckets per chart: 5 min over 24 h, 35 min over 7 d


def _rows(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return row.fetchone() is not None


def _json(text: str | None) -> Any:
    try:
        return json.loads(text or "{}")
    except ValueError:
        return {}


def _ip_sort_key(ip: str | None) -> str:
    if not ip:
        return "~"
    parts = ip.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return ".".join(f"{int(p):03d}" for p in parts)
    return ip


# ---- devices and their state ----

_DEVICE_SQL = f"""
WITH rtt AS (
    SELECT s.device_id AS device_id,
           (SELECT m.value FROM measurements m WHERE m.series = s.id
            ORDER BY m.ts DESC LIMIT 1) AS value,
           (SELECT m.ts FROM measurements m WHERE m.series = s.id
            ORDER BY m.ts DESC LIMIT 1) AS ts
    FROM series s WHERE s.metric = '{RTT_METRIC}' AND s.instance = ''
),
down AS (
    SELECT DISTINCT device_id FROM alerts
    WHERE state = 'open' AND rule IN ({",".join("'" + r + "'" for r in DOWN_RULES)})
),
open_alerts AS (
    SELECT device_id, COUNT(*) AS n,
           MIN({severity_rank_sql("severity")}) AS worst
    FROM alerts WHERE state = 'open' AND device_id IS NOT NULL GROUP BY device_id
)
SELECT d.id, d.mac, d.ip, d.name, d.kind, d.vendor, d.source, d.first_seen, d.last_seen,
       rtt.value AS rtt, rtt.ts AS rtt_ts,
       CASE WHEN down.device_id IS NOT NULL THEN 'down'
            WHEN {{reachable}} = 0 THEN 'down'
            WHEN {{reachable}} = 1 THEN 'up'
            WHEN rtt.ts IS NOT NULL AND rtt.ts >= :stale AND rtt.value IS NULL THEN 'down'
            WHEN rtt.ts IS NOT NULL AND rtt.ts >= :stale THEN 'up'
            ELSE 'unknown' END AS state,
       COALESCE(open_alerts.n, 0) AS open_alerts,
       open_alerts.worst AS worst_alert
FROM devices d
LEFT JOIN rtt ON rtt.device_id = d.id
LEFT JOIN down ON down.device_id = d.id
LEFT JOIN open_alerts ON open_alerts.device_id = d.id
{{join}}
"""


def _device_sql(conn: sqlite3.Connection) -> str:
    """The device query, using polling's verdict (poll_state.reachable) once polling exists."""
    if _table_exists(conn, "poll_state"):
        return _DEVICE_SQL.format(
            reachable="ps.reachable", join="LEFT JOIN poll_state ps ON ps.device_id = d.id"
        )
    return _DEVICE_SQL.format(reachable="NULL", join="")


_SEARCHED = ("name", "ip", "mac", "vendor", "kind")
_STATE_RANK = {"down": 0, "unknown": 1, "away": 2, "up": 3}


@dataclass(frozen=True)
class WatchList:
    """Which devices a "device down" alert is raised for: kinds in [alerting]
    down_alert_kinds, the gateway, devices marked monitored. The others (laptops, phones)
    come and go: when they stop answering their state is "away", not "down"."""

    kinds: tuple[str, ...]
    gateway_ip: str = ""


def devices(
    conn: sqlite3.Connection,
    now: float,
    query: str = "",
    sort: str = "name",
    watch: WatchList | None = None,
) -> list[dict[str, Any]]:
    """Every device with its state; ``query`` matches name, IP, MAC, vendor or kind. With
    ``watch``, each row also says whether it is ``watched`` for down (and "away" replaces
    "down" for the others)."""
    rows = _rows(conn, _device_sql(conn), {"stale": now - STALE_AFTER_S})
    if watch is not None:
        mark_watched(conn, rows, watch.kinds, watch.gateway_ip)
    needle = query.strip().lower()
    if needle:
        rows = [r for r in rows if any(needle in str(r[k] or "").lower() for k in _SEARCHED)]
    key = sort.lstrip("-")
    reverse = sort.startswith("-")
    sorters: dict[str, Callable[[dict[str, Any]], Any]] = {
        "name": lambda r: ((r["name"] or "~").lower(), _ip_sort_key(r["ip"])),
        "ip": lambda r: _ip_sort_key(r["ip"]),
        "kind": lambda r: (r["kind"], (r["name"] or "").lower()),
        "state": lambda r: (_STATE_RANK.get(r["state"], 3), (r["name"] or "").lower()),
        "last_seen": lambda r: -(r["last_seen"] or 0),
        "rtt": lambda r: (r["rtt"] is None, r["rtt"] or 0),
    }
    rows.sort(key=sorters.get(key, sorters["name"]), reverse=reverse)
    return rows


def device(
    conn: sqlite3.Connection, device_id: int, now: float, watch: WatchList | None = None
) -> dict[str, Any] | None:
    rows = _rows(
        conn,
        _device_sql(conn) + " WHERE d.id = :id",
        {"stale": now - STALE_AFTER_S, "id": device_id},
    )
    if not rows:
        return None
    dev = rows[0]
    attrs_row = conn.execute("SELECT attrs FROM devices WHERE id = ?", (device_id,)).fetchone()
    dev["attrs"] = _json(attrs_row[0] if attrs_row else "{}")
    dev["latest"] = latest_by_series(conn, device_id)
    dev["alerts"] = _rows(
        conn,
        "SELECT id, rule, severity, state, message, opened_ts, resolved_ts, acked FROM alerts"
        " WHERE device_id = ? ORDER BY state = 'open' DESC, opened_ts DESC LIMIT 50",
        (device_id,),
    )
    dev["events"] = _rows(
        conn,
        "SELECT id, kind, severity, message, ts FROM events WHERE device_id = ?"
        " ORDER BY ts DESC, id DESC LIMIT 50",
        (device_id,),
    )
    dev["snmp"] = _device_snmp(conn, device_id)
    answered = "answered" if _has_column(conn, "poll_checks", "answered") else "NULL AS answered"
    dev["checks"] = (
        _rows(
            conn,
            f"SELECT check_name, ok, ts, error, {answered} FROM poll_checks WHERE device_id = ?"
            " ORDER BY check_name",
            (device_id,),
        )
        if _table_exists(conn, "poll_checks")
        else []
    )
    dev["liveness"] = liveness(conn, device_id)
    if watch is not None:
        dev["watched"] = watched_for_down(
            str(dev["kind"]),
            dev["attrs"] if isinstance(dev["attrs"], dict) else {},
            str(dev["ip"] or ""),
            watch.kinds,
            watch.gateway_ip,
        )
        attrs = dev["attrs"] if isinstance(dev["attrs"], dict) else {}
        dev["watch_configured"] = isinstance(attrs.get("monitored"), bool)
        if not dev["watched"] and dev["state"] == "down":
            dev["state"] = "away"
    return dev


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    if not _table_exists(conn, table):
        return False
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def liveness(conn: sqlite3.Connection, device_id: int) -> dict[str, Any]:
    """Polling's liveness evidence for one device (services/polling/liveness.py):
    ``answered_by`` and ``silent`` (lists of "arp", "icmp", "tcp", "snmp", "mdns"),
    ``last_answer_ts`` (wall s or None), ``missed`` (polls in a row); {} before any poll."""
    if not _has_column(conn, "poll_state", "answered_by"):
        return {}
    row = conn.execute(
        "SELECT answered_by, silent, last_answer_ts, missed FROM poll_state WHERE device_id = ?",
        (device_id,),
    ).fetchone()
    if row is None:
        return {}
    return {
        "answered_by": [m for m in str(row[0] or "").split(",") if m],
        "silent": [m for m in str(row[1] or "").split(",") if m],
        "last_answer_ts": row[2],
        "missed": int(row[3] or 0),
    }


def watched_for_down(
    kind: str, attrs: Mapping[str, Any], ip: str, down_alert_kinds: Sequence[str], gateway_ip: str
) -> bool:
    """Whether a "device down" alert is raised when it stops answering; the same rule as
    services/alerting/rules.py: the gateway always, then a technician's ``monitored`` (true or
    false, [[polling.devices]]), else kinds in [alerting] down_alert_kinds (the rest get
    presence events)."""
    if gateway_ip and ip == gateway_ip:
        return True
    marked = attrs.get("monitored")
    if isinstance(marked, bool):
        return marked
    return kind in down_alert_kinds


def mark_watched(
    conn: sqlite3.Connection,
    rows: list[dict[str, Any]],
    down_alert_kinds: Sequence[str],
    gateway_ip: str,
) -> list[dict[str, Any]]:
    """Add ``watched`` (bool) and ``watch_configured`` (a technician's ``monitored`` decides)
    to each device row of :func:`devices`; a device not watched that does not answer is
    "away" (it left, as laptops do), not "down"."""
    marked: dict[int, bool] = {}
    for device_id, attrs_text in conn.execute(
        "SELECT id, attrs FROM devices WHERE attrs LIKE '%\"monitored\": %'"
    ):
        parsed = _json(attrs_text)
        value = parsed.get("monitored") if isinstance(parsed, dict) else None
        if isinstance(value, bool):
            marked[int(device_id)] = value
    for r in rows:
        attrs = {"monitored": marked[r["id"]]} if r["id"] in marked else {}
        r["watch_configured"] = r["id"] in marked
        r["watched"] = watched_for_down(
            str(r["kind"]), attrs, str(r["ip"] or ""), down_alert_kinds, gateway_ip
        )
        if not r["watched"] and r["state"] == "down":
            r["state"] = "away"
    return rows


def _device_snmp(conn: sqlite3.Connection, device_id: int) -> dict[str, Any]:
    """Discovery's SNMP facts for the device, when its table exists (no secrets in it)."""
    if not _table_exists(conn, "device_snmp"):
        return {}
    cursor = conn.execute("SELECT * FROM device_snmp WHERE device_id = ?", (device_id,))
    row = cursor.fetchone()
    if row is None:
        return {}
    names = [d[0] for d in cursor.description]
    out = {}
    for name, value in zip(names, row, strict=True):
        if name == "device_id" or _looks_secret(name):
            continue
        out[name] = value
    return out


_SECRET_NAME = re.compile(r"community|secret|password|passphrase|key|token|credential", re.I)


def _looks_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def latest_by_series(conn: sqlite3.Connection, device_id: int) -> list[dict[str, Any]]:
    """The newest value of each of the device's series: metric, instance, unit, value, ts."""
    return _rows(
        conn,
        """SELECT s.metric, s.instance, s.unit, m.value, m.ts FROM series s
           JOIN measurements m ON m.id = (SELECT id FROM measurements WHERE series = s.id
                                          ORDER BY ts DESC LIMIT 1)
           WHERE s.device_id = ? ORDER BY s.metric, s.instance""",
        (device_id,),
    )


@dataclass(frozen=True)
class Point:
    ts: float
    avg: float | None
    low: float | None
    high: float | None


def series_points(
    conn: sqlite3.Connection,
    device_id: int | None,
    metric: str,
    since: float,
    until: float,
    *,
    instance: str | None = None,
    points: int = CHART_POINTS,
) -> dict[str, list[Point]]:
    """Bucketed values per instance over [since, until): avg, min and max per bucket."""
    bucket = max(1.0, (until - since) / points)
    where = "s.device_id IS ? AND s.metric = ?"
    params: list[Any] = [device_id, metric]
    if instance is not None:
        where += " AND s.instance = ?"
        params.append(instance)
    rows = conn.execute(
        f"""SELECT s.instance, CAST((m.ts - ?) / ? AS INTEGER) AS b,
                   AVG(m.value), MIN(m.value), MAX(m.value)
            FROM series s JOIN measurements m ON m.series = s.id
            WHERE {where} AND m.ts >= ? AND m.ts < ?
            GROUP BY s.instance, b ORDER BY s.instance, b""",
        [since, bucket, *params, since, until],
    ).fetchall()
    out: dict[str, list[Point]] = {}
    for inst, b, avg, low, high in rows:
        out.setdefault(inst, []).append(Point(since + (b + 0.5) * bucket, avg, low, high))
    return out


# ---- overview, alerts, events ----


def overview(
    conn: sqlite3.Connection, now: float, watch: WatchList | None = None
) -> dict[str, Any]:
    devs = devices(conn, now, watch=watch)
    by_kind: dict[str, int] = {}
    by_state = {"up": 0, "down": 0, "unknown": 0, "away": 0}
    for d in devs:
        by_kind[d["kind"]] = by_kind.get(d["kind"], 0) + 1
        by_state[d["state"]] = by_state.get(d["state"], 0) + 1
    # Info is never an open alert to count (a new device is news, not a problem): the
    # headline, the counts and the API's totals leave it out, like the LEDs and alerts.open.
    alerts = {s: 0 for s in SEVERITIES if s != Severity.INFO}
    unacked = 0
    for severity, n, un in conn.execute(
        "SELECT severity, COUNT(*), SUM(acked = 0) FROM alerts WHERE state = 'open'"
        " AND severity != 'info' GROUP BY severity"
    ):
        alerts[severity] = int(n)
        unacked += int(un or 0)
    outbox = {
        int(lane): int(n)
        for lane, n in conn.execute("SELECT lane, COUNT(*) FROM outbox GROUP BY lane")
    }
    down = [
        {"id": d["id"], "name": d["name"], "ip": d["ip"], "kind": d["kind"]}
        for d in devs
        if d["state"] == "down"
    ]
    return {
        "devices": {"total": len(devs), "by_state": by_state, "by_kind": by_kind},
        "alerts_open": alerts,
        "alerts_unacked": unacked,
        "outbox": {"priority": outbox.get(0, 0), "bulk": outbox.get(1, 0)},
        "down": down[:20],
        "recent_events": _rows(
            conn,
            "SELECT e.id, e.kind, e.severity, e.message, e.ts, e.device_id, d.name AS device_name,"
            " d.ip AS device_ip FROM events e LEFT JOIN devices d ON d.id = e.device_id"
            " ORDER BY e.ts DESC, e.id DESC LIMIT 8",
        ),
    }


def alerts(conn: sqlite3.Connection, state: str = "open", limit: int = 200) -> list[dict[str, Any]]:
    where = "a.state = 'open'" if state == "open" else "a.state = 'resolved'"
    order = (
        f"{severity_rank_sql('a.severity')}, a.opened_ts DESC"
        if state == "open"
        else "a.resolved_ts DESC"
    )
    return _rows(
        conn,
        f"""SELECT a.id, a.key, a.rule, a.device_id, a.severity, a.state, a.message,
                   a.opened_ts, a.resolved_ts, a.acked, a.acked_by, a.acked_ts,
                   d.name AS device_name, d.ip AS device_ip
            FROM alerts a LEFT JOIN devices d ON d.id = a.device_id
            WHERE {where} ORDER BY {order} LIMIT ?""",
        (limit,),
    )


def events(
    conn: sqlite3.Connection,
    limit: int = 200,
    before_id: int | None = None,
    severity: str | None = None,
) -> list[dict[str, Any]]:
    where = ["1=1"]
    params: list[Any] = []
    if before_id is not None:
        where.append("e.id < ?")
        params.append(before_id)
    if severity in SEVERITIES:
        where.append("e.severity = ?")
        params.append(severity)
    return _rows(
        conn,
        f"""SELECT e.id, e.kind, e.device_id, e.severity, e.message, e.ts,
                   d.name AS device_name, d.ip AS device_ip
            FROM events e LEFT JOIN devices d ON d.id = e.device_id
            WHERE {" AND ".join(where)} ORDER BY e.ts DESC, e.id DESC LIMIT ?""",
        [*params, limit],
    )


def fingerprint(conn: sqlite3.Connection) -> tuple[Any, ...]:
    """Cheap summary that changes whenever anything a page shows changes."""
    row = conn.execute(
        """SELECT (SELECT MAX(id) FROM events), (SELECT MAX(id) FROM measurements),
                  (SELECT COUNT(*) FROM devices), (SELECT MAX(last_seen) FROM devices),
                  (SELECT MAX(id) FROM alerts),
                  (SELECT COUNT(*) FROM alerts WHERE state = 'open'),
                  (SELECT SUM(acked) FROM alerts WHERE state = 'open')"""
    ).fetchone()
    return tuple(row)


def ack_alert(conn: sqlite3.Connection, alert_id: int) -> bool:
    """Runs inside a store write transaction."""
    cursor = conn.execute(
        "UPDATE alerts SET acked = 1 WHERE id = ? AND state = 'open' AND acked = 0", (alert_id,)
    )
    return cursor.rowcount > 0


def store_metrics(conn: sqlite3.Connection) -> dict[str, Any]:
    outbox = {
        int(lane): (int(n), float(oldest or 0))
        for lane, n, oldest in conn.execute(
            "SELECT lane, COUNT(*), MIN(ts) FROM outbox GROUP BY lane"
        )
    }
    devices_n = conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
    alerts_open = dict(
        conn.execute("SELECT severity, COUNT(*) FROM alerts WHERE state='open' GROUP BY severity")
    )
    polls: dict[str, float] = {}
    if _table_exists(conn, "poll_state"):
        row = conn.execute(
            "SELECT COUNT(*), AVG(duration_ms), MAX(duration_ms), SUM(reachable = 0),"
            " MIN(last_poll_ts) FROM poll_state"
        ).fetchone()
        polls = {
            "devices": float(row[0] or 0),
            "duration_avg_s": float(row[1] or 0) / 1000,
            "duration_max_s": float(row[2] or 0) / 1000,
            "unreachable": float(row[3] or 0),
            "oldest_poll_ts": float(row[4] or 0),
        }
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    return {
        "outbox": outbox,
        "devices": int(devices_n),
        "alerts_open": alerts_open,
        "db_bytes": int(page_count) * int(page_size),
        "polls": polls,
    }
