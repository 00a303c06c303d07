"""The inventory in the core ``devices`` table, and the change events it produces.

Devices are keyed by MAC; the IP is an attribute that can change. Every function here runs
inside one store transaction (``await store.write(lambda tx: ...)``) and returns the events
it stored, which the caller publishes on the bus after the commit.

Rules:
  * a MAC never seen before: ``device.joined`` (an info event, never an alert), except in a
    fresh box's first sweep, the baseline: one ``discovery.baseline`` event for all of them;
  * an active sweep in which a known MAC no longer answers for its IP but for another one:
    ``device.ip_changed`` (passive ARP only adds addresses: a host with two addresses on the
    LAN would otherwise flap between them);
  * a device unseen for ``leave_after_s``: ``device.left``; seen again: ``device.returned``;
  * two or more MACs answering one IP in the same sweep: ``device.ip_conflict`` once per
    distinct set of MACs, on the device that joined most recently (the newcomer that took an
    address already in use); the conflict is forgotten when a sweep sees one MAC again;
  * a MAC that no longer answers for an address that another MAC answers loses it at that
    sweep (``release_lost_addresses``): after a conflict ends, the intruder is not polled at
    the real device's address;
  * role addresses (the default gateway's, which VRRP/CARP/HSRP move between routers) are never
    a device's primary address when it has another one, and their moves are no IP change; when
    no device holds the gateway address as its own, a ``source = 'gateway'`` row (no MAC) holds
    the role, so it is polled whichever router answers it (``record_gateway_role``);
  * a new locally administered (randomised) MAC can be held back by the caller
    (``hold_local``) until its identity says whether it is a known device under a new MAC
    (``rekey``: no ``device.joined``) or a new one.
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from core.logs import get_log
from core.vocabulary import Severity
from services.discovery import service_roles
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
#: Source of the row that holds the gateway role when no device holds its address as its own.
GATEWAY_ROLE_SOURCE: Final = "gateway"
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


#: kv key of the first sweep's baseline: "open" while a fresh box takes it, "done" after.
BASELINE_KV: Final = "discovery.baseline"


def open_baseline(tx: Tx) -> bool:
    """Decide once per store whether the next sweep is a baseline; True while it is.

    A fresh box (no device known by its MAC) takes its first sweep as the baseline: what is on
    the LAN then is the site as it is, not news, so it joins the inventory without a
    ``device.joined`` per device (one ``discovery.baseline`` summary instead, see
    :func:`close_baseline`). A store that already knows devices (an older box) has no baseline.
    """
    row = tx.conn.execute("SELECT value FROM kv WHERE key = ?", (BASELINE_KV,)).fetchone()
    if row is None:
        known = tx.conn.execute("SELECT 1 FROM devices WHERE mac IS NOT NULL LIMIT 1").fetchone()
        value = "done" if known is not None else "open"
        tx.conn.execute("INSERT INTO kv (key, value) VALUES (?, ?)", (BASELINE_KV, value))
        return value == "open"
    return str(row[0]) == "open"


def close_baseline(tx: Tx, now: float) -> list[Event]:
    """End the baseline: one info event "baseline: N devices found" (data: count, macs)."""
    tx.conn.execute("UPDATE kv SET value = 'done' WHERE key = ?", (BASELINE_KV,))
    # Found by discovery: a device a technician configured (adopted with its MAC) is not.
    rows = tx.conn.execute(
        "SELECT mac FROM devices WHERE mac IS NOT NULL AND source != 'config' ORDER BY id"
    )
    macs = [str(m) for (m,) in rows]
    events: list[Event] = []
    _event(tx, events, Event(
        kind="discovery.baseline",
        severity=Severity.INFO,
        message=f"baseline: {len(macs)} device{'s' if len(macs) != 1 else ''} found",
        data={"count": len(macs), "macs": macs, "ts": now},
    ))  # fmt: skip
    return events


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


def primary_ip(ips: Sequence[str], roles: frozenset[str], old_ip: str = "") -> str:
    """The device's own address among ``ips``: the one it had if it still has it, else the
    lowest; a role address (the gateway's, which moves between routers) only if it has no
    other."""
    own = [i for i in ips if i not in roles] or list(ips)
    if old_ip in own:
        return old_ip
    return own[0] if own else ""


def record_seen(
    tx: Tx,
    seen: Iterable[Seen],
    now: float,
    *,
    active: bool,
    source: str,
    roles: frozenset[str] = frozenset(),
    hold_local: dict[str, tuple[str, ...]] | None = None,
    baseline: bool = False,
) -> list[Event]:
    """Store sightings; ``active``: they come from a sweep (authoritative address list).

    ``baseline``: a fresh box's first sweep (:func:`open_baseline`): new MACs join silently.

    ``roles``: addresses that are roles, not a device's own (the default gateway's).
    ``hold_local``: when given, a MAC never seen that is locally administered (randomised)
    is not joined but put there (mac -> addresses) for the caller to link or join later.
    """
    events: list[Event] = []
    count = int(tx.conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0])
    refused = 0
    for item in seen:
        ips = sorted(set(item.ips), key=_ip_key)
        if not ips:
            continue
        device = device_by_mac(tx.conn, item.mac)
        if device is None:
            if hold_local is not None and lookup(item.mac).local:
                hold_local[item.mac] = tuple(ips)
                continue
            if count >= MAX_DEVICES:
                refused += 1
                continue
            _join(tx, events, item.mac, ips, now=now, source=source, roles=roles,
                  baseline=baseline)  # fmt: skip
            count += 1
            continue
        old_ip = device.ip
        if active:
            new_ips = ips
            ip = primary_ip(ips, roles, old_ip)
        else:
            known = [i for i in device.attrs.get("ips", []) if isinstance(i, str)]
            new_ips = sorted(set(known) | set(ips), key=_ip_key)[:MAX_IPS]
            ip = old_ip if old_ip and old_ip not in roles else primary_ip(new_ips, roles)
        attrs = dict(device.attrs)
        attrs["ips"] = new_ips[:MAX_IPS]
        tx.conn.execute(
            "UPDATE devices SET ip = ?, last_seen = ?, attrs = ? WHERE id = ?",
            (ip, now, json.dumps(attrs, sort_keys=True), device.id),
        )
        # A role address moving away (the gateway address failing over to the other router)
        # is not a change of this device's own address.
        if old_ip and ip != old_ip and old_ip not in roles and ip not in roles:
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
    tx: Tx,
    events: list[Event],
    mac: str,
    ips: list[str],
    *,
    now: float,
    source: str,
    roles: frozenset[str] = frozenset(),
    baseline: bool = False,
) -> None:
    info = lookup(mac)
    ip = primary_ip(ips, roles)
    configured = tx.conn.execute(
        "SELECT id, attrs FROM devices WHERE mac IS NULL AND ip = ? AND source != ?"
        " ORDER BY id LIMIT 1",
        (ip, GATEWAY_ROLE_SOURCE),
    ).fetchone()
    if configured is not None:
        # A device a technician added by IP ([[polling.devices]]): it is the same device, now
        # with its MAC. Known already, so no device.joined. (Never the gateway role's row: the
        # role is an address, whichever router answers it.)
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
        (mac, ip, kind, info.vendor, source, now, now, json.dumps(attrs, sort_keys=True)),
    )
    device_id = int(cursor.lastrowid or 0)
    _set_presence(tx, device_id, True, now)
    if baseline:
        return  # part of the site as first found: counted in the baseline's one event
    vendor = info.vendor or ("randomised MAC" if info.local else "unknown vendor")
    _event(tx, events, Event(
        kind="device.joined",
        device_id=device_id,
        message=f"New device on the LAN: {ip} ({mac}, {vendor})",
        data={"mac": mac, "ip": ip, "vendor": info.vendor},
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
            severity=Severity.WARNING,
            message=f"IP conflict: {ip} is answered by {len(mac_list)} devices "
            f"({', '.join(mac_list)})",
            data={"ip": ip, "macs": mac_list},
        ))  # fmt: skip
    if complete:
        for ip in known:
            if len(conflicts.get(ip, frozenset())) < 2:
                tx.conn.execute("DELETE FROM ip_conflicts WHERE ip = ?", (ip,))
    return events


def release_lost_addresses(tx: Tx, answers: Mapping[str, frozenset[str]]) -> list[str]:
    """After a complete active sweep: a device whose MAC did not answer for one of its
    addresses while another MAC did loses that address (and is no longer polled there).

    ``answers``: ip -> MACs that answered it in this sweep. A device that answered nothing
    keeps addresses nobody else answers (it may be asleep or off: presence decides), and
    those only a sleep proxy answers: a Bonjour Sleep Proxy (an Apple TV, a HomePod) answers
    ARP for a sleeping Mac's address with its own MAC until the Mac wakes. Returns the MACs
    that lost an address.
    """
    released: list[str] = []
    proxies = _sleep_proxies(tx.conn)
    rows = tx.conn.execute(
        f"SELECT {_COLUMNS} FROM devices WHERE mac IS NOT NULL AND ip IS NOT NULL AND ip != ''"
    ).fetchall()
    for row in rows:
        device = _row(row)
        ips = [i for i in device.attrs.get("ips", []) if isinstance(i, str)] or [device.ip]
        lost = {
            i
            for i in {*ips, device.ip}
            if answers.get(i) and device.mac not in answers[i] and not answers[i] <= proxies
        }
        if not lost:
            continue
        kept = [i for i in ips if i not in lost]
        ip = device.ip if device.ip not in lost else (kept[0] if kept else "")
        attrs = dict(device.attrs)
        attrs["ips"] = kept
        tx.conn.execute(
            "UPDATE devices SET ip = ?, attrs = ? WHERE id = ?",
            (ip, json.dumps(attrs, sort_keys=True), device.id),
        )
        log.info("discovery.address_released", mac=device.mac, released=",".join(sorted(lost)),
                 answered_by=",".join(sorted({m for i in lost for m in answers[i]})))  # fmt: skip
        released.append(device.mac)
    return released


def _sleep_proxies(conn: sqlite3.Connection) -> frozenset[str]:
    """MACs of devices that announce a Bonjour Sleep Proxy (``_sleep-proxy._udp``)."""
    rows = conn.execute(
        "SELECT mac FROM devices WHERE mac IS NOT NULL AND instr(attrs, '_sleep-proxy._udp') > 0"
    )
    return frozenset(str(m) for (m,) in rows)


def record_gateway_role(
    tx: Tx, gateways: Iterable[str], answers: Mapping[str, frozenset[str]], now: float
) -> None:
    """Keep the gateway role polled whichever router answers its address.

    For each default-route address answered in this sweep: if a device holds it as its own
    primary address, that device is the gateway and the role row (if any) rests (no IP, not
    polled twice). Otherwise, typically VRRP/CARP/HSRP without a virtual MAC where the address
    is one router's second address and moves to the other on failover, a row with no MAC and
    ``source = 'gateway'`` holds the address and is polled as the gateway. An unanswered
    gateway address changes nothing: the role row, if any, is polled and found down.
    """
    for gateway in sorted(set(gateways)):
        macs = answers.get(gateway)
        if not macs:
            continue
        owner = tx.conn.execute(
            "SELECT id FROM devices WHERE ip = ? AND mac IS NOT NULL", (gateway,)
        ).fetchone()
        role = tx.conn.execute(
            "SELECT id, ip, attrs FROM devices WHERE source = ? AND json_extract(attrs,"
            " '$.gateway_role') = ?",
            (GATEWAY_ROLE_SOURCE, gateway),
        ).fetchone()
        if owner is not None:
            if role is not None and role[1]:
                tx.conn.execute("UPDATE devices SET ip = '' WHERE id = ?", (role[0],))
            continue
        attrs = {"gateway_role": gateway, "answered_by": sorted(macs), "ips": [gateway]}
        if role is None:
            cursor = tx.conn.execute(
                "INSERT INTO devices (mac, ip, name, kind, vendor, source, first_seen,"
                " last_seen, attrs) VALUES (NULL, ?, ?, 'router', '', ?, ?, ?, ?)",
                (gateway, f"Gateway {gateway}", GATEWAY_ROLE_SOURCE, now, now,
                 json.dumps(attrs, sort_keys=True)),
            )  # fmt: skip
            _set_presence(tx, int(cursor.lastrowid or 0), True, now)
            log.info("discovery.gateway_role", ip=gateway, answered_by=",".join(sorted(macs)))
            continue
        tx.conn.execute(
            "UPDATE devices SET ip = ?, last_seen = ?, attrs = ? WHERE id = ?",
            (gateway, now, json.dumps(attrs, sort_keys=True), role[0]),
        )


def rekey(tx: Tx, old_mac: str, new_mac: str, ips: Sequence[str], now: float) -> list[Event]:
    """The device known as ``old_mac`` now uses ``new_mac`` (a rotated private MAC): same
    row, same history, no ``device.joined``; one ``device.mac_rotated`` (info) event."""
    device = device_by_mac(tx.conn, old_mac)
    if device is None or device_by_mac(tx.conn, new_mac) is not None:
        return []
    addresses = sorted(set(ips), key=_ip_key)
    ip = primary_ip(addresses, frozenset()) or device.ip
    attrs = dict(device.attrs)
    attrs["ips"] = addresses[:MAX_IPS]
    attrs["mac_local"] = lookup(new_mac).local
    previous = [m for m in attrs.get("previous_macs", []) if isinstance(m, str)]
    attrs["previous_macs"] = [*previous, old_mac][-MAX_IPS:]
    tx.conn.execute(
        "UPDATE devices SET mac = ?, ip = ?, last_seen = ?, attrs = ? WHERE id = ?",
        (new_mac, ip, now, json.dumps(attrs, sort_keys=True), device.id),
    )
    _set_presence(tx, device.id, True, now)
    events: list[Event] = []
    _event(tx, events, Event(
        kind="device.mac_rotated",
        device_id=device.id,
        message=f"{_label(new_mac, ip, device.name, device.vendor)} now uses a new private "
        f"MAC (was {old_mac})",
        data={"old_mac": old_mac, "mac": new_mac, "old_ip": device.ip, "ip": ip},
    ))  # fmt: skip
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


def best_name(
    snmp: SnmpIdentity | None,
    mdns: Sequence[MdnsService],
    other: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The name to show, and the names from every source: sysName, then mDNS, then the LAN's
    reverse DNS and NetBIOS (``other``: {"rdns": ..., "netbios": ...}, services/discovery/
    names.py); only without any of them does the page fall back to a vendor placeholder."""
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
    for key in ("rdns", "netbios"):
        value = clean_name((other or {}).get(key, ""))
        if value and value.lower() not in _NOT_NAMES:
            names[key] = value
    name = (
        names.get("snmp")
        or names.get("mdns_friendly")
        or names.get("mdns")
        or (instances[0] if instances else "")
        or names.get("rdns")
        or names.get("netbios")
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
    mdns: Sequence[MdnsService] | None,
    is_gateway: bool,
    now: float,
    other_names: Mapping[str, str] | None = None,
) -> DeviceRow | None:
    """Merge SNMP and mDNS identity into the device and classify it again from everything.

    ``other_names``: reverse DNS / NetBIOS names just looked up (None: keep those stored).

    ``mdns``: the services this MAC announced (None: keep those stored). Only those that
    describe the host (services/discovery/service_roles.py) name it, give its model and vote
    for its kind; the others are stored with ``"hosted"``: the reason.
    """
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
    if mdns is None:
        mdns = [mdns_from_attrs(m) for m in attrs.get("mdns", []) if isinstance(m, dict)]
    own, hosted = service_roles.split(mdns)
    attrs["mdns"] = [s.as_attrs() for s in own] + [
        {**h.service.as_attrs(), "hosted": h.why} for h in hosted
    ]
    if not attrs["mdns"]:
        del attrs["mdns"]
    if other_names is None:
        stored_names = attrs.get("names")
        stored = stored_names if isinstance(stored_names, dict) else {}
        other_names = {k: v for k in ("rdns", "netbios") if isinstance(v := stored.get(k), str)}
    name, names = best_name(snmp, own, other_names)
    attrs["names"] = names
    # One model line for the page, whichever source knows it (SNMP is the more exact).
    model = (snmp.model if snmp else "") or mdns_model(own)
    if model:
        attrs["model"] = model
    else:
        attrs.pop("model", None)
    info = lookup(mac)
    evidence: list[Evidence] = gather(
        snmp=snmp, mdns=own, vendor=info.vendor, local_mac=info.local, is_gateway=is_gateway
    )
    for h in hosted:
        # Kept so the page can say why this service did not make the device a printer.
        label = f"{service_roles.bare_type(h.service.type)} ({h.service.name})"
        evidence.append(Evidence("mdns", "unknown", 0.0, f"announces {label}: {h.why}"))
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


def mdns_from_attrs(data: Mapping[str, Any]) -> MdnsService:
    """A service as stored in ``attrs["mdns"]`` (no addresses: those expire)."""
    txt = data.get("txt")
    return MdnsService(
        type=str(data.get("type", "")),
        name=str(data.get("name", "")),
        host=str(data.get("host", "")),
        port=int(data.get("port", 0) or 0),
        addresses=(),
        txt={str(k): str(v) for k, v in txt.items()} if isinstance(txt, dict) else {},
    )
