"""What a device says about itself over SNMP: system group, model, serial, firmware, a kind hint.

Reading is a handful of requests per device, never a full walk:
  1. GET the system group (that is also the credential probe);
  2. the vendor rule picked by sysObjectID / sysDescr GETs its scalars (one request) and may
     read one short table column;
  3. generic MIBs fill what the vendor rule left empty: ENTITY-MIB (the chassis row),
     Printer-MIB (serial), HOST-RESOURCES (hrDeviceDescr.1 of printers and appliances).
Linux-based appliances (Synology, UniFi, QNAP) answer with net-snmp's generic sysObjectID,
so for those the vendor MIBs are probed with one GET of their model OIDs.

Every string is sanitised (services/discovery/sanitize.py) before it leaves this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from services.discovery.sanitize import MAX_NAME_CHARS, clean_text
from services.snmp.values import (
    Counter32,
    Counter64,
    Gauge32,
    Integer,
    IpAddress,
    ObjectIdentifier,
    OctetString,
    SnmpValue,
    TimeTicks,
    is_absent,
)

# ---- the OIDs we read ----
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_CONTACT = "1.3.6.1.2.1.1.4.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYS_LOCATION = "1.3.6.1.2.1.1.6.0"
SYSTEM_GROUP = (SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_CONTACT, SYS_NAME, SYS_LOCATION)

ENT_PHYSICAL = "1.3.6.1.2.1.47.1.1.1.1"
ENT_DESCR, ENT_CLASS, ENT_FW, ENT_SW, ENT_SERIAL, ENT_MODEL = (
    f"{ENT_PHYSICAL}.{column}" for column in (2, 5, 9, 10, 11, 13)
)
ENT_CLASS_CHASSIS = 3
PRT_SERIAL_1 = "1.3.6.1.2.1.43.5.1.1.17.1"  # Printer-MIB prtGeneralSerialNumber.1
HR_DEVICE_DESCR_1 = "1.3.6.1.2.1.25.3.2.1.3.1"
HR_DEVICE_TYPE_1 = "1.3.6.1.2.1.25.3.2.1.2.1"
HR_DEVICE_PRINTER = "1.3.6.1.2.1.25.3.1.5"  # hrDevicePrinter
UPS_IDENT_MODEL = "1.3.6.1.2.1.33.1.1.2.0"  # UPS-MIB upsIdentModel
UPS_IDENT_MANUFACTURER = "1.3.6.1.2.1.33.1.1.1.0"
UPS_IDENT_AGENT_SW = "1.3.6.1.2.1.33.1.1.4.0"
IF_PHYS_ADDRESS = "1.3.6.1.2.1.2.2.1.6"

#: Rows read from a table column while fingerprinting (chassis, serial tables are short).
MAX_TABLE_ROWS = 64
#: Bound of model / serial / version strings.
MAX_FIELD_CHARS = 128

NET_SNMP = "1.3.6.1.4.1.8072.3.2."
WINDOWS = "1.3.6.1.4.1.311.1.1.3.1."


class SnmpReader(Protocol):
    """The two reads fingerprinting needs; services/discovery/snmp_reader.py adapts SnmpClient."""

    async def get(self, oids: Sequence[str]) -> dict[str, SnmpValue]: ...

    async def walk(self, root: str, max_rows: int) -> list[tuple[str, SnmpValue]]: ...


@dataclass(frozen=True)
class SnmpIdentity:
    """A device's SNMP identity; every text bounded and safe. Empty text: not known."""

    sys_descr: str = ""
    sys_object_id: str = ""
    sys_name: str = ""
    sys_location: str = ""
    sys_contact: str = ""
    uptime_s: float | None = None
    vendor: str = ""  # maker named by the vendor rule ("Synology", "APC")
    platform: str = ""  # the OS / product family rule that matched ("dsm", "pfsense")
    model: str = ""
    serial: str = ""
    version: str = ""
    kind: str = ""  # kind the SNMP evidence points to ("" when it says nothing)
    why: str = ""  # the evidence behind ``kind``, for the status page

    def as_attrs(self) -> dict[str, object]:
        return {
            "sysName": self.sys_name,
            "sysDescr": self.sys_descr,
            "sysObjectID": self.sys_object_id,
            "location": self.sys_location,
            "contact": self.sys_contact,
            # Seconds (sysUpTime / 100) when read; "uptime" is the inventory contract's name,
            # "uptime_s" the unit-carrying one the status page reads.
            "uptime": self.uptime_s,
            "uptime_s": self.uptime_s,
            "vendor": self.vendor,
            "platform": self.platform,
            "model": self.model,
            "serial": self.serial,
            "version": self.version,
            "kind": self.kind,
            "why": self.why,
        }


