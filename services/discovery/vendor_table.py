"""The vendor table: which makers' devices are recognised, and where each keeps its identity.

Data, not code: each row names a family (sysObjectID prefixes under the maker's IANA
enterprise number, and/or a sysDescr pattern), the kind of device it makes, and, for model,
serial and version, the places to read them in order: the maker's own MIB objects (written
once here, with the object's name), then sysDescr patterns. The standard MIBs (ENTITY-MIB,
Printer-MIB, HOST-RESOURCES, UPS-MIB; identity_sources.py) are read between the two for
whatever the maker's objects left empty, so a row only lists what the standard MIBs do not
give. A handful of families need a few lines of code to put a value together (``compose``).

Rows are tried in order; the first that matches wins, so a narrower row (a maker's access
points) comes before a broader one (the same maker's switches). Rows with ``probe`` are
tried for devices that answered with a generic sysObjectID (net-snmp's, Linux): their MIB
answering is what recognises them.

Sources of the OIDs: each maker's published MIB (names as in the MIB file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from services.discovery.identity_sources import (
    DOT11,
    HR_DEVICE_DESCR_1,
    IF_PHYS_ADDRESS,
    SYS_DESCR,
    SYS_OBJECT_ID,
    W_GENERIC_OS,
    Found,
    Source,
    Values,
    VendorRule,
    col,
    dfirst,
    dlast,
    obj,
)
from services.snmp.values import ObjectIdentifier, OctetString, is_absent

E: Final = "1.3.6.1.4.1."  # IANA enterprise numbers


def _s(values: Values, oid: str) -> str:
    value = values.get(oid)
    if value is None or is_absent(value) or not isinstance(value, OctetString):
        return ""
    return value.text(512)


def _search(pattern: str, haystack: str) -> str:
    match = re.search(pattern, haystack)
    return match.group(1).strip() if match else ""


# ---- the few families whose values are put together from several objects ----


def _apc(v: Values) -> Found:
    # "APC Web/SNMP Management Card (MB:v4.1.0 PF:v6.8.2 ... AF1:v6.8.0 ...)": PF is the
    # network card's OS (AOS), AF1 the application (UPS / PDU firmware).
    descr = _s(v, SYS_DESCR)
    aos, app = _search(r"PF:v(\S+)", descr), _search(r"AF1:v(\S+)", descr)
    return Found(version=f"AOS v{aos} / App v{app}" if aos and app else (aos or app))


def _cisco_sb(v: Values) -> Found:
    # CISCOSB-Physicaldescription-MIB rlPhdUnitGenParamEntry: model (.7) and its hardware
    # version (.4) together are what the label on the box says ("CBS250-24P-4X V03").
    base = E + "9.6.1.101.53.14.1"
    model, hw = _s(v, f"{base}.7.1"), _s(v, f"{base}.4.1")
    return Found(model=f"{model} {hw}".strip() if model else "")


def _mge(v: Values) -> Found:
    # MG-SNMP-UPS-MIB upsmgIdentFamilyName (.1) + upsmgIdentModelName (.2): "Eaton 5PX" "3000".
    base = E + "705.1.1"
    family, model = _s(v, f"{base}.1.0"), _s(v, f"{base}.2.0")
    return Found(model=f"{family} {model}".strip() if family or model else "")


_LINUX_ARCH: Final = {
    "x86_64": "Generic x86 64-bit",
    "i686": "Generic x86",
    "i386": "Generic x86",
    "aarch64": "Generic ARM 64-bit",
    "armv7l": "Generic ARMv7",
    "armv6l": "Generic ARMv6",
    "mips": "Generic MIPS",
}


def _linux(v: Values) -> Found:
    # "Linux HOST 4.9.0 #1 SMP Mon Dec 12 14:44:53 CST 2016 x86_64": kernel, then machine.
    parts = _s(v, SYS_DESCR).split()
    version = parts[2] if len(parts) > 2 else ""
    arch = parts[-1] if len(parts) > 3 else ""
    return Found(model=_LINUX_ARCH.get(arch, ""), version=version)


# Windows: the build number names the release (sysObjectID .1.1 workstation, .1.2/.1.3 server).
_WINDOWS_SERVER_BUILDS: Final = {
    1057: "NT 3.51",
    1381: "NT Server 4.0",
    2195: "2000",
    3790: "2003",
    6001: "2008",
    6002: "2008 SP2",
    7600: "2008 R2",
    7601: "2008 R2 SP1",
    9200: "2012",
    9600: "2012 R2",
    14393: "2016 (1607)",
    17763: "2019 (1809)",
    20348: "2022 (21H2)",
    26100: "2025 (24H2)",
}
_WINDOWS_CLIENT_BUILDS: Final = {
    1057: "NT 3.51 Workstation",
    1381: "NT Workstation 4.0",
    2195: "2000",
    2600: "XP",
    3790: "XP x64",
    6000: "Vista",
    6001: "Vista SP1",
    6002: "Vista SP2",
    7600: "7",
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
_WINDOWS_CPUS: Final = {
    "Intel64": "Intel x64",
    "EM64T": "Intel x64",
    "AMD64": "AMD x64",
    "x86": "Generic x86",
    "ARM64": "ARM64",
}


def _windows(v: Values) -> Found:
    # "Hardware: Intel64 Family 6 ... - Software: Windows Version 6.3 (Build 9600 Multiprocessor
    # Free)"; NT 4 and older say "Windows NT Version 4.0 (Build Number: 1381 ...)".
    descr = _s(v, SYS_DESCR)
    oid_value = v.get(SYS_OBJECT_ID)
    oid = str(oid_value) if isinstance(oid_value, ObjectIdentifier) else ""
    build = int(_search(r"Build(?: Number:)?\s+(\d+)", descr) or 0)
    if oid.endswith(".1.1"):
        release = _WINDOWS_CLIENT_BUILDS.get(build)
        version = f"Windows {release}" if release else (f"build {build}" if build else "")
    else:
        release = _WINDOWS_SERVER_BUILDS.get(build)
        version = f"Server {release}" if release else (f"build {build}" if build else "")
    cpu = _search(r"Hardware:\s*(\S+)", descr)
    return Found(model=_WINDOWS_CPUS.get(cpu, cpu), version=version)


# ---- the table ----

_ENT_DESCR_1: Final = "1.3.6.1.2.1.47.1.1.1.1.2.1"
# net-snmp nsExtendOutput1Line."version": OPNsense's snmpd plug-in publishes its release here.
_NS_EXTEND_OUTPUT_VERSION: Final = E + "8072.1.3.2.3.1.2.7.118.101.114.115.105.111.110"
_UBNT: Final = E + "41112.1"

RULES: Final[tuple[VendorRule, ...]] = (
    # -- power: UPS and PDUs --
    VendorRule(
        "apc",
        "APC",
        "ups",
        oids=(E + "318",),
        model=(
            obj(E + "318.1.1.1.1.1.1.0", "PowerNet upsBasicIdentModel"),
            obj(E + "318.1.1.12.1.5.0", "PowerNet rPDUIdentModelNumber"),
            obj(E + "318.1.1.30.2.1.1.4.1", "PowerNet ePDU2 model number"),
            dlast(r"^APC\s+(Web/SNMP Management Card)"),
        ),
        serial=(
            obj(E + "318.1.1.1.1.2.3.0", "PowerNet upsAdvIdentSerialNumber"),
            obj(E + "318.1.1.12.1.6.0", "PowerNet rPDUIdentSerialNumber"),
            obj(E + "318.1.1.30.2.1.1.5.1", "PowerNet ePDU2 serial number"),
        ),
        version=(obj(E + "318.1.1.30.2.1.1.3.1", "PowerNet ePDU2 firmware", r"(\d[\w.]*)$"),),
        compose=_apc,
    ),
    VendorRule(
        "cyberpower",
        "CyberPower",
        "ups",
        oids=(E + "3808",),
        model=(obj(E + "3808.1.1.1.1.1.1.0", "CPS-MIB upsBaseIdentModel"),),
        serial=(obj(E + "3808.1.1.1.1.2.3.0", "CPS-MIB upsAdvanceIdentSerialNumber"),),
        version=(obj(E + "3808.1.1.1.1.2.1.0", "CPS-MIB upsAdvanceIdentFirmwareRevision"),),
    ),
    VendorRule(
        "eaton-mgeups",
        "Eaton",
        "ups",
        oids=(E + "705",),
        serial=(obj(E + "705.1.1.7.0", "MG-SNMP-UPS-MIB upsmgIdentSerialNumber"),),
        version=(obj(E + "705.1.1.4.0", "MG-SNMP-UPS-MIB upsmgIdentFirmwareVersion"),),
        compose=_mge,
        extra_oids=(E + "705.1.1.1.0", E + "705.1.1.2.0"),
    ),
    VendorRule(
        "eaton-epdu",
        "Eaton",
        "ups",
        oids=(E + "534.6",),
        model=(
            obj(E + "534.6.6.7.1.2.1.3.0", "EATON-EPDU-MIB partNumber"),
            obj(E + "534.6.6.6.1.1.12.0", "EATON-EPDU-MA-MIB objectName"),
        ),
        serial=(
            obj(E + "534.6.6.7.1.2.1.4.0", "EATON-EPDU-MIB serialNumber"),
            obj(E + "534.6.6.6.1.1.2.0", "EATON-EPDU-MA-MIB serialNumber"),
        ),
        version=(
            obj(E + "534.6.6.7.1.2.1.5.0", "EATON-EPDU-MIB firmwareVersion"),
            obj(E + "534.6.6.6.1.1.1.0", "EATON-EPDU-MA-MIB firmwareVersion"),
        ),
    ),
    VendorRule(
        "eaton-xups",
        "Eaton",
        "ups",
        oids=(E + "534",),
        model=(obj(E + "534.1.1.2.0", "XUPS-MIB xupsIdentModel"),),
        serial=(
            obj(E + "534.1.1.6.0", "XUPS-MIB xupsIdentSerialNumber"),
            obj(
                "1.3.6.1.2.1.33.1.1.5.0",
                "UPS-MIB upsIdentName (Eaton: 'ID: serial')",
                r"^(?:ID:\s*)?([A-Z0-9]{6,})\b",
            ),
        ),
        version=(obj(E + "534.1.1.3.0", "XUPS-MIB xupsIdentSoftwareVersion"),),
    ),
    VendorRule(
        "netagent",
        "Megatec NetAgent",
        "ups",
        oids=(E + "935",),
        model=(obj(E + "935.10.2.1.1.2.0", "NetAgent upsIdentModel"),),
        serial=(obj(E + "935.10.2.1.1.1.0", "NetAgent upsIdentSerial"),),
        version=(obj(E + "935.10.2.1.1.5.0", "NetAgent upsIdentFirmware"),),
    ),
    VendorRule(
        "socomec",
        "Socomec",
        "ups",
        oids=(E + "4555",),
        model=(
            obj(E + "4555.1.1.7.1.1.1.0", "SOCOMECUPS-MIB upsIdentModel"),
            obj(E + "4555.2.30.1.2.0", "Socomec PDU model"),
        ),
        serial=(
            obj(E + "4555.1.1.7.1.1.2.0", "SOCOMECUPS-MIB upsIdentSerialNumber"),
            obj(E + "4555.2.30.1.3.0", "Socomec PDU serial number"),
        ),
        version=(
            obj(
                E + "4555.1.1.7.1.1.5.0",
                "SOCOMECUPS-MIB upsIdentAgentSoftwareVersion",
                r"v?(\d[\w.]*)$",
            ),
            obj(E + "4555.2.30.1.5.0", "Socomec PDU software version"),
        ),
    ),
    VendorRule("liebert", "Vertiv", "ups", oids=(E + "476",)),
    VendorRule(
        "tripplite-console",
        "Tripp Lite",
        "server",
        descr=r"^TrippLite B09\d",
        model=(dfirst(r"^TrippLite\s+([^,]+)"),),
        version=(dfirst(r"Version\s+(\d[\w.]*)"),),
    ),
    VendorRule("tripplite", "Tripp Lite", "ups", oids=(E + "850",)),
    VendorRule(
        "hpe-pdu",
        "HPE",
        "ups",
        oids=(E + "232.165",),
        model=(obj(E + "232.165.1.2.2.0", "CPQPOWER-MIB pdu model"),),
        serial=(obj(E + "232.165.1.2.7.0", "CPQPOWER-MIB pdu serial number"),),
        version=(obj(E + "232.165.1.2.3.0", "CPQPOWER-MIB pdu firmware version"),),
    ),
    VendorRule(
        "hpe-pdumm",
        "HPE",
        "ups",
        descr=r"^HP PDU Management Module",
        version=(dfirst(r"firmware version\s+(\S+)"),),
    ),
    VendorRule(
        "unifi-power",
        "Ubiquiti",
        "ups",
        descr=r"^USP-RPS\b",
        model=(dfirst(r"^(USP-RPS)\b"),),
        version=(dfirst(r"^USP-\S+\s+(\S+)"),),
    ),
    # -- servers and their management controllers --
    VendorRule(
        "hpe-ilo",
        "HPE",
        "server",
        oids=(E + "232.9",),
        model=(obj(E + "232.2.2.4.2.0", "CPQSINFO-MIB cpqSiProductName"),),
        serial=(obj(E + "232.2.2.2.1.0", "CPQSINFO-MIB cpqSiSysSerialNum"),),
        version=(dfirst(r"Lights-Out\s+\d+\s+(\S+)"),),
    ),
    VendorRule(
        "hpe-ilo",
        "HPE",
        "server",
        descr=r"Integrated Lights-Out",
        model=(obj(E + "232.2.2.4.2.0", "CPQSINFO-MIB cpqSiProductName"),),
        serial=(obj(E + "232.2.2.2.1.0", "CPQSINFO-MIB cpqSiSysSerialNum"),),
        version=(dfirst(r"Lights-Out\s+\d+\s+(\S+)"),),
    ),
    VendorRule("hpe-oa", "HPE", "server", oids=(E + "11.5.7",)),
    VendorRule(
        "idrac",
        "Dell",
        "server",
        oids=(E + "674.10892",),
        model=(
            obj(E + "674.10892.5.1.3.12.0", "IDRAC-MIB systemModelName"),
            obj(E + "674.10892.2.1.1.2.0", "DELL-RAC-MIB drsProductShortName"),
        ),
        serial=(
            obj(E + "674.10892.5.1.3.2.0", "IDRAC-MIB systemServiceTag"),
            obj(E + "674.10892.2.1.1.11.0", "DELL-RAC-MIB drsSystemServiceTag"),
        ),
        version=(
            obj(E + "674.10892.5.1.1.8.0", "IDRAC-MIB racFirmwareVersion"),
            obj(E + "674.10892.2.1.2.1.0", "DELL-RAC-MIB drsFirmwareVersion"),
        ),
    ),
    VendorRule(
        "supermicro-bmc",
        "Supermicro",
        "server",
        oids=(E + "21317",),
        probe=(E + "21317.1.16.3.4.0",),
        model=(obj(E + "21317.1.16.3.4.0", "SUPERMICRO-SMI-MIB system model"),),
        serial=(obj(E + "21317.1.16.3.6.0", "SUPERMICRO-SMI-MIB system serial number"),),
    ),
    VendorRule("lenovo-xcc", "Lenovo", "server", oids=(E + "19046",)),
    VendorRule(
        "vmware-esxi",
        "VMware",
        "server",
        oids=(E + "6876",),
        version=(obj(E + "6876.1.2.0", "VMWARE-SYSTEM-MIB vmwProdVersion"),),
    ),
    VendorRule("windows", "Microsoft", "server", oids=(E + "311",), compose=_windows),
    # -- printers --
    VendorRule(
        "brother",
        "Brother",
        "printer",
        oids=(E + "2435",),
        model=(
            obj(
                E + "2435.2.4.3.2435.5.13.3.0",
                "BROTHER-MIB brInfoModelName",
                r"^(?:Brother\s+)?(.+?)(?:\s+series)?$",
            ),
            obj(
                HR_DEVICE_DESCR_1,
                "HOST-RESOURCES hrDeviceDescr.1",
                r"^(?:Brother\s+)?(.+?)(?:\s+series)?$",
            ),
        ),
        serial=(obj(E + "2435.2.3.9.4.2.1.5.5.1.0", "BROTHER-MIB brInfoSerialNumber"),),
        version=(
            obj(
                E + "2435.2.4.3.1240.6.5.0",
                "BROTHER-MIB firmware version",
                r"^(?:Firmware Ver\.)?\s*(.+)$",
            ),
        ),
    ),
    VendorRule(
        "konica",
        "Konica Minolta",
        "printer",
        oids=(E + "18334",),
        model=(
            obj(E + "18334.1.1.1.1.6.2.1.0", "KONICA-MINOLTA model name"),
            dlast(r"^KONICA MINOLTA\s+(.+)$"),
        ),
        version=(obj(E + "18334.1.1.1.1.6.1.0", "KONICA-MINOLTA firmware version"),),
    ),
    VendorRule(
        "konica",
        "Konica Minolta",
        "printer",
        descr=r"^KONICA MINOLTA",
        model=(
            obj(E + "18334.1.1.1.1.6.2.1.0", "KONICA-MINOLTA model name"),
            dlast(r"^KONICA MINOLTA\s+(.+)$"),
        ),
        version=(obj(E + "18334.1.1.1.1.6.1.0", "KONICA-MINOLTA firmware version"),),
    ),
    VendorRule(
        "ricoh",
        "Ricoh",
        "printer",
        oids=(E + "367",),
        model=(
            dfirst(r"^RICOH\s+(.+?)\s+\d[\w.]*\s*(?:/|$)"),
            obj(HR_DEVICE_DESCR_1, "HOST-RESOURCES hrDeviceDescr.1", r"^(?:RICOH\s+)?(.+)$"),
        ),
        serial=(obj(E + "367.3.2.1.2.1.4.0", "RICOH-PRIVATE-MIB ricohSysSerialNumber"),),
        version=(
            dfirst(r"^RICOH\s+.+?\s+(\d[\w.]*)\s*(?:/|$)"),
            obj(E + "367.3.2.1.1.1.2.0", "RICOH-PRIVATE-MIB ricohSysVersion"),
        ),
    ),
    VendorRule(
        "ricoh",
        "Ricoh",
        "printer",
        descr=r"^RICOH",
        model=(dfirst(r"^RICOH\s+(.+?)\s+\d[\w.]*\s*(?:/|$)"),),
        serial=(obj(E + "367.3.2.1.2.1.4.0", "RICOH-PRIVATE-MIB ricohSysSerialNumber"),),
        version=(dfirst(r"^RICOH\s+.+?\s+(\d[\w.]*)\s*(?:/|$)"),),
    ),
    VendorRule(
        "epson",
        "Epson",
        "printer",
        oids=(E + "1248",),
        model=(obj(HR_DEVICE_DESCR_1, "HOST-RESOURCES hrDeviceDescr.1", r"^(?:EPSON\s+)?(.+)$"),),
        serial=(obj(E + "1248.1.1.3.1.1.1.0", "EPSON scan server serial number"),),
        version=(col(E + "1248.1.1.3.1.21.1.1.2", "EPSON scan server firmware version"),),
        kind_if=((r"projector", "media"),),
    ),
    VendorRule(
        "epson",
        "Epson",
        "printer",
        descr=r"^EPSON",
        model=(obj(HR_DEVICE_DESCR_1, "HOST-RESOURCES hrDeviceDescr.1", r"^(?:EPSON\s+)?(.+)$"),),
        kind_if=((r"projector", "media"),),
    ),
    VendorRule(
        "hp-printer",
        "HP",
        "printer",
        oids=(E + "11.2.3.9",),
        model=(
            obj(HR_DEVICE_DESCR_1, "HOST-RESOURCES hrDeviceDescr.1", r"^(?:HP\s+)?(.+)$"),
            obj(
                E + "11.2.3.9.1.1.7.0",
                "JETDIRECT gdStatusId (IEEE 1284 device id)",
                r"MDL:(?:HP\s+)?([^;]+)",
            ),
        ),
        version=(obj(E + "11.2.3.9.4.2.1.1.3.5.0", "HP-LASERJET-COMMON-MIB firmware date"),),
    ),
    VendorRule(
        "canon",
        "Canon",
        "printer",
        oids=(E + "1602",),
        model=(obj(E + "1602.1.1.1.1.0", "CANON-MIB model name"),),
        version=(obj(E + "1602.1.1.1.4.0", "CANON-MIB firmware version"),),
    ),
    VendorRule(
        "fujifilm-xerox",
        "Fujifilm",
        "printer",
        oids=(E + "297", E + "253"),
        model=(dlast(r"^(?:FUJI(?:FILM)?\s+)?(?:XEROX\s+)?(.+?)(?:;|$)"),),
    ),
    VendorRule(
        "sharp",
        "Sharp",
        "printer",
        oids=(E + "2385",),
        version=(obj(E + "2385.2.1.1.2.1.2.1", "SHARP-MIB firmware version"),),
    ),
    VendorRule(
        "zebra",
        "Zebra",
        "printer",
        oids=(E + "683", E + "10642"),
        model=(obj(E + "683.1.4.0", "ESI-MIB model"),),
        serial=(obj(E + "683.1.5.0", "ESI-MIB serial number"),),
        version=(
            obj(E + "683.1.9.0", "ESI-MIB firmware version"),
            obj(E + "10642.1.2.0", "ZEBRA-MIB firmware version"),
        ),
    ),
    VendorRule("kyocera", "Kyocera", "printer", oids=(E + "1347",)),
    VendorRule("lexmark", "Lexmark", "printer", oids=(E + "641",)),
    VendorRule("oki", "OKI", "printer", oids=(E + "2001",)),
    # -- cameras, phones, room equipment --
    VendorRule(
        "axis",
        "Axis",
        "camera",
        oids=(E + "368",),
        model=(dfirst(r"^[\s;]*([^;]+?)\s*;"),),
        serial=(col(IF_PHYS_ADDRESS, "IF-MIB ifPhysAddress (an Axis serial is its MAC)"),),
        version=(dfirst(r"^[\s;]*[^;]+;[^;]+;\s*([^;]+?)\s*;"),),
    ),
    VendorRule(
        "axis",
        "Axis",
        "camera",
        descr=r";\s*AXIS ",
        model=(dfirst(r"^[\s;]*([^;]+?)\s*;"),),
        serial=(col(IF_PHYS_ADDRESS, "IF-MIB ifPhysAddress (an Axis serial is its MAC)"),),
        version=(dfirst(r"^[\s;]*[^;]+;[^;]+;\s*([^;]+?)\s*;"),),
    ),
    VendorRule(
        "dahua",
        "Dahua",
        "camera",
        oids=(E + "1004849",),
        model=(obj(E + "1004849.2.1.2.6.0", "DAHUA-SNMP-MIB deviceType"),),
        serial=(obj(E + "1004849.2.1.2.4.0", "DAHUA-SNMP-MIB serialNumber"),),
        version=(obj(E + "1004849.2.1.1.1.0", "DAHUA-SNMP-MIB softwareRevision"),),
    ),
    VendorRule(
        "hikvision",
        "Hikvision",
        "camera",
        oids=(E + "39165", E + "50001"),
        probe=(E + "39165.1.1.0",),
        model=(obj(E + "39165.1.1.0", "HIK-DEVICE-MIB deviceType"),),
        serial=(obj(E + "50001.1.3.0", "HIKVISION-MIB serial number"),),
        version=(obj(E + "39165.1.3.0", "HIK-DEVICE-MIB softwVersion"),),
    ),
    VendorRule(
        "polycom",
        "Poly",
        "phone",
        oids=(E + "2684", E + "13885"),
        model=(obj(E + "13885.101.1.1.4.0", "POLYCOM-VIDEO-MIB model"),),
        serial=(obj(E + "13885.101.1.1.5.0", "POLYCOM-VIDEO-MIB serial number"),),
        version=(obj(E + "13885.101.1.1.1.0", "POLYCOM-VIDEO-MIB software version"),),
    ),
    VendorRule(
        "grandstream-switch",
        "Grandstream",
        "switch",
        oids=(E + "42397",),
        descr=r"^GWN78",
    ),
    VendorRule(
        "grandstream",
        "Grandstream",
        "phone",
        oids=(E + "42397",),
        probe=(E + "42397.1.1.1.0.0", E + "42397.1.2.1.0.0"),
        serial=(
            obj(E + "42397.1.1.1.0.0", "GRANDSTREAM-GXW-MIB serial number"),
            obj(E + "42397.1.2.1.0.0", "GRANDSTREAM-HT-MIB serial number"),
        ),
        version=(
            obj(E + "42397.1.1.3.2.0.0", "GRANDSTREAM-GXW-MIB core version", fmt="Core: {}"),
            obj(E + "42397.1.2.3.2.0.0", "GRANDSTREAM-HT-MIB core version", fmt="Core: {}"),
        ),
    ),
    # -- wireless --
    VendorRule(
        "aruba-instant",
        "Aruba",
        "ap",
        oids=(E + "14823.1.2",),
        model=(dfirst(r"MODEL:\s*([^)]+)\)"),),
        serial=(col(E + "14823.2.3.3.1.2.1.1.4", "AI-AP-MIB aiAPSerialNum"),),
        version=(dfirst(r"Version\s+(\S+)"),),
    ),
    VendorRule(
        "arubaos",
        "Aruba",
        "ap",  # mobility controllers: they run the access points
        descr=r"^(ArubaOS|AOS-W) \(MODEL:",
        model=(dfirst(r"MODEL:\s*([^)]+)\)"),),
        serial=(obj(E + "14823.2.2.1.1.1.12.0", "WLSX-SWITCH-MIB wlsxSwitchLicenseSerialNumber"),),
        version=(dfirst(r"Version\s+([^\s(]+)"),),
    ),
    VendorRule(
        "ruckus",
        "Ruckus",
        "ap",
        oids=(E + "25053",),
        model=(
            obj(E + "25053.1.2.1.1.1.1.9.0", "RUCKUS-ZD-SYSTEM-MIB ruckusZDSystemModel"),
            obj(E + "25053.1.15.1.1.1.1.9.0", "RUCKUS-UNLEASHED-SYSTEM-MIB model"),
            obj(E + "25053.1.1.2.1.1.1.1.0", "RUCKUS-HWINFO-MIB ruckusHwInfoModelNumber"),
            col(E + "25053.1.8.1.1.1.1.1.1.3", "RUCKUS-SZ-SYSTEM-MIB cluster node model"),
        ),
        serial=(
            obj(E + "25053.1.2.1.1.1.1.15.0", "RUCKUS-ZD-SYSTEM-MIB ruckusZDSystemSerialNumber"),
            obj(E + "25053.1.15.1.1.1.1.15.0", "RUCKUS-UNLEASHED-SYSTEM-MIB serial number"),
            obj(E + "25053.1.1.2.1.1.1.2.0", "RUCKUS-HWINFO-MIB ruckusHwInfoSerialNumber"),
            obj(E + "25053.1.4.1.1.1.15.13.0", "RUCKUS-SZ-SYSTEM-MIB serial number"),
        ),
        version=(
            obj(E + "25053.1.2.1.1.1.1.18.0", "RUCKUS-ZD-SYSTEM-MIB ruckusZDSystemVersion"),
            obj(E + "25053.1.15.1.1.1.1.18.0", "RUCKUS-UNLEASHED-SYSTEM-MIB version"),
            col(E + "25053.1.1.3.1.1.1.1.1.3", "RUCKUS-SWINFO-MIB ruckusSwRevName"),
            col(E + "25053.1.8.1.1.1.1.1.1.9", "RUCKUS-SZ-SYSTEM-MIB cluster node version"),
        ),
    ),
    VendorRule(
        "meraki",
        "Cisco Meraki",
        "ap",
        oids=(E + "29671",),
        model=(dlast(r"^=?(Meraki\s+.+)$"),),
        kind_if=((r"Meraki MS", "switch"), (r"Meraki (MX|Z\d)", "router")),
    ),
    VendorRule(
        "meraki",
        "Cisco Meraki",
        "ap",
        descr=r"^=?Meraki ",
        model=(dlast(r"^=?(Meraki\s+.+)$"),),
        kind_if=((r"Meraki MS", "switch"), (r"Meraki (MX|Z\d)", "router")),
    ),
    VendorRule(
        "hp-msm",
        "HPE",
        "ap",
        oids=(E + "8744",),
        model=(dfirst(r"^(\S+)\s+-\s+Hardware"),),
        serial=(dfirst(r"Serial number\s+(\S+)"),),
        version=(dfirst(r"Firmware version\s+(\S+)"),),
    ),
    VendorRule(
        "dlink-ap",
        "D-Link",
        "ap",
        oids=(E + "171.10.37",),
        model=(dfirst(r"^(D-Link\s+\S+)"),),
    ),
    VendorRule(
        "unifi",
        "Ubiquiti",
        "ap",
        descr=r"^UAP-",
        probe=(E + "41112.1.6.3.3.0",),
        model=(
            obj(E + "41112.1.6.3.3.0", "UBNT-UniFi-MIB unifiApSystemModel"),
            dlast(r"^(U\S+)\s"),
        ),
        version=(
            obj(E + "41112.1.6.3.6.0", "UBNT-UniFi-MIB unifiApSystemVersion"),
            dlast(r"^U\S+\s+(\S+)"),
        ),
    ),
    # -- Ubiquiti: EdgeMAX routers, switches, then airOS radios (narrow before broad) --
    VendorRule(
        "edgemax",
        "Ubiquiti",
        "router",
        descr=r"^(EdgeOS|EdgeRouter|UISP Fiber|UFiber)",
        model=(
            obj(_UBNT + ".5.1.1.0", "UBNT-EdgeMAX-MIB model"),
            dlast(r"^(EdgeRouter.*)$"),
            dlast(r"^(UISP Fiber[^,]*)"),
        ),
        serial=(obj(_UBNT + ".5.1.2.0", "UBNT-EdgeMAX-MIB serial number"),),
        version=(
            obj(_UBNT + ".5.1.3.0", "UBNT-EdgeMAX-MIB firmware version"),
            dfirst(r"^EdgeOS v(\d+\.\d+\.\d+)"),
        ),
    ),
    VendorRule(
        "edgemax",
        "Ubiquiti",
        "router",
        oids=(_UBNT + ".5",),
        model=(obj(_UBNT + ".5.1.1.0", "UBNT-EdgeMAX-MIB model"), dlast(r"^(EdgeRouter.*)$")),
        serial=(obj(_UBNT + ".5.1.2.0", "UBNT-EdgeMAX-MIB serial number"),),
        version=(
            obj(_UBNT + ".5.1.3.0", "UBNT-EdgeMAX-MIB firmware version"),
            dfirst(r"^EdgeOS v(\d+\.\d+\.\d+)"),
        ),
    ),
    VendorRule(
        "edgeswitch",
        "Ubiquiti",
        "switch",
        descr=r"^(EdgeSwitch|USW|US-\d|US-XG|USL?-)",
        model=(dfirst(r"^([^,]+?),\s"), dfirst(r"^(\S+)\s+\d+\.\d+")),
        version=(
            dfirst(r",\s*(?:firmware\s+)?(\d+\.\d+\.\d+(?:\.\d+)?)"),
            dfirst(r"^\S+\s+(\d+\.\d+\.\d+\.\d+)"),
        ),
    ),
    VendorRule(
        "fastpath",
        "Broadcom FASTPATH",
        "switch",
        oids=(E + "4413",),
        model=(dfirst(r"^([^,]+?),\s"),),
        version=(dfirst(r",\s*(\d+\.\d+\.\d+(?:\.\d+)?)"),),
    ),
    VendorRule(
        "airos",
        "Ubiquiti",
        "ap",
        oids=(E + "10002.1", E + "41112"),
        probe=(_UBNT + ".10.1.3.2.0", _UBNT + ".5.1.1.0"),
        model=(
            obj(_UBNT + ".10.1.3.2.0", "UBNT-AFLTU-MIB afLTUDevModel"),
            col(_UBNT + ".11.1.2.2", "UBNT-AF60-MIB af60DevModel"),
            obj(_UBNT + ".5.1.1.0", "UBNT-EdgeMAX-MIB model"),
            col(f"{DOT11}.3.1.2.1.3", "IEEE802dot11-MIB dot11manufacturerProductName"),
        ),
        version=(
            obj(_UBNT + ".10.1.3.4.0", "UBNT-AFLTU-MIB afLTUFirmwareVersion"),
            col(
                _UBNT + ".11.1.2.4",
                "UBNT-AF60-MIB af60FirmwareVersion",
                r"\.(v\d+\.\d+\.\d+(?:-[A-Za-z0-9]+)?)",
            ),
            obj(_UBNT + ".5.1.3.0", "UBNT-EdgeMAX-MIB firmware version"),
            col(_UBNT + ".3.2.1.40", "UBNT-AirFIBER-MIB firmware version"),
            col(
                f"{DOT11}.3.1.2.1.4",
                "IEEE802dot11-MIB dot11manufacturerProductVersion",
                r"\.v(\d[\w.]*)$",
            ),
        ),
        kind_if=((r"^EP-\d", "ups"),),  # EdgePower: a DC power supply
    ),
    # -- switches --
    VendorRule(
        "ciscosb",
        "Cisco",
        "switch",
        oids=(E + "9.6.1",),
        probe=(E + "9.6.1.101.53.14.1.7.1",),
        model=(dlast(r"^(\S+)\s+\d+-Port"),),
        serial=(
            obj(
                E + "9.6.1.101.53.14.1.5.1",
                "CISCOSB-Physicaldescription-MIB rlPhdUnitGenParamSerialNum",
            ),
        ),
        version=(
            obj(
                E + "9.6.1.101.53.14.1.2.1",
                "CISCOSB-Physicaldescription-MIB rlPhdUnitGenParamSoftwareVersion",
            ),
        ),
        compose=_cisco_sb,
        extra_oids=(E + "9.6.1.101.53.14.1.7.1", E + "9.6.1.101.53.14.1.4.1"),
    ),
    VendorRule(
        "procurve",
        "HPE",
        "switch",
        oids=(E + "11.2.3.7",),
        model=(
            dfirst(
                r"^(?:HPE?|ProCurve|PROCURVE|Aruba)\s+(?:OfficeConnect\s+)?(?:Switch\s+)?"
                r"(.+?)\s*(?:,| - )",
                drop=(r"\bSwitch\s+",),
            ),
            dlast(r"^(\S+)\s+L2/L3"),
        ),
        version=(dfirst(r"(?:revision\s+|, | - )([A-Z]{1,2}\.\d+\.\d+(?:\.\d+)?)"),),
    ),
    VendorRule(
        "arubaos-cx",
        "HPE Aruba",
        "switch",
        oids=(E + "47196",),
        model=(
            obj(_ENT_DESCR_1, "ENTITY-MIB entPhysicalDescr.1"),
            dfirst(r"^Aruba\s+\S+\s+(.+?)\s+Swch\b"),
        ),
        version=(dlast(r"\b([A-Z]{2}\.\d{2}\.\d{2}\.\d{4})\b"),),
    ),
    VendorRule(
        "tplink",
        "TP-Link",
        "switch",
        oids=(E + "11863",),
        model=(obj("1.3.6.1.2.1.16.19.3.0", "RMON-MIB probeHardwareRev (TP-Link: model)"),),
        version=(obj("1.3.6.1.2.1.16.19.2.0", "RMON-MIB probeSoftwareRev (TP-Link: firmware)"),),
    ),
    VendorRule(
        "dlink",
        "D-Link",
        "switch",
        oids=(E + "171",),
        model=(dfirst(r"^(?:D-Link\s+)?(\S+)"),),
        serial=(
            obj(E + "171.12.1.1.12.0", "DLINK-AGENT-MIB agentSerialNumber"),
            col(E + "171.12.11.1.9.4.1.17", "DLINK-EQUIPMENT-MIB serial number"),
        ),
        version=(
            obj("1.3.6.1.2.1.16.19.2.0", "RMON-MIB probeSoftwareRev (D-Link: firmware)"),
            dfirst(r"^\S+\s+(\d+\.\d+\.\d+)$"),
        ),
    ),
    VendorRule(
        "netgear",
        "Netgear",
        "switch",
        oids=(E + "4526",),
        model=(dfirst(r"^(\S+)\s"),),
        version=(dfirst(r",\s*(\d+\.\d+\.\d+\.\d+)"),),
    ),
    # -- routers and firewalls --
    VendorRule(
        "draytek",
        "DrayTek",
        "router",
        oids=(E + "7367",),
        model=(dfirst(r"Model:\s*([^,]+)"), obj(E + "7367.3.1.0", "DRAYTEK-MIB model")),
        version=(dfirst(r"Version:\s*([^,]+)"),),
    ),
    VendorRule(
        "draytek",
        "DrayTek",
        "router",
        descr=r"^DrayTek",
        model=(dfirst(r"Model:\s*([^,]+)"),),
        version=(dfirst(r"Version:\s*([^,]+)"),),
    ),
    VendorRule(
        "pfsense",
        "Netgate",
        "router",
        descr=r"^pfSense\s",
        model=(dfirst(r"\s(\S+)$"),),
        version=(dfirst(r"\s(\d+\.\d+(?:\.\d+)?-RELEASE\S*)"),),
    ),
    VendorRule(
        "opnsense",
        "Deciso",
        "router",
        descr=r"^OPNsense|-HBSD\b",
        model=(
            obj(
                _NS_EXTEND_OUTPUT_VERSION,
                "NET-SNMP-EXTEND-MIB nsExtendOutput1Line.version",
                r"\(([^)]+)\)",
            ),
            dfirst(r"\b(amd64|i386|arm64|aarch64)$"),
        ),
        version=(
            obj(
                _NS_EXTEND_OUTPUT_VERSION,
                "NET-SNMP-EXTEND-MIB nsExtendOutput1Line.version",
                r"OPNsense\s+(\S+)",
            ),
            dfirst(r"^OPNsense\s+\S+\s+(\S+)"),
            dfirst(r"^FreeBSD\s+\S+\s+(\S+-HBSD)"),
        ),
    ),
    VendorRule(
        "fortigate",
        "Fortinet",
        "router",
        oids=(E + "12356",),
        serial=(obj(E + "12356.100.1.1.1.0", "FORTINET-CORE-MIB fnSysSerial"),),
        version=(obj(E + "12356.101.4.1.1.0", "FORTINET-FORTIGATE-MIB fgSysVersion"),),
    ),
    VendorRule(
        "sonicwall",
        "SonicWall",
        "router",
        oids=(E + "8741",),
        model=(
            obj(E + "8741.2.1.1.1.0", "SONICWALL-FIREWALL-IP-STATISTICS-MIB snwlSysModel"),
            dlast(r"^SonicW[Aa][Ll][Ll]\s+(.+?)\s+\("),
        ),
        serial=(obj(E + "8741.2.1.1.2.0", "SNWL-COMMON-MIB snwlSysSerialNumber"),),
        version=(
            obj(E + "8741.2.1.1.3.0", "SNWL-COMMON-MIB snwlSysFirmwareVersion"),
            dlast(r"\((?:SonicOS\s+\w+\s+)?([\d.]+-\w+)\)"),
        ),
    ),
    VendorRule("watchguard", "WatchGuard", "router", oids=(E + "3097",)),
    VendorRule("sophos", "Sophos", "router", oids=(E + "2604", E + "21067")),
    VendorRule(
        "zyxel-zld",
        "Zyxel",
        "router",
        oids=(E + "890.1.15",),
        model=(
            obj(E + "890.1.15.3.1.11.0", "ZYXEL-ES-COMMON sysProductModel"),
            dlast(r"^(ZyWALL \S+)"),
            dlast(r"^([A-Z]{2,}\d+\S*)$"),
        ),
        serial=(obj(E + "890.1.15.3.1.12.0", "ZYXEL-ES-COMMON sysSerialNumber"),),
        version=(obj(E + "890.1.15.3.1.6.0", "ZYXEL-ES-COMMON sysSwVersionString"),),
        kind_if=((r"^(NXC|NWA|WAC|WAX)", "ap"), (r"^(GS|XGS|XS)\d", "switch")),
    ),
    VendorRule(
        "zyxel",
        "Zyxel",
        "router",
        oids=(E + "890",),
        model=(obj(E + "890.1.2.1.1.2.0", "ZYXEL-PROWLAN/IAD model name"),),
        serial=(obj(E + "890.1.2.1.1.10.0", "ZYXEL-PROWLAN/IAD serial number"),),
        version=(obj(E + "890.1.2.1.1.1.0", "ZYXEL-PROWLAN/IAD firmware version"),),
        kind_if=((r"^(NWA|WAC|WAX)", "ap"), (r"^(GS|XGS|XS)\d", "switch")),
    ),
    VendorRule(
        "mikrotik",
        "MikroTik",
        "router",
        oids=(E + "14988",),
        model=(dfirst(r"^RouterOS\s+(\S+)"),),
        serial=(obj(E + "14988.1.1.7.3.0", "MIKROTIK-MIB mtxrSerialNumber"),),
        version=(
            obj(E + "14988.1.1.4.4.0", "MIKROTIK-MIB mtxrLicVersion (RouterOS version)"),
            obj(E + "14988.1.1.7.4.0", "MIKROTIK-MIB mtxrFirmwareVersion"),
        ),
    ),
    VendorRule(
        "mikrotik",
        "MikroTik",
        "router",
        descr=r"^RouterOS",
        model=(dfirst(r"^RouterOS\s+(\S+)"),),
        serial=(obj(E + "14988.1.1.7.3.0", "MIKROTIK-MIB mtxrSerialNumber"),),
        version=(obj(E + "14988.1.1.4.4.0", "MIKROTIK-MIB mtxrLicVersion (RouterOS version)"),),
    ),
    # -- NAS; Linux-based appliances are recognised by probing their MIB --
    VendorRule(
        "truenas",
        "iXsystems",
        "nas",
        descr=r"^(TrueNAS|FreeNAS)-",
        model=(dfirst(r"Hardware:\s*(.+?)\.\s*Software:"),),
        version=(dfirst(r"(?:TrueNAS|FreeNAS)-(\S+)"),),
    ),
    VendorRule(
        "dsm",
        "Synology",
        "nas",
        oids=(E + "6574",),
        probe=(E + "6574.1.5.1.0", E + "6574.1.1.0"),
        model=(obj(E + "6574.1.5.1.0", "SYNOLOGY-SYSTEM-MIB modelName"),),
        serial=(obj(E + "6574.1.5.2.0", "SYNOLOGY-SYSTEM-MIB serialNumber"),),
        version=(obj(E + "6574.1.5.3.0", "SYNOLOGY-SYSTEM-MIB version", r"^(?:DSM\s+)?(.+)$"),),
    ),
    VendorRule(
        "qnap",
        "QNAP",
        "nas",
        oids=(E + "24681", E + "55062"),
        probe=(E + "24681.1.2.12.0", E + "55062.1.12.3.0", E + "55062.2.12.3.0"),
        model=(
            obj(E + "55062.1.12.3.0", "QTS-MIB systemModel (QTS)"),
            obj(E + "55062.2.12.3.0", "QUTSHERO-MIB systemModel (QuTS hero)"),
            obj(E + "24681.1.2.12.0", "NAS-MIB modelName (older QTS)"),
        ),
        serial=(
            obj(E + "55062.1.12.5.0", "QTS-MIB serialNumber"),
            obj(E + "55062.2.12.5.0", "QUTSHERO-MIB serialNumber"),
        ),
        version=(
            obj(E + "55062.1.12.6.0", "QTS-MIB firmwareVersion"),
            obj(E + "55062.2.12.6.0", "QUTSHERO-MIB firmwareVersion"),
            # Older QTS: only sysDescr "Linux TS-459 4.2.6.20240618" carries the firmware.
            dlast(r"^Linux\s+\S+\s+(h?\d+\.\d+\.\d+(?:\.\d+)?)$"),
        ),
    ),
    VendorRule("linux", "", "server", descr=r"^Linux\s", compose=_linux, weight=W_GENERIC_OS),
)


@dataclass(frozen=True)
class ServerHardware:
    """A hardware maker's agent running on a general-purpose OS (Windows, Linux, ESXi): it
    names the machine the OS row can only describe by its CPU ("Intel x64")."""

    vendor: str
    model: Source
    serial: Source
    model_fmt: str = "{}"


#: Asked (one GET) of hosts whose row is an operating system, not a machine.
SERVER_HARDWARE: Final[tuple[ServerHardware, ...]] = (
    ServerHardware(
        "Dell",
        obj(E + "674.10892.1.300.10.1.9.1", "MIB-Dell-10892 chassisModelName (OpenManage)"),
        obj(E + "674.10892.1.300.10.1.11.1", "MIB-Dell-10892 chassisServiceTagName (OpenManage)"),
        model_fmt="Dell {}",
    ),
    ServerHardware(
        "HPE",
        obj(E + "232.2.2.4.2.0", "CPQSINFO-MIB cpqSiProductName (Insight agents)"),
        obj(E + "232.2.2.2.1.0", "CPQSINFO-MIB cpqSiSysSerialNum (Insight agents)"),
    ),
)
#: Rows that name an operating system: SERVER_HARDWARE is asked for the machine under it.
OS_ROWS: Final = frozenset({"windows", "linux", "vmware-esxi"})


def match_rule(sys_object_id: str, sys_descr: str) -> VendorRule | None:
    """The first row whose sysObjectID prefix or sysDescr pattern matches, else None."""
    for rule in RULES:
        if rule.matches(sys_object_id, sys_descr):
            return rule
    return None


def probe_oids() -> tuple[str, ...]:
    """Every probe OID (one GET for a device with a generic sysObjectID)."""
    return tuple(dict.fromkeys(p for rule in RULES for p in rule.probe))


def rule_probed(answered: set[str]) -> VendorRule | None:
    """The first row one of whose probe OIDs answered."""
    for rule in RULES:
        if any(p in answered for p in rule.probe):
            return rule
    return None
