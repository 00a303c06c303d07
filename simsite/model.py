"""What a simulated site is made of: plain frozen dataclasses, validated on construction.

Validation is strict on purpose: every address must sit inside 198.18.0.0/15 (the
benchmarking range, RFC 2544) so that nothing a test builds can ever collide with, or
leak towards, a real network.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Literal

#: The only range simsite ever assigns addresses from (RFC 2544 benchmarking range).
SIM_RANGE = ipaddress.IPv4Network("198.18.0.0/15")

#: A DNS-SD TXT entry ("key=value") is one length-prefixed string: 255 bytes at most.
TXT_ENTRY_MAX_BYTES = 255

#: snmpsim picks the data file by community, so the community becomes a file name.
_COMMUNITY_RE = re.compile(r"^[A-Za-z0-9_.@#%+-]{1,64}$")
#: Device names become namespace names and directory names.
_DEVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
#: net-snmp refuses shorter USM pass phrases.
V3_KEY_MIN_CHARS = 8

SnmpEngine = Literal["snmpsim", "snmpd"]
AuthProto = Literal["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"]
PrivProto = Literal["DES", "AES", "AES-192", "AES-256"]
TxtValue = str | bytes


def _check_sim_ip(value: str, what: str) -> ipaddress.IPv4Address:
    try:
        addr = ipaddress.IPv4Address(value)
    except ValueError as exc:
        raise ValueError(f"{what}: {value!r} is not an IPv4 address") from exc
    if addr not in SIM_RANGE:
        raise ValueError(f"{what}: {value} is outside {SIM_RANGE} (the only range simsite uses)")
    return addr


@dataclass(frozen=True)
class MdnsService:
    """One DNS-SD service a device announces over mDNS.

    ``type_`` is the service type (``_ipp._tcp.local.``; the trailing ``local.`` is added
    when missing). ``name`` is the instance name and may hold anything a hostile device
    could send (markup, control characters, unicode). ``host`` is the SRV target host
    name (``NAME.local.``), defaulting to the device name.
    """

    type_: str
    name: str
    port: int
    # Left out of the hash (a dict is unhashable); equal objects still hash equal.
    txt: dict[str, TxtValue] = field(default_factory=dict, hash=False)
    host: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"mDNS service {self.name!r}: port {self.port} out of range")
        for entry in self.txt_entries():
            if len(entry) > TXT_ENTRY_MAX_BYTES:
                raise ValueError(
                    f"mDNS service {self.name!r}: TXT entry of {len(entry)} bytes; DNS-SD "
                    f"allows {TXT_ENTRY_MAX_BYTES} per entry (use more entries instead)"
                )

    @property
    def full_type(self) -> str:
        base = self.type_.rstrip(".")
        return base + "." if base.endswith(".local") else base + ".local."

    def txt_entries(self) -> list[bytes]:
        """TXT strings as they go on the wire (``key=value``, value as given)."""
        out = []
        for key, value in self.txt.items():
            raw = value if isinstance(value, bytes) else value.encode()
            out.append(key.encode() + b"=" + raw)
        return out


@dataclass(frozen=True)
class SnmpV3User:
    """A USM user for net-snmp's snmpd (authPriv)."""

    user: str
    _: KW_ONLY  # the rest by keyword: key and protocol are too easy to swap by position
    auth_proto: AuthProto = "SHA"
    auth_key: str
    priv_proto: PrivProto = "AES"
    priv_key: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", self.user):
            raise ValueError(f"SNMPv3 user name {self.user!r} must be 1-32 of [A-Za-z0-9_.-]")
        for what, key in (("auth", self.auth_key), ("priv", self.priv_key)):
            if len(key) < V3_KEY_MIN_CHARS or any(c in key for c in '"\n\r\\'):
                raise ValueError(
                    f"SNMPv3 {what} key of {self.user!r}: needs >= {V3_KEY_MIN_CHARS} chars "
                    "and no quote, backslash or newline"
                )