# ---- value helpers ----


def text(value: SnmpValue | None, max_chars: int = MAX_FIELD_CHARS) -> str:
    """A value as safe text ("" when absent, and for the `<private>` placeholders of redacted
    recordings is kept as is: it is what the device says)."""
    if value is None or is_absent(value):
        return ""
    if isinstance(value, OctetString):
        return clean_text(value.value, max_chars)
    if isinstance(value, ObjectIdentifier):
        return str(value)
    if isinstance(value, Integer | Counter32 | Gauge32 | Counter64 | TimeTicks):
        return str(value.value)
    if isinstance(value, IpAddress):
        return value.value
    return ""


def _number(value: SnmpValue | None) -> int | None:
    if isinstance(value, Integer | Counter32 | Gauge32 | Counter64 | TimeTicks):
        return value.value
    return None


def _oid_text(value: SnmpValue | None) -> str:
    if isinstance(value, ObjectIdentifier):
        return str(value)
    # A few agents return sysObjectID as a string; accept a dotted number.
    candidate = text(value).lstrip(".")
    return candidate if re.fullmatch(r"\d+(\.\d+)+", candidate) else ""


def _strip(value: str, *prefixes: str, suffixes: tuple[str, ...] = ()) -> str:
    for prefix in prefixes:
        if value.lower().startswith(prefix.lower()):
            value = value[len(prefix) :]
    for suffix in suffixes:
        if value.lower().endswith(suffix.lower()):
            value = value[: -len(suffix)]
    return value.strip(" ,;")


def _search(pattern: str, haystack: str, group: int = 1) -> str:
    match = re.search(pattern, haystack)
    return match.group(group).strip() if match else ""


# ---- vendor rules ----

Values = Mapping[str, SnmpValue]


@dataclass(frozen=True)
class Found:
    model: str = ""
    serial: str = ""
    version: str = ""


@dataclass(frozen=True)
class VendorRule:
    """One family of devices: how to recognise it and where it keeps model/serial/version.

    ``oids`` are fetched with one GET; ``extract`` turns them (plus the system group, in the
    same mapping) into :class:`Found`. ``column`` names a table column whose first non-empty
    value is handed to ``extract`` under the key ``"column"`` (Aruba AP serials).
    """

    name: str  # platform name, e.g. "dsm"
    vendor: str
    kind: str
    matches: Callable[[str, str], bool]  # (sysObjectID, sysDescr) -> bool
    oids: tuple[str, ...] = ()
    extract: Callable[[Values], Found] = lambda values: Found()
    column: str = ""
    # Linux-based appliances are only recognised by probing their MIB: then ``probe`` is the
    # OID whose presence identifies them.
    probe: str = ""


def _oid_under(*prefixes: str) -> Callable[[str, str], bool]:
    return lambda oid, descr: any(oid == p or oid.startswith(p + ".") for p in prefixes)


def _descr(pattern: str) -> Callable[[str, str], bool]:
    regex = re.compile(pattern, re.IGNORECASE)
    return lambda oid, descr: bool(regex.search(descr))


