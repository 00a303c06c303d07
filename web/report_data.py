"""The monthly report from the appliance's own store: rows read and adapted to core.report.

Sources (services/store/schema.py): ``devices``; ``measurements`` joined to ``series`` for
``device.reachable`` (every poll's liveness verdict), ``storage.used_pct`` and
``supply.level_pct``, ``ups.battery_replace`` and ``ups.selftest_ok``, the daily means of
``if.in_errors_ps`` / ``if.out_errors_ps``; ``topology_ports`` and ``topology_placements``
(port labels, the device on a port); ``devices.attrs``
(firmware versions); ``alerts``; ``events`` (discovery's device.joined/left/returned/
ip_changed, the page's alert.acked). Runs on a store reader thread (``store.read``).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

from core.report.availability import GAP_SPACINGS, segment_spacing
from core.report.forecast import DAY_S, WINDOW_DAYS
from core.report.hours import BusinessHours, Period
from core.report.inputs import (
    Alert,
    Device,
    DeviceFirmware,
    FirmwareRule,
    Happening,
    Point,
    ReachSummary,
    ReportInput,
    Segment,
)
from services.store import reach

REACHABLE_METRIC = "device.reachable"  # written by services/polling/service.py:store_result
_MARGIN_S = 3600.0  # read a little before the period: the verdict in force at its start
_EVENT_KINDS = (
    "device.joined",
    "device.left",
    "device.returned",
    "device.ip_changed",
    "alert.acked",
    "config.applied",  # provisioning/service.py: a configuration from home, applied
    "command.done",  # provisioning/service.py: a remote command that ran (COMMAND_WORDS)
)


def _series(
    conn: sqlite3.Connection, metric: str, start_s: float, end_s: float
) -> dict[tuple[int, str], list[Point]]:
    """(device id, instance) -> the points of ``metric`` in [start_s, end_s), in time order
    (equal time stamps in the order stored).

    The rows are fetched in table order, not series by series: one series' rows are spread
    over every page of the month, so following the ``(series, ts)`` index visits a page per
    row, while the row ids (taken from that index alone) in ascending order visit each page
    once: 2.5x faster for the bench's month of volume levels (docs/report.md)."""
    names = {
        int(i): (int(device_id), str(instance))
        for i, device_id, instance in conn.execute(
            "SELECT id, device_id, instance FROM series WHERE metric = ?"
            " AND device_id IS NOT NULL ORDER BY id",
            (metric,),
        )
    }
    found: dict[int, list[Point]] = {i: [] for i in names}
    for series, ts, value in conn.execute(
        "SELECT series, ts, value FROM measurements WHERE id IN (SELECT m.id FROM series s"
        " JOIN measurements m ON m.series = s.id WHERE s.metric = ? AND s.device_id IS NOT"
        " NULL AND m.ts >= ? AND m.ts < ?)",
        (metric, start_s, end_s),
    ):
        found[series].append((float(ts), value))
    out: dict[tuple[int, str], list[Point]] = defaultdict(list)
    for i, points in found.items():
        if points:
            points.sort(key=itemgetter(0))  # stable: ties keep the row order
            out[names[i]] = points
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


def _daily_means(
    conn: sqlite3.Connection, metric: str, start_s: float, end_s: float
) -> dict[tuple[int, str], list[Point]]:
    """(device id, instance) -> one point a day back from ``end_s`` over [start_s, end_s): (the
    day's middle, the mean of its values, negatives as 0), in time order. Days are [start_s +
    k days, start_s + k + 1 days), as in core.report.port_errors.daily_errors. For the error
    rates: a switch's ports read every minute are millions of rows a month; the report needs
    only a count a day, so SQLite averages them."""
    out: dict[tuple[int, str], list[Point]] = defaultdict(list)
    last_day = max(0, math.ceil((end_s - start_s) / DAY_S) - 1)
    rows = conn.execute(
        "SELECT s.device_id, s.instance, ? - CAST((m.ts - ?) / ? AS INTEGER) AS day,"
        " AVG(MAX(m.value, 0)) FROM series s JOIN measurements m ON m.series = s.id"
        " WHERE s.metric = ? AND s.device_id IS NOT NULL AND m.value IS NOT NULL"
        " AND m.ts >= ? AND m.ts < ? GROUP BY s.id, day ORDER BY s.id, day DESC",
        (last_day, start_s, DAY_S, metric, start_s, end_s),
    )
    for device_id, instance, day, mean in rows:
        out[(int(device_id), str(instance))].append((end_s - (int(day) + 0.5) * DAY_S, mean))
    return out


def _port_labels(conn: sqlite3.Connection) -> dict[tuple[int, str], str]:
    """(switch device id, port name) -> the technician's label, else the switch's ifAlias
    (topology_ports, services/polling/topology_schema.py); empty without the topology."""
    if not conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'topology_ports'"
    ).fetchone():
        return {}
    return {
        (int(switch), str(name)): str(label or alias)
        for switch, name, label, alias in conn.execute(
            "SELECT switch_id, name, label, alias FROM topology_ports"
        )
        if label or alias
    }


