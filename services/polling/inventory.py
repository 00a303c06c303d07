"""Which devices to poll: the inventory (devices + device_snmp) plus devices added by hand."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from core.settings.polling import ConfiguredDevice, PollingSettings
from services.store.db import Tx


@dataclass(frozen=True)
class PollTarget:
    device_id: int
    ip: str
    name: str
    kind: str
    credential: str  # name of an [[snmp.credentials]] entry; "" for no SNMP
    sys_object_id: str
    tcp_ports: tuple[int, ...]
    interval_s: float = 0.0  # 0: the [polling] default
    monitored: bool | None = None  # [[polling.devices]] monitored: True/False; None: by kind


def upsert_configured(tx: Tx, devices: tuple[ConfiguredDevice, ...]) -> None:
    """Put each configured device into ``devices`` (source 'config'), matched by IP."""
    now = tx.stamp.wall
    for dev in devices:
        attrs = {
            "snmp_credential": dev.snmp_credential,
            "tcp_ports": list(dev.tcp_ports),
            "poll_interval_s": dev.interval_s,
            "monitored": dev.monitored,
        }
        row = tx.conn.execute(
            "SELECT id, attrs FROM devices WHERE ip = ? ORDER BY source = 'config' DESC LIMIT 1",
            (dev.ip,),
        ).fetchone()
        if row is None:
            tx.conn.execute(
                "INSERT INTO devices (ip, name, kind, source, first_seen, last_seen, attrs)"
                " VALUES (?, ?, ?, 'config', ?, ?, ?)",
                (dev.ip, dev.name or dev.ip, dev.kind, now, now, json.dumps(attrs)),
            )
            continue
        merged = _attrs(row[1])
        merged.update(attrs)
        # A technician's name or kind marks the row 'config', so that discovery's next merge
        # keeps them instead of overwriting them with its own conclusion.
        overrides = bool(dev.name) or dev.kind != "unknown"
        tx.conn.execute(
            "UPDATE devices SET name = CASE WHEN ? != '' THEN ? ELSE name END,"
            " kind = CASE WHEN ? != 'unknown' THEN ? ELSE kind END, attrs = ?,"
            " source = CASE WHEN ? THEN 'config' ELSE source END WHERE id = ?",
            (dev.name, dev.name, dev.kind, dev.kind, json.dumps(merged), overrides, row[0]),
        )


def _attrs(text: str | None) -> dict[str, object]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return row.fetchone() is not None


def load_targets(conn: sqlite3.Connection, settings: PollingSettings) -> list[PollTarget]:
    """Every device with an IP, with the SNMP credential discovery (or the config) found."""
    snmp: dict[int, tuple[str, str]] = {}
    if _has_table(conn, "device_snmp"):
        for device_id, credential, sys_oid in conn.execute(
            "SELECT device_id, credential, sys_object_id FROM device_snmp"
        ):
            snmp[int(device_id)] = (credential or "", sys_oid or "")
    targets = []
    for device_id, ip, name, kind, attrs_text in conn.execute(
        "SELECT id, ip, name, kind, attrs FROM devices WHERE ip IS NOT NULL AND ip != ''"
        " ORDER BY id"
    ):
        attrs = _attrs(attrs_text)
        credential, sys_oid = snmp.get(int(device_id), ("", ""))
        configured = attrs.get("snmp_credential")
        if isinstance(configured, str) and configured:
            credential = configured
        ports = attrs.get("tcp_ports")
        extra = tuple(p for p in ports if isinstance(p, int)) if isinstance(ports, list) else ()
        tcp = tuple(dict.fromkeys(settings.tcp_ports_for(kind) + extra))
        interval = attrs.get("poll_interval_s")
        own = float(interval) if isinstance(interval, int | float) and interval > 0 else 0.0
        marked = attrs.get("monitored")
        monitored = marked if isinstance(marked, bool) else None
        targets.append(
            PollTarget(
                int(device_id), ip, name or ip, kind, credential, sys_oid, tcp, own, monitored
            )
        )
    return targets
