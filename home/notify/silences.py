"""Maintenance windows (silences): while one is active, alerts it covers open without notifying.

A silence covers a site (``site``; '' = every site), optionally one device (``device``: the
box's device id, the second part of alert keys such as ``device.down:7`` or
``supply.low:7:black``) and optionally alert keys (``key_pattern``, shell pattern), from
``starts_at`` to ``ends_at`` (epoch seconds). An alert that opens inside it is recorded (its
thread notes the silence) and sends nothing then or at its resolution; one still open when the
window ends (or is ended early) is notified then, as if it opened at that moment
(``Planner.release_silenced``, run by the worker every round; docs/notifications.md).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from home.sql import Connection


@dataclass(frozen=True)
class Silence:
    id: str
    site: str
    device: str
    key_pattern: str
    starts_at: float
    ends_at: float
    reason: str
    created_by: str


COLUMNS = ", ".join(Silence.__dataclass_fields__)


def device_of(key: str) -> str:
    """The device id in an alert key ('device.down:7' -> '7'), '' when it has none."""
    parts = key.split(":")
    return parts[1] if len(parts) > 1 else ""


def covering(conn: Connection, site: str, key: str, now_s: float) -> Silence | None:
    """The active silence that covers an alert of ``site`` with ``key``, if any."""
    for row in conn.execute(
        f"SELECT {COLUMNS} FROM notify_silences WHERE starts_at <= ? AND ends_at > ?"
        " ORDER BY ends_at DESC, id",
        (now_s, now_s),
    ).fetchall():
        silence = Silence(*row)
        if silence.site and silence.site != site:
            continue
        if silence.device and silence.device != device_of(key):
            continue
        if fnmatchcase(key, silence.key_pattern or "*"):
            return silence
    return None


def add(
    conn: Connection,
    *,
    site: str,
    device: str,
    key_pattern: str,
    starts_at: float,
    ends_at: float,
    reason: str,
    created_by: str,
) -> str:
    """Store a silence; returns its id. ValueError when it ends before it starts."""
    if ends_at <= starts_at:
        raise ValueError("the silence ends before it starts; give a later end")
    silence_id = secrets.token_hex(4)
    conn.execute(
        f"INSERT INTO notify_silences ({COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (silence_id, site, device, key_pattern or "*", starts_at, ends_at, reason[:200],
         created_by[:80], starts_at),
    )  # fmt: skip
    return silence_id


def end(conn: Connection, silence_id: str, now_s: float) -> bool:
    """End a silence now; False when there is no such active silence."""
    cursor = conn.execute(
        "UPDATE notify_silences SET ends_at = ? WHERE id = ? AND ends_at > ?",
        (now_s, silence_id, now_s),
    )
    return cursor.rowcount > 0


def listing(conn: Connection, now_s: float) -> list[dict[str, Any]]:
    """Active and future silences, soonest end first."""
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM notify_silences WHERE ends_at > ? ORDER BY ends_at, id",
        (now_s,),
    ).fetchall()
    return [vars(Silence(*row)) for row in rows]
