"""Acknowledgements made at home, carried back to the box that raised the alert.

An alert acknowledged at home (link, signed callback, CLI or console: all end in
``Planner.acknowledge``, which records ``acked_by``/``acked_at`` on the thread) is handed to its
box in home's answer to the box's periodic ``POST /api/v1/sync`` (home/remote.py), signed with
the MSP's key like configurations and commands (docs/provisioning.md: everything home tells a
box is signed; the box checks it against the key it learnt at its claim). The box marks its
``alerts`` row (services/alerting/acks.py) and its status page shows who acknowledged.

Stateless on purpose: every answer repeats the acknowledgements of the box's alerts that are
still open (and of those acknowledged within ``RECENT_S``, so one resolved before the next
sync still shows who took it), up to ``MAX_ACKS``. The box applies them idempotently (the first
name stays), so a lost answer, a box restart or a second home instance change nothing.
"""

from __future__ import annotations

from typing import Any

from home.notify.planner import HOME_APPLIANCE
from home.sql import Connection

#: Acknowledgements of resolved alerts are still carried this long (s) after they were made.
RECENT_S = 24 * 3600.0
#: At most this many per answer, newest first (an answer stays small).
MAX_ACKS = 200


def acks_for_box(conn: Connection, appliance: str, now_s: float) -> list[dict[str, Any]]:
    """The acknowledgements to carry to ``appliance``: a list of ``{"alert_id": int (the box's
    alert id), "key": str, "by": str, "at": float (epoch s)}``, newest first. Empty when
    notifications never ran on this home (no threads)."""
    if appliance == HOME_APPLIANCE:
        return []
    rows = conn.execute(
        "SELECT box_id, alert_key, acked_by, acked_at FROM notify_threads"
        " WHERE appliance = ? AND acked_by <> '' AND acked_at IS NOT NULL"
        " AND (state = 'open' OR acked_at > ?) ORDER BY acked_at DESC LIMIT ?",
        (appliance, now_s - RECENT_S, MAX_ACKS),
    ).fetchall()
    out: list[dict[str, Any]] = []
    for box_id, key, by, at in rows:
        if not str(box_id).isdigit():
            continue  # not an alert of the box's own table (home-side alerts)
        out.append({"alert_id": int(box_id), "key": str(key), "by": str(by), "at": float(at)})
    return out
