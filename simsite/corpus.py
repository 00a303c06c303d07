"""The corpus site: one device per recording of the shared SNMP corpus.

``corpus_site(Path("../shared/snmp-corpus"))`` gives every ``*.snmprec`` there a host of
its own (role from the corpus README's table, MAC under the vendor's real OUI, the TCP
ports and mDNS announcements such a device has), makes the pfSense recording play the
gateway, and adds ``fileserver``, a net-snmp snmpd with an SNMPv3 authPriv user
(``CORPUS_V3_USER``). Device names are the recording's file name with ``_`` turned into
``-`` (``apc_smt750x-nmc2.snmprec`` -> ``apc-smt750x-nmc2``), so tests can find the
matching ``*.expected.json``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import announce
from .model import MdnsService, SimDevice, SiteSpec, SnmpV3User
from .ouis import mac_for

#: The recording that plays the site's gateway.
GATEWAY_STEM = "pfsense"
#: The SNMPv3 user of the corpus site's ``fileserver`` (net-snmp snmpd).
CORPUS_V3_USER = SnmpV3User("outpost", auth_key="outpost-auth-pass", priv_key="outpost-priv-pass")
FILESERVER = "fileserver"
#: README table classes -> SimDevice roles.
_ROLE_OF_CLASS = {
    "router / firewall": "router",
    "switch": "switch",
    "wireless ap": "ap",
    "nas": "nas",
    "printer": "printer",
    "ups": "ups",
    "server": "server",
    "camera": "camera",
}
#: Recordings the catalogue below does not know get addresses from here up.
_FIRST_UNKNOWN_HOST = 100
_LAN = "198.18.0"

MdnsBuilder = Callable[[str, str], tuple[MdnsService, ...]]  # (device name, MAC) -> services


@dataclass(frozen=True)
class _Profile:
    host: int  # last octet of the LAN address
    vendor: str
    oui: str  # key into ouis.VENDOR_OUIS
    tcp_ports: tuple[int, ...]
    mdns: MdnsBuilder | None = None


def _printer(manufacturer: str, model: str, color: bool, queue: str) -> MdnsBuilder:
    return lambda name, _mac: announce.printer_services(
        name, manufacturer, model, color=color, lpd_queue=queue
    )


_WEB = (80, 443)
_SSH_WEB = (22, 80, 443)
_PROFILES: dict[str, _Profile] = {
    "draytek_vigor2962": _Profile(254, "DrayTek", "draytek", _SSH_WEB),
    "ciscosb_cbs250-24p-4x-v3": _Profile(3, "Cisco", "cisco", _SSH_WEB),
    "edgeswitch_10xp": _Profile(4, "Ubiquiti", "ubiquiti", _SSH_WEB),
    "tplink_sg2008": _Profile(5, "TP-Link", "tplink", (22, 80)),
    "procurve_2520": _Profile(6, "HP", "hp", (22, 23, 80)),
    # UniFi APs are found by Ubiquiti's own UDP 10001 discovery, not mDNS: no announcement.
    "unifi_nanohd": _Profile(11, "Ubiquiti", "ubiquiti", (22,)),
    "aruba-instant": _Profile(12, "Aruba", "aruba", (22, 80, 443, 4343)),
    "windows_svr_2019_1809": _Profile(20, "Dell", "dell", (135, 139, 445, 3389, 5985)),
    "linux": _Profile(21, "Supermicro", "supermicro", (22,)),
    # The recording's host is an HP ProLiant DL380p Gen8; vmk0 carries the NIC's HP MAC.
    "vmware-esxi": _Profile(22, "VMware", "hp", (22, 80, 443, 902)),
    "hpe-ilo_4": _Profile(23, "HPE", "hpe", (22, 80, 443, 17988)),
    "dsm": _Profile(
        30,
        "Synology",
        "synology",
        (22, 80, 139, 443, 445, 5000, 5001),
        lambda name, mac: announce.synology_services(
            name, "RS2212RP+", "3005AWL999111", mac, (6, 1, 15217)
        ),
    ),
    "truenas": _Profile(
        31,
        "iXsystems",
        "supermicro",
        (22, 80, 139, 443, 445),
        lambda name, _mac: announce.truenas_services(name),
    ),
    "brother": _Profile(
        40,
        "Brother",
        "brother",
        announce.PRINTER_TCP_PORTS,
        _printer("Brother", "MFC-L2710DW series", False, "BINARY_P1"),
    ),
    "epson": _Profile(
        41,
        "Epson",
        "epson",
        announce.PRINTER_TCP_PORTS,
        _printer("EPSON", "WF-C5790 Series", True, "PASSTHRU"),
    ),
    "konica": _Profile(
        42,
        "Konica Minolta",
        "konica",
        announce.PRINTER_TCP_PORTS,
        _printer("KONICA MINOLTA", "bizhub C3110", True, "print"),
    ),
    "ricoh_mpc3002": _Profile(
        43,
        "Ricoh",
        "ricoh",
        announce.PRINTER_TCP_PORTS,
        _printer("RICOH", "Aficio MP C3002", True, "lp"),
    ),
    "apc_smt750x-nmc2": _Profile(50, "APC", "apc", _SSH_WEB),
    "eaton-mgeups_9px": _Profile(51, "Eaton", "eaton", _WEB),
    "cyberpower": _Profile(52, "CyberPower", "cyberpower", _WEB),
    "axiscam_p1435-le": _Profile(
        60,
        "Axis",
        "axis",
        (80, 443, 554),
        lambda name, mac: announce.axis_services(name, "P1435-LE", mac),
    ),
}
_FILESERVER_HOST = 25


def device_name(stem: str) -> str:
    """The site device name of a recording's file stem."""
    return re.sub(r"[^a-z0-9-]", "-", stem.lower()).strip("-")[:40]


