"""Where a device's identity can be read: the shapes of the vendor table and the standard MIBs.

Two kinds of source, ranked when an identity is put together (snmp_identity.read_identity):

1. the vendor's own MIB objects named by its row of the vendor table (vendor_table.py), when
   they answer: the most specific place;
2. the standard MIBs any device may have, in this order: ENTITY-MIB's chassis entity
   (RFC 6933 entPhysicalTable: model name, serial, software/firmware revision, manufacturer),
   Printer-MIB (RFC 3805 prtGeneralSerialNumber) with HOST-RESOURCES hrDeviceDescr of the
   printer (RFC 2790), UPS-MIB upsIdent (RFC 1628);
3. sysDescr patterns of the vendor row, last.

The class evidence comes from the same reads: a vendor row (sysObjectID / vendor MIB), the
Printer-MIB, the UPS-MIB, the IEEE 802.11 MIB (a radio), BRIDGE-MIB ports (RFC 4188; many
ports make a switch whatever the sysObjectID), sysDescr words. Each comes with a weight
(how far that source can be trusted for that conclusion) so the classifier can weigh them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from services.snmp.values import SnmpValue

Values = Mapping[str, SnmpValue]

SYS_DESCR: Final = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID: Final = "1.3.6.1.2.1.1.2.0"

# ---- standard MIB objects (RFC named in each comment) ----
ENT_PHYSICAL: Final = "1.3.6.1.2.1.47.1.1.1.1"  # ENTITY-MIB entPhysicalEntry (RFC 6933)
ENT_COLUMNS: Final[dict[str, int]] = {
    "descr": 2,  # entPhysicalDescr
    "contained_in": 4,  # entPhysicalContainedIn (0: top of the containment tree)
    "class": 5,  # entPhysicalClass
    "hw": 8,  # entPhysicalHardwareRev
    "fw": 9,  # entPhysicalFirmwareRev
    "sw": 10,  # entPhysicalSoftwareRev
    "serial": 11,  # entPhysicalSerialNum
    "mfg": 12,  # entPhysicalMfgName
    "model": 13,  # entPhysicalModelName
}
ENT_CLASS: Final = f"{ENT_PHYSICAL}.5"
ENT_CLASS_CHASSIS: Final = 3
PRT_GENERAL: Final = "1.3.6.1.2.1.43.5.1.1"  # Printer-MIB prtGeneralEntry (RFC 3805)
PRT_SERIAL_1: Final = "1.3.6.1.2.1.43.5.1.1.17.1"  # prtGeneralSerialNumber.1
HR_DEVICE_TYPE_1: Final = "1.3.6.1.2.1.25.3.2.1.2.1"  # HOST-RESOURCES hrDeviceType.1 (RFC 2790)
HR_DEVICE_DESCR_1: Final = "1.3.6.1.2.1.25.3.2.1.3.1"  # hrDeviceDescr.1
HR_DEVICE_PRINTER: Final = "1.3.6.1.2.1.25.3.1.5"  # hrDevicePrinter
UPS_IDENT_MANUFACTURER: Final = "1.3.6.1.2.1.33.1.1.1.0"  # UPS-MIB upsIdentManufacturer
UPS_IDENT_MODEL: Final = "1.3.6.1.2.1.33.1.1.2.0"  # upsIdentModel
UPS_IDENT_UPS_SW: Final = "1.3.6.1.2.1.33.1.1.3.0"  # upsIdentUPSSoftwareVersion
UPS_IDENT_AGENT_SW: Final = "1.3.6.1.2.1.33.1.1.4.0"  # upsIdentAgentSoftwareVersion
BRIDGE_NUM_PORTS: Final = "1.3.6.1.2.1.17.1.2.0"  # BRIDGE-MIB dot1dBaseNumPorts (RFC 4188)
BRIDGE_PORT_IFINDEX: Final = "1.3.6.1.2.1.17.1.4.1.2"  # dot1dBasePortIfIndex (one row a port)
DOT11: Final = "1.2.840.10036"  # IEEE 802.11 MIB: only radios implement it
IF_PHYS_ADDRESS: Final = "1.3.6.1.2.1.2.2.1.6"

#: Bridge ports that make a device a switch by themselves: a Linux host or an access point
#: bridges 2-4 interfaces (LAN, Wi-Fi radios, VPN); a switch has 5 front ports or more.
SWITCH_MIN_BRIDGE_PORTS: Final = 5

# Weights of class evidence (see classify.py for the other sources).
W_VENDOR_ROW: Final = 0.9  # a vendor row matched sysObjectID / its MIB answered
W_GENERIC_OS: Final = 0.5  # a general-purpose OS (Linux, FreeBSD): could be any appliance
W_PRINTER_MIB: Final = 0.9  # answers the Printer-MIB
W_HR_PRINTER: Final = 0.3  # lists a printer as its first hrDevice (a print server may too)
W_UPS_MIB: Final = 0.8  # answers the UPS-MIB (a server running a UPS daemon may too)
W_DOT11: Final = 0.7  # answers the IEEE 802.11 MIB: has a radio it manages
W_BRIDGE: Final = 0.7  # five bridge ports or more
W_DESCR_WORD: Final = 0.6  # a word in sysDescr


@dataclass(frozen=True)
class Source:
    """One place a field may be read.

    ``oid``: an object to GET (a scalar ``...0`` or a fixed row); "" means sysDescr read as a
    *pattern* (ranked last). ``column``: a table column whose first non-empty cell is the
    value (one short walk). ``pattern``: a regex applied to the value, group 1 kept (the
    whole match without a group). ``meaning``: the MIB object's name, shown as evidence.
    ``drop``: regexes removed from the kept text (case-insensitive: "\\bSwitch\\s+").
    ``fmt``: the kept text placed in a format ("Core: {}").
    """

    oid: str = ""
    meaning: str = ""
    pattern: str = ""
    column: str = ""
    drop: tuple[str, ...] = ()
    fmt: str = "{}"

    @property
    def is_descr_pattern(self) -> bool:
        return not self.oid and not self.column


def obj(
    oid: str, meaning: str, pattern: str = "", drop: tuple[str, ...] = (), fmt: str = "{}"
) -> Source:
    """A vendor MIB object (or a fixed standard one) that holds the field."""
    return Source(oid=oid, meaning=meaning, pattern=pattern, drop=drop, fmt=fmt)


def col(column: str, meaning: str, pattern: str = "") -> Source:
    """The first non-empty cell of a table column."""
    return Source(column=column, meaning=meaning, pattern=pattern)


def dlast(pattern: str, drop: tuple[str, ...] = (), fmt: str = "{}") -> Source:
    """A sysDescr pattern: ranked after every MIB object, vendor or standard."""
    return Source(pattern=pattern, meaning="sysDescr", drop=drop, fmt=fmt)


def dfirst(pattern: str, drop: tuple[str, ...] = (), fmt: str = "{}") -> Source:
    """sysDescr as the vendor's documented place (ranked with the vendor's own objects)."""
    return Source(oid=SYS_DESCR, meaning="sysDescr", pattern=pattern, drop=drop, fmt=fmt)


@dataclass(frozen=True)
class Found:
    model: str = ""
    serial: str = ""
    version: str = ""


@dataclass(frozen=True)
class VendorRule:
    """One family of devices: how to recognise it and where it keeps model/serial/version.

    Recognised by ``oids`` (sysObjectID prefixes) and/or ``descr`` (a sysDescr regex); when
    both are given both must hold. A family whose sysObjectID is net-snmp's generic one is
    recognised by ``probe``: OIDs of its own MIB that answers. ``model``, ``serial`` and
    ``version`` list the sources of each field, best first. ``compose`` is for the few
    families whose fields are built from several objects (Windows build numbers, APC's
    two firmware images); it gets every value read and returns what it found.
    """

    name: str  # platform name, e.g. "dsm"
    vendor: str
    kind: str
    oids: tuple[str, ...] = ()
    descr: str = ""
    probe: tuple[str, ...] = ()
    model: tuple[Source, ...] = ()
    serial: tuple[Source, ...] = ()
    version: tuple[Source, ...] = ()
    compose: Callable[[Values], Found] | None = None
    weight: float = W_VENDOR_ROW
    # Extra OIDs ``compose`` reads besides those of the sources.
    extra_oids: tuple[str, ...] = ()
    # A sysDescr pattern that, when it matches, points to another kind (Epson projectors).
    kind_if: tuple[tuple[str, str], ...] = ()

    def matches(self, sys_object_id: str, sys_descr: str) -> bool:
        by_oid = any(sys_object_id == p or sys_object_id.startswith(p + ".") for p in self.oids)
        by_descr = bool(self.descr) and bool(re.search(self.descr, sys_descr, re.IGNORECASE))
        if self.oids and self.descr:
            return by_oid and by_descr
        return by_oid or by_descr

    def kind_for(self, sys_descr: str, model: str) -> str:
        for pattern, kind in self.kind_if:
            if any(re.search(pattern, text, re.IGNORECASE) for text in (sys_descr, model)):
                return kind
        return self.kind

    def sources(self) -> tuple[Source, ...]:
        return self.model + self.serial + self.version

    def get_oids(self) -> tuple[str, ...]:
        """Every scalar this row reads: one GET."""
        oids = [s.oid for s in self.sources() if s.oid and s.oid != SYS_DESCR]
        return tuple(dict.fromkeys([*oids, *self.extra_oids]))

    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.column for s in self.sources() if s.column))


@dataclass(frozen=True)
class KindHint:
    """One piece of SNMP class evidence: the kind, how much it weighs, and why."""

    kind: str
    weight: float
    why: str


@dataclass(frozen=True)
class Chassis:
    """The chassis row of entPhysicalTable (RFC 6933); empty strings when not given."""

    index: str = ""
    descr: str = ""
    model: str = ""
    serial: str = ""
    hw: str = ""
    fw: str = ""
    sw: str = ""
    mfg: str = ""


@dataclass(frozen=True)
class Standard:
    """What the standard MIBs said; ``printer``/``ups``/``radio`` say whether they answered."""

    chassis: Chassis = field(default_factory=Chassis)
    printer: bool = False
    printer_serial: str = ""
    printer_descr: str = ""  # hrDeviceDescr.1 when hrDeviceType.1 is hrDevicePrinter
    lists_printer: bool = False
    ups: bool = False
    ups_manufacturer: str = ""
    ups_model: str = ""
    ups_sw: str = ""
    ups_agent_sw: str = ""
    bridge_ports: int = 0
    radio: bool = False