@dataclass(frozen=True)
class SimDevice:
    """One simulated host on the LAN.

    ``snmp_engine`` defaults to snmpsim when a recording is given. ``snmpd`` runs net-snmp
    with a generated config (and ``v3_user`` if given); it serves the real MIBs of this
    machine (HOST-RESOURCES etc.), which is the point: a real agent to test SNMPv3 against.
    """

    name: str
    ip: str
    mac: str
    vendor: str
    role: str
    snmprec: Path | None = None
    community: str = "public"
    snmp_engine: SnmpEngine | None = None
    v3_user: SnmpV3User | None = None
    tcp_ports: tuple[int, ...] = ()
    mdns: tuple[MdnsService, ...] = ()
    #: net.ipv4.icmp_echo_ignore_all=1 in its namespace: it ignores pings (a Windows PC's
    #: firewall, many phones) but still answers ARP, TCP (RST on closed ports) and SNMP.
    ignore_ping: bool = False

    def __post_init__(self) -> None:
        if not _DEVICE_NAME_RE.match(self.name):
            raise ValueError(
                f"device name {self.name!r}: use 1-40 chars of [a-z0-9-], starting alphanumeric"
            )
        _check_sim_ip(self.ip, f"device {self.name}")
        if not _MAC_RE.match(self.mac):
            raise ValueError(f"device {self.name}: MAC {self.mac!r} must be lower-case aa:bb:..")
        if int(self.mac[:2], 16) & 1:
            raise ValueError(f"device {self.name}: MAC {self.mac} is a multicast address")
        if not _COMMUNITY_RE.match(self.community):
            raise ValueError(f"device {self.name}: community {self.community!r} not allowed")
        if self.snmp_engine == "snmpsim" and self.snmprec is None:
            raise ValueError(f"device {self.name}: snmpsim needs a snmprec recording")
        if self.engine == "snmpd" and self.snmprec is not None:
            raise ValueError(f"device {self.name}: snmpd serves live data, not a snmprec")
        if self.v3_user is not None and self.engine != "snmpd":
            raise ValueError(f"device {self.name}: SNMPv3 users are only supported with snmpd")
        for port in self.tcp_ports:
            if not 1 <= port <= 65535:
                raise ValueError(f"device {self.name}: TCP port {port} out of range")

    @property
    def engine(self) -> SnmpEngine | None:
        """The SNMP agent this device runs, if any."""
        if self.snmp_engine is not None:
            return self.snmp_engine
        return "snmpsim" if self.snmprec is not None else None


@dataclass(frozen=True)
class SiteSpec:
    """A whole office: its LAN, gateway, the MSP's server beyond it, and the devices."""

    devices: tuple[SimDevice, ...]
    lan: str = "198.18.0.0/24"
    gateway_ip: str = "198.18.0.1"
    appliance_ip: str = "198.18.0.2"
    wan: str = "198.19.0.0/24"
    gateway_wan_ip: str = "198.19.0.1"
    msp_ip: str = "198.19.0.2"
    gateway_snmprec: Path | None = None
    gateway_community: str = "public"
    #: Netgate (formerly ADI Engineering) OUI: the pfSense appliance vendor.
    gateway_mac: str = "00:08:a2:0c:12:01"
    #: Locally administered: the appliance is our own hardware, its MAC is whatever it is.
    appliance_mac: str = "02:00:c6:12:00:02"

    def __post_init__(self) -> None:
        lan = ipaddress.IPv4Network(self.lan)
        wan = ipaddress.IPv4Network(self.wan)
        for net, what in ((lan, "lan"), (wan, "wan")):
            if not net.subnet_of(SIM_RANGE):
                raise ValueError(f"{what} {net} is outside {SIM_RANGE}")
        if lan.overlaps(wan):
            raise ValueError(f"lan {lan} and wan {wan} overlap")
        for value, what, net in (
            (self.gateway_ip, "gateway_ip", lan),
            (self.appliance_ip, "appliance_ip", lan),
            (self.gateway_wan_ip, "gateway_wan_ip", wan),
            (self.msp_ip, "msp_ip", wan),
        ):
            if _check_sim_ip(value, what) not in net:
                raise ValueError(f"{what} {value} is not in {net}")
        for mac, what in ((self.gateway_mac, "gateway_mac"), (self.appliance_mac, "appliance")):
            if not _MAC_RE.match(mac):
                raise ValueError(f"{what} {mac!r} must be lower-case aa:bb:cc:dd:ee:ff")
        if not _COMMUNITY_RE.match(self.gateway_community):
            raise ValueError(f"gateway community {self.gateway_community!r} not allowed")
        self.check_devices(self.devices)

    def check_devices(self, devices: tuple[SimDevice, ...]) -> None:
        """Raise ValueError unless names, IPs and MACs are unique and IPs sit in the LAN."""
        lan = ipaddress.IPv4Network(self.lan)
        taken_ips = {self.gateway_ip: "gateway", self.appliance_ip: "appliance"}
        taken_macs = {self.gateway_mac: "gateway", self.appliance_mac: "appliance"}
        names: set[str] = set()
        for dev in devices:
            if dev.name in names:
                raise ValueError(f"duplicate device name {dev.name!r}")
            names.add(dev.name)
            if ipaddress.IPv4Address(dev.ip) not in lan:
                raise ValueError(f"device {dev.name}: {dev.ip} is not in the LAN {lan}")
            if dev.ip in taken_ips:
                raise ValueError(f"device {dev.name}: {dev.ip} already used by {taken_ips[dev.ip]}")
            if dev.mac in taken_macs:
                raise ValueError(
                    f"device {dev.name}: MAC {dev.mac} already used by {taken_macs[dev.mac]}"
                )
            taken_ips[dev.ip] = dev.name
            taken_macs[dev.mac] = dev.name

    @property
    def lan_prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.lan).prefixlen

    @property
    def wan_prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.wan).prefixlen

    def device(self, name: str) -> SimDevice:
        for dev in self.devices:
            if dev.name == name:
                return dev
        raise KeyError(name)
