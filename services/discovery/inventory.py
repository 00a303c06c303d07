"""The inventory in the core ``devices`` table, and the change events it produces.

Devices are keyed by MAC; the IP is an attribute that can change. Every function here runs
inside one store transaction (``await store.write(lambda tx: ...)``) and returns the events
it stored, which the caller publishes on the bus after the commit.

Rules:
  * a MAC never seen before: ``device.joined``;
  * an active sweep in which a known MAC no longer answers for its IP but for another one:
    ``device.ip_changed`` (passive ARP only adds addresses: a host with two addresses on the
    LAN would otherwise flap between them);
  * a device unseen for ``leave_after_s``: ``device.left``; seen again: ``device.returned``;
  * two or more MACs answering one IP in the same sweep: ``device.ip_conflict`` once per
    distinct set of MACs, on the device that joined most recently (the newcomer that took an
    address already in use); the conflict is forgotten when a sweep sees one MAC again.
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from core.logs import get_log
from services.discovery.classify import Evidence, classify, gather
from services.discovery.mdns import MdnsService
from services.discovery.oui import lookup
from services.discovery.sanitize import clean_name
from services.discovery.snmp_identity import SnmpIdentity
from services.store import Event, Tx, insert_event

log = get_log("discovery")

#: Addresses remembered per device (a host rarely has more than two on one LAN).
MAX_IPS: Final = 8
#: Devices kept at most: an office has hundreds; a host spoofing ARP from random MACs must
#: not grow the store (and the MSP's event stream) without bound.
MAX_DEVICES: Final = 4096
#: sysName values that are placeholders, not names.
_NOT_NAMES: Final = frozenset({"", "<private>", "localhost", "(none)", "unknown"})


@dataclass(frozen=True)
class Seen:
    """A MAC seen on the LAN with the addresses it answered for (lowest first)."""

    mac: str
    ips: tuple[str, ...]


@dataclass(frozen=True)
class DeviceRow:
    id: int
    mac: str
    ip: str
    name: str
    kind: str
    vendor: str
    first_seen: float
    last_seen: float
    attrs: dict[str, Any]
    source: str = ""  # "arp" (found by discovery) or "config" (added by a technician)


def _ip_key(ip: str) -> int:
    try:
        return int(ipaddress.IPv4Address(ip))
    except ValueError:
        return 0


def _row(r: sqlite3.Row | tuple[Any, ...]) -> DeviceRow:
    try:
        attrs = json.loads(r[8] or "{}")
    except ValueError:
        attrs = {}
    return DeviceRow(
        int(r[0]), r[1] or "", r[2] or "", r[3], r[4], r[5], r[6], r[7],
        attrs if isinstance(attrs, dict) else {}, r[9] or "",
    )  # fmt: skip


_COLUMNS = "id, mac, ip, name, kind, vendor, first_seen, last_seen, attrs, source"


def device_by_mac(conn: sqlite3.Connection, mac: str) -> DeviceRow | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM devices WHERE mac = ?", (mac,)).fetchone()
    return _row(row) if row else None


def all_devices(conn: sqlite3.Connection) -> list[DeviceRow]:
    return [_row(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM devices ORDER BY id")]


def _label(mac: str, ip: str, name: str = "", vendor: str = "") -> str:
    who = name or vendor or "device"
    return f"{who} {ip} ({mac})" if ip else f"{who} ({mac})"


def _event(tx: Tx, events: list[Event], event: Event) -> None:
    insert_event(tx, event)
    events.append(event)


def _set_presence(tx: Tx, device_id: int, present: bool, now: float) -> None:
    tx.conn.execute(
        "INSERT INTO device_presence (device_id, present, changed) VALUES (?, ?, ?)"
        " ON CONFLICT(device_id) DO UPDATE SET present = excluded.present,"
        " changed = excluded.changed",
        (device_id, int(present), now),
    )


def _present(conn: sqlite3.Connection, device_id: int) -> bool:
    row = conn.execute(
        "SELECT present FROM device_presence WHERE device_id = ?", (device_id,)
    ).fetchone()
    return row is None or bool(row[0])


def record_seen(
    tx: Tx, seen: Iterable[Seen], now: float, *, active: bool, source: str
) -> list[Event]:
    """Store sightings; ``active``: they come from a sweep (authoritative address list)."""
    events: list[Event] = []
    count = int(tx.conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0])
    refused = 0
    for item in seen:
        ips = sorted(set(item.ips), key=_ip_key)
        if not ips:
            continue
        device = device_by_mac(tx.conn, item.mac)
        if device is None:
            if count >= MAX_DEVICES:
                refused += 1
                continue
            _join(tx, events, item.mac, ips, now=now, source=source)
            count += 1
            continue
        old_ip = device.ip
        if active:
            new_ips = ips
            ip = old_ip if old_ip in ips else ips[0]
        else:
            known = [i for i in device.attrs.get("ips", []) if isinstance(i, str)]
            new_ips = sorted(set(known) | set(ips), key=_ip_key)[:MAX_IPS]
            ip = old_ip or ips[0]
        attrs = dict(device.attrs)
        attrs["ips"] = new_ips[:MAX_IPS]
        tx.conn.execute(
            "UPDATE devices SET ip = ?, last_seen = ?, attrs = ? WHERE id = ?",
            (ip, now, json.dumps(attrs, sort_keys=True), device.id),
        )
        if old_ip and ip != old_ip:
            _event(tx, events, Event(
                kind="device.ip_changed",
                device_id=device.id,
                message=f"{_label(item.mac, '', device.name, device.vendor)} changed IP "
                f"from {old_ip} to {ip}",
                data={"mac": item.mac, "old_ip": old_ip, "new_ip": ip},
            ))  # fmt: skip
        if not _present(tx.conn, device.id):
            _set_presence(tx, device.id, True, now)
            away = now - device.last_seen
            _event(tx, events, Event(
                kind="device.returned",
                device_id=device.id,
                message=f"{_label(item.mac, ip, device.name, device.vendor)} is back "
                f"after {away / 60:.0f} min",
                data={"mac": item.mac, "ip": ip, "away_s": round(away, 1)},
            ))  # fmt: skip
    if refused:
        log.warning(
            "discovery.inventory_full",
            refused=refused,
            limit=MAX_DEVICES,
            hint="more MACs than an office has: look for a host spoofing ARP",
        )
    return events


def _join(
    tx: Tx, events: list[Event], mac: str, ips: list[str], *, now: float, source: str
) -> None:
    info = lookup(mac)
    configured = tx.conn.execute(
        "SELECT id, attrs FROM devices WHERE mac IS NULL AND ip = ? ORDER BY id LIMIT 1",
        (ips[0],),
    ).fetchone()
    if configured is not None:
        # A device a technician added by IP ([[polling.devices]]): it is the same device, now
        # with its MAC. Known already, so no device.joined.
        try:
            kept = json.loads(configured[1] or "{}")
        except ValueError:
            kept = {}
        merged = {**(kept if isinstance(kept, dict) else {}), "ips": ips[:MAX_IPS],
                  "mac_local": info.local}  # fmt: skip
        tx.conn.execute(
            "UPDATE devices SET mac = ?, vendor = ?, last_seen = ?, attrs = ? WHERE id = ?",
            (mac, info.vendor, now, json.dumps(merged, sort_keys=True), configured[0]),
        )
        _set_presence(tx, int(configured[0]), True, now)
        return
    attrs: dict[str, Any] = {"ips": ips[:MAX_IPS], "mac_local": info.local, "names": {}}
    evidence = gather(snmp=None, mdns=(), vendor=info.vendor, local_mac=info.local,
                      is_gateway=False)  # fmt: skip
    kind, confidence = classify(evidence)
    attrs["evidence"] = [e.as_attrs() for e in evidence]
    attrs["confidence"] = confidence
    cursor = tx.conn.execute(
        "INSERT INTO devices (mac, ip, name, kind, vendor, source, first_seen, last_seen, attrs)"
        " VALUES (?, ?, '', ?, ?, ?, ?, ?, ?)",
        (mac, ips[0], kind, info.vendor, source, now, now, json.dumps(attrs, sort_keys=True)),
    )
    device_id = int(cursor.lastrowid or 0)
    _set_presence(tx, device_id, True, now)
    vendor = info.vendor or ("randomised MAC" if info.local else "unknown vendor")
    _event(tx, events, Event(
        kind="device.joined",
        device_id=device_id,
        message=f"New device on the LAN: {ips[0]} ({mac}, {vendor})",
        data={"mac": mac, "ip": ips[0], "vendor": info.vendor},
    ))  # fmt: skip


def record_conflicts(
    tx: Tx, conflicts: Mapping[str, frozenset[str]], now: float, *, complete: bool
) -> list[Event]:
    """Store IP conflicts of one sweep; ``complete``: the sweep covered every address, so a
    known conflict not in ``conflicts`` is over."""
    events: list[Event] = []
    known = {
        ip: frozenset(json.loads(macs))
        for ip, macs in tx.conn.execute("SELECT ip, macs FROM ip_conflicts")
    }
    for ip, macs in sorted(conflicts.items()):
        if len(macs) < 2:
            continue
        mac_list = sorted(macs)
        if known.get(ip) == macs:
            tx.conn.execute("UPDATE ip_conflicts SET last_seen = ? WHERE ip = ?", (now, ip))
            continue
        tx.conn.execute(
            "INSERT INTO ip_conflicts (ip, macs, first_seen, last_seen) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(ip) DO UPDATE SET macs = excluded.macs, last_seen = excluded.last_seen",
            (ip, json.dumps(mac_list), now, now),
        )
        devices = [d for d in (device_by_mac(tx.conn, m) for m in mac_list) if d is not None]
        newcomer = max(devices, key=lambda d: (d.first_seen, d.id)) if devices else None
        _event(tx, events, Event(
            kind="device.ip_conflict",
            device_id=newcomer.id if newcomer else None,
            severity="warning",
            message=f"IP conflict: {ip} is answered by {len(mac_list)} devices "
            f"({', '.join(mac_list)})",
            data={"ip": ip, "macs": mac_list},
        ))  # fmt: skip
    if complete:
        for ip in known:
            if len(conflicts.get(ip, frozenset())) < 2:
                tx.conn.execute("DELETE FROM ip_conflicts WHERE ip = ?", (ip,))
    return events


def expire(tx: Tx, now: float, leave_after_s: float) -> list[Event]:
    """``device.left`` for every present device unseen for ``leave_after_s``."""
    events: list[Event] = []
    rows = tx.conn.execute(
        f"SELECT {', '.join('d.' + c.strip() for c in _COLUMNS.split(','))} FROM devices d"
        " LEFT JOIN device_presence p ON p.device_id = d.id"
        " WHERE COALESCE(p.present, 1) = 1 AND d.last_seen < ? AND d.mac IS NOT NULL",
        (now - leave_after_s,),
    ).fetchall()
    for row in rows:
        device = _row(row)
        _set_presence(tx, device.id, False, now)
        _event(tx, events, Event(
            kind="device.left",
            device_id=device.id,
            message=f"{_label(device.mac, device.ip, device.name, device.vendor)} has not been "
            f"seen for {(now - device.last_seen) / 60:.0f} min",
            data={"mac": device.mac, "ip": device.ip, "last_seen": device.last_seen},
        ))  # fmt: skip
    return events


def best_name(snmp: SnmpIdentity | None, mdns: Sequence[MdnsService]) -> tuple[str, dict[str, Any]]:
    """The name to show, and the names from every source."""
    names: dict[str, Any] = {}
    if snmp is not None and snmp.sys_name.strip().lower() not in _NOT_NAMES:
        names["snmp"] = snmp.sys_name
    hosts = sorted({s.short_host for s in mdns if s.short_host})
    if hosts:
        names["mdns"] = hosts[0]
    instances = sorted({s.name for s in mdns if s.name})
    if instances:
        names["mdns_instances"] = instances[:16]
    # Google Cast's "fn" is the name the owner gave the device ("Meeting room TV").
    friendly = sorted({s.txt["fn"] for s in mdns if s.txt.get("fn")})
    if friendly:
        names["mdns_friendly"] = friendly[0]
    name = (
        names.get("snmp")
        or names.get("mdns_friendly")
        or names.get("mdns")
        or (instances[0] if instances else "")
    )
    return clean_name(name), names


#: TXT keys that name the hardware model: printers (ty, product, usb_MDL), Apple (model),
#: Google Cast (md).
_MODEL_KEYS: Final = ("ty", "usb_mdl", "product", "md", "model")


def mdns_model(mdns: Sequence[MdnsService]) -> str:
    """The model a device announces over mDNS ("" when none)."""
    for key in _MODEL_KEYS:
        for svc in mdns:
            value = svc.txt.get(key, "").strip().strip("()").strip()
            if value:
                return value
    return ""


def update_identity(
    tx: Tx,
    mac: str,
    *,
    snmp: SnmpIdentity | None,
    credential: str,
    mdns: Sequence[MdnsService],
    is_gateway: bool,
    now: float,
) -> DeviceRow | None:
    """Merge SNMP and mDNS identity into the device and classify it again from everything."""
    device = device_by_mac(tx.conn, mac)
    if device is None:
        return None
    attrs = dict(device.attrs)
    if snmp is not None:
        attrs["snmp"] = snmp.as_attrs()
        tx.conn.execute(
            "INSERT INTO device_snmp (device_id, credential, sys_object_id, sys_descr, updated)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET"
            " credential = excluded.credential, sys_object_id = excluded.sys_object_id,"
            " sys_descr = excluded.sys_descr, updated = excluded.updated",
            (device.id, credential, snmp.sys_object_id, snmp.sys_descr, now),
        )
    elif isinstance(attrs.get("snmp"), dict):
        snmp = _snmp_from_attrs(attrs["snmp"])
    if mdns:
        attrs["mdns"] = [s.as_attrs() for s in mdns]
    else:
        mdns = [_mdns_from_attrs(m) for m in attrs.get("mdns", []) if isinstance(m, dict)]
    name, names = best_name(snmp, mdns)
    attrs["names"] = names
    # One model line for the page, whichever source knows it (SNMP is the more exact).
    model = (snmp.model if snmp else "") or mdns_model(mdns)
    if model:
        attrs["model"] = model
    info = lookup(mac)
    evidence: list[Evidence] = gather(
        snmp=snmp, mdns=mdns, vendor=info.vendor, local_mac=info.local, is_gateway=is_gateway
    )
    kind, confidence = classify(evidence)
    attrs["evidence"] = [e.as_attrs() for e in evidence]
    attrs["confidence"] = confidence
    vendor = info.vendor or (snmp.vendor if snmp else "")
    if device.source == "config":
        # The technician's name and kind win over what discovery concludes.
        name = device.name or name
        kind = device.kind if device.kind != "unknown" else kind
    unchanged = (name, kind, vendor, attrs) == (
        device.name, device.kind, device.vendor, device.attrs
    )  # fmt: skip
    if unchanged:
        return device  # no write: an SD card wears with every rewritten page
    tx.conn.execute(
        "UPDATE devices SET name = ?, kind = ?, vendor = ?, attrs = ? WHERE id = ?",
        (name, kind, vendor, json.dumps(attrs, sort_keys=True), device.id),
    )
    return device_by_mac(tx.conn, mac)


def _snmp_from_attrs(data: Mapping[str, Any]) -> SnmpIdentity:
    def s(key: str) -> str:
        value = data.get(key)
        return value if isinstance(value, str) else ""

    return SnmpIdentity(
        sys_descr=s("sysDescr"), sys_object_id=s("sysObjectID"), sys_name=s("sysName"),
        sys_location=s("location"), sys_contact=s("contact"), vendor=s("vendor"),
        platform=s("platform"), model=s("model"), serial=s("serial"), version=s("version"),
        kind=s("kind"), why=s("why"),
    )  # fmt: skip


def _mdns_from_attrs(data: Mapping[str, Any]) -> MdnsService:
    txt = data.get("txt")
    return MdnsService(
        type=str(data.get("type", "")),
        name=str(data.get("name", "")),
        host=str(data.get("host", "")),
        port=int(data.get("port", 0) or 0),
        addresses=(),
        txt={str(k): str(v) for k, v in txt.items()} if isinstance(txt, dict) else {},
    )
