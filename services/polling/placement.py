"""Where each device plugs in: the switches' forwarding tables joined with the inventory.

A MAC address is learned on every port its frames cross: on the access port its cable plugs
into, and on every uplink between it and the switch asking. So a device is placed on the one
port that learned its MAC and is not an uplink. A port is an uplink when

- an LLDP/CDP neighbour on it is infrastructure (announces bridge, router or access point
  capabilities and is not a phone), or is a device of the inventory whose kind is switch,
  router or ap;
- it learned the MAC of another switch that is read (the two face each other);
- it learned ``uplink_min_macs`` MACs or more (an unmanaged switch behind an access port
  holds a desk's few devices; a port with ten or more leads to the rest of the network).

A device that is itself the neighbour on a port (its MAC is the neighbour's chassis id, or
its address or name is the neighbour's) is placed there, uplink or not: that is where the
cable between two switches, or between a switch and the router, plugs in.

Several end devices on one access port share it: an unmanaged switch or a phone with a PC
behind it. They are all placed on it with ``shared`` set.

Pure functions over frozen records; the service (topology_service.py) reads and stores.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.polling.topology import Neighbour, Port, SwitchTables

INFRASTRUCTURE_KINDS = frozenset({"switch", "router", "ap"})


@dataclass(frozen=True)
class KnownDevice:
    """An inventory device (the ``devices`` table)."""

    device_id: int
    mac: str  # lower-case colon form; "" when unknown (configured by IP only)
    ip: str
    name: str
    kind: str


@dataclass(frozen=True)
class SwitchView:
    """One switch read: its inventory identity and its tables."""

    device_id: int
    name: str
    ip: str
    mac: str
    tables: SwitchTables


@dataclass(frozen=True)
class PortRole:
    switch_id: int
    if_index: int
    uplink: bool
    why: str  # "LLDP neighbour sw-floor2 (bridge)", "learns 37 MACs", "faces switch sw2", ""
    macs: tuple[str, ...]  # every MAC learned on the port
    unknown_macs: tuple[str, ...]  # of which no device of the inventory has


@dataclass(frozen=True)
class Placement:
    device_id: int
    switch_id: int
    if_index: int
    port_name: str
    vlan: int | None
    via: str  # "fdb" (learned on the port) | "lldp" | "cdp" (the port's neighbour)
    shared: bool  # other devices (or unknown MACs) are learned on the same access port


@dataclass(frozen=True)
class Topology:
    placements: Mapping[int, Placement]  # device id -> where it plugs in
    roles: Mapping[tuple[int, int], PortRole]  # (switch id, ifIndex) -> uplink or access
    neighbours: Mapping[tuple[int, int], tuple[tuple[Neighbour, int | None], ...]]
    # (switch id, ifIndex) -> (neighbour, the inventory device it is, if any)


def _neighbour_device(n: Neighbour, devices: Sequence[KnownDevice]) -> KnownDevice | None:
    """The inventory device a neighbour announces itself as: by chassis MAC, management
    address, then name (case-insensitive, domain ignored)."""
    for d in devices:
        if d.mac and d.mac == n.remote_chassis:
            return d
    for d in devices:
        if d.ip and d.ip == n.remote_ip:
            return d
    short = n.remote_name.split(".")[0].lower()
    if short:
        for d in devices:
            if d.name and d.name.split(".")[0].lower() == short:
                return d
    return None


def place(
    switches: Sequence[SwitchView], devices: Sequence[KnownDevice], uplink_min_macs: int = 10
) -> Topology:
    """Every device placed on its access port (see the module doc)."""
    by_mac = {d.mac: d for d in devices if d.mac}
    switch_macs = {s.mac: s for s in switches if s.mac}
    roles: dict[tuple[int, int], PortRole] = {}
    neighbours: dict[tuple[int, int], list[tuple[Neighbour, int | None]]] = defaultdict(list)
    placements: dict[int, Placement] = {}
    # Learned MACs per port.
    learned: dict[tuple[int, int], dict[str, int | None]] = defaultdict(dict)
    for s in switches:
        for e in s.tables.fdb:
            if e.if_index is not None:
                learned[(s.device_id, e.if_index)][e.mac] = e.vlan
    for s in switches:
        for n in s.tables.neighbours:
            if n.if_index is None:
                continue
            dev = _neighbour_device(n, devices)
            neighbours[(s.device_id, n.if_index)].append((n, dev.device_id if dev else None))
        for p in s.tables.ports:
            key = (s.device_id, p.if_index)
            macs = learned.get(key, {})
            why = ""
            for n, dev_id in neighbours.get(key, []):
                dev = next((d for d in devices if d.device_id == dev_id), None)
                if n.is_infrastructure or (dev is not None and dev.kind in INFRASTRUCTURE_KINDS):
                    caps = ", ".join(n.remote_caps) or (dev.kind if dev else n.protocol)
                    why = f"{n.protocol.upper()} neighbour {n.remote_name or n.remote_chassis}" \
                          f" ({caps})"  # fmt: skip
                    break
            if not why:
                other = next((switch_macs[m] for m in macs if m in switch_macs
                              and switch_macs[m].device_id != s.device_id), None)  # fmt: skip
                if other is not None:
                    why = f"faces switch {other.name}"
            if not why and len(macs) >= uplink_min_macs:
                why = f"learns {len(macs)} MACs"
            roles[key] = PortRole(
                s.device_id,
                p.if_index,
                bool(why),
                why,
                tuple(sorted(macs)),
                tuple(sorted(m for m in macs if m not in by_mac)),
            )
    # The neighbours themselves: the cable between two switches, a switch and the router.
    ports_of = {s.device_id: {p.if_index: p for p in s.tables.ports} for s in switches}
    for (switch_id, if_index), found in neighbours.items():
        for n, dev_id in found:
            if dev_id is None or dev_id == switch_id or dev_id in placements:
                continue
            port = ports_of.get(switch_id, {}).get(if_index)
            placements[dev_id] = Placement(
                dev_id, switch_id, if_index, port.name if port else n.local_port,
                port.pvid if port else None, n.protocol, False,
            )  # fmt: skip
    # End devices: the one access port that learned their MAC.
    for key, macs in learned.items():
        role = roles.get(key)
        if role is None or role.uplink:
            continue
        switch_id, if_index = key
        port = ports_of.get(switch_id, {}).get(if_index)
        for mac, vlan in macs.items():
            dev = by_mac.get(mac)
            if dev is None or dev.device_id == switch_id:
                continue
            current = placements.get(dev.device_id)
            if current is not None and (current.via != "fdb" or
                                        len(learned[(current.switch_id, current.if_index)])
                                        <= len(macs)):  # fmt: skip
                continue  # a neighbour link, or a port with fewer MACs (nearer) wins
            placements[dev.device_id] = Placement(
                dev.device_id, switch_id, if_index, port.name if port else str(if_index),
                vlan if vlan is not None else (port.pvid if port else None), "fdb", len(macs) > 1,
            )  # fmt: skip
    return Topology(placements, roles, {k: tuple(v) for k, v in neighbours.items()})


def port_of(switches: Sequence[SwitchView], switch_id: int, if_index: int) -> Port | None:
    for s in switches:
        if s.device_id == switch_id:
            return s.tables.port(if_index)
    return None