def _port_devices(conn: sqlite3.Connection, since_s: float) -> dict[tuple[int, str], int]:
    """(switch device id, port name) -> the one device the topology placed on that port and
    saw there since ``since_s`` (topology_placements; a port with several devices, or a
    device on a shared segment, names none)."""
    if not conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'topology_placements'"
    ).fetchone():
        return {}
    return {
        (int(switch), str(port)): int(device)
        for switch, port, device in conn.execute(
            "SELECT switch_id, port_name, MIN(device_id) FROM topology_placements"
            " WHERE shared = 0 AND seen_ts >= ? GROUP BY switch_id, port_name"
            " HAVING COUNT(*) = 1",
            (since_s,),
        )
    }


def _firmware(conn: sqlite3.Connection) -> list[DeviceFirmware]:
    """Each device's firmware version as discovery read it over SNMP (``attrs.snmp.version``),
    with the maker (the SNMP identity's, else the network card's) and model."""
    out = []
    for i, vendor, snmp_vendor, model, version in conn.execute(
        "SELECT id, vendor, json_extract(attrs, '$.snmp.vendor'), json_extract(attrs, '$.model'),"
        " json_extract(attrs, '$.snmp.version') FROM devices WHERE json_valid(attrs)"
        " AND json_extract(attrs, '$.snmp.version') IS NOT NULL ORDER BY id"
    ):
        if isinstance(version, str) and version.strip():
            out.append(
                DeviceFirmware(
                    int(i), version.strip(), str(snmp_vendor or vendor or ""), str(model or "")
                )
            )
    return out


def _by_device(series: dict[tuple[int, str], list[Point]]) -> dict[int, list[Point]]:
    return {device_id: points for (device_id, _), points in series.items()}


def _reach_summary(
    conn: sqlite3.Connection, start_s: float, end_s: float
) -> dict[int, ReachSummary] | None:
    """device id -> its reachability from the writer's summary (services/store/reach.py): a
    few rows a device and day instead of every poll; None when the summary cannot stand in for
    the polls of ``[start_s - margin, end_s)`` (days still queued for backfill, or raw polls
    it does not hold), and the caller reads the polls. The segments are cut where the raw path
    cuts (its first poll at or after the margin, its last before ``end_s``: one index probe
    each); a segment holding a silence longer than the gap threshold is read raw."""
    window = start_s - _MARGIN_S
    if reach.pending(conn, window, end_s):
        return None
    found: dict[int, tuple[int, list[list[Any]]]] = {
        int(series): (int(device_id), [])
        for series, device_id in conn.execute(
            "SELECT id, device_id FROM series WHERE metric = ? AND device_id IS NOT NULL",
            (REACHABLE_METRIC,),
        )
    }
    for series, first, last, state, polls, step_max in conn.execute(
        "SELECT g.series, g.first_ts, g.last_ts, g.state, g.polls, g.step_max"
        " FROM series s JOIN reach_segments g ON g.series = s.id"
        " WHERE s.metric = ? AND s.device_id IS NOT NULL AND g.first_ts >= ?"
        " AND g.first_ts < ? AND g.last_ts >= ? ORDER BY g.series, g.first_ts",
        (REACHABLE_METRIC, window - reach.DAY_S, end_s, window),
    ):
        found[int(series)][1].append([first, last, state, polls, step_max])
    out: dict[int, ReachSummary] = {}
    for series, (device_id, segs) in found.items():
        summary = _device_summary(conn, series, segs, window=window, start_s=start_s, end_s=end_s)
        if summary is None:
            return None
        if summary.segments:
            out[device_id] = summary
    return out


def _one(conn: sqlite3.Connection, sql: str, *args: object) -> Any:
    return conn.execute(sql, args).fetchone()[0]


