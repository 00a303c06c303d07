"""The report's input from home's database: what the box sent, and what the MSP did.

Sources (one appliance = one site):

* ``records`` (every record the box sent, home/db.py): ``measurement`` bodies for
  ``device.reachable`` (availability), ``storage.used_pct`` and ``supply.level_pct`` (trends),
  ``ups.battery_replace`` and ``ups.selftest_ok`` (UPS batteries), ``if.in_errors_ps`` and
  ``if.out_errors_ps`` (growing errors: averaged a day by the database);
  ``alert`` bodies (``state`` open/resolved, paired by the box's alert ``id``); ``event`` bodies
  of kind ``alert.acked`` (acknowledged on the box's page);
* ``rollups_hourly`` (home/retention.py): the levels' and error rates' hourly averages where the
  raw rows are gone;
* ``devices`` and ``device_changes`` (home/inventory.py): names, kinds, joined/left/address;
* ``console_alert_state`` (acknowledged in the console), ``config_reports`` (a configuration the
  box applied), ``commands`` (remote commands that finished): "what the MSP did".

All functions here are synchronous: call them on a database thread (``await db.call(...)``).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import replace
from typing import Any

from core.report.forecast import DAY_S, WINDOW_DAYS
from core.report.hours import BusinessHours, Period
from core.report.inputs import Alert, Device, FirmwareRule, Happening, Point, ReportInput
from home.inventory import HasConn, devices_sync, firmware_sync, inventory_changes_sync

REACHABLE_METRIC = "device.reachable"  # services/polling/service.py: store_result
_MARGIN_S = 3600.0
HOUR_S = 3600.0  # rollups_hourly rows are whole hours (home/retention.py)
_CHANGE_KINDS = {
    "joined": "device.joined",
    "left": "device.left",
    "returned": "device.returned",
    "ip_changed": "device.ip_changed",
}


def _body(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _measurements(
    db: HasConn, appliance: str, start_s: float, end_s: float, metrics: tuple[str, ...]
) -> dict[str, dict[tuple[int, str], list[Point]]]:
    """metric -> (device id, instance) -> points in time order, from the raw records."""
    # Bodies are stored with sorted keys and no spaces (home/db.py), so a LIKE on the metric
    # skips the bulk of the month's measurements inside the database.
    likes = " OR ".join("body LIKE ?" for _ in metrics)
    conn = db.conn
    # The fields are taken out by the database (json_extract / jsonb): no Python JSON parse
    # of millions of bodies.
    rows = conn.execute(
        f"SELECT ts, {conn.json_text('body', 'metric')}, {conn.json_number('body', 'device_id')},"
        f" {conn.json_text('body', 'instance')}, {conn.json_number('body', 'value')}"
        " FROM records WHERE appliance = ? AND kind = 'measurement'"
        f" AND ts >= ? AND ts < ? AND ({likes}) ORDER BY ts, id",
        (appliance, start_s, end_s, *(f'%"metric":"{m}"%' for m in metrics)),
    )
    out: dict[str, dict[tuple[int, str], list[Point]]] = {m: defaultdict(list) for m in metrics}
    for ts, metric, device_id, instance, value in rows:
        series = out.get(metric)
        if series is None or device_id is None:
            continue
        point = (float(ts), None if value is None else float(value))
        series[(int(device_id), str(instance or ""))].append(point)
    return out


def _rollups(
    db: HasConn, appliance: str, metric: str, start_s: float, end_s: float
) -> list[tuple[Any, ...]]:
    """``rollups_hourly`` rows (device_id, instance, hour, n, vsum) of one metric with at least
    one value, hours in ``[start_s, end_s)``, in hour order."""
    return [
        tuple(row)
        for row in db.conn.execute(
            "SELECT device_id, instance, hour, n, vsum FROM rollups_hourly WHERE appliance = ?"
            " AND metric = ? AND hour >= ? AND hour < ? AND n > 0 ORDER BY hour",
            (appliance, metric, start_s, end_s),
        ).fetchall()
    ]


def _with_rollups(
    db: HasConn,
    appliance: str,
    metric: str,
    series: dict[tuple[int, str], list[Point]],
    *,
    start_s: float,
    end_s: float,
) -> dict[tuple[int, str], list[Point]]:
    """Add hourly averages (mid-hour) before each series' first raw point (thinned history)."""
    rows = _rollups(db, appliance, metric, start_s, end_s)
    merged: dict[tuple[int, str], list[Point]] = {k: list(v) for k, v in series.items()}
    for device_id, instance, hour, n, vsum in rows:
        key = (int(device_id), str(instance))
        first = merged[key][0][0] if merged.get(key) else end_s
        if int(n) > 0 and vsum is not None and float(hour) + 3600 <= first:
            merged.setdefault(key, []).append((float(hour) + 1800, float(vsum) / int(n)))
    for points in merged.values():
        points.sort(key=lambda p: p[0])
    return merged  # fmt: skip


