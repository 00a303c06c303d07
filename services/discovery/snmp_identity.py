"""What a device says about itself over SNMP: system group, model, serial, firmware, kind hints.

Reading is a handful of requests per device, never a full walk:
  1. GET the system group (that is also the credential probe);
  2. the vendor table row picked by sysObjectID / sysDescr (vendor_table.py); a device with a
     generic sysObjectID (net-snmp's, a Linux kernel) is asked one GET of every row's probe
     OIDs instead, and the row whose MIB answers is picked;
  3. one GET of the row's own objects, a short walk for a table column it names;
  4. one GET of the standard identity objects (Printer-MIB, HOST-RESOURCES, UPS-MIB,
     BRIDGE-MIB), the ENTITY-MIB chassis row when a field is still empty, and for a device
     no row claims, a look for bridge ports and an IEEE 802.11 radio (class evidence).

Each field is taken from the first source that has it, in this order: the row's own MIB
objects, the standard MIBs (identity_sources.py), the row's sysDescr patterns. Which source
gave each field is kept (``sources``) and shown as evidence. Every string is sanitised
(services/discovery/sanitize.py) before it leaves this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

from services.discovery.identity_sources import (
    BRIDGE_NUM_PORTS,
    BRIDGE_PORT_IFINDEX,
    DOT11,
    ENT_CLASS,
    ENT_CLASS_CHASSIS,
    ENT_COLUMNS,
    ENT_PHYSICAL,
    HR_DEVICE_DESCR_1,
    HR_DEVICE_PRINTER,
    HR_DEVICE_TYPE_1,
    IF_PHYS_ADDRESS,
    PRT_GENERAL,
    PRT_SERIAL_1,
    SWITCH_MIN_BRIDGE_PORTS,
    UPS_IDENT_AGENT_SW,
    UPS_IDENT_MANUFACTURER,
    UPS_IDENT_MODEL,
    UPS_IDENT_UPS_SW,
    W_BRIDGE,
    W_DESCR_WORD,
    W_DOT11,
    W_HR_PRINTER,
    W_PRINTER_MIB,
    W_UPS_MIB,
    W_VENDOR_ROW,
    Chassis,
    Found,
    KindHint,
    Source,
    Standard,
    VendorRule,
)
from services.discovery.sanitize import MAX_NAME_CHARS, clean_text
from services.discovery.vendor_table import (
    OS_ROWS,
    RULES,
    SERVER_HARDWARE,
    match_rule,
    probe_oids,
    rule_probed,
)
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

__all__ = ["RULES", "SnmpIdentity", "match_rule", "read_identity", "system_identity"]

# ---- the OIDs we read ----
SYS_DESCR: Final = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID: Final = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME: Final = "1.3.6.1.2.1.1.3.0"
SYS_CONTACT: Final = "1.3.6.1.2.1.1.4.0"
SYS_NAME: Final = "1.3.6.1.2.1.1.5.0"
SYS_LOCATION: Final = "1.3.6.1.2.1.1.6.0"
SYSTEM_GROUP = (SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_CONTACT, SYS_NAME, SYS_LOCATION)
PRT_CONFIG_CHANGES_1: Final = f"{PRT_GENERAL}.1.1"  # prtGeneralConfigChanges.1: any printer
STANDARD_OIDS: Final = (
    PRT_CONFIG_CHANGES_1,
    PRT_SERIAL_1,
    HR_DEVICE_TYPE_1,
    HR_DEVICE_DESCR_1,
    UPS_IDENT_MANUFACTURER,
    UPS_IDENT_MODEL,
    UPS_IDENT_UPS_SW,
    UPS_IDENT_AGENT_SW,
    BRIDGE_NUM_PORTS,
)

#: Rows read from a table column while fingerprinting (chassis, serial tables are short).
MAX_TABLE_ROWS: Final = 64
#: Rows looked at for "the first non-empty cell" of a column.
MAX_COLUMN_ROWS: Final = 8
#: Chassis candidates whose columns are read (one GET each).
MAX_CHASSIS_CANDIDATES: Final = 4
#: Bound of model / serial / version strings.
MAX_FIELD_CHARS: Final = 128
#: Values devices give for "not set" (SMBIOS and vendor defaults): treated as empty so the
#: next source is tried.
_EMPTY_VALUES: Final = frozenset(
    {
        "n/a", "na", "none", "null", "unknown", "not available", "not specified", "-",
        "default string", "to be filled by o.e.m.", "system product name", "(none)",
    }
)  # fmt: skip
#: Characters that never start or end a model, serial or version but agents leave there:
#: QNAP's "\4.3.3", quoted strings, Meraki's "=Meraki MR28", trailing separators.
_FIELD_EDGE_JUNK: Final = " \t\\\"'=,;:"


class SnmpReader(Protocol):
    """The two reads fingerprinting needs; fingerprint.ClientReader adapts SnmpClient."""

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
    vendor: str = ""  # maker named by the vendor row ("Synology", "APC")
    platform: str = ""  # the OS / product family row that matched ("dsm", "pfsense")
    model: str = ""
    serial: str = ""
    version: str = ""
    kind: str = ""  # kind the SNMP evidence points to ("" when it says nothing)
    why: str = ""  # the evidence behind ``kind``, for the status page
    # Every piece of class evidence SNMP gave (the classifier weighs them all).
    hints: tuple[KindHint, ...] = ()
    # Which source gave each field: {"model": "ENTITY-MIB entPhysicalModelName.1", ...}.
    sources: Mapping[str, str] = field(default_factory=dict)

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
            "sources": dict(self.sources),
        }


# ---- value helpers ----


def text(value: SnmpValue | None, max_chars: int = MAX_FIELD_CHARS) -> str:
    """A value as safe text ("" when absent; the `<private>` placeholders of redacted
    recordings are kept as is: it is what the device says)."""
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


def clean_field(value: str) -> str:
    """A model, serial or version as shown: bounded, no edge junk, "" for "not set" values."""
    value = clean_text(value, MAX_FIELD_CHARS).strip(_FIELD_EDGE_JUNK)
    return "" if value.lower() in _EMPTY_VALUES else value


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


def _apply(source: Source, raw: str) -> str:
    """The field a source gives from its raw text (pattern, drops, format), or ""."""
    if not raw:
        return ""
    value = raw
    if source.pattern:
        match = re.search(source.pattern, raw, re.IGNORECASE)
        if not match:
            return ""
        value = match.group(1) if match.groups() else match.group(0)
    for drop in source.drop:
        value = re.sub(drop, "", value, flags=re.IGNORECASE)
    value = clean_field(value)
    return source.fmt.format(value) if value else ""


Values = Mapping[str, SnmpValue]


def _read_source(source: Source, values: Values, columns: Mapping[str, str]) -> str:
    if source.column:
        return _apply(source, columns.get(source.column, ""))
    return _apply(source, text(values.get(source.oid or SYS_DESCR), 512))


def _where(source: Source) -> str:
    place = source.oid or source.column or SYS_DESCR
    return f"{source.meaning} ({place})" if source.meaning else place


# ---- the system group ----


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


#: Kinds suggested by sysDescr words when no row matched (weaker evidence).
_DESCR_KINDS: Final[tuple[tuple[str, str], ...]] = (
    (r"\b(switch|switching)\b", "switch"),
    (r"\bRTL83\d\d", "switch"),  # Realtek switch SoCs (EdgeSwitch, many smart switches)
    (r"\b(router|firewall|gateway)\b", "router"),
    (r"\b(access point|wireless)\b", "ap"),
    (r"\b(printer|laserjet|officejet|multifunction)\b", "printer"),
    (r"\b(ups|pdu|power manager)\b", "ups"),
    (r"\b(camera|ip cam|nvr)\b", "camera"),
    (r"\b(nas|storage)\b", "nas"),
)


def _kind_from_descr(descr: str) -> str:
    for pattern, kind in _DESCR_KINDS:
        if re.search(pattern, descr, re.IGNORECASE):
            return kind
    return ""


# ---- reading ----


async def _safe_get(reader: SnmpReader, oids: Sequence[str]) -> dict[str, SnmpValue]:
    from services.snmp.errors import SnmpError

    if not oids:
        return {}
    try:
        return await reader.get(list(oids))
    except SnmpError:
        return {}


async def _safe_walk(reader: SnmpReader, root: str, max_rows: int) -> list[tuple[str, SnmpValue]]:
    from services.snmp.errors import SnmpError

    try:
        return await reader.walk(root, max_rows)
    except SnmpError:
        return []


async def _first_in_column(reader: SnmpReader, column: str) -> str:
    """The first non-empty cell of a column as text (a MAC as aa:bb:cc:dd:ee:ff)."""
    for _oid, value in await _safe_walk(reader, column, MAX_COLUMN_ROWS):
        if isinstance(value, OctetString) and value.value.strip(b"\x00"):
            if column == IF_PHYS_ADDRESS:
                return value.hex(":") if len(value.value) == 6 else ""
            return text(value, 512)
        if not isinstance(value, OctetString) and text(value):
            return text(value)
    return ""


async def _entity_chassis(reader: SnmpReader) -> Chassis:
    """The chassis of entPhysicalTable (RFC 6933): a row of class chassis(3) contained in
    nothing (entPhysicalContainedIn = 0), else the first chassis row with a model or serial,
    else the table's first row; agents that leave out entPhysicalClass: row 1 (by
    convention the top of the tree)."""
    classes = await _safe_walk(reader, ENT_CLASS, MAX_TABLE_ROWS)
    chassis_rows = [o.rsplit(".", 1)[1] for o, v in classes if _number(v) == ENT_CLASS_CHASSIS]
    candidates = (
        chassis_rows[:MAX_CHASSIS_CANDIDATES]
        or [o.rsplit(".", 1)[1] for o, _v in classes[:1]]
        or ["1"]
    )
    rows: list[tuple[Chassis, bool]] = []
    for index in candidates:
        oids = {name: f"{ENT_PHYSICAL}.{col}.{index}" for name, col in ENT_COLUMNS.items()}
        got = await _safe_get(reader, list(oids.values()))
        cells = {name: text(got.get(oid)) for name, oid in oids.items()}
        row = Chassis(
            index=index,
            **{k: v for k, v in cells.items() if k not in ("class", "contained_in")},
        )
        top = _number(got.get(oids["contained_in"])) in (0, None)
        if row.model or row.serial or row.descr:
            rows.append((row, top))
    for row, top in rows:
        if top:
            return row
    return rows[0][0] if rows else Chassis()


async def read_standard(reader: SnmpReader, *, want_chassis: bool, want_class: bool) -> Standard:
    """The standard MIBs' identity objects (one GET), the chassis when ``want_chassis``, and
    for ``want_class`` the bridge ports and an 802.11 radio."""
    got = await _safe_get(reader, STANDARD_OIDS)
    # The Printer-MIB itself says "printer". A first hrDevice of type printer does not: a
    # Windows or CUPS host lists the printers it serves there ("Microsoft Print To PDF").
    printer = bool(text(got.get(PRT_CONFIG_CHANGES_1)) or text(got.get(PRT_SERIAL_1)))
    lists_printer = _oid_text(got.get(HR_DEVICE_TYPE_1)) == HR_DEVICE_PRINTER
    ups_manufacturer, ups_model = (
        text(got.get(UPS_IDENT_MANUFACTURER)),
        text(got.get(UPS_IDENT_MODEL)),
    )
    bridge_ports = _number(got.get(BRIDGE_NUM_PORTS)) or 0
    radio = False
    if want_class:
        if not bridge_ports:
            rows = await _safe_walk(reader, BRIDGE_PORT_IFINDEX, SWITCH_MIN_BRIDGE_PORTS + 3)
            bridge_ports = len(rows)
        radio = bool(await _safe_walk(reader, DOT11, 1))
    return Standard(
        chassis=await _entity_chassis(reader) if want_chassis else Chassis(),
        printer=printer,
        printer_serial=text(got.get(PRT_SERIAL_1)),
        printer_descr=text(got.get(HR_DEVICE_DESCR_1)) if lists_printer else "",
        lists_printer=lists_printer,
        ups=bool(ups_manufacturer or ups_model),
        ups_manufacturer=ups_manufacturer,
        ups_model=ups_model,
        ups_sw=text(got.get(UPS_IDENT_UPS_SW)),
        ups_agent_sw=text(got.get(UPS_IDENT_AGENT_SW)),
        bridge_ports=bridge_ports,
        radio=radio,
    )


def _standard_sources(std: Standard) -> dict[str, list[tuple[str, str]]]:
    """Per field, the standard MIBs' values in rank order: (value, where)."""
    ch, ent = std.chassis, f"ENTITY-MIB chassis entPhysical{{}}.{std.chassis.index}"
    return {
        "model": [
            (ch.model, ent.format("ModelName")),
            # Some agents fill entPhysicalDescr with a hex dump ("CHASSIS 00 00 00 ...").
            ("" if re.search(r"(\b00 ){6}", ch.descr) else ch.descr, ent.format("Descr")),
            (std.printer_descr, "HOST-RESOURCES hrDeviceDescr.1 (the printer)"),
            (std.ups_model, "UPS-MIB upsIdentModel"),
        ],
        "serial": [
            (ch.serial, ent.format("SerialNum")),
            (std.printer_serial, "Printer-MIB prtGeneralSerialNumber.1"),
        ],
        "version": [
            (ch.sw, ent.format("SoftwareRev")),
            (ch.fw, ent.format("FirmwareRev")),
            (std.ups_sw, "UPS-MIB upsIdentUPSSoftwareVersion"),
            (std.ups_agent_sw, "UPS-MIB upsIdentAgentSoftwareVersion"),
        ],
    }