def _either(*tests: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
    return lambda oid, descr: any(t(oid, descr) for t in tests)


def _g(values: Values, oid: str, max_chars: int = MAX_FIELD_CHARS) -> str:
    return text(values.get(oid), max_chars)


def _apc(v: Values) -> Found:
    descr = _g(v, SYS_DESCR)
    aos, app = _search(r"PF:v(\S+)", descr), _search(r"AF1:v(\S+)", descr)
    version = f"AOS v{aos} / App v{app}" if aos and app else (aos or app)
    # UPS first (upsBasicIdentModel), then rack PDU (rPDUIdentModelNumber).
    model = _g(v, "1.3.6.1.4.1.318.1.1.1.1.1.1.0") or _g(v, "1.3.6.1.4.1.318.1.1.12.1.5.0")
    serial = _g(v, "1.3.6.1.4.1.318.1.1.1.1.2.3.0") or _g(v, "1.3.6.1.4.1.318.1.1.12.1.6.0")
    return Found(model, serial, version)


def _aruba(v: Values) -> Found:
    descr = _g(v, SYS_DESCR)
    return Found(
        _search(r"MODEL:\s*([^)]+)\)", descr),
        _g(v, "column"),
        _search(r"Version\s+(\S+)", descr),
    )


def _axis(v: Values) -> Found:
    # "; AXIS P1435-LE; Network Camera; 9.80.69; May 13 2024 09:11; 70D; 1;"
    parts = [p.strip() for p in _g(v, SYS_DESCR).split(";")]
    parts = [p for p in parts if p]
    model = parts[0] if parts else ""
    version = parts[2] if len(parts) > 2 else ""
    # An Axis serial number is the MAC address of the unit: ifPhysAddress of eth0.
    return Found(model, _g(v, "column"), version)


def _brother(v: Values) -> Found:
    model = _g(v, "1.3.6.1.4.1.2435.2.4.3.2435.5.13.3.0") or _g(v, HR_DEVICE_DESCR_1)
    return Found(
        _strip(model, "Brother ", suffixes=(" series",)),
        _g(v, "1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.1.0"),
        _strip(_g(v, "1.3.6.1.4.1.2435.2.4.3.1240.6.5.0"), "Firmware Ver."),
    )


def _cisco_sb(v: Values) -> Found:
    base = "1.3.6.1.4.1.9.6.1.101.53.14.1"
    model, hw = _g(v, f"{base}.7.1"), _g(v, f"{base}.4.1")
    return Found(
        f"{model} {hw}".strip() if model else "", _g(v, f"{base}.5.1"), _g(v, f"{base}.2.1")
    )


def _cyberpower(v: Values) -> Found:
    base = "1.3.6.1.4.1.3808.1.1.1.1"
    return Found(_g(v, f"{base}.1.1.0"), _g(v, f"{base}.2.3.0"), _g(v, f"{base}.2.1.0"))


def _draytek(v: Values) -> Found:
    descr = _g(v, SYS_DESCR)
    return Found(_search(r"Model:\s*([^,]+)", descr), "", _search(r"Version:\s*([^,]+)", descr))


def _synology(v: Values) -> Found:
    base = "1.3.6.1.4.1.6574.1.5"
    return Found(_g(v, f"{base}.1.0"), _g(v, f"{base}.2.0"), _strip(_g(v, f"{base}.3.0"), "DSM "))


def _qnap(v: Values) -> Found:
    return Found(_g(v, "1.3.6.1.4.1.24681.1.2.12.0"), "", "")


def _mge(v: Values) -> Found:
    base = "1.3.6.1.4.1.705.1.1"
    family, model = _g(v, f"{base}.1.0"), _g(v, f"{base}.2.0")
    return Found(f"{family} {model}".strip(), _g(v, f"{base}.7.0"), _g(v, f"{base}.4.0"))


def _eaton_xups(v: Values) -> Found:
    base = "1.3.6.1.4.1.534.1.1"
    return Found(_g(v, f"{base}.2.0"), "", _g(v, f"{base}.3.0"))


def _ilo(v: Values) -> Found:
    return Found(
        _g(v, "1.3.6.1.4.1.232.2.2.4.2.0"),
        _g(v, "1.3.6.1.4.1.232.2.2.2.1.0"),
        _search(r"Lights-Out\s+\d+\s+(\S+)", _g(v, SYS_DESCR)),
    )


def _idrac(v: Values) -> Found:
    base = "1.3.6.1.4.1.674.10892.5.1"
    return Found(_g(v, f"{base}.3.12.0"), _g(v, f"{base}.3.2.0"), _g(v, f"{base}.1.8.0"))


def _konica(v: Values) -> Found:
    base = "1.3.6.1.4.1.18334.1.1.1.1.6"
    model = _g(v, f"{base}.2.1.0") or _strip(_g(v, SYS_DESCR), "KONICA MINOLTA ")
    return Found(model, "", _g(v, f"{base}.1.0"))


def _ricoh(v: Values) -> Found:
    descr = _g(v, SYS_DESCR)
    match = re.match(r"RICOH\s+(.+?)\s+(\d[\w.]*)\s*(/|$)", descr)
    return Found(
        match.group(1) if match else _strip(_g(v, HR_DEVICE_DESCR_1), "RICOH "),
        _g(v, "1.3.6.1.4.1.367.3.2.1.2.1.4.0"),
        match.group(2) if match else _g(v, "1.3.6.1.4.1.367.3.2.1.1.1.2.0"),
    )


def _epson(v: Values) -> Found:
    return Found(_strip(_g(v, HR_DEVICE_DESCR_1), "EPSON "), "", "")


def _pfsense(v: Values) -> Found:
    descr = _g(v, SYS_DESCR)
    match = re.match(r"pfSense\s+(\S+).*\s(\S+)$", descr)
    return Found(match.group(2), "", match.group(1)) if match else Found()


def _truenas(v: Values) -> Found:
    descr = _g(v, SYS_DESCR, 512)
    return Found(
        _search(r"Hardware:\s*(.+?)\.\s*Software:", descr),
        "",
        _search(r"(?:TrueNAS|FreeNAS)-(\S+)", descr),
    )


def _procurve(v: Values) -> Found:
    descr = _g(v, SYS_DESCR)
    return Found(
        _search(r"^(?:HP|HPE|ProCurve|Aruba)\s+(.+?),\s*revision", descr),
        "",
        _search(r"revision\s+([^,\s]+)", descr),
    )


def _tplink(v: Values) -> Found:
    # TP-Link smart switches keep model and firmware in RMON's probe group.
    return Found(_g(v, "1.3.6.1.2.1.16.19.3.0"), "", _g(v, "1.3.6.1.2.1.16.19.2.0"))


def _unifi(v: Values) -> Found:
    base = "1.3.6.1.4.1.41112.1.6.3"
    descr = _g(v, SYS_DESCR)
    return Found(
        _g(v, f"{base}.3.0") or _search(r"^(U\S+)\s", descr),
        "",
        _g(v, f"{base}.6.0") or _search(r"^U\S+\s+(\S+)", descr),
    )


def _esxi(v: Values) -> Found:
    return Found("", "", _g(v, "1.3.6.1.4.1.6876.1.2.0"))


def _mikrotik(v: Values) -> Found:
    base = "1.3.6.1.4.1.14988.1.1.7"
    return Found(
        _search(r"RouterOS\s+(\S+)", _g(v, SYS_DESCR)), _g(v, f"{base}.3.0"), _g(v, f"{base}.4.0")
    )


def _fortinet(v: Values) -> Found:
    return Found(
        "",
        _g(v, "1.3.6.1.4.1.12356.100.1.1.1.0"),
        _strip(_g(v, "1.3.6.1.4.1.12356.101.4.1.1.0"), "v"),
    )


_LINUX_ARCH = {
    "x86_64": "Generic x86 64-bit",
    "i686": "Generic x86",
    "i386": "Generic x86",
    "aarch64": "Generic ARM 64-bit",
    "armv7l": "Generic ARMv7",
    "armv6l": "Generic ARMv6",
    "mips": "Generic MIPS",
}


def _linux(v: Values) -> Found:
    # "Linux HOST 4.9.0 #1 SMP Mon Dec 12 14:44:53 CST 2016 x86_64"
    parts = _g(v, SYS_DESCR, 512).split()
    version = parts[2] if len(parts) > 2 else ""
    arch = parts[-1] if len(parts) > 3 else ""
    return Found(_LINUX_ARCH.get(arch, arch if arch in _LINUX_ARCH.values() else ""), "", version)


# Windows: the build number names the release (sysObjectID .1.1 workstation, .1.2/.1.3 server).
_WINDOWS_SERVER_BUILDS = {
    3790: "2003",
    6002: "2008 SP2",
    7601: "2008 R2 SP1",
    9200: "2012",
    9600: "2012 R2",
    14393: "2016 (1607)",
    17763: "2019 (1809)",
    20348: "2022 (21H2)",
    26100: "2025 (24H2)",
}
_WINDOWS_CLIENT_BUILDS = {
    7601: "7 SP1",
    9200: "8",
    9600: "8.1",
    10240: "10 (1507)",
    14393: "10 (1607)",
    17763: "10 (1809)",
    19044: "10 (21H2)",
    19045: "10 (22H2)",
    22000: "11 (21H2)",
    22621: "11 (22H2)",
    22631: "11 (23H2)",
    26100: "11 (24H2)",
}


def _windows(v: Values) -> Found:
    descr = _g(v, SYS_DESCR, 512)
    oid = _oid_text(v.get(SYS_OBJECT_ID))
    build = int(_search(r"Build\s+(\d+)", descr) or 0)
    if oid.endswith(".1.1"):
        release = _WINDOWS_CLIENT_BUILDS.get(build)
        version = f"Windows {release}" if release else (f"build {build}" if build else "")
    else:
        release = _WINDOWS_SERVER_BUILDS.get(build)
        version = f"Server {release}" if release else (f"build {build}" if build else "")
    cpu = _search(r"Hardware:\s*(\S+)", descr)
    hardware = {"Intel64": "Intel x64", "AMD64": "AMD x64", "x86": "Intel x86", "ARM64": "ARM64"}
    return Found(hardware.get(cpu, cpu), "", version)


RULES: tuple[VendorRule, ...] = (
    VendorRule(
        "apc",
        "APC",
        "ups",
        _oid_under("1.3.6.1.4.1.318"),
        (
            "1.3.6.1.4.1.318.1.1.1.1.1.1.0",
            "1.3.6.1.4.1.318.1.1.1.1.2.3.0",
            "1.3.6.1.4.1.318.1.1.12.1.5.0",
            "1.3.6.1.4.1.318.1.1.12.1.6.0",
        ),
        _apc,
    ),
    VendorRule(
        "aruba-instant",
        "Aruba",
        "ap",
        _oid_under("1.3.6.1.4.1.14823.1.2"),
        (),
        _aruba,
        column="1.3.6.1.4.1.14823.2.3.3.1.2.1.1.4",
    ),
    VendorRule(
        "axis",
        "Axis",
        "camera",
        _either(_oid_under("1.3.6.1.4.1.368"), _descr(r";\s*AXIS ")),
        (),
        _axis,
        column=IF_PHYS_ADDRESS,
    ),
    VendorRule(
        "brother",
        "Brother",
        "printer",
        _oid_under("1.3.6.1.4.1.2435"),
        (
            "1.3.6.1.4.1.2435.2.4.3.2435.5.13.3.0",
            "1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.1.0",
            "1.3.6.1.4.1.2435.2.4.3.1240.6.5.0",
            HR_DEVICE_DESCR_1,
        ),
        _brother,
    ),
    VendorRule(
        "ciscosb",
        "Cisco",
        "switch",
        _oid_under("1.3.6.1.4.1.9.6.1"),
        tuple(f"1.3.6.1.4.1.9.6.1.101.53.14.1.{c}.1" for c in (2, 4, 5, 7)),
        _cisco_sb,
    ),
    VendorRule(
        "cyberpower",
        "CyberPower",
        "ups",
        _oid_under("1.3.6.1.4.1.3808"),
        tuple(f"1.3.6.1.4.1.3808.1.1.1.1.{s}" for s in ("1.1.0", "2.1.0", "2.3.0")),
        _cyberpower,
    ),
    VendorRule(
        "draytek",
        "DrayTek",
        "router",
        _either(_oid_under("1.3.6.1.4.1.7367"), _descr(r"^DrayTek")),
        (),
        _draytek,
    ),
    VendorRule(
        "eaton-mgeups",
        "Eaton",
        "ups",
        _oid_under("1.3.6.1.4.1.705"),
        tuple(f"1.3.6.1.4.1.705.1.1.{s}.0" for s in (1, 2, 4, 7)),
        _mge,
    ),
    VendorRule(
        "eaton-xups",
        "Eaton",
        "ups",
        _oid_under("1.3.6.1.4.1.534"),
        ("1.3.6.1.4.1.534.1.1.2.0", "1.3.6.1.4.1.534.1.1.3.0"),
        _eaton_xups,
    ),
    VendorRule(
        "hpe-ilo",
        "HPE",
        "server",
        _either(_oid_under("1.3.6.1.4.1.232.9"), _descr(r"Integrated Lights-Out")),
        ("1.3.6.1.4.1.232.2.2.4.2.0", "1.3.6.1.4.1.232.2.2.2.1.0"),
        _ilo,
    ),
    VendorRule(
        "idrac",
        "Dell",
        "server",
        _oid_under("1.3.6.1.4.1.674.10892"),
        tuple(f"1.3.6.1.4.1.674.10892.5.1.{s}.0" for s in ("3.12", "3.2", "1.8")),
        _idrac,
    ),
    VendorRule(
        "konica",
        "Konica Minolta",
        "printer",
        _either(_oid_under("1.3.6.1.4.1.18334"), _descr(r"^KONICA MINOLTA")),
        ("1.3.6.1.4.1.18334.1.1.1.1.6.1.0", "1.3.6.1.4.1.18334.1.1.1.1.6.2.1.0"),
        _konica,
    ),
    VendorRule(
        "ricoh",
        "Ricoh",
        "printer",
        _either(_oid_under("1.3.6.1.4.1.367"), _descr(r"^RICOH")),
        ("1.3.6.1.4.1.367.3.2.1.2.1.4.0", "1.3.6.1.4.1.367.3.2.1.1.1.2.0", HR_DEVICE_DESCR_1),
        _ricoh,
    ),
    VendorRule(
        "epson",
        "Epson",
        "printer",
        _either(_oid_under("1.3.6.1.4.1.1248"), _descr(r"^EPSON")),
        (HR_DEVICE_DESCR_1,),
        _epson,
    ),
    VendorRule(
        "hp-printer",
        "HP",
        "printer",
        _oid_under("1.3.6.1.4.1.11.2.3.9"),
        (HR_DEVICE_DESCR_1,),
        lambda v: Found(_strip(_g(v, HR_DEVICE_DESCR_1), "HP ")),
    ),
    VendorRule("pfsense", "Netgate", "router", _descr(r"^pfSense\s"), (), _pfsense),
    VendorRule(
        "opnsense",
        "Deciso",
        "router",
        _descr(r"^OPNsense"),
        (),
        lambda v: Found("", "", _search(r"OPNsense\s+(\S+)", _g(v, SYS_DESCR))),
    ),
    VendorRule("truenas", "iXsystems", "nas", _descr(r"^(TrueNAS|FreeNAS)-"), (), _truenas),
    VendorRule(
        "procurve",
        "HPE",
        "switch",
        _oid_under("1.3.6.1.4.1.11.2.3.7"),
        (),
        _procurve,
    ),
    VendorRule(
        "tplink",
        "TP-Link",
        "switch",
        _oid_under("1.3.6.1.4.1.11863"),
        ("1.3.6.1.2.1.16.19.2.0", "1.3.6.1.2.1.16.19.3.0"),
        _tplink,
    ),
    VendorRule(
        "mikrotik",
        "MikroTik",
        "router",
        _either(_oid_under("1.3.6.1.4.1.14988"), _descr(r"^RouterOS")),
        ("1.3.6.1.4.1.14988.1.1.7.3.0", "1.3.6.1.4.1.14988.1.1.7.4.0"),
        _mikrotik,
    ),
    VendorRule(
        "fortigate",
        "Fortinet",
        "router",
        _oid_under("1.3.6.1.4.1.12356"),
        ("1.3.6.1.4.1.12356.100.1.1.1.0", "1.3.6.1.4.1.12356.101.4.1.1.0"),
        _fortinet,
    ),
    VendorRule(
        "vmware-esxi",
        "VMware",
        "server",
        _oid_under("1.3.6.1.4.1.6876"),
        ("1.3.6.1.4.1.6876.1.2.0",),
        _esxi,
    ),
    VendorRule("windows", "Microsoft", "server", _oid_under("1.3.6.1.4.1.311"), (), _windows),
    # Linux-based appliances: recognised by probing their own MIB (see module docstring).
    VendorRule(
        "dsm",
        "Synology",
        "nas",
        lambda oid, descr: False,
        tuple(f"1.3.6.1.4.1.6574.1.5.{s}.0" for s in (1, 2, 3)),
        _synology,
        probe="1.3.6.1.4.1.6574.1.5.1.0",
    ),
    VendorRule(
        "unifi",
        "Ubiquiti",
        "ap",
        _descr(r"^UAP-"),
        ("1.3.6.1.4.1.41112.1.6.3.3.0", "1.3.6.1.4.1.41112.1.6.3.6.0"),
        _unifi,
        probe="1.3.6.1.4.1.41112.1.6.3.3.0",
    ),
    VendorRule(
        "qnap",
        "QNAP",
        "nas",
        _oid_under("1.3.6.1.4.1.24681", "1.3.6.1.4.1.55062"),
        ("1.3.6.1.4.1.24681.1.2.12.0",),
        _qnap,
        probe="1.3.6.1.4.1.24681.1.2.12.0",
    ),
    VendorRule("linux", "", "server", _descr(r"^Linux\s"), (), _linux),
)

#: Kinds suggested by sysDescr words when no rule matched (weaker evidence).
_DESCR_KINDS: tuple[tuple[str, str], ...] = (
    (r"\b(switch|switching)\b", "switch"),
    (r"\bRTL83\d\d", "switch"),  # Realtek switch SoCs (EdgeSwitch, many smart switches)
    (r"\b(router|firewall|gateway)\b", "router"),
    (r"\b(access point|wireless)\b", "ap"),
    (r"\b(printer|laserjet|officejet|multifunction)\b", "printer"),
    (r"\b(ups|pdu|power manager)\b", "ups"),
    (r"\b(camera|ip cam|nvr)\b", "camera"),
    (r"\b(nas|storage)\b", "nas"),
)


def match_rule(sys_object_id: str, sys_descr: str) -> VendorRule | None:
    for rule in RULES:
        if rule.matches(sys_object_id, sys_descr):
            return rule
    return None


def _kind_from_descr(descr: str) -> str:
    for pattern, kind in _DESCR_KINDS:
        if re.search(pattern, descr, re.IGNORECASE):
            return kind
    return ""


def system_identity(values: Values) -> SnmpIdentity:
    uptime = values.get(SYS_UPTIME)
    ticks = _number(uptime)
    return SnmpIdentity(
        sys_descr=text(values.get(SYS_DESCR), 512),
        sys_object_id=_oid_text(values.get(SYS_OBJECT_ID)),
        sys_name=text(values.get(SYS_NAME), MAX_NAME_CHARS),
        sys_location=text(values.get(SYS_LOCATION), MAX_NAME_CHARS),
        sys_contact=text(values.get(SYS_CONTACT), MAX_NAME_CHARS),
        uptime_s=ticks / 100 if ticks is not None else None,
    )


def has_system_group(values: Values) -> bool:
    """Whether an answer to the system-group GET identifies an SNMP agent at all."""
    return any(not is_absent(values[o]) for o in (SYS_DESCR, SYS_OBJECT_ID) if o in values)


async def read_identity(reader: SnmpReader, system: Values | None = None) -> SnmpIdentity:
    """The full identity; ``system`` is the already-read system group (the credential probe).

    Raises what the reader raises (timeouts, decode errors) on the system-group read only;
    later reads that fail leave their fields empty: a partial identity beats none.
    """
    if system is None:
        system = await reader.get(SYSTEM_GROUP)
    ident = system_identity(system)
    values: dict[str, SnmpValue] = dict(system)
    rule = match_rule(ident.sys_object_id, ident.sys_descr)
    if rule is None or rule.name == "linux":
        probed = await _safe_get(reader, [r.probe for r in RULES if r.probe])
        values.update(probed)
        for candidate in RULES:
            if candidate.probe and text(probed.get(candidate.probe)):
                rule = candidate
                break
    found = Found()
    if rule is not None:
        if rule.oids:
            values.update(await _safe_get(reader, rule.oids))
        if rule.column:
            values["column"] = await _first_in_column(reader, rule.column)
        try:
            found = rule.extract(values)
        except (ValueError, IndexError, AttributeError):
            # A device that says something a rule never expected leaves its fields empty.
            found = Found()
    found = await _fill_generic(reader, found, values)
    kind, why = "", ""
    if rule is not None:
        kind = rule.kind
        why = f"SNMP: {rule.vendor or rule.name} {rule.name} (sysObjectID {ident.sys_object_id})"
        if rule.name == "windows" and ident.sys_object_id.endswith(".1.1"):
            kind = "workstation"
    else:
        kind = _kind_from_descr(ident.sys_descr)
        why = f"SNMP sysDescr: {ident.sys_descr[:80]}" if kind else ""
    if not kind and text(values.get(PRT_SERIAL_1)):
        kind, why = "printer", "SNMP: answers the Printer-MIB"
    if not kind and text(values.get(UPS_IDENT_MANUFACTURER)):
        kind, why = "ups", "SNMP: answers the UPS-MIB"
    return replace(
        ident,
        vendor=rule.vendor if rule else "",
        platform=rule.name if rule else "",
        model=clean_text(found.model, MAX_FIELD_CHARS),
        serial=clean_text(found.serial, MAX_FIELD_CHARS),
        version=clean_text(found.version, MAX_FIELD_CHARS),
        kind=kind,
        why=why,
    )


async def _safe_get(reader: SnmpReader, oids: Sequence[str]) -> dict[str, SnmpValue]:
    from services.snmp.errors import SnmpError

    try:
        return await reader.get(list(oids))
    except SnmpError:
        return {}


async def _first_in_column(reader: SnmpReader, column: str) -> SnmpValue:
    from services.snmp.errors import SnmpError

    try:
        rows = await reader.walk(column, MAX_TABLE_ROWS)
    except SnmpError:
        return OctetString(b"")
    for _oid, value in rows:
        if isinstance(value, OctetString) and value.value.strip(b"\x00"):
            if column == IF_PHYS_ADDRESS:
                return OctetString(value.hex().encode()) if len(value.value) == 6 else value
            return value
    return OctetString(b"")


async def _fill_generic(reader: SnmpReader, found: Found, values: dict[str, SnmpValue]) -> Found:
    """ENTITY-MIB chassis, Printer-MIB serial, hrDeviceDescr.1 for what is still empty."""
    if found.model and found.serial and found.version:
        return found
    model, serial, version = found.model, found.serial, found.version
    chassis = await _entity_chassis(reader)
    if chassis:
        model = model or chassis.get("model") or chassis.get("descr", "")
        serial = serial or chassis.get("serial", "")
        version = version or chassis.get("sw", "") or chassis.get("fw", "")
    if not serial or not model:
        extra = await _safe_get(
            reader,
            [
                PRT_SERIAL_1,
                HR_DEVICE_TYPE_1,
                HR_DEVICE_DESCR_1,
                UPS_IDENT_MANUFACTURER,
                UPS_IDENT_MODEL,
            ],
        )
        values.update(extra)
        serial = serial or text(extra.get(PRT_SERIAL_1))
        is_printer = _oid_text(extra.get(HR_DEVICE_TYPE_1)) == HR_DEVICE_PRINTER
        if not model and is_printer:
            model = text(extra.get(HR_DEVICE_DESCR_1))
        if not model:
            model = text(extra.get(UPS_IDENT_MODEL))
    return Found(model, serial, version)


async def _entity_chassis(reader: SnmpReader) -> dict[str, str]:
    """The first chassis row of entPhysicalTable (or its first row with a model or serial)."""
    from services.snmp.errors import SnmpError

    try:
        classes = await reader.walk(ENT_CLASS, MAX_TABLE_ROWS)
    except SnmpError:
        return {}
    indexes = [oid.rsplit(".", 1)[1] for oid, v in classes if _number(v) == ENT_CLASS_CHASSIS]
    if not indexes:
        indexes = [oid.rsplit(".", 1)[1] for oid, _v in classes[:1]]
    for index in indexes[:4]:
        columns = {
            "descr": ENT_DESCR,
            "model": ENT_MODEL,
            "serial": ENT_SERIAL,
            "sw": ENT_SW,
            "fw": ENT_FW,
        }
        got = await _safe_get(reader, [f"{oid}.{index}" for oid in columns.values()])
        row = {name: text(got.get(f"{oid}.{index}")) for name, oid in columns.items()}
        if row["model"] or row["serial"]:
            return row
    return {}