def _reach_with_rollups(
    db: HasConn,
    appliance: str,
    series: dict[tuple[int, str], list[Point]],
    *,
    start_s: float,
    end_s: float,
) -> dict[int, list[Point]]:
    """device id -> reachability polls in time order, the raw polls and, for the hours whose raw
    rows retention rolled up (home/retention.py: older than ``rollup_after_days``), that hour's
    polls rebuilt from its count: ``n`` polls evenly spread, the first ``vsum`` up, the rest
    down. The hour's up and down time are exact; an outage's place inside the hour is not (the
    report of a month older than the raw window lists it to the hour)."""
    out: dict[int, list[Point]] = {dev: list(pts) for (dev, _), pts in series.items()}
    raw_hours: dict[int, set[float]] = {
        dev: {ts // HOUR_S * HOUR_S for ts, _ in pts} for dev, pts in out.items()
    }
    rows = _rollups(db, appliance, REACHABLE_METRIC, start_s // HOUR_S * HOUR_S, end_s)
    for device_id, _instance, hour, n, vsum in rows:
        dev, count = int(device_id), int(n)
        if float(hour) in raw_hours.get(dev, ()):
            continue  # both: a late record after the roll-up; the raw polls are the detail
        ups = round(float(vsum or 0.0))
        step = HOUR_S / count
        out.setdefault(dev, []).extend(
            (float(hour) + (i + 0.5) * step, 1.0 if i < ups else 0.0) for i in range(count)
        )
    for points in out.values():
        points.sort(key=lambda p: p[0])
    return out


_ERROR_METRICS = ("if.in_errors_ps", "if.out_errors_ps")


def _daily_means(
    db: HasConn, appliance: str, start_s: float, end_s: float, metrics: tuple[str, ...]
) -> dict[str, dict[tuple[int, str], list[Point]]]:
    """metric -> (device id, instance) -> one point a day back from ``end_s`` over [start_s,
    end_s): (the day's middle, the mean of its values), in time order; days are [start_s + k
    days, start_s + k + 1 days), as in core.report.port_errors.daily_errors. The raw records
    and the hourly roll-ups (which replaced the raw rows they count, so nothing is counted
    twice) are averaged together. A switch's ports read every minute are millions of rows a
    month: the database groups them."""
    conn = db.conn
    value = conn.json_number("body", "value")
    likes = " OR ".join("body LIKE ?" for _ in metrics)
    sums: dict[tuple[str, int, str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    last_day = max(0, math.ceil((end_s - start_s) / DAY_S) - 1)
    raw = conn.execute(
        f"SELECT {conn.json_text('body', 'metric')}, {conn.json_number('body', 'device_id')},"
        f" {conn.json_text('body', 'instance')}, {conn.floor_div('(ts - ?)', DAY_S)},"
        f" SUM(CASE WHEN {value} < 0 THEN 0 ELSE {value} END), COUNT({value})"
        " FROM records WHERE appliance = ? AND kind = 'measurement' AND ts >= ? AND ts < ?"
        f" AND ({likes}) GROUP BY 1, 2, 3, 4",
        (start_s, appliance, start_s, end_s, *(f'%"metric":"{m}"%' for m in metrics)),
    ).fetchall()
    marks = ", ".join("?" for _ in metrics)
    rolled = conn.execute(
        f"SELECT metric, device_id, instance, {conn.floor_div('(hour + 1800 - ?)', DAY_S)},"
        f" SUM(vsum), SUM(n) FROM rollups_hourly WHERE appliance = ? AND metric IN ({marks})"
        " AND hour >= ? AND hour < ? AND n > 0 GROUP BY 1, 2, 3, 4",
        (start_s, appliance, *metrics, start_s, end_s),
    ).fetchall()
    for metric, device_id, instance, day_from_start, total, n in [*raw, *rolled]:
        if metric not in metrics or device_id is None or day_from_start is None:
            continue
        if not n or total is None:
            continue
        day = last_day - int(day_from_start)  # days back from the end
        acc = sums[(str(metric), int(device_id), str(instance or ""), day)]
        acc[0] += float(total)
        acc[1] += float(n)
    out: dict[str, dict[tuple[int, str], list[Point]]] = {m: defaultdict(list) for m in metrics}
    for (metric, device_id, instance, day), (total, n) in sorted(
        sums.items(), key=lambda kv: (kv[0][:3], -kv[0][3])
    ):
        out[metric][(device_id, instance)].append((end_s - (day + 0.5) * DAY_S, total / n))
    return out


def _open_at(alerts: list[Alert], key: str, at: float) -> Alert | None:
    for a in alerts:
        if a.key == key and a.opened_ts <= at and (a.resolved_ts is None or at <= a.resolved_ts):
            return a
    return None


def _alerts(db: HasConn, appliance: str, end_s: float) -> list[Alert]:
    opened: dict[int, dict[str, Any]] = {}
    resolved: dict[int, float] = {}
    for ts, text in db.conn.execute(
        "SELECT ts, body FROM records WHERE appliance = ? AND kind = 'alert' AND ts < ?"
        " ORDER BY ts, id",
        (appliance, end_s),
    ):
        body = _body(text)
        alert_id = body.get("id")
        if not isinstance(alert_id, int):
            continue
        if body.get("state") == "open":
            opened[alert_id] = {**body, "ts": float(body.get("ts") or ts)}
        elif body.get("state") == "resolved":
            resolved[alert_id] = float(body.get("ts") or ts)
    acks = [
        (str(key), float(at))
        for key, at in db.conn.execute(
            "SELECT key, acked_at FROM console_alert_state WHERE appliance = ?"
            " AND acked_at IS NOT NULL",
            (appliance,),
        )
    ]
    out: list[Alert] = []
    for alert_id, body in opened.items():
        device = body.get("device_id")
        key = str(body.get("key", ""))
        out.append(
            Alert(
                alert_id, key, str(body.get("rule", "")),
                device if isinstance(device, int) else None,
                str(body.get("severity", "")), str(body.get("message", "")), body["ts"],
                resolved.get(alert_id), False,
            )
        )  # fmt: skip
    # An acknowledgement in the console belongs to the alert of that key open at the time.
    for key, at in acks:
        alert = _open_at(out, key, at)
        if alert is not None:
            out[out.index(alert)] = replace(alert, acked=True)
    out.sort(key=lambda a: (a.opened_ts, a.id))
    return out


def _happenings(
    db: HasConn, appliance: str, alerts: list[Alert], start_s: float, end_s: float
) -> list[Happening]:
    out: list[Happening] = []
    for c in inventory_changes_sync(db, appliance, start_s, end_s):
        kind = _CHANGE_KINDS.get(c.change)
        if kind is not None:
            out.append(
                Happening(
                    kind, c.at, c.device_id, "",
                    {"vendor": c.vendor, "old_ip": c.old_ip, "new_ip": c.ip},
                )
            )  # fmt: skip
    for key, by, at in db.conn.execute(
        "SELECT key, acked_by, acked_at FROM console_alert_state WHERE appliance = ?"
        " AND acked_at >= ? AND acked_at < ?",
        (appliance, start_s, end_s),
    ):
        alert = _open_at(alerts, str(key), float(at))
        data = {"alert_id": alert.id if alert else 0, "by": str(by or "a technician")}
        out.append(Happening("alert.acked", float(at), None, "", data))
    for ts, text in db.conn.execute(
        "SELECT ts, body FROM records WHERE appliance = ? AND kind = 'event' AND ts >= ?"
        " AND ts < ? AND body LIKE ? ORDER BY ts, id",
        (appliance, start_s, end_s, '%"kind":"alert.acked"%'),
    ):
        body = _body(text)
        out.append(Happening("alert.acked", float(ts), None, "", dict(body.get("data") or {})))
    for (at,) in db.conn.execute(
        "SELECT at FROM config_reports WHERE appliance = ? AND outcome = 'applied'"
        " AND at >= ? AND at < ?",
        (appliance, start_s, end_s),
    ):
        out.append(Happening("config.applied", float(at)))
    for action, result_at in db.conn.execute(
        "SELECT action, result_at FROM commands WHERE appliance = ? AND state = 'done'"
        " AND result_at >= ? AND result_at < ?",
        (appliance, start_s, end_s),
    ):
        kind = "update.done" if str(action) == "update" else "command.done"
        out.append(Happening(kind, float(result_at), None, _ACTION_WORDS.get(str(action), "")))
    out.sort(key=lambda h: h.ts)
    return out


_ACTION_WORDS = {
    "rediscover": "a fresh search for devices",
    "restart": "the monitoring appliance was restarted",
    "diagnostics": "a health check of the monitoring appliance",
}


def site_of(db: HasConn, appliance: str) -> str:
    row = db.conn.execute("SELECT site FROM appliances WHERE id = ?", (appliance,)).fetchone()
    return str(row[0]) if row and row[0] else ""


def load_input_sync(
    db: HasConn,
    appliance: str,
    *,
    period: Period,
    hours: BusinessHours,
    msp_name: str = "",
    firmware_rules: tuple[FirmwareRule, ...] = (),
) -> ReportInput:
    """Everything the report of one site (appliance) and ``period`` needs, from home.

    ``firmware_rules``: the MSP's ``[[report.firmware]]`` (home/report/monthly.py); they judge
    each device's firmware version as home's inventory holds it (home/inventory.firmware_sync:
    the version the box's discovery read over SNMP, carried by its device records)."""
    start_s, end_s = period.start_s, period.end_s
    trend_from = end_s - WINDOW_DAYS * DAY_S
    reach = _measurements(db, appliance, start_s - _MARGIN_S, end_s, (REACHABLE_METRIC,))
    levels = _measurements(
        db,
        appliance,
        trend_from,
        end_s,
        ("storage.used_pct", "supply.level_pct", "ups.battery_replace", "ups.selftest_ok"),
    )
    errors = _daily_means(db, appliance, trend_from, end_s, _ERROR_METRICS)
    devices = [
        Device(d.device_id, d.name, d.kind or "unknown", d.ip, d.vendor, d.first_seen or 0.0)
        for d in devices_sync(db, appliance)
    ]
    alerts = _alerts(db, appliance, end_s)
    return ReportInput(
        site=site_of(db, appliance),
        period=period,
        hours=hours,
        devices=devices,
        reach=_reach_with_rollups(
            db, appliance, reach[REACHABLE_METRIC], start_s=start_s - _MARGIN_S, end_s=end_s
        ),
        volumes=_with_rollups(
            db,
            appliance,
            "storage.used_pct",
            levels["storage.used_pct"],
            start_s=trend_from,
            end_s=end_s,
        ),
        supplies=_with_rollups(
            db,
            appliance,
            "supply.level_pct",
            levels["supply.level_pct"],
            start_s=trend_from,
            end_s=end_s,
        ),
        alerts=alerts,
        happenings=_happenings(db, appliance, alerts, start_s, end_s),
        msp_name=msp_name,
        source="the records this site's monitoring appliance sent to the MSP's server",
        ups_replace=_with_rollups(
            db,
            appliance,
            "ups.battery_replace",
            levels["ups.battery_replace"],
            start_s=trend_from,
            end_s=end_s,
        ),
        ups_selftest=_with_rollups(
            db,
            appliance,
            "ups.selftest_ok",
            levels["ups.selftest_ok"],
            start_s=trend_from,
            end_s=end_s,
        ),
        port_in_errors=errors["if.in_errors_ps"],
        port_out_errors=errors["if.out_errors_ps"],
        firmware=firmware_sync(db, appliance),
        firmware_rules=firmware_rules,
    )
