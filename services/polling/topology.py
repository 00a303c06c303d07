"""What a switch knows of its ports: the port table, the forwarding table, its neighbours.

Read from a switch (or an access point, a router) at a slower pace than counters
(``[topology] interval_s``, default 300 s): forwarding tables and neighbours change when a
cable is moved, not every minute, and a full FDB costs hundreds of varbinds.

MIB objects (all column walks, never a whole MIB):

- IF-MIB ifTable/ifXTable: ifDescr, ifType, ifSpeed/ifHighSpeed, ifAdminStatus,
  ifOperStatus, ifInErrors/ifOutErrors, ifName, ifAlias (RFC 2863);
  EtherLike-MIB dot3StatsDuplexStatus (RFC 3635: 1 unknown, 2 half, 3 full).
- BRIDGE-MIB (RFC 4188) dot1dBasePortIfIndex (bridge port -> ifIndex), dot1dTpFdbPort and
  dot1dTpFdbStatus (MAC -> bridge port; status 3 learned, 4 self, 5 mgmt).
- Q-BRIDGE-MIB (RFC 4363) dot1qTpFdbPort/Status (index: FDB id . MAC), dot1qVlanFdbId
  (VLAN -> FDB id, to name the VLAN of each entry), dot1qPvid (untagged VLAN per bridge port).
- LLDP-MIB (IEEE 802.1AB) lldpLocPortId/Desc (local port number -> its name) and
  lldpRemTable (chassis id, port id and description, system name and description);
  lldpRemManAddrIfSubtype's index carries the neighbour's management address.
- CISCO-CDP-MIB cdpCacheTable (index ifIndex . device index): address, version, device id,
  device port, platform.

Everything is parsed into frozen dataclasses (:class:`SwitchTables`); nothing here writes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from services.polling.access import Rows, SnmpAccess
from services.polling.profiles import SPEED_UNKNOWN_32, number, oid, text
from services.snmp.errors import SnmpErrorStatus, SnmpWalkLoop
from services.snmp.values import OID, IpAddress, OctetString, SnmpValue

# ---------------------------------------------------------------- MIB objects

IF = "1.3.6.1.2.1.2.2.1."
IFX = "1.3.6.1.2.1.31.1.1.1."
IF_DESCR, IF_TYPE, IF_SPEED = oid(IF + "2"), oid(IF + "3"), oid(IF + "5")
IF_PHYS = oid(IF + "6")
IF_ADMIN, IF_OPER = oid(IF + "7"), oid(IF + "8")
IF_IN_ERRORS, IF_OUT_ERRORS = oid(IF + "14"), oid(IF + "20")
IF_NAME, IF_HIGH_SPEED, IF_ALIAS = oid(IFX + "1"), oid(IFX + "15"), oid(IFX + "18")
DOT3_DUPLEX = oid("1.3.6.1.2.1.10.7.2.1.19")
IF_TYPE_ETHERNET = 6
IF_TYPE_LOOPBACK = 24

DOT1D_BASE_PORT_IFINDEX = oid("1.3.6.1.2.1.17.1.4.1.2")
DOT1D_FDB_PORT, DOT1D_FDB_STATUS = oid("1.3.6.1.2.1.17.4.3.1.2"), oid("1.3.6.1.2.1.17.4.3.1.3")
DOT1Q_FDB_PORT = oid("1.3.6.1.2.1.17.7.1.2.2.1.2")
DOT1Q_FDB_STATUS = oid("1.3.6.1.2.1.17.7.1.2.2.1.3")
DOT1Q_VLAN_FDB_ID = oid("1.3.6.1.2.1.17.7.1.4.2.1.3")
DOT1Q_PVID = oid("1.3.6.1.2.1.17.7.1.4.5.1.1")
FDB_LEARNED, FDB_SELF, FDB_MGMT = 3, 4, 5

LLDP = "1.0.8802.1.1.2.1."
LLDP_LOC_PORT_ID, LLDP_LOC_PORT_DESC = oid(LLDP + "3.7.1.3"), oid(LLDP + "3.7.1.4")
LLDP_REM = LLDP + "4.1.1."
LLDP_REM_CHASSIS_SUBTYPE, LLDP_REM_CHASSIS = oid(LLDP_REM + "4"), oid(LLDP_REM + "5")
LLDP_REM_PORT_SUBTYPE, LLDP_REM_PORT = oid(LLDP_REM + "6"), oid(LLDP_REM + "7")
LLDP_REM_PORT_DESC, LLDP_REM_SYS_NAME = oid(LLDP_REM + "8"), oid(LLDP_REM + "9")
LLDP_REM_SYS_DESC = oid(LLDP_REM + "10")
LLDP_REM_CAPS_ENABLED = oid(LLDP_REM + "12")
#: LldpSystemCapabilitiesMap (BITS: bit 0 is the first octet's most significant bit).
LLDP_CAPS = ("other", "repeater", "bridge", "wlanAccessPoint", "router", "telephone",
             "docsisCableDevice", "stationOnly")  # fmt: skip
LLDP_REM_MAN_ADDR_IF_SUBTYPE = oid(LLDP + "4.2.1.3")
# LldpChassisIdSubtype / LldpPortIdSubtype values whose id is a MAC address (4 and 3).
CHASSIS_MAC, PORT_MAC = 4, 3
CHASSIS_NETADDR, PORT_NETADDR = 5, 4

CDP = "1.3.6.1.4.1.9.9.23.1.2.1.1."
CDP_ADDRESS, CDP_VERSION, CDP_DEVICE_ID = oid(CDP + "4"), oid(CDP + "5"), oid(CDP + "6")
CDP_DEVICE_PORT, CDP_PLATFORM = oid(CDP + "7"), oid(CDP + "8")

DUPLEX = {1: "unknown", 2: "half", 3: "full"}
#: ifAdminStatus up(1) down(2) testing(3); ifOperStatus up(1) down(2) testing(3) unknown(4)
#: dormant(5) notPresent(6) lowerLayerDown(7): up or not, unknown(4) and out-of-range
#: values (a DrayTek's 0) are no verdict.
ADMIN_STATES = {1: True, 2: False, 3: False}
OPER_STATES = {1: True, 2: False, 3: False, 5: False, 6: False, 7: False}
#: Text kept of a neighbour's description (sysDescr can be a paragraph).
DESCR_CHARS = 200


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class Port:
    """One interface of the switch (IF-MIB, EtherLike-MIB, Q-BRIDGE-MIB)."""

    if_index: int
    name: str  # ifName, else ifDescr
    descr: str  # ifDescr
    alias: str  # ifAlias: the label a technician set on the switch
    if_type: int | None
    speed_bps: float | None  # ifHighSpeed x 1e6 when ifSpeed saturates, else ifSpeed
    admin_up: bool | None
    oper_up: bool | None
    duplex: str  # "full", "half", "unknown" (the agent says so) or "" (no EtherLike-MIB)
    pvid: int | None  # untagged VLAN (dot1qPvid of its bridge port)
    in_errors: int | None  # ifInErrors (Counter32)
    out_errors: int | None
    base_port: int | None  # BRIDGE-MIB port number, when the port is a bridge port

    @property
    def label(self) -> str:
        """What a technician reads the port as: its ifAlias, else ifDescr, else ifName."""
        return self.alias or self.descr or self.name


@dataclass(frozen=True)
class FdbEntry:
    """A MAC address the switch learned on one of its ports."""

    mac: str  # lower-case colon form
    if_index: int | None  # None when the bridge port maps to no interface
    base_port: int
    vlan: int | None  # Q-BRIDGE VLAN (from the FDB id), None from the plain BRIDGE-MIB table


@dataclass(frozen=True)
class Neighbour:
    """A device on the other end of a port, as it announces itself (LLDP or CDP)."""

    protocol: str  # "lldp" | "cdp"
    if_index: int | None  # local interface it was heard on (None when it maps to none)
    local_port: str  # the local port's name (ifName), else the agent's own name for it
    remote_name: str  # lldpRemSysName / cdpCacheDeviceId
    remote_port: str  # lldpRemPortId (MACs in colon form) / cdpCacheDevicePort
    remote_port_descr: str  # lldpRemPortDesc
    remote_chassis: str  # lldpRemChassisId (MACs in colon form)
    remote_descr: str  # lldpRemSysDesc / cdpCacheVersion
    remote_platform: str  # cdpCachePlatform
    remote_ip: str  # management address when announced
    remote_caps: tuple[str, ...] = ()  # lldpRemSysCapEnabled names ("bridge", "telephone" ...)

    @property
    def is_infrastructure(self) -> bool:
        """A switch, router or access point (not a phone or a station announcing itself)."""
        caps = set(self.remote_caps)
        if self.protocol == "cdp":
            return not self.remote_platform.lower().startswith(("cisco ip phone", "cp-"))
        return bool(caps & {"bridge", "router", "wlanAccessPoint"}) and "telephone" not in caps


@dataclass(frozen=True)
class SwitchTables:
    ports: tuple[Port, ...]
    fdb: tuple[FdbEntry, ...]
    neighbours: tuple[Neighbour, ...]
    errors: tuple[str, ...] = ()  # tables the agent answered badly (noted, not fatal)

    def port(self, if_index: int | None) -> Port | None:
        return next((p for p in self.ports if p.if_index == if_index), None)


# ---------------------------------------------------------------- parsing


def _status(value: float | None, states: dict[int, bool]) -> bool | None:
    return None if value is None else states.get(int(value))


def _int_index(idx: OID) -> int | None:
    return idx[-1] if len(idx) == 1 else None


def _mac_text(value: SnmpValue | None) -> str:
    if isinstance(value, OctetString) and len(value.value) == 6:
        return value.hex(":")
    return ""


def _id_text(value: SnmpValue | None, subtype: float | None, mac_subtype: int) -> str:
    """An LLDP chassis or port id as text: MACs in colon form, addresses dotted, else text."""
    if not isinstance(value, OctetString):
        return ""
    if subtype == mac_subtype and len(value.value) == 6:
        return value.hex(":")
    if subtype in (CHASSIS_NETADDR, PORT_NETADDR) and len(value.value) == 5:
        # IANA address family 1 (IPv4) then the 4 octets.
        return str(ipaddress.IPv4Address(value.value[1:]))
    return text(value)


def parse_ports(if_rows: Rows, duplex: Rows, base_ports: dict[int, int], pvid: Rows) -> list[Port]:
    """Interfaces other than loopbacks, by ifIndex. ``base_ports``: ifIndex -> bridge port."""
    out = []
    for idx, row in if_rows.items():
        if_index = _int_index(idx)
        if if_index is None:
            continue
        if_type = number(row.get(IF_TYPE))
        if if_type == IF_TYPE_LOOPBACK:
            continue
        speed = number(row.get(IF_SPEED))
        high = number(row.get(IF_HIGH_SPEED))
        if (speed is None or speed >= SPEED_UNKNOWN_32) and high:
            speed = high * 1e6
        admin, oper = number(row.get(IF_ADMIN)), number(row.get(IF_OPER))
        dup = number(duplex.get(idx, {}).get(DOT3_DUPLEX))
        # Agents with Q-BRIDGE-MIB but no dot1dBasePortTable number bridge ports by ifIndex.
        base = base_ports.get(if_index)
        pv_port = base if base_ports else if_index
        pv = number(pvid.get((pv_port,), {}).get(DOT1Q_PVID)) if pv_port is not None else None
        in_err, out_err = number(row.get(IF_IN_ERRORS)), number(row.get(IF_OUT_ERRORS))
        descr = text(row.get(IF_DESCR))
        out.append(
            Port(
                if_index=if_index,
                name=text(row.get(IF_NAME)) or descr or str(if_index),
                descr=descr,
                alias=text(row.get(IF_ALIAS)),
                if_type=None if if_type is None else int(if_type),
                speed_bps=speed,
                admin_up=_status(admin, ADMIN_STATES),
                oper_up=_status(oper, OPER_STATES),
                duplex=DUPLEX.get(int(dup), "") if dup is not None else "",
                pvid=None if pv is None else int(pv),
                in_errors=None if in_err is None else int(in_err),
                out_errors=None if out_err is None else int(out_err),
                base_port=base,
            )
        )
    return out


def parse_base_ports(rows: Rows) -> dict[int, int]:
    """dot1dBasePortIfIndex: bridge port -> ifIndex."""
    out = {}
    for idx, row in rows.items():
        port, if_index = _int_index(idx), number(row.get(DOT1D_BASE_PORT_IFINDEX))
        if port is not None and if_index:
            out[port] = int(if_index)
    return out


def parse_fdb(
    dot1d: Rows, dot1q: Rows, vlan_fdb: Rows, base_to_if: dict[int, int]
) -> list[FdbEntry]:
    """Learned entries of both forwarding tables; Q-BRIDGE's (with a VLAN) win for a MAC
    both list. Entries of the switch itself (status self/mgmt) and port 0 are left out."""
    fdb_vlan: dict[int, int] = {}
    for idx, row in vlan_fdb.items():
        fid = number(row.get(DOT1Q_VLAN_FDB_ID))
        if len(idx) >= 1 and fid is not None:
            fdb_vlan.setdefault(int(fid), idx[-1])  # index: TimeMark . VlanIndex
    seen: set[tuple[str, int | None]] = set()
    out: list[FdbEntry] = []
    for idx, row in dot1q.items():
        if len(idx) != 7:
            continue
        port, status = number(row.get(DOT1Q_FDB_PORT)), number(row.get(DOT1Q_FDB_STATUS))
        if not port or status in (FDB_SELF, FDB_MGMT):
            continue
        mac = ":".join(f"{b:02x}" for b in idx[1:])
        # Without dot1qVlanFdbId the FDB id is the VLAN (independent learning, the usual).
        vlan = fdb_vlan.get(idx[0], idx[0])
        seen.add((mac, int(port)))
        out.append(FdbEntry(mac, base_to_if.get(int(port)), int(port), vlan))
    for idx, row in dot1d.items():
        if len(idx) != 6:
            continue
        port, status = number(row.get(DOT1D_FDB_PORT)), number(row.get(DOT1D_FDB_STATUS))
        if not port or status in (FDB_SELF, FDB_MGMT):
            continue
        mac = ":".join(f"{b:02x}" for b in idx)
        if (mac, int(port)) in seen:
            continue
        out.append(FdbEntry(mac, base_to_if.get(int(port)), int(port), None))
    return out


def lldp_local_ports(
    loc: Rows, ports: list[Port], base_to_if: dict[int, int]
) -> dict[int, tuple[int | None, str]]:
    """lldpLocPortNum -> (ifIndex, name). The port number is the agent's own: matched by the
    name it gives the port (lldpLocPortId, else lldpLocPortDesc) against ifName/ifDescr/
    ifAlias, else taken as a bridge port, else as an ifIndex (what agents commonly use)."""
    by_name: dict[str, int] = {}
    for p in ports:
        for n in (p.alias, p.descr, p.name):  # the most specific last, so it wins
            if n:
                by_name[n.lower()] = p.if_index
    if_indexes = {p.if_index for p in ports}
    numbers = {idx[-1] for idx in loc if len(idx) == 1}
    out: dict[int, tuple[int | None, str]] = {}
    for num in numbers:
        row = loc.get((num,), {})
        names = [text(row.get(LLDP_LOC_PORT_ID)), text(row.get(LLDP_LOC_PORT_DESC))]
        match = next((by_name[n.lower()] for n in names if n and n.lower() in by_name), None)
        if match is None:
            match = base_to_if.get(num, num if num in if_indexes else None)
        name = next((n for n in names if n), "")
        out[num] = (match, name)
    return out


def parse_lldp(
    rem: Rows, man: Rows, local: dict[int, tuple[int | None, str]], ports: list[Port],
    base_to_if: dict[int, int],
) -> list[Neighbour]:  # fmt: skip
    """lldpRemTable rows (index TimeMark . LocalPortNum . RemIndex)."""
    by_index = {p.if_index: p for p in ports}
    addresses: dict[tuple[int, int], str] = {}
    for idx in man:
        # TimeMark . LocalPortNum . RemIndex . AddrSubtype . AddrLen . Addr...
        if len(idx) == 9 and idx[3] == 1 and idx[4] == 4:
            addresses.setdefault((idx[1], idx[2]), ".".join(map(str, idx[5:9])))
    out = []
    for idx, row in rem.items():
        if len(idx) != 3:
            continue
        _, port_num, rem_index = idx
        if port_num in local:
            if_index, local_name = local[port_num]
        else:
            if_index = base_to_if.get(port_num, port_num if port_num in by_index else None)
            local_name = ""
        port = by_index.get(if_index) if if_index is not None else None
        chassis = _id_text(row.get(LLDP_REM_CHASSIS), number(row.get(LLDP_REM_CHASSIS_SUBTYPE)),
                           CHASSIS_MAC)  # fmt: skip
        port_id = _id_text(row.get(LLDP_REM_PORT), number(row.get(LLDP_REM_PORT_SUBTYPE)),
                           PORT_MAC)  # fmt: skip
        out.append(
            Neighbour(
                protocol="lldp",
                if_index=if_index,
                local_port=port.name if port else local_name or str(port_num),
                remote_name=text(row.get(LLDP_REM_SYS_NAME)),
                remote_port=port_id,
                remote_port_descr=text(row.get(LLDP_REM_PORT_DESC)),
                remote_chassis=chassis,
                remote_descr=_descr(row.get(LLDP_REM_SYS_DESC)),
                remote_platform="",
                remote_ip=addresses.get((port_num, rem_index), ""),
                remote_caps=_caps(row.get(LLDP_REM_CAPS_ENABLED)),
            )
        )
    return out


def _caps(value: SnmpValue | None) -> tuple[str, ...]:
    if not isinstance(value, OctetString) or not value.value:
        return ()
    first = value.value[0]
    return tuple(name for bit, name in enumerate(LLDP_CAPS) if first & (0x80 >> bit))


def _descr(value: SnmpValue | None) -> str:
    # Some agents quote it (ArubaOS sends '"Model:Aruba9004 ...'): the quotes are not text.
    return value.text(DESCR_CHARS).strip('"').strip() if isinstance(value, OctetString) else ""


def parse_cdp(rows: Rows, ports: list[Port]) -> list[Neighbour]:
    """cdpCacheTable rows (index ifIndex . DeviceIndex)."""
    by_index = {p.if_index: p for p in ports}
    out = []
    for idx, row in rows.items():
        if len(idx) != 2:
            continue
        if_index = idx[0]
        port = by_index.get(if_index)
        addr = row.get(CDP_ADDRESS)
        ip = ""
        if isinstance(addr, OctetString) and len(addr.value) == 4:
            ip = str(ipaddress.IPv4Address(addr.value))
        elif isinstance(addr, IpAddress):
            ip = addr.value
        out.append(
            Neighbour(
                protocol="cdp",
                if_index=if_index if port else None,
                local_port=port.name if port else str(if_index),
                remote_name=text(row.get(CDP_DEVICE_ID)),
                remote_port=text(row.get(CDP_DEVICE_PORT)),
                remote_port_descr="",
                remote_chassis="",
                remote_descr=_descr(row.get(CDP_VERSION)),
                remote_platform=text(row.get(CDP_PLATFORM)),
                remote_ip=ip,
            )
        )
    return out


# ---------------------------------------------------------------- reading


async def _walk(snmp: SnmpAccess, columns: list[OID], errors: list[str], what: str) -> Rows:
    """A column walk whose failure (error status, loop) costs this table only."""
    try:
        return await snmp.walk_columns(columns)
    except (SnmpErrorStatus, SnmpWalkLoop) as exc:
        errors.append(f"{what}: {exc}")
        return {}


async def _vlan_fdb_ids(snmp: SnmpAccess, dot1q: Rows, errors: list[str]) -> Rows:
    """dot1qVlanFdbId rows that name the VLAN of each FDB id in ``dot1q``. Most agents use
    the VLAN id as FDB id: one GET of dot1qVlanFdbId.0.<id> per FDB id confirms it (the
    whole table can hold all 4094 VLANs: 4095 rows on an EdgeSwitch 8). Only when one does
    not confirm is the table walked (HP ProCurve numbers FDB ids 1, 2, 3 ... for VLANs 1, 95,
    252 ...)."""
    fids = sorted({idx[0] for idx in dot1q if len(idx) == 7})
    if not fids:
        return {}
    try:
        got = await snmp.get([(*DOT1Q_VLAN_FDB_ID, 0, f) for f in fids])
    except SnmpErrorStatus:
        got = {}
    if all(number(got.get((*DOT1Q_VLAN_FDB_ID, 0, f))) == f for f in fids):
        return {(0, f): {DOT1Q_VLAN_FDB_ID: got[(*DOT1Q_VLAN_FDB_ID, 0, f)]} for f in fids}
    return await _walk(snmp, [DOT1Q_VLAN_FDB_ID], errors, "dot1qVlanCurrentTable")


async def read_ports(snmp: SnmpAccess, errors: list[str]) -> tuple[list[Port], dict[int, int]]:
    """The port table and the bridge port map (bridge port -> ifIndex)."""
    if_rows = await _walk(
        snmp,
        [IF_DESCR, IF_TYPE, IF_SPEED, IF_ADMIN, IF_OPER, IF_IN_ERRORS, IF_OUT_ERRORS,
         IF_NAME, IF_HIGH_SPEED, IF_ALIAS],
        errors, "IF-MIB",
    )  # fmt: skip
    duplex = await _walk(snmp, [DOT3_DUPLEX], errors, "EtherLike-MIB")
    base_to_if = parse_base_ports(await _walk(snmp, [DOT1D_BASE_PORT_IFINDEX], errors,
                                              "BRIDGE-MIB dot1dBasePortIfIndex"))  # fmt: skip
    pvid = await _walk(snmp, [DOT1Q_PVID], errors, "Q-BRIDGE-MIB dot1qPvid")
    known = {i for idx in if_rows if (i := _int_index(idx)) is not None}
    if base_to_if and known and not set(base_to_if.values()) & known:
        # Some agents (EdgeSwitch 8) map bridge ports to ifIndexes they do not list; their
        # bridge port numbers are then the ifIndexes (what LibreNMS falls back to as well).
        base_to_if = {b: b for b in base_to_if}
    if_to_base = {i: b for b, i in sorted(base_to_if.items(), reverse=True)}
    return parse_ports(if_rows, duplex, if_to_base, pvid), base_to_if


async def read_tables(snmp: SnmpAccess) -> SwitchTables:
    """Ports, forwarding table and neighbours of one device. SnmpTimeout is raised (the
    device is silent); a table answered badly is noted in ``errors`` and left empty."""
    errors: list[str] = []
    ports, base_to_if = await read_ports(snmp, errors)
    fdb: list[FdbEntry] = []
    if base_to_if:
        # Q-BRIDGE first; the plain BRIDGE-MIB table only when it lists nothing (the two
        # describe the same entries on agents that have both).
        dot1q = await _walk(snmp, [DOT1Q_FDB_PORT, DOT1Q_FDB_STATUS], errors, "dot1qTpFdbTable")
        vlan_fdb = await _vlan_fdb_ids(snmp, dot1q, errors)
        dot1d: Rows = {}
        if not dot1q:
            dot1d = await _walk(snmp, [DOT1D_FDB_PORT, DOT1D_FDB_STATUS], errors,
                                "dot1dTpFdbTable")  # fmt: skip
        fdb = parse_fdb(dot1d, dot1q, vlan_fdb if dot1q else {}, base_to_if)
    rem = await _walk(
        snmp,
        [LLDP_REM_CHASSIS_SUBTYPE, LLDP_REM_CHASSIS, LLDP_REM_PORT_SUBTYPE, LLDP_REM_PORT,
         LLDP_REM_PORT_DESC, LLDP_REM_SYS_NAME, LLDP_REM_SYS_DESC, LLDP_REM_CAPS_ENABLED],
        errors, "lldpRemTable",
    )  # fmt: skip
    neighbours: list[Neighbour] = []
    if rem:
        loc = await _walk(snmp, [LLDP_LOC_PORT_ID, LLDP_LOC_PORT_DESC], errors,
                          "lldpLocPortTable")  # fmt: skip
        man = await _walk(snmp, [LLDP_REM_MAN_ADDR_IF_SUBTYPE], errors, "lldpRemManAddrTable")
        local = lldp_local_ports(loc, ports, base_to_if)
        neighbours += parse_lldp(rem, man, local, ports, base_to_if)
    cdp = await _walk(
        snmp, [CDP_ADDRESS, CDP_VERSION, CDP_DEVICE_ID, CDP_DEVICE_PORT, CDP_PLATFORM],
        errors, "cdpCacheTable",
    )  # fmt: skip
    neighbours += parse_cdp(cdp, ports)
    return SwitchTables(tuple(ports), tuple(fdb), tuple(neighbours), tuple(errors))