def roles_from_readme(readme: Path) -> dict[str, str]:
    """Recording stem -> role, read from the README's ``| class | files |`` table."""
    roles: dict[str, str] = {}
    if not readme.is_file():
        return roles
    for line in readme.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not line.lstrip().startswith("|"):
            continue
        role = _ROLE_OF_CLASS.get(cells[0].lower())
        if role is None:
            continue
        for item in cells[1].split(","):
            # Cells may annotate a stem: "dsm (Synology)".
            stem = item.strip().split(" ")[0]
            roles[stem] = role
    return roles


def _fileserver() -> SimDevice:
    mac = mac_for("supermicro", FILESERVER)
    return SimDevice(
        name=FILESERVER,
        ip=f"{_LAN}.{_FILESERVER_HOST}",
        mac=mac,
        vendor="Supermicro",
        role="server",
        snmp_engine="snmpd",
        v3_user=CORPUS_V3_USER,
        tcp_ports=(22, 139, 445),
        mdns=announce.samba_services(FILESERVER),
    )


def corpus_site(corpus_dir: Path) -> SiteSpec:
    """A site with one device per recording in ``corpus_dir`` (see the module doc)."""
    corpus_dir = Path(corpus_dir)
    recordings = sorted(corpus_dir.glob("*.snmprec"))
    if not recordings:
        raise FileNotFoundError(f"no *.snmprec in {corpus_dir}")
    roles = roles_from_readme(corpus_dir / "README.md")
    devices = [_fileserver()]
    gateway: Path | None = None
    next_unknown = _FIRST_UNKNOWN_HOST
    for path in recordings:
        stem = path.stem
        if stem == GATEWAY_STEM:
            gateway = path
            continue
        name = device_name(stem)
        profile = _PROFILES.get(stem)
        if profile is None:
            profile = _Profile(next_unknown, "Unknown", "", ())
            next_unknown += 1
        mac = mac_for(profile.oui, name)
        devices.append(
            SimDevice(
                name=name,
                ip=f"{_LAN}.{profile.host}",
                mac=mac,
                vendor=profile.vendor,
                role=roles.get(stem, "unknown"),
                snmprec=path,
                tcp_ports=profile.tcp_ports,
                mdns=profile.mdns(name, mac) if profile.mdns else (),
            )
        )
    return SiteSpec(devices=tuple(devices), gateway_snmprec=gateway)
