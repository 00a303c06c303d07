"""The demo office for ``make run``: self-contained, no ../shared at run time.

A small firm's LAN: a pfSense gateway, a managed switch, a Synology NAS, a Linux file
server (net-snmp, SNMPv3), a colour laser printer, a UPS, an Axis camera without SNMP and
a reception PC that only answers ping. Recordings ship in ``simsite/recordings`` and are
consistent with this layout: the switch's bridge table and the gateway's ARP table list
these very MACs and addresses (``python -m simsite.recordings.generate`` rewrites them).
"""

from __future__ import annotations

from pathlib import Path

from . import announce
from .model import SimDevice, SiteSpec, SnmpV3User
from .ouis import mac_for

RECORDINGS = Path(__file__).resolve().parent / "recordings"
LAN_PREFIX = "198.18.0"
GATEWAY_MAC = "00:08:a2:0c:12:01"  # SiteSpec's default: Netgate OUI
APPLIANCE_MAC = "02:00:c6:12:00:02"
#: The demo file server's SNMPv3 user (authPriv, SHA/AES).
DEMO_V3_USER = SnmpV3User("outpost", auth_key="demo-auth-pass", priv_key="demo-priv-pass")

# name -> (host number, vendor key): the single source for addresses and MACs.
HOSTS: dict[str, tuple[int, str]] = {
    "core-switch": (3, "netgear"),
    "ups": (5, "apc"),
    "nas": (10, "synology"),
    "fileserver": (11, "supermicro"),
    "printer": (20, "hp"),
    "lobby-camera": (30, "axis"),
    "reception-pc": (50, "dell"),
}


def ip_of(name: str) -> str:
    return f"{LAN_PREFIX}.{HOSTS[name][0]}"


def mac_of(name: str) -> str:
    return mac_for(HOSTS[name][1], f"demo-{name}")


def recording(stem: str) -> Path:
    return RECORDINGS / f"{stem}.snmprec"


def _device(name: str, vendor: str, role: str, **kw: object) -> SimDevice:
    return SimDevice(name=name, ip=ip_of(name), mac=mac_of(name), vendor=vendor, role=role, **kw)  # type: ignore[arg-type]


def demo_site() -> SiteSpec:
    devices = (
        _device(
            "core-switch",
            "NETGEAR",
            "switch",
            snmprec=recording("switch-netgear-gs110tp"),
            tcp_ports=(22, 80, 443),
        ),
        _device("ups", "APC", "ups", snmprec=recording("ups-apc-smt1500"), tcp_ports=(22, 80, 443)),
        _device(
            "nas",
            "Synology",
            "nas",
            snmprec=recording("nas-synology-ds920"),
            tcp_ports=(22, 80, 139, 443, 445, 5000, 5001),
            mdns=announce.synology_services(
                "nas", "DS920+", "2040SBRN8XK2P", mac_of("nas"), (7, 2, 69057)
            ),
        ),
        _device(
            "fileserver",
            "Supermicro",
            "server",
            snmp_engine="snmpd",
            v3_user=DEMO_V3_USER,
            tcp_ports=(22, 139, 445),
            mdns=announce.samba_services("fileserver"),
        ),
        _device(
            "printer",
            "HP",
            "printer",
            snmprec=recording("printer-hp-m454dw"),
            tcp_ports=announce.PRINTER_TCP_PORTS,
            mdns=announce.printer_services(
                "printer", "HP", "Color LaserJet Pro M454dw", color=True, lpd_queue="BINPS"
            ),
        ),
        _device(
            "lobby-camera",
            "Axis",
            "camera",
            tcp_ports=(80, 443, 554),
            mdns=announce.axis_services("lobby-camera", "M3106-L Mk II", mac_of("lobby-camera")),
        ),
        _device("reception-pc", "Dell", "workstation"),
    )
    return SiteSpec(
        devices=devices,
        gateway_snmprec=recording("gateway-pfsense"),
        gateway_mac=GATEWAY_MAC,
        appliance_mac=APPLIANCE_MAC,
    )
