"""The alert lifecycle: conditions in, transitions (open/resolve) out, each stored once.

The engine holds the open alerts (loaded from the store at start, so a restart neither
duplicates nor forgets them). A condition whose severity changes resolves the old alert and
opens one at the new severity: each row of ``alerts`` keeps one severity for its life, and
the uplink sees exactly one ``alert.opened`` and one ``alert.resolved`` per row.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from core.settings.alerting import DAYS, WINDOW_RE
from core.vocabulary import COUNTED_SEVERITIES, Severity
from services.alerting.rules import Condition
from services.store.db import Tx
from services.store.records import Event, insert_event


@dataclass(frozen=True)
class OpenAlert:
    id: int
    key: str
    rule: str
    device_id: int | None
    severity: Severity
    message: str


@dataclass(frozen=True)
class Transition:
    action: Literal["open", "resolve"]
    key: str
    rule: str
    device_id: int | None
    severity: Severity
    message: str
    data: dict[str, Any] = field(default_factory=dict)


def in_window(windows: tuple[str, ...], when: datetime) -> bool:
    """True when local time ``when`` lies in one of the maintenance windows."""
    minute = when.hour * 60 + when.minute
    today = DAYS[when.weekday()]
    yesterday = DAYS[(when.weekday() - 1) % 7]
    for text in windows:
        m = WINDOW_RE.match(text.strip().lower())
        if m is None:
            continue
        day, start, end = m[1], int(m[2]) * 60 + int(m[3]), int(m[4]) * 60 + int(m[5])
        if start <= end:
            if day in ("daily", today) and start <= minute < end:
                return True
        else:  # crosses midnight: the evening of `day`, or the morning after it
            if day in ("daily", today) and minute >= start:
                return True
            if day in ("daily", yesterday) and minute < end:
                return True
    return False


class AlertEngine:
    def __init__(self) -> None:
        self.open: dict[str, OpenAlert] = {}

    def load(self, conn: sqlite3.Connection) -> None:
        self.open = {}
        for row in conn.execute(
            "SELECT id, key, rule, device_id, severity, message FROM alerts WHERE state = 'open'"
        ):
            severity = Severity.parse(row[4], Severity.WARNING)  # a row is text: typed here
            alert = OpenAlert(int(row[0]), row[1], row[2], row[3], severity, row[5])
            self.open[alert.key] = alert

    def open_severity(self) -> dict[str, Severity]:
        return {key: alert.severity for key, alert in self.open.items()}

    def decide(self, conditions: list[Condition], quiet: bool) -> list[Transition]:
        """Transitions for these conditions. ``quiet``: in a maintenance window, where alerts
        resolve but none opens or changes severity."""
        out: list[Transition] = []
        for c in conditions:
            current = self.open.get(c.key)
            if c.hold or (current is not None and current.severity == c.severity):
                continue
            if current is None and c.severity is None:
                continue
            if quiet and c.severity is not None:
                continue
            if current is not None:
                message = c.message if c.severity is None else current.message
                out.append(
                    Transition(
                        "resolve",
                        c.key,
                        current.rule,
                        current.device_id,
                        current.severity,
                        message,
                        dict(c.data),
                    )
                )
            if c.severity is not None:
                out.append(
                    Transition(
                        "open", c.key, c.rule, c.device_id, c.severity, c.message, dict(c.data)
                    )
                )
        return out

    def apply(self, tx: Tx, transitions: list[Transition]) -> None:
        """Store the transitions (alerts rows, events, outbox) and update the open set."""
        now = tx.stamp.wall
        for t in transitions:
            data = json.dumps(t.data, sort_keys=True, default=str)
            if t.action == "open":
                cursor = tx.conn.execute(
                    "INSERT INTO alerts (key, rule, device_id, severity, state, message, data,"
                    " opened_ts) VALUES (?, ?, ?, ?, 'open', ?, ?, ?)",
                    (t.key, t.rule, t.device_id, t.severity, t.message, data, now),
                )
                alert_id = int(cursor.lastrowid or 0)
                self.open[t.key] = OpenAlert(
                    alert_id, t.key, t.rule, t.device_id, t.severity, t.message
                )
                kind = "alert.opened"
            else:
                current = self.open.pop(t.key, None)
                if current is None:
                    continue
                alert_id = current.id
                tx.conn.execute(
                    "UPDATE alerts SET state = 'resolved', resolved_ts = ? WHERE id = ?",
                    (now, alert_id),
                )
                kind = "alert.resolved"
            body = {
                "id": alert_id,
                "key": t.key,
                "rule": t.rule,
                "device_id": t.device_id,
                "severity": t.severity,
                "state": "open" if t.action == "open" else "resolved",
                "message": t.message,
                "data": t.data,
                "ts": now,
            }
            insert_event(
                tx,
                Event(kind, t.device_id, t.severity, t.message, {"alert_id": alert_id, **body}),
            )
            tx.forward("alert", body, 0)

    def counts(self) -> dict[str, int]:
        """Open alerts per severity, worst first, info not counted (the live status's shape)."""
        out = {str(s): 0 for s in COUNTED_SEVERITIES}
        for alert in self.open.values():
            if alert.severity in out:
                out[alert.severity] += 1
        return out
