"""Writes the demo site's recordings: ``python -m simsite.recordings.generate``.

The recordings are modelled on what the named products answer (standard MIBs in the
layout those devices use, their vendor subtrees for the few values that only live
there), with values chosen for the demo: one toner running low, a NAS volume at 71 %,
a UPS on mains. They are generated rather than hand-edited so that they stay consistent
with ``simsite.demo`` (addresses, MACs, who sits on which switch port).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from simsite import demo
from simsite.site import MSP_MAC, wan_mac

OUT_DIR = Path(__file__).resolve().parent

# ASN.1 tags of the snmprec format.
INT, STR, HEX, OID, IPADDR, COUNTER32, GAUGE32, TICKS, COUNTER64 = (
    "2",
    "4",
    "4x",
    "6",
    "64",
    "65",
    "66",
    "67",
    "70",
)
IF_ETHERNET, IF_LOOPBACK, IF_VIRTUAL = 6, 24, 53
GIGABIT_BPS = 1_000_000_000
SWITCH_PORTS = 10  # GS110TP: 8 copper + 2 SFP
HR_STORAGE = "1.3.6.1.2.1.25.2.1"  # hrStorageTypes
UPTIME_TICKS = 318_624_411  # ~36.9 days, in 1/100 s
#: Average frame size used to derive packet counters from octet counters.
AVG_PACKET_BYTES = 900

Record = tuple[str, str, object]


def _oid_key(record: Record) -> tuple[int, ...]:
    return tuple(int(part) for part in record[0].split("."))


def _render(records: Iterable[Record]) -> str:
    # snmpsim answers GETNEXT from file order: records must be in OID order.
    lines = []
    for oid, tag, value in sorted(records, key=_oid_key):
        lines.append(f"{oid}|{tag}|{value}")
    return "\n".join(lines) + "\n"


def _mac_hex(mac: str) -> str:
    return mac.replace(":", "")


def _next_mac(mac: str) -> str:
    value = (int(_mac_hex(mac), 16) + 1) % 2**48
    raw = f"{value:012x}"
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


def _mac_index(mac: str) -> str:
    return ".".join(str(int(b, 16)) for b in mac.split(":"))


def system(descr: str, object_id: str, name: str, location: str, services: int) -> list[Record]:
    base = "1.3.6.1.2.1.1"
    return [
        (f"{base}.1.0", STR, descr),
        (f"{base}.2.0", OID, object_id),
        (f"{base}.3.0", TICKS, UPTIME_TICKS),
        (f"{base}.4.0", STR, "it@example-office.test"),
        (f"{base}.5.0", STR, name),
        (f"{base}.6.0", STR, location),
        (f"{base}.7.0", INT, services),
    ]


@dataclass(frozen=True)
class Iface:
    index: int
    name: str
    mac: str = ""
    descr: str = ""  # defaults to name
    type: int = IF_ETHERNET
    mtu: int = 1500
    up: bool = True
    speed: int = GIGABIT_BPS  # bit/s
    octets_in: int = 0
    octets_out: int = 0
    in_errors: int = 0
    alias: str = ""


def interfaces(ifaces: list[Iface]) -> list[Record]:
    """ifNumber, ifTable and ifXTable (32-bit and 64-bit counters)."""
    recs: list[Record] = [("1.3.6.1.2.1.2.1.0", INT, len(ifaces))]
    t = "1.3.6.1.2.1.2.2.1"
    x = "1.3.6.1.2.1.31.1.1.1"
    for i in ifaces:
        n = i.index
        speed = i.speed if i.up else 0
        pkts_in, pkts_out = i.octets_in // AVG_PACKET_BYTES, i.octets_out // AVG_PACKET_BYTES
        recs += [
            (f"{t}.1.{n}", INT, n),
            (f"{t}.2.{n}", STR, i.descr or i.name),
            (f"{t}.3.{n}", INT, i.type),
            (f"{t}.4.{n}", INT, i.mtu),
            (f"{t}.5.{n}", GAUGE32, min(speed, 2**32 - 1)),
            (f"{t}.6.{n}", HEX, _mac_hex(i.mac)),
            (f"{t}.7.{n}", INT, 1),
            (f"{t}.8.{n}", INT, 1 if i.up else 2),
            (f"{t}.9.{n}", TICKS, 1200),
            # The 32-bit counters wrap, as a real agent's do.
            (f"{t}.10.{n}", COUNTER32, i.octets_in % 2**32),
            (f"{t}.11.{n}", COUNTER32, pkts_in % 2**32),
            (f"{t}.13.{n}", COUNTER32, 0),
            (f"{t}.14.{n}", COUNTER32, i.in_errors),
            (f"{t}.16.{n}", COUNTER32, i.octets_out % 2**32),
            (f"{t}.17.{n}", COUNTER32, pkts_out % 2**32),
            (f"{t}.19.{n}", COUNTER32, 0),
            (f"{t}.20.{n}", COUNTER32, 0),
            (f"{x}.1.{n}", STR, i.name),
            (f"{x}.6.{n}", COUNTER64, i.octets_in),
            (f"{x}.7.{n}", COUNTER64, pkts_in),
            (f"{x}.10.{n}", COUNTER64, i.octets_out),
            (f"{x}.11.{n}", COUNTER64, pkts_out),
            (f"{x}.15.{n}", GAUGE32, speed // 1_000_000),
            (f"{x}.18.{n}", STR, i.alias),
        ]
    return recs


def ip_addresses(entries: list[tuple[str, int, str]]) -> list[Record]:
    """ipAddrTable rows: (address, ifIndex, netmask)."""
    recs: list[Record] = []
    for addr, idx, mask in entries:
        base = "1.3.6.1.2.1.4.20.1"
        recs += [
            (f"{base}.1.{addr}", IPADDR, addr),
            (f"{base}.2.{addr}", INT, idx),
            (f"{base}.3.{addr}", IPADDR, mask),
            (f"{base}.4.{addr}", INT, 1),
        ]
    return recs


def hr_storage(rows: list[tuple[int, str, str, int, int, int]]) -> list[Record]:
    """hrStorageTable rows: (index, type leaf, descr, unit bytes, size, used)."""
    recs: list[Record] = []
    base = "1.3.6.1.2.1.25.2.3.1"
    for idx, kind, descr, unit, size, used in rows:
        recs += [
            (f"{base}.1.{idx}", INT, idx),
            (f"{base}.2.{idx}", OID, f"{HR_STORAGE}.{kind}"),
            (f"{base}.3.{idx}", STR, descr),
            (f"{base}.4.{idx}", INT, unit),
            (f"{base}.5.{idx}", INT, size),
            (f"{base}.6.{idx}", INT, used),
        ]
    return recs


# ----------------------------------------------------------------------- devices


def gateway() -> str:
    lan_mac, wan = demo.GATEWAY_MAC, wan_mac(demo.GATEWAY_MAC)
    recs = system(
        "pfSense 2.7.2-RELEASE pfSense FreeBSD 14.0-CURRENT amd64",
        "1.3.6.1.4.1.12325.1.1.2.1.1",
        "fw.example-office.test",
        "Comms cupboard",
        76,
    )
    recs += interfaces(
        [
            Iface(
                1,
                "igc0",
                wan,
                alias="WAN",
                octets_in=918_223_114_005,
                octets_out=133_882_190_442,
            ),
            Iface(
                2,
                "igc1",
                lan_mac,
                alias="LAN",
                octets_in=141_092_554_120,
                octets_out=902_661_730_871,
            ),
            Iface(
                3,
                "lo0",
                type=IF_LOOPBACK,
                mtu=16384,
                speed=0,
                octets_in=5_112_004,
                octets_out=5_112_004,
            ),
        ]
    )
    recs.append(("1.3.6.1.2.1.4.1.0", INT, 1))  # ipForwarding: forwarding
    recs += ip_addresses(
        [
            ("127.0.0.1", 3, "255.0.0.0"),
            ("198.18.0.1", 2, "255.255.255.0"),
            ("198.19.0.1", 1, "255.255.255.0"),
        ]
    )
    # ARP table: the LAN hosts that talked through the gateway, and the upstream peer.
    neighbours = [(2, demo.ip_of(n), demo.mac_of(n)) for n in demo.HOSTS]
    neighbours.append((2, "198.18.0.2", demo.APPLIANCE_MAC))
    neighbours.append((1, "198.19.0.2", MSP_MAC))
    base = "1.3.6.1.2.1.4.22.1"
    for idx, ip, mac in neighbours:
        key = f"{idx}.{ip}"
        recs += [
            (f"{base}.1.{key}", INT, idx),
            (f"{base}.2.{key}", HEX, _mac_hex(mac)),
            (f"{base}.3.{key}", IPADDR, ip),
            (f"{base}.4.{key}", INT, 3),  # dynamic
        ]
    return _render(recs)


@dataclass(frozen=True)
class SwitchPort:
    """One port of a generated switch: the MACs its forwarding table learned there."""

    index: int
    macs: tuple[str, ...] = ()
    vlan: int = 1  # untagged VLAN (dot1qPvid) and the VLAN of its FDB entries
    up: bool | None = None  # None: up when something is plugged in
    speed: int = GIGABIT_BPS
    alias: str = ""
    in_errors: int = 0
    #: MACs learned in another VLAN than ``vlan`` (a phone's voice VLAN, tagged).
    tagged: dict[str, int] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class LldpNeighbour:
    """A device announcing itself by LLDP on one port (lldpRemTable)."""

    port: int
    sys_name: str
    chassis_mac: str
    port_id: str  # its own port name (subtype interfaceName)
    sys_descr: str = ""
    caps: int = 0x28  # lldpRemSysCapEnabled first octet: bridge (0x20) + router (0x08)
    mgmt_ip: str = ""


def switch_recording(
    name: str,
    mac: str,
    ip: str,
    ports: list[SwitchPort],
    neighbours: list[LldpNeighbour] = (),  # type: ignore[assignment]
    *,
    descr: str = "GS110TP ProSAFE 8-Port Gigabit PoE Smart Switch, 5.4.2.36, B5.2.0.1",
    object_id: str = "1.3.6.1.4.1.4526.100.4.10",
    location: str = "Comms cupboard",
) -> str:
    """A managed switch's recording: system, IF-MIB with EtherLike duplex, BRIDGE-MIB and
    Q-BRIDGE-MIB forwarding tables listing ``ports``' MACs (VLAN = FDB id), dot1qPvid, LLDP
    local ports and neighbours. Ports are numbered 1..n, bridge port = ifIndex."""
    recs = system(descr, object_id, name, location, 2)
    ifaces = []
    for p in ports:
        up = bool(p.macs) if p.up is None else p.up
        ifaces.append(
            Iface(
                p.index,
                f"g{p.index}",
                mac,
                up=up,
                speed=p.speed,
                alias=p.alias,
                octets_in=7_340_032_000 * p.index if up else 0,
                octets_out=5_242_880_000 * p.index if up else 0,
                in_errors=p.in_errors,
            )
        )
    vlan_if = len(ports) + 1
    ifaces.append(Iface(vlan_if, "vlan 1", mac, type=IF_VIRTUAL, octets_in=88_112_004,
                        octets_out=61_120_550))  # fmt: skip
    recs += interfaces(ifaces)
    recs += ip_addresses([(ip, vlan_if, "255.255.255.0")])
    # EtherLike-MIB dot3StatsDuplexStatus: full (3) on every port with link.
    recs += [(f"1.3.6.1.2.1.10.7.2.1.19.{i.index}", INT, 3 if i.up else 1) for i in ifaces[:-1]]
    # BRIDGE-MIB: base info, port -> ifIndex, and the learned forwarding table.
    recs += [
        ("1.3.6.1.2.1.17.1.1.0", HEX, _mac_hex(mac)),
        ("1.3.6.1.2.1.17.1.2.0", INT, len(ports)),
        ("1.3.6.1.2.1.17.1.3.0", INT, 2),  # transparent-only
    ]
    vlans = sorted({p.vlan for p in ports} | {v for p in ports for v in p.tagged.values()})
    for p in ports:
        recs += [
            (f"1.3.6.1.2.1.17.1.4.1.1.{p.index}", INT, p.index),
            (f"1.3.6.1.2.1.17.1.4.1.2.{p.index}", INT, p.index),
            (f"1.3.6.1.2.1.17.7.1.4.5.1.1.{p.index}", GAUGE32, p.vlan),  # dot1qPvid
        ]
        for peer in p.macs:
            key = _mac_index(peer)
            vlan = p.tagged.get(peer, p.vlan)
            recs += [
                (f"1.3.6.1.2.1.17.4.3.1.1.{key}", HEX, _mac_hex(peer)),
                (f"1.3.6.1.2.1.17.4.3.1.2.{key}", INT, p.index),
                (f"1.3.6.1.2.1.17.4.3.1.3.{key}", INT, 3),  # learned
                # Q-BRIDGE-MIB: FDB id = the VLAN (independent VLAN learning).
                (f"1.3.6.1.2.1.17.7.1.2.2.1.2.{vlan}.{key}", INT, p.index),
                (f"1.3.6.1.2.1.17.7.1.2.2.1.3.{vlan}.{key}", INT, 3),
            ]
    recs += [(f"1.3.6.1.2.1.17.7.1.4.2.1.3.0.{v}", GAUGE32, v) for v in vlans]  # dot1qVlanFdbId
    # LLDP-MIB: local ports (subtype interfaceName) and the neighbours heard.
    lldp = "1.0.8802.1.1.2.1"
    for p in ports:
        recs += [
            (f"{lldp}.3.7.1.2.{p.index}", INT, 5),
            (f"{lldp}.3.7.1.3.{p.index}", STR, f"g{p.index}"),
            (f"{lldp}.3.7.1.4.{p.index}", STR, p.alias or f"g{p.index}"),
        ]
    for n, nb in enumerate(neighbours, start=1):
        key = f"0.{nb.port}.{n}"
        recs += [
            (f"{lldp}.4.1.1.4.{key}", INT, 4),  # chassis id subtype: macAddress
            (f"{lldp}.4.1.1.5.{key}", HEX, _mac_hex(nb.chassis_mac)),
            (f"{lldp}.4.1.1.6.{key}", INT, 5),  # port id subtype: interfaceName
            (f"{lldp}.4.1.1.7.{key}", STR, nb.port_id),
            (f"{lldp}.4.1.1.8.{key}", STR, nb.port_id),
            (f"{lldp}.4.1.1.9.{key}", STR, nb.sys_name),
            (f"{lldp}.4.1.1.10.{key}", STR, nb.sys_descr),
            (f"{lldp}.4.1.1.11.{key}", HEX, f"{nb.caps:02x}00"),
            (f"{lldp}.4.1.1.12.{key}", HEX, f"{nb.caps:02x}00"),
        ]
        if nb.mgmt_ip:
            addr = f"1.4.{nb.mgmt_ip}"
            recs += [(f"{lldp}.4.2.1.3.{key}.{addr}", INT, 2)]  # ifIndex subtype
    return _render(recs)


def switch() -> str:
    name = "core-switch"
    # Port -> what is plugged in: the uplink to the gateway first.
    plugged = [
        "gateway",
        "appliance",
        "nas",
        "fileserver",
        "printer",
        "ups",
        "lobby-camera",
        "reception-pc",
    ]
    macs = {"gateway": demo.GATEWAY_MAC, "appliance": demo.APPLIANCE_MAC}
    macs.update({n: demo.mac_of(n) for n in demo.HOSTS if n != name})
    ports = [
        SwitchPort(
            port,
            (macs[plugged[port - 1]],) if port <= len(plugged) else (),
            alias=plugged[port - 1] if port <= len(plugged) else "",
            # The camera's cable is flaky: a few input errors for the demo to notice.
            in_errors=17 if port <= len(plugged) and plugged[port - 1] == "lobby-camera" else 0,
        )
        for port in range(1, SWITCH_PORTS + 1)
    ]
    # pfSense with lldpd announces itself on the uplink.
    gateway = LldpNeighbour(1, "gateway", demo.GATEWAY_MAC, "igb1", "pfSense 2.7.2", 0x08,
                            f"{demo.LAN_PREFIX}.1")  # fmt: skip
    return switch_recording(name, demo.mac_of(name), demo.ip_of(name), ports, [gateway])


def printer() -> str:
    name = "printer"
    mac = demo.mac_of(name)
    model = "HP Color LaserJet Pro M454dw"
    recs = system(
        "HP ETHERNET MULTI-ENVIRONMENT,ROM none,JETDIRECT,JD153,EEPROM JSI23900012,"
        "CIDATE 06/17/2019",
        "1.3.6.1.4.1.11.2.3.9.1",
        "NPI" + _mac_hex(mac)[-6:].upper(),
        "Front office",
        72,
    )
    recs += interfaces(
        [
            Iface(
                1,
                "NET1",
                mac,
                descr="HP ETHERNET MULTI-ENVIRONMENT",
                octets_in=2_211_884_102,
                octets_out=402_117_993,
            )
        ]
    )
    recs += ip_addresses([(demo.ip_of(name), 1, "255.255.255.0")])
    hr = "1.3.6.1.2.1.25.3"
    recs += [
        (f"{hr}.2.1.1.1", INT, 1),
        (f"{hr}.2.1.2.1", OID, "1.3.6.1.2.1.25.3.1.5"),  # hrDevicePrinter
        (f"{hr}.2.1.3.1", STR, model),
        (f"{hr}.2.1.5.1", INT, 2),  # running
        (f"{hr}.5.1.1.1", INT, 3),  # hrPrinterStatus idle
        (f"{hr}.5.1.2.1", HEX, "00"),  # hrPrinterDetectedErrorState: none
    ]
    prt = "1.3.6.1.2.1.43"
    recs += [
        (f"{prt}.5.1.1.16.1", STR, model),
        (f"{prt}.5.1.1.17.1", STR, "VNB3K12345"),
        (f"{prt}.10.2.1.4.1.1", COUNTER32, 18342),  # prtMarkerLifeCount (pages)
    ]
    # (colour, cartridge, level %): magenta is the one about to run out.
    toners = [
        ("black", "W2030A", 23),
        ("cyan", "W2031A", 71),
        ("magenta", "W2033A", 6),
        ("yellow", "W2032A", 55),
    ]
    for idx, (colour, part, level) in enumerate(toners, start=1):
        recs += [
            (f"{prt}.11.1.1.2.1.{idx}", INT, 1),  # prtMarkerSuppliesMarkerIndex
            (f"{prt}.11.1.1.3.1.{idx}", INT, idx),  # colorant index
            (f"{prt}.11.1.1.4.1.{idx}", INT, 3),  # supplyThatIsConsumed
            (f"{prt}.11.1.1.5.1.{idx}", INT, 3),  # toner
            (f"{prt}.11.1.1.6.1.{idx}", STR, f"{colour.title()} Cartridge HP {part}"),
            (f"{prt}.11.1.1.7.1.{idx}", INT, 19),  # percent
            (f"{prt}.11.1.1.8.1.{idx}", INT, 100),
            (f"{prt}.11.1.1.9.1.{idx}", INT, level),
            (f"{prt}.12.1.1.4.1.{idx}", STR, colour),  # prtMarkerColorantValue
        ]
    # Input trays; -3 is Printer-MIB for "some paper, amount unknown".
    for idx, (tray, capacity, level) in enumerate([("Tray 1", 50, 0), ("Tray 2", 250, -3)], 1):
        recs += [
            (f"{prt}.8.2.1.9.1.{idx}", INT, capacity),
            (f"{prt}.8.2.1.10.1.{idx}", INT, level),
            (f"{prt}.8.2.1.13.1.{idx}", STR, tray),
        ]
    return _render(recs)


def ups() -> str:
    name = "ups"
    mac = demo.mac_of(name)
    recs = system(
        "APC Web/SNMP Management Card (MB:v4.1.0 PF:v6.9.6 PN:apc_hw05_aos_696.bin "
        "AF1:v6.9.6 AN1:apc_hw05_sumx_696.bin MN:AP9631 HR:05 SN: ZA1923012345 MD:06/04/2019) "
        "(Embedded PowerNet SNMP Agent SW v2.2 compatible)",
        "1.3.6.1.4.1.318.1.3.27",
        name,
        "Comms cupboard",
        72,
    )
    recs += interfaces(
        [Iface(1, "eth0", mac, speed=100_000_000, octets_in=95_112_388, octets_out=61_904_115)]
    )
    recs += ip_addresses([(demo.ip_of(name), 1, "255.255.255.0")])
    u = "1.3.6.1.2.1.33.1"  # UPS-MIB (RFC 1628)
    recs += [
        (f"{u}.1.1.0", STR, "American Power Conversion Corp."),
        (f"{u}.1.2.0", STR, "Smart-UPS 1500"),
        (f"{u}.1.3.0", STR, "UPS 15.5 (ID18)"),
        (f"{u}.1.4.0", STR, "v6.9.6"),
        (f"{u}.1.5.0", STR, name),
        (f"{u}.2.1.0", INT, 2),  # upsBatteryStatus: batteryNormal
        (f"{u}.2.2.0", INT, 0),  # upsSecondsOnBattery
        (f"{u}.2.3.0", INT, 47),  # upsEstimatedMinutesRemaining
        (f"{u}.2.4.0", INT, 100),  # upsEstimatedChargeRemaining (%)
        (f"{u}.2.5.0", INT, 273),  # upsBatteryVoltage (0.1 V)
        (f"{u}.2.7.0", INT, 27),  # upsBatteryTemperature (degC)
        (f"{u}.3.1.0", COUNTER32, 3),  # upsInputLineBads
        (f"{u}.3.2.0", INT, 1),
        (f"{u}.3.3.1.1.1", INT, 1),
        (f"{u}.3.3.1.2.1", INT, 500),  # input frequency (0.1 Hz)
        (f"{u}.3.3.1.3.1", INT, 231),  # input voltage (V)
        (f"{u}.4.1.0", INT, 3),  # upsOutputSource: normal
        (f"{u}.4.2.0", INT, 500),
        (f"{u}.4.3.0", INT, 1),
        (f"{u}.4.4.1.1.1", INT, 1),
        (f"{u}.4.4.1.2.1", INT, 230),  # output voltage (V)
        (f"{u}.4.4.1.3.1", INT, 19),  # output current (0.1 A)
        (f"{u}.4.4.1.4.1", INT, 370),  # output power (W)
        (f"{u}.4.4.1.5.1", INT, 37),  # output load (%)
        (f"{u}.6.1.0", GAUGE32, 0),  # upsAlarmsPresent
    ]
    apc = "1.3.6.1.4.1.318.1.1.1"  # PowerNet-MIB upsIdent/Battery/Input/Output
    recs += [
        (f"{apc}.1.1.1.0", STR, "Smart-UPS 1500"),
        (f"{apc}.1.2.1.0", STR, "UPS 15.5 (ID18)"),
        (f"{apc}.1.2.3.0", STR, "AS1923123456"),
        (f"{apc}.2.1.1.0", INT, 2),  # upsBasicBatteryStatus: batteryNormal
        (f"{apc}.2.2.1.0", GAUGE32, 100),  # upsAdvBatteryCapacity (%)
        (f"{apc}.2.2.2.0", GAUGE32, 27),  # upsAdvBatteryTemperature (degC)
        (f"{apc}.2.2.3.0", TICKS, 282000),  # upsAdvBatteryRunTimeRemaining (47 min)
        (f"{apc}.2.2.4.0", INT, 1),  # upsAdvBatteryReplaceIndicator: noBatteryNeedsReplacing
        (f"{apc}.3.2.1.0", GAUGE32, 231),  # upsAdvInputLineVoltage
        (f"{apc}.4.1.1.0", INT, 2),  # upsBasicOutputStatus: onLine
        (f"{apc}.4.2.3.0", GAUGE32, 37),  # upsAdvOutputLoad (%)
    ]
    return _render(recs)


def nas() -> str:
    name = "nas"
    mac = demo.mac_of(name)
    recs = system(
        "Linux nas 4.4.302+ #69057 SMP Fri Jan 12 17:02:28 CST 2024 x86_64",
        "1.3.6.1.4.1.8072.3.2.10",
        name,
        "Comms cupboard",
        76,
    )
    recs += interfaces(
        [
            Iface(
                1,
                "lo",
                type=IF_LOOPBACK,
                mtu=65536,
                speed=10_000_000,
                octets_in=40_221_008,
                octets_out=40_221_008,
            ),
            Iface(2, "eth0", mac, octets_in=3_114_556_002_118, octets_out=1_887_004_210_554),
            # The second NIC of a DS920+, unplugged: MAC is the first one's plus one.
            Iface(3, "eth1", _next_mac(mac), up=False),
        ]
    )
    recs += ip_addresses([("127.0.0.1", 1, "255.0.0.0"), (demo.ip_of(name), 2, "255.255.255.0")])
    recs += [("1.3.6.1.2.1.25.1.1.0", TICKS, UPTIME_TICKS), ("1.3.6.1.2.1.25.2.2.0", INT, 3930184)]
    # hrStorage: sizes in allocation units; /volume1 is 7.1 TiB at 71 % used.
    recs += hr_storage(
        [
            (1, "2", "Physical memory", 1024, 3930184, 1253160),
            (3, "3", "Virtual memory", 1024, 8124484, 1401220),
            (6, "1", "Memory buffers", 1024, 3930184, 36012),
            (7, "1", "Cached memory", 1024, 2150112, 2150112),
            (10, "3", "Swap space", 1024, 4194300, 148060),
            (31, "4", "/", 4096, 589813, 301204),
            (51, "4", "/volume1", 4096, 1904000000, 1351840000),
        ]
    )
    for cpu, load in enumerate((7, 5, 12, 3), start=196608):
        recs += [
            (f"1.3.6.1.2.1.25.3.3.1.1.{cpu}", OID, "0.0"),
            (f"1.3.6.1.2.1.25.3.3.1.2.{cpu}", INT, load),
        ]
    syno = "1.3.6.1.4.1.6574"
    recs += [
        (f"{syno}.1.1.0", INT, 1),  # systemStatus: normal
        (f"{syno}.1.2.0", INT, 42),  # temperature (degC)
        (f"{syno}.1.3.0", INT, 1),  # powerStatus: normal
        (f"{syno}.1.4.1.0", INT, 1),  # systemFanStatus
        (f"{syno}.1.4.2.0", INT, 1),  # cpuFanStatus
        (f"{syno}.1.5.1.0", STR, "DS920+"),
        (f"{syno}.1.5.2.0", STR, "2040SBRN8XK2P"),
        (f"{syno}.1.5.3.0", STR, "DSM 7.2.1-69057 Update 5"),
        (f"{syno}.1.5.4.0", INT, 2),  # upgradeAvailable: unavailable
    ]
    for idx, temp in enumerate((34, 35, 36, 34)):
        recs += [
            (f"{syno}.2.1.1.1.{idx}", INT, idx),
            (f"{syno}.2.1.1.2.{idx}", STR, f"Disk {idx + 1}"),
            (f"{syno}.2.1.1.3.{idx}", STR, "WD40EFZX-68AWUN0"),
            (f"{syno}.2.1.1.4.{idx}", STR, "SATA"),
            (f"{syno}.2.1.1.5.{idx}", INT, 1),  # diskStatus: normal
            (f"{syno}.2.1.1.6.{idx}", INT, temp),
        ]
    total = 1904000000 * 4096
    recs += [
        (f"{syno}.3.1.1.1.0", INT, 0),
        (f"{syno}.3.1.1.2.0", STR, "Volume 1"),
        (f"{syno}.3.1.1.3.0", INT, 1),  # raidStatus: normal
        (f"{syno}.3.1.1.4.0", COUNTER64, total - 1351840000 * 4096),  # raidFreeSize (bytes)
        (f"{syno}.3.1.1.5.0", COUNTER64, total),  # raidTotalSize (bytes)
    ]
    return _render(recs)


RECORDINGS = {
    "gateway-pfsense": gateway,
    "switch-netgear-gs110tp": switch,
    "printer-hp-m454dw": printer,
    "ups-apc-smt1500": ups,
    "nas-synology-ds920": nas,
}


def main() -> None:
    for stem, build in RECORDINGS.items():
        path = OUT_DIR / f"{stem}.snmprec"
        path.write_text(build())
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
