"""Where things plug in, for the status page: read from the topology's tables.

- :func:`device_port`: "connected to sw-floor1 port g7 (1 Gb/s, full duplex, VLAN 10)" and who
  shares the port;
- :func:`switch_ports`: a switch's ports, each with its label, what is behind it, speed,
  errors and state;
- :func:`placements` / :func:`neighbour_links`: what the site map is drawn from.

Every function returns ``None`` / empty when the topology chain is not in the store (an
appliance with the topology off, a page rendered in a test without it).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from web.render import fmt_value


def _has(conn: sqlite3.Connection, table: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    return row.fetchone() is not None


def speed_text(bps: float | None) -> str:
    """1 Gb/s, 100 Mb/s, 2.5 Gb/s; "" when unknown or 0 (no link)."""
    if not bps:
        return ""
    return f"{bps / 1e9:g} Gb/s" if bps >= 1e9 else f"{bps / 1e6:g} Mb/s"


def port_state(oper_up: int | None, admin_up: int | None) -> str:
    if admin_up == 0:
        return "disabled"
    if oper_up is None:
        return "unknown"
    return "up" if oper_up else "no link"


def _name(name: str | None, ip: str | None, device_id: int) -> str:
    return name or ip or f"device {device_id}"


def device_port(conn: sqlite3.Connection, device_id: int) -> dict[str, Any] | None:
    """Where a device plugs in, or None when no switch has placed it."""
    if not _has(conn, "topology_placements"):
        return None
    row = conn.execute(
        "SELECT p.switch_id, p.if_index, p.port_name, p.vlan, p.via, p.shared, p.since_ts,"
        " p.seen_ts, s.name, s.ip, t.speed_bps, t.duplex, t.label, t.oper_up, t.admin_up"
        " FROM topology_placements p JOIN devices s ON s.id = p.switch_id"
        " LEFT JOIN topology_ports t ON t.switch_id = p.switch_id AND t.if_index = p.if_index"
        " WHERE p.device_id = ?",
        (device_id,),
    ).fetchone()
    if row is None:
        return None
    (switch_id, if_index, port, vlan, via, shared, since, seen, sname, sip, speed, duplex,
     label, oper, admin) = row  # fmt: skip
    details = [
        t
        for t in (
            speed_text(speed),
            f"{duplex} duplex" if duplex in ("full", "half") else "",
            f"VLAN {vlan}" if vlan is not None else "",
        )
        if t
    ]
    others = conn.execute(
        "SELECT d.id, d.name, d.ip FROM topology_placements p JOIN devices d ON d.id = p.device_id"
        " WHERE p.switch_id = ? AND p.if_index = ? AND p.device_id != ? ORDER BY d.name",
        (switch_id, if_index, device_id),
    ).fetchall()
    return {
        "switch_id": switch_id,
        "switch": _name(sname, sip, switch_id),
        "port": port,
        "label": label or "",
        "details": ", ".join(details),
        "via": via,
        "state": port_state(oper, admin),
        "since_ts": since,
        "seen_ts": seen,
        "shared_with": [{"id": i, "name": _name(n, ip, i)} for i, n, ip in others],
        "shared": bool(shared),
    }


def switch_ports(conn: sqlite3.Connection, switch_id: int) -> list[dict[str, Any]]:
    """Every port of a switch with what is behind it (placed devices, unknown MACs, LLDP/CDP
    neighbours); empty for a device whose tables were never read."""
    if not _has(conn, "topology_ports"):
        return []
    behind: dict[int, list[dict[str, Any]]] = {}
    for if_index, dev_id, name, ip in conn.execute(
        "SELECT p.if_index, d.id, d.name, d.ip FROM topology_placements p"
        " JOIN devices d ON d.id = p.device_id WHERE p.switch_id = ? ORDER BY d.name",
        (switch_id,),
    ):
        behind.setdefault(if_index, []).append({"id": dev_id, "name": _name(name, ip, dev_id)})
    neighbours: dict[int, list[str]] = {}
    for if_index, protocol, remote, rport in conn.execute(
        "SELECT if_index, protocol, remote_name, remote_port FROM topology_neighbours"
        " WHERE switch_id = ?",
        (switch_id,),
    ):
        text = f"{remote or '?'} {rport}".strip() + f" ({protocol.upper()})"
        neighbours.setdefault(if_index, []).append(text)
    known = {mac for (mac,) in conn.execute("SELECT mac FROM devices WHERE mac IS NOT NULL") if mac}
    out = []
    for r in conn.execute(
        "SELECT if_index, name, alias, label, speed_bps, duplex, oper_up, admin_up, pvid,"
        " in_errors, out_errors, uplink, uplink_why, macs FROM topology_ports"
        " WHERE switch_id = ? ORDER BY if_index",
        (switch_id,),
    ):
        (if_index, name, alias, label, speed, duplex, oper, admin, pvid, in_err, out_err,
         uplink, why, macs_json) = r  # fmt: skip
        try:
            macs = [m for m in json.loads(macs_json or "[]") if isinstance(m, str)]
        except ValueError:
            macs = []
        unknown = [m for m in macs if m not in known]
        errors = None if in_err is None and out_err is None else (in_err or 0) + (out_err or 0)
        out.append(
            {
                "if_index": if_index,
                "name": name,
                "label": label or alias or "",
                "devices": [] if uplink else behind.get(if_index, []),
                "neighbours": neighbours.get(if_index, []),
                "unknown_macs": unknown,
                "uplink": bool(uplink),
                "uplink_why": why,
                "speed": speed_text(speed) if oper else "",
                "duplex": duplex if oper and duplex in ("full", "half") else "",
                "vlan": pvid,
                "errors": fmt_value(errors, "") if errors is not None else "",
                "state": port_state(oper, admin),
            }
        )
    return out


def placements(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every placement with its port's label: device_id, switch_id, if_index, port, label, via."""
    if not _has(conn, "topology_placements"):
        return []
    rows = conn.execute(
        "SELECT p.device_id, p.switch_id, p.if_index, p.port_name, COALESCE(t.label, ''), p.via,"
        " COALESCE(t.uplink, 0), t.speed_bps FROM topology_placements p"
        " LEFT JOIN topology_ports t ON t.switch_id = p.switch_id AND t.if_index = p.if_index"
        " ORDER BY p.switch_id, p.if_index"
    ).fetchall()
    keys = ("device_id", "switch_id", "if_index", "port", "label", "via", "uplink", "speed_bps")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def read_switches(conn: sqlite3.Connection) -> set[int]:
    """Devices whose tables were read (they have ports)."""
    if not _has(conn, "topology_ports"):
        return set()
    return {int(i) for (i,) in conn.execute("SELECT DISTINCT switch_id FROM topology_ports")}
