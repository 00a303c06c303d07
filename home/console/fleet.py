"""What the console shows, read from home's database: sites, alerts, a box's detail, boxes.

Every function takes a connection and the time (epoch seconds) and returns frozen dataclasses
or plain dicts ready for a template or JSON. Nothing here writes.

Health of a site (the overview's colour):
  red    the box is silent (no heartbeat for SILENT_AFTER_S, or never) or a critical/major alert
         is open and not silenced;
  amber  a minor/warning alert is open and not silenced, the backlog is at least BACKLOG_AMBER
         records, or the box says its uplink is failing;
  green  otherwise.
Worst first: red, amber, green; within a colour, unacknowledged urgent alerts first, then the
longest silence, then the oldest unacknowledged major alert, then the site name.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from core.wire.keys import unb64
from home.sql import Connection

SILENT_AFTER_S = 180.0  # three missed heartbeats (60 s each): the box is silent
BACKLOG_AMBER = 1000  # records waiting on the box
SEVERITIES = ("critical", "major", "minor", "warning", "info")
URGENT = ("critical", "major")
HEALTH_RANK = {"red": 0, "amber": 1, "green": 2}


@dataclass(frozen=True)
class Alert:
    appliance: str
    site: str
    key: str
    severity: str
    message: str
    opened_ts: float  # the box's time of the record that opened it
    age_s: float
    acked_by: str
    acked_at: float | None
    note: str
    note_by: str
    silenced_until: float | None
    silenced: bool
    assigned_to: str


@dataclass(frozen=True)
class Site:
    appliance: str
    site: str
    health: str  # red, amber, green
    reasons: tuple[str, ...]
    silent: bool
    heartbeat_age_s: float | None
    last_report_age_s: float | None
    version: str
    uptime_s: float | None
    uplink_state: str
    alerts: dict[str, int]  # open, not silenced, by severity
    silenced: int
    unacked_urgent: int
    oldest_unacked_major_age_s: float | None
    oldest_unacked_major: str
    backlog: int
    drops: int
    records: int
    open_alerts: tuple[Alert, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        # vars() rather than asdict(): asdict deep-copies recursively, 5x slower for 500 sites.
        doc = dict(vars(self))
        doc["reasons"] = list(self.reasons)
        doc["alerts"] = dict(self.alerts)
        doc["open_alerts"] = [dict(vars(a)) for a in self.open_alerts]
        return doc


def _num(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _drops(doc: Any) -> int:
    if not isinstance(doc, dict):
        return 0
    return sum(
        _num(n)
        for per_kind in doc.values()
        if isinstance(per_kind, dict)
        for n in per_kind.values()
    )


def _open_rows(conn: Connection, appliance: str = "") -> list[tuple[Any, ...]]:
    """Open alerts (of one box, or all) as rows (appliance, site, key, severity, message, ts,
    acked_by, acked_at, note, note_by, silenced_until, assigned_to) with the acknowledgement
    resolved: the console's for this opening, else home/notify's (whichever came first)."""
    sql = (
        "SELECT a.appliance, p.site, a.key, a.severity, a.message, a.ts, s.acked_by, s.acked_at,"
        " s.opened_ts, s.note, s.note_by, s.silenced_until, s.assigned_to FROM alerts a"
        " JOIN appliances p ON p.id = a.appliance"
        " LEFT JOIN console_alert_state s ON s.appliance = a.appliance AND s.key = a.key"
        " WHERE a.state = 'open' AND a.severity <> 'info'"  # info is news, not an open alert
    )
    # Both read by migration 14's partial indexes (open alerts; open acknowledged threads).
    acks_sql = (
        "SELECT appliance, alert_key, acked_by, acked_at FROM notify_threads"
        " WHERE state = 'open' AND acked_by <> ''"
    )
    params: tuple[Any, ...] = ()
    if appliance:
        sql += " AND a.appliance = ?"
        acks_sql += " AND appliance = ?"
        params = (appliance,)
    notify_acks = {(a, k): (by, at) for a, k, by, at in conn.execute(acks_sql, params).fetchall()}
    out = []
    for row in conn.execute(sql, params).fetchall():
        app, site, key, sev, msg, ts, by, at, opened, note, note_by, until, assigned = row
        # An acknowledgement holds for the opening it was given to; a re-opened alert is new.
        if opened is None or float(opened) != float(ts):
            by, at = "", None
        if not by and (app, key) in notify_acks:
            by, at = notify_acks[(app, key)]
        out.append((app, site, key, sev, msg, ts, by, at, note, note_by, until, assigned))
    return out


def open_alerts(conn: Connection, now: float, appliance: str = "") -> list[Alert]:
    """Open alerts (of one box, or all), with the console's ack/note/silence and home/notify's
    acknowledgement (whichever came first), most severe and oldest first."""
    out = [
        Alert(
            appliance=str(app),
            site=str(site),
            key=str(key),
            severity=str(sev),
            message=str(msg),
            opened_ts=float(ts),
            age_s=max(0.0, now - float(ts)),
            acked_by=str(by or ""),
            acked_at=float(at) if at is not None else None,
            note=str(note or ""),
            note_by=str(note_by or ""),
            silenced_until=float(until) if until is not None else None,
            silenced=until is not None and float(until) > now,
            assigned_to=str(assigned or ""),
        )
        for app, site, key, sev, msg, ts, by, at, note, note_by, until, assigned in _open_rows(
            conn, appliance
        )
    ]
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    out.sort(key=lambda a: (rank.get(a.severity, len(SEVERITIES)), a.opened_ts, a.site))
    return out


# What a site's summary needs of one open alert: (severity, silenced, acknowledged, opened_ts,
# message or key).
Brief = tuple[str, bool, bool, float, str]


def _briefs(conn: Connection, now: float) -> dict[str, list[Brief]]:
    """The fleet's open alerts as Briefs by appliance: the overview's summary without an Alert
    each (a third of the overview's time at 500 sites went into building them)."""
    out: dict[str, list[Brief]] = {}
    for app, _s, key, sev, msg, ts, by, _a, _n, _nb, until, _as in _open_rows(conn):
        brief = (str(sev), until is not None and float(until) > now, bool(by), float(ts),
                 str(msg or key))  # fmt: skip
        out.setdefault(str(app), []).append(brief)
    return out


def _brief(a: Alert) -> Brief:
    return (a.severity, a.silenced, bool(a.acked_by), a.opened_ts, a.message or a.key)


def sites(conn: Connection, now: float, alerts: bool = True) -> list[Site]:
    """Every registered box's site, worst first (module docstring). With ``alerts=False`` each
    Site's ``open_alerts`` is left empty (its counts, health and oldest unacknowledged urgent
    alert are the same): what the overview page needs, at less than half the cost."""
    alerts_by_box: dict[str, list[Alert]] = {}
    briefs: dict[str, list[Brief]] = {}
    if alerts:
        for alert in open_alerts(conn, now):
            alerts_by_box.setdefault(alert.appliance, []).append(alert)
        briefs = {box: [_brief(a) for a in mine] for box, mine in alerts_by_box.items()}
    else:
        briefs = _briefs(conn, now)
    out = [
        _site(now, row, briefs.get(row[0], []), tuple(alerts_by_box.get(row[0], ())))
        for row in conn.execute(
            f"SELECT {_APPLIANCE_COLUMNS} FROM appliances WHERE state = 'registered'"
        ).fetchall()
    ]
    out.sort(key=sort_key)
    return out


def sort_key(s: Site) -> tuple[Any, ...]:
    return (
        HEALTH_RANK[s.health],
        -s.unacked_urgent,
        -(s.heartbeat_age_s or 1e12) if s.silent else 0.0,
        -(s.oldest_unacked_major_age_s or 0.0),
        s.site.lower(),
        s.appliance,
    )


_APPLIANCE_COLUMNS = "id, site, last_seen, heartbeat_at, heartbeat, drops, records"


@functools.lru_cache(maxsize=8192)
def _heartbeat(text: str | None) -> tuple[str, int, str, float | None]:
    """(firmware version, backlog, uplink state, uptime_s) of a heartbeat as stored; memoised
    on its text (a box sends one a minute; the overview reads every box's at every view)."""
    try:
        heartbeat = json.loads(text or "{}")
    except ValueError:
        heartbeat = {}
    if not isinstance(heartbeat, dict):
        heartbeat = {}
    queue = heartbeat.get("queue")
    backlog = sum(_num(v) for v in queue.values()) if isinstance(queue, dict) else 0
    uptime = heartbeat.get("uptime_s")
    return (
        str(heartbeat.get("version") or ""),
        backlog,
        str(heartbeat.get("state", "")),
        float(uptime) if isinstance(uptime, int | float) else None,
    )


@functools.lru_cache(maxsize=8192)
def _drops_total(text: str | None) -> int:
    """Records the box says it dropped, all reasons and kinds, from ``appliances.drops``."""
    try:
        return _drops(json.loads(text or "{}"))
    except ValueError:
        return 0


def _site(now: float, row: Any, briefs: list[Brief], alerts: tuple[Alert, ...]) -> Site:
    """One Site from a row of _APPLIANCE_COLUMNS and its open alerts (as Briefs; ``alerts``,
    the same as Alerts, or empty)."""
    aid, site, last_seen, hb_at, hb, drops, records = row
    version, backlog, uplink_state, uptime = _heartbeat(hb)
    age = None if hb_at is None else max(0.0, now - float(hb_at))
    silent = age is None or age > SILENT_AFTER_S
    counts = dict.fromkeys(SEVERITIES, 0)
    silenced = 0
    unacked_urgent = 0
    oldest: Brief | None = None
    for brief in briefs:
        severity, is_silenced, acked, opened_ts, _what = brief
        if is_silenced:
            silenced += 1
            continue
        counts[severity] = counts.get(severity, 0) + 1
        if severity in URGENT and not acked:
            unacked_urgent += 1
            # The oldest; at the same time the critical one (as the alerts' order has it).
            rank = (opened_ts, severity != "critical")
            if oldest is None or rank < (oldest[3], oldest[0] != "critical"):
                oldest = brief
    reasons: list[str] = []
    if silent:
        reasons.append("box silent" if age is not None else "box never reported")
    if counts["critical"] or counts["major"]:
        reasons.append(f"{counts['critical'] + counts['major']} critical/major alert(s)")
    red = bool(reasons)
    if counts["minor"] or counts["warning"]:
        reasons.append(f"{counts['minor'] + counts['warning']} minor/warning alert(s)")
    if backlog >= BACKLOG_AMBER:
        reasons.append(f"backlog {backlog} records")
    if uplink_state == "failing":
        reasons.append("box uplink failing")
    health = "red" if red else ("amber" if reasons else "green")
    return Site(
        appliance=str(aid),
        site=str(site),
        health=health,
        reasons=tuple(reasons),
        silent=silent,
        heartbeat_age_s=age,
        last_report_age_s=None if last_seen is None else max(0.0, now - float(last_seen)),
        version=version,
        uptime_s=uptime,
        uplink_state=uplink_state,
        alerts=counts,
        silenced=silenced,
        unacked_urgent=unacked_urgent,
        oldest_unacked_major_age_s=None if oldest is None else max(0.0, now - oldest[3]),
        oldest_unacked_major=oldest[4] if oldest else "",
        backlog=backlog,
        drops=_drops_total(drops),
        records=int(records),
        open_alerts=alerts,
    )


def site(conn: Connection, now: float, appliance: str) -> Site | None:
    row = conn.execute(
        f"SELECT {_APPLIANCE_COLUMNS} FROM appliances WHERE id = ? AND state = 'registered'",
        (appliance,),
    ).fetchone()
    if row is None:
        return None
    mine = open_alerts(conn, now, appliance)
    return _site(now, row, [_brief(a) for a in mine], tuple(mine))


def box_health(conn: Connection, appliance: str) -> dict[str, Any]:
    """The box's last heartbeat as it sent it (docs/uplink.md), for the site page."""
    row = conn.execute("SELECT heartbeat FROM appliances WHERE id = ?", (appliance,)).fetchone()
    try:
        doc = json.loads(row[0]) if row else {}
    except ValueError:
        doc = {}
    keep = ("version", "uptime_s", "clock_synced", "state", "queue", "acked",
            "oldest_unsent_age_s", "drops", "boot_id")  # fmt: skip
    return {k: doc[k] for k in keep if isinstance(doc, dict) and k in doc}


def timeline(conn: Connection, appliance: str, limit: int = 50) -> list[dict[str, Any]]:
    """The site's latest alert and event records, newest first."""
    out = []
    # Each kind the newest first along records_by_appliance (appliance, kind, ts), then merged:
    # with ``kind IN (...)`` PostgreSQL may misjudge a site whose records are nearly all
    # measurements and scan the whole partition instead (80 ms on half a million records).
    newest = (
        "SELECT kind, ts, body FROM (SELECT kind, ts, body FROM records WHERE appliance = ?"
        " AND kind = '{}' ORDER BY ts DESC LIMIT ?) {}"
    )
    for kind, ts, body in conn.execute(
        f"{newest.format('alert', 'a')} UNION ALL {newest.format('event', 'e')}"
        " ORDER BY ts DESC LIMIT ?",
        (appliance, limit, appliance, limit, limit),
    ).fetchall():
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        out.append(
            {
                "kind": str(kind),
                "ts": float(ts),
                "severity": str(doc.get("severity", "")),
                "what": str(doc.get("message") or doc.get("kind") or doc.get("key") or ""),
                "state": str(doc.get("state", "")),
            }
        )
    return out


def boxes(conn: Connection, now: float) -> list[dict[str, Any]]:
    """Every box that said hello: pending (with whether its code expired), claimed, released;
    with its latest update command (state and result as the box reported it) if any."""
    updates: dict[str, tuple[str, str, str]] = {}
    for appliance, state, result, envelope in conn.execute(
        "SELECT appliance, state, result, envelope FROM commands WHERE action = 'update'"
        " ORDER BY created_at"
    ).fetchall():
        try:
            signed = json.loads(unb64(json.loads(envelope)["doc"]))  # the envelope as signed
            version = str(signed["args"].get("version", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            version = ""
        updates[str(appliance)] = (str(state), str(result), version)  # the latest wins
    return [
        {
            "update": dict(zip(("state", "result", "version"), updates[str(a)], strict=True))
            if str(a) in updates
            else None,
            "appliance": str(a),
            "state": str(s),
            "site": str(site),
            "version": str(v),
            "first_seen_age_s": round(now - float(first), 1),
            "last_seen_age_s": round(now - float(seen), 1),
            "code_expired": float(exp) <= now,
        }
        for a, s, site, v, first, seen, exp in conn.execute(
            "SELECT appliance, state, site, version, first_seen, last_seen, code_expires_at"
            " FROM claims ORDER BY state DESC, last_seen DESC"
        ).fetchall()
    ]


def notifications(conn: Connection, appliance: str, limit: int = 30) -> list[dict[str, Any]]:
    """The notification and escalation history of the site's alerts (home/notify's outbox),
    newest first: which alert, which channel, what (open, escalate, resolved), its state, when
    sent, the last error. Channel secrets are not in these tables."""
    return [
        {
            "ref": str(ref),
            "alert": str(message or key),
            "channel": str(channel),
            "event": str(event),
            "state": str(state),
            "attempts": int(attempts),
            "due_at": float(due),
            "sent_at": float(sent) if sent is not None else None,
            "error": str(error),
            "acked_by": str(acked_by),
        }
        for ref, message, key, channel, event, state, attempts, due, sent, error, acked_by
        in conn.execute(
            "SELECT n.ref, t.message, t.alert_key, n.channel, n.event, n.state, n.attempts,"
            " n.due_at, n.sent_at, n.last_error, t.acked_by FROM notifications n"
            " JOIN notify_threads t ON t.ref = n.ref WHERE t.appliance = ?"
            " ORDER BY n.created_at DESC, n.id LIMIT ?",
            (appliance, limit),
        ).fetchall()
    ]  # fmt: skip