def _hints(
    rule: VendorRule | None, ident: SnmpIdentity, model: str, std: Standard, probed: bool
) -> list[KindHint]:
    hints: list[KindHint] = []
    if rule is not None:
        kind = rule.kind_for(ident.sys_descr, model)
        if rule.name == "windows" and ident.sys_object_id.endswith(".1.1"):
            kind = "workstation"  # Windows' own sysObjectID: .1.1 workstation, .1.2/.1.3 server
        how = "answers its MIB" if probed else f"sysObjectID {ident.sys_object_id}"
        hints.append(KindHint(kind, rule.weight, f"SNMP: {rule.vendor or rule.name} "
                                                 f"{rule.name} ({how})"))  # fmt: skip
    if std.printer:
        hints.append(KindHint("printer", W_PRINTER_MIB, "SNMP: answers the Printer-MIB"))
    elif std.lists_printer:
        hints.append(
            KindHint("printer", W_HR_PRINTER, "SNMP: its first hrDevice is a printer (weak)")
        )
    if std.ups:
        hints.append(KindHint("ups", W_UPS_MIB, "SNMP: answers the UPS-MIB"))
    if std.bridge_ports >= SWITCH_MIN_BRIDGE_PORTS:
        hints.append(
            KindHint("switch", W_BRIDGE, f"SNMP: bridges {std.bridge_ports}+ ports (BRIDGE-MIB)")
        )
    if std.radio:
        hints.append(KindHint("ap", W_DOT11, "SNMP: manages an 802.11 radio (IEEE 802.11 MIB)"))
    if rule is None:
        kind = _kind_from_descr(ident.sys_descr)
        if kind:
            hints.append(KindHint(kind, W_DESCR_WORD, f"SNMP sysDescr: {ident.sys_descr[:80]}"))
    return hints