def _device_summary(
    conn: sqlite3.Connection,
    series: int,
    segs: list[list[Any]],
    *,
    window: float,
    start_s: float,
    end_s: float,
) -> ReachSummary | None:
    """One series' segments ([first, last, state, polls, step_max] in time order) as the
    report's input, or None when raw polls exist that the summary does not hold."""
    newest = _one(conn, "SELECT MAX(ts) FROM measurements WHERE series = ? AND ts < ?", series,
                  end_s)  # fmt: skip
    if not segs:
        return None if newest is not None and newest >= window else ReachSummary((), 0.0, 0)
    steps = [max(0, int(s[3]) - 1) for s in segs]
    cut = [False] * len(segs)

    def rescale(i: int, first: float, last: float) -> None:
        old_first, old_last = segs[i][0], segs[i][1]
        if steps[i] and old_last > old_first:
            steps[i] = round((last - first) / ((old_last - old_first) / steps[i]))
        segs[i][0], segs[i][1], cut[i] = first, last, True

    if segs[0][0] < window:
        p = _one(conn, "SELECT MIN(ts) FROM measurements WHERE series = ? AND ts >= ?"
                 " AND ts <= ?", series, window, segs[0][1])  # fmt: skip
        if p is not None:
            rescale(0, float(p), segs[0][1])
    if segs[-1][1] >= end_s:
        if newest is not None and newest >= segs[-1][0]:
            rescale(len(segs) - 1, segs[-1][0], float(newest))
    elif newest is not None and newest > segs[-1][1]:
        return None  # polls after the summary's last one: it is behind (written without it)
    polls = 0
    for i, (first, last, _state, n, _max) in enumerate(segs):
        if start_s <= first and last < end_s and not cut[i]:
            polls += int(n)
        elif last >= start_s and first < end_s:
            polls += _one(conn, "SELECT COUNT(*) FROM measurements WHERE series = ? AND ts >= ?"
                          " AND ts <= ? AND ts < ?", series, max(first, start_s), last,
                          end_s)  # fmt: skip
    # What each segment stands for: itself, or (a step inside it longer than the gap
    # threshold: a silence) its raw polls. Opening one refines the spacing, which can lower
    # the threshold below another's longest step: until nothing more opens.
    parts = [
        [Segment(s[0], s[1], None if s[2] is None else float(s[2]), steps[i])]
        for i, s in enumerate(segs)
    ]
    opened = [False] * len(segs)

    def spacing_now() -> float:
        # A segment opened whose raw polls are gone tells the spacing nothing reliable (its
        # mean step holds the silence): left out while other segments say it.
        clear = [x for i, p in enumerate(parts) if not (opened[i] and len(p) == 1) for x in p]
        return segment_spacing(clear) or segment_spacing([x for p in parts for x in p])

    spacing = spacing_now()
    while True:
        max_gap = spacing * GAP_SPACINGS
        grew = False
        for i, s in enumerate(segs):
            if opened[i] or s[4] is None or s[4] <= max_gap:
                continue
            opened[i] = grew = True
            raw = conn.execute(
                "SELECT ts, value FROM measurements WHERE series = ? AND ts >= ? AND ts <= ?"
                " ORDER BY ts, id",
                (series, s[0], s[1]),
            ).fetchall()
            if len(raw) >= 2:
                parts[i] = [Segment(t, t, None if v is None else float(v)) for t, v in raw]
        if not grew:
            break
        spacing = spacing_now()
    segments: list[Segment] = []
    for i, p in enumerate(parts):
        if opened[i] and len(p) == 1:
            # Its raw polls are gone (the storage budget): where the silence was is lost, so
            # all between its first and last poll is unknown, never up.
            seg = p[0]
            segments += [Segment(seg.first_s, seg.first_s, seg.value),
                         Segment(seg.last_s, seg.last_s, seg.value)]  # fmt: skip
        else:
            segments += p
    return ReachSummary(tuple(segments), spacing, polls)


def load_input(
    conn: sqlite3.Connection,
    *,
    site: str,
    period: Period,
    hours: BusinessHours,
    gateway_ip: str,
    msp_name: str = "",
    firmware_rules: tuple[FirmwareRule, ...] = (),
    use_summary: bool = True,
) -> ReportInput:
    """Everything the report of ``period`` needs, from the appliance's store.

    ``firmware_rules``: the MSP's firmware list (core/report/firmware.py); the box holds none
    of its own, so without them no version is read and the report says nothing of firmware."""
    start_s, end_s = period.start_s, period.end_s
    trend_from = end_s - WINDOW_DAYS * DAY_S
    summary = _reach_summary(conn, start_s, end_s) if use_summary else None
    return ReportInput(
        site=site,
        period=period,
        hours=hours,
        devices=_devices(conn, gateway_ip),
        reach=(
            _by_device(_series(conn, REACHABLE_METRIC, start_s - _MARGIN_S, end_s))
            if summary is None
            else {}
        ),
        reach_summary=summary or {},
        volumes=_series(conn, "storage.used_pct", trend_from, end_s),
        supplies=_series(conn, "supply.level_pct", trend_from, end_s),
        alerts=_alerts(conn, start_s, end_s),
        happenings=_happenings(conn, start_s, end_s),
        msp_name=msp_name,
        source="this monitoring appliance's own records",
        ups_replace=_series(conn, "ups.battery_replace", trend_from, end_s),
        ups_selftest=_series(conn, "ups.selftest_ok", trend_from, end_s),
        port_in_errors=_daily_means(conn, "if.in_errors_ps", trend_from, end_s),
        port_out_errors=_daily_means(conn, "if.out_errors_ps", trend_from, end_s),
        port_labels=_port_labels(conn),
        port_devices=_port_devices(conn, trend_from),
        firmware=_firmware(conn) if firmware_rules else (),
        firmware_rules=firmware_rules,
    )


def months_with_data(conn: sqlite3.Connection) -> Iterable[float]:
    """The first and last measurement times (for the page's month picker)."""
    row = conn.execute("SELECT MIN(ts), MAX(ts) FROM measurements").fetchone()
    return () if row is None or row[0] is None else (float(row[0]), float(row[1]))
