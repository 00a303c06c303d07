"""Acknowledgements made at home, stored on the box's alert rows.

Home carries them in its answer to the box's sync (home/notify/acks.py, signed with the MSP key;
provisioning/acks.py checks the signature). Each names the box's own alert (its ``alerts.id``,
which the uplink's alert records carry as ``id``) and its key, who acknowledged and when.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from services.store.db import Tx

MAX_NAME_CHARS = 120


@dataclass(frozen=True)
class HomeAck:
    """One acknowledgement: the box's alert id and key, who (free text), when (epoch s)."""

    alert_id: int
    key: str
    by: str
    at: float


@dataclass(frozen=True)
class Acked:
    """An alert row that took an acknowledgement (for the log and live listeners)."""

    alert_id: int
    key: str
    device_id: int | None
    severity: str
    message: str
    by: str


def parse_acks(items: Any) -> list[HomeAck]:
    """The well-formed entries of a signed acks document's ``acks`` list (others skipped)."""
    out: list[HomeAck] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        alert_id, key, by, at = (item.get(k) for k in ("alert_id", "key", "by", "at"))
        if type(alert_id) is not int or not isinstance(key, str) or not isinstance(by, str):
            continue
        if not isinstance(at, int | float) or isinstance(at, bool) or not math.isfinite(at):
            continue
        out.append(HomeAck(alert_id, key, by.strip()[:MAX_NAME_CHARS] or "home", float(at)))
    return out


def apply_acks(tx: Tx, acks: list[HomeAck]) -> list[Acked]:
    """Mark each named alert acknowledged, unless a name is already recorded (the first one
    stays: home repeats its acknowledgements in every sync answer). Only the row with both the
    id and the key: a box that lost its store reuses ids, never for the same key and moment.
    Returns the rows changed now."""
    changed: list[Acked] = []
    for ack in acks:
        row = tx.conn.execute(
            "SELECT device_id, severity, message FROM alerts"
            " WHERE id = ? AND key = ? AND acked_by = ''",
            (ack.alert_id, ack.key),
        ).fetchone()
        if row is None:
            continue
        tx.conn.execute(
            "UPDATE alerts SET acked = 1, acked_by = ?, acked_ts = ? WHERE id = ?",
            (ack.by, ack.at, ack.alert_id),
        )
        changed.append(Acked(ack.alert_id, ack.key, row[0], str(row[1]), str(row[2]), ack.by))
    return changed