def _best(hints: Sequence[KindHint]) -> KindHint | None:
    totals: dict[str, float] = {}
    for hint in hints:
        totals[hint.kind] = totals.get(hint.kind, 0.0) + hint.weight
    if not totals:
        return None
    kind = max(totals, key=lambda k: (totals[k], max(h.weight for h in hints if h.kind == k)))
    return max((h for h in hints if h.kind == kind), key=lambda h: h.weight)


async def _server_hardware(reader: SnmpReader, chosen: dict[str, tuple[str, str]]) -> None:
    """A Dell or HPE server running Windows/Linux/ESXi with its maker's agent: the machine's
    model and serial (one GET) replace the OS row's CPU description."""
    oids = [o for hw in SERVER_HARDWARE for o in (hw.model.oid, hw.serial.oid)]
    got = await _safe_get(reader, oids)
    for hw in SERVER_HARDWARE:
        model = _read_source(hw.model, got, {})
        if not model:
            continue
        chosen["model"] = (hw.model_fmt.format(model), _where(hw.model))
        serial = _read_source(hw.serial, got, {})
        if serial:
            chosen["serial"] = (serial, _where(hw.serial))
        return


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
    probed = False
    if rule is None or rule.weight < W_VENDOR_ROW:
        # A generic sysObjectID / a general-purpose OS: ask whose MIB answers.
        answers = await _safe_get(reader, probe_oids())
        found_rule = rule_probed({oid for oid, value in answers.items() if text(value)})
        if found_rule is not None:
            rule, probed = found_rule, True
            values.update(answers)
    columns: dict[str, str] = {}
    if rule is not None:
        values.update(await _safe_get(reader, rule.get_oids()))
        for column in rule.columns():
            columns[column] = await _first_in_column(reader, column)
    composed = Found()
    if rule is not None and rule.compose is not None:
        try:
            composed = rule.compose(values)
        except (ValueError, IndexError, AttributeError):
            composed = Found()  # a device saying what the code never expected: fields empty
    chosen: dict[str, tuple[str, str]] = {}
    for name in ("model", "serial", "version"):
        value = clean_field(getattr(composed, name))
        if value and rule is not None:
            chosen[name] = (value, f"{rule.vendor or rule.name} {rule.name} (vendor rule)")
            continue
        for source in getattr(rule, name, ()) if rule is not None else ():
            if source.is_descr_pattern:
                continue
            value = _read_source(source, values, columns)
            if value:
                chosen[name] = (value, _where(source))
                break
    if rule is not None and rule.name in OS_ROWS:
        await _server_hardware(reader, chosen)
    std = await read_standard(
        reader,
        want_chassis=len(chosen) < 3,
        want_class=rule is None or rule.weight < W_VENDOR_ROW,
    )
    for name, candidates in _standard_sources(std).items():
        if name in chosen:
            continue
        for raw, where in candidates:
            value = clean_field(raw)
            if value:
                chosen[name] = (value, where)
                break
    for name in ("model", "serial", "version"):
        if name in chosen or rule is None:
            continue
        for source in getattr(rule, name):
            value = _read_source(source, values, columns) if source.is_descr_pattern else ""
            if value:
                chosen[name] = (value, _where(source))
                break
    model = chosen.get("model", ("", ""))[0]
    hints = _hints(rule, ident, model, std, probed)
    best = _best(hints)
    return replace(
        ident,
        vendor=rule.vendor if rule else "",
        platform=rule.name if rule else "",
        model=model,
        serial=chosen.get("serial", ("", ""))[0],
        version=chosen.get("version", ("", ""))[0],
        kind=best.kind if best else "",
        why=best.why if best else "",
        hints=tuple(hints),
        sources={name: where for name, (_value, where) in chosen.items()},
    )
