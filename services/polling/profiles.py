"""SNMP polling profiles: which columns each kind of device is asked for, and what they mean.

A profile is a small object per device. It keeps what rarely changes (interface names, which
hrStorage rows are disks, supply names and capacities) and refreshes it every
``META_EVERY_POLLS`` polls or after a reboot; every other poll fetches only the values that
move (counters, levels, states), by column walk for small tables and by GET of the known rows
for big ones (pfSense lists 590 hrStorage rows, of which 2 are disks). No profile ever walks a
whole MIB.

Metric names are dotted, lower case, with the unit as a suffix (docs/polling.md lists them).
A value the device does not know is stored as None, never as a made-up number: the Printer-MIB
levels -1/-2/-3 (other/unknown/"some remaining") in particular are not percentages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from services.polling.access import Rows, SnmpAccess
from services.polling.rates import CounterReading, RateTracker
from services.snmp.values import (
    OID,
    Counter32,
    Counter64,
    Gauge32,
    Integer,
    ObjectIdentifier,
    OctetString,
    SnmpValue,
    TimeTicks,
    oid_from_str,
)

META_EVERY_POLLS = 10  # refresh names, types and capacities this often (and after a reboot)


def oid(text: str) -> OID:
    return oid_from_str(text)


@dataclass(frozen=True)
class Reading:
    metric: str
    value: float | None
    instance: str = ""
    unit: str = ""


@dataclass
class PollContext:
    """What one device's poll shares between its profiles."""

    at_s: float  # monotonic time of this poll
    rates: RateTracker
    uptime_s: float | None = None  # sysUpTime, set by the system profile
    rebooted: bool = False  # uptime went backwards since the last poll
    errors: list[str] = field(default_factory=list)  # non-fatal problems worth showing


def number(value: SnmpValue | None) -> float | None:
    """A numeric SNMP value as a float; anything else (absent, text, wrong type) is None."""
    if isinstance(value, Integer | Gauge32 | Counter32 | Counter64 | TimeTicks):
        return float(value.value)
    if isinstance(value, OctetString):
        # Some agents send numbers as strings ("42"); accept plain decimals only.
        text = value.text(32)
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return float(text)
    return None


def text(value: SnmpValue | None) -> str:
    return value.text(128) if isinstance(value, OctetString) else ""


def _unique(names: dict[OID, str]) -> dict[OID, str]:
    """Instance names must be unique per metric; suffix duplicates with their row index."""
    seen: dict[str, int] = {}
    for name in names.values():
        seen[name] = seen.get(name, 0) + 1
    return {
        idx: (f"{name} #{'.'.join(map(str, idx))}" if seen[name] > 1 or not name else name)
        for idx, name in names.items()
    }


class Profile:
    name = "profile"

    def __init__(self) -> None:
        self.polls = 0

    def needs_meta(self, ctx: PollContext) -> bool:
        return self.polls % META_EVERY_POLLS == 0 or ctx.rebooted

    async def poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        out = await self._poll(snmp, ctx)
        self.polls += 1
        return out

    async def _poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        raise NotImplementedError


# ---------------------------------------------------------------- system (SNMPv2-MIB)

SYS_UPTIME = oid("1.3.6.1.2.1.1.3.0")
HR_SYSTEM_UPTIME = oid("1.3.6.1.2.1.25.1.1.0")  # the host's uptime, not the agent's


class SystemProfile(Profile):
    """sysUpTime (else hrSystemUptime): reboot detection, and the time base of counter rates."""

    name = "system"

    def __init__(self) -> None:
        super().__init__()
        self.last_uptime_s: float | None = None

    async def _poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        got = await snmp.get([SYS_UPTIME, HR_SYSTEM_UPTIME])
        uptime = None
        for source in (SYS_UPTIME, HR_SYSTEM_UPTIME):
            value = got.get(source)
            if isinstance(value, TimeTicks):
                uptime = value.seconds
                break
        if uptime is None:
            ctx.errors.append("sysUpTime missing or not TimeTicks: reboots go undetected")
            return []
        ctx.uptime_s = uptime
        ctx.rebooted = self.last_uptime_s is not None and uptime < self.last_uptime_s
        self.last_uptime_s = uptime
        return [Reading("system.uptime_s", uptime, unit="s")]


# ---------------------------------------------------------------- interfaces (IF-MIB)

IF = "1.3.6.1.2.1.2.2.1."
IFX = "1.3.6.1.2.1.31.1.1.1."
IF_DESCR, IF_TYPE, IF_SPEED = oid(IF + "2"), oid(IF + "3"), oid(IF + "5")
IF_ADMIN, IF_OPER = oid(IF + "7"), oid(IF + "8")
IF_IN_OCTETS, IF_OUT_OCTETS = oid(IF + "10"), oid(IF + "16")
IF_IN_DISCARDS, IF_IN_ERRORS = oid(IF + "13"), oid(IF + "14")
IF_OUT_DISCARDS, IF_OUT_ERRORS = oid(IF + "19"), oid(IF + "20")
IF_NAME, IF_HC_IN, IF_HC_OUT = oid(IFX + "1"), oid(IFX + "6"), oid(IFX + "10")
IF_HIGH_SPEED, IF_ALIAS = oid(IFX + "15"), oid(IFX + "18")
IF_TYPE_LOOPBACK = 24
SPEED_UNKNOWN_32 = 4294967295  # ifSpeed saturates here; ifHighSpeed (Mbit/s) then tells


@dataclass(frozen=True)
class IfMeta:
    name: str
    speed_bps: float | None


class InterfacesProfile(Profile):
    """Status, speed, traffic, error and discard rates per interface (64-bit where present)."""

    name = "interfaces"

    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[OID, IfMeta] = {}
        self.hc: bool | None = None  # None: not known yet whether ifHC* counters exist

    async def _refresh(self, snmp: SnmpAccess) -> None:
        rows = await snmp.walk_columns([IF_DESCR, IF_TYPE, IF_SPEED, IF_NAME, IF_HIGH_SPEED])
        names: dict[OID, str] = {}
        speeds: dict[OID, float | None] = {}
        for idx, row in rows.items():
            if number(row.get(IF_TYPE)) == IF_TYPE_LOOPBACK:
                continue
            names[idx] = text(row.get(IF_NAME)) or text(row.get(IF_DESCR))
            speed = number(row.get(IF_SPEED))
            high = number(row.get(IF_HIGH_SPEED))
            if (speed is None or speed >= SPEED_UNKNOWN_32) and high:
                speed = high * 1e6
            speeds[idx] = speed
        self.meta = {idx: IfMeta(n, speeds[idx]) for idx, n in _unique(names).items()}
        self.hc = None

    async def _poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        out: list[Reading] = []
        fresh = self.needs_meta(ctx)
        if fresh:
            await self._refresh(snmp)
        if not self.meta:
            return out
        columns = [IF_ADMIN, IF_OPER, IF_IN_ERRORS, IF_OUT_ERRORS, IF_IN_DISCARDS, IF_OUT_DISCARDS]
        octets = [IF_HC_IN, IF_HC_OUT] if self.hc is not False else [IF_IN_OCTETS, IF_OUT_OCTETS]
        rows = await snmp.walk_columns(columns + octets)
        if self.hc is None:
            self.hc = any(IF_HC_IN in r for r in rows.values())
            if not self.hc:
                rows = _merge(rows, await snmp.walk_columns([IF_IN_OCTETS, IF_OUT_OCTETS]))
        for idx, meta in self.meta.items():
            row = rows.get(idx)
            if row is None:
                continue
            inst = meta.name
            if fresh:
                out.append(Reading("if.speed_bps", meta.speed_bps, inst, "bit/s"))
            admin, oper = number(row.get(IF_ADMIN)), number(row.get(IF_OPER))
            out.append(Reading("if.admin_up", None if admin is None else float(admin == 1), inst))
            out.append(Reading("if.oper_up", None if oper is None else float(oper == 1), inst))
            max_bytes = meta.speed_bps / 8 * 4 if meta.speed_bps else None
            for metric, col, scale, unit, limit in (
                ("if.in_bps", IF_HC_IN if self.hc else IF_IN_OCTETS, 8, "bit/s", max_bytes),
                ("if.out_bps", IF_HC_OUT if self.hc else IF_OUT_OCTETS, 8, "bit/s", max_bytes),
                ("if.in_errors_ps", IF_IN_ERRORS, 1, "1/s", None),
                ("if.out_errors_ps", IF_OUT_ERRORS, 1, "1/s", None),
                ("if.in_discards_ps", IF_IN_DISCARDS, 1, "1/s", None),
                ("if.out_discards_ps", IF_OUT_DISCARDS, 1, "1/s", None),
            ):
                value = row.get(col)
                if not isinstance(value, Counter32 | Counter64):
                    continue
                bits = 64 if isinstance(value, Counter64) else 32
                reading = CounterReading(value.value, bits, ctx.at_s, ctx.uptime_s)
                rate = ctx.rates.update((metric, idx), reading, limit)
                if rate is not None:
                    out.append(Reading(metric, rate * scale, inst, unit))
        return out


def _merge(a: Rows, b: Rows) -> Rows:
    for idx, cells in b.items():
        a.setdefault(idx, {}).update(cells)
    return a


# ---------------------------------------------------------------- storage (HOST-RESOURCES-MIB)

HR_STORAGE = "1.3.6.1.2.1.25.2.3.1."
HR_ST_TYPE, HR_ST_DESCR, HR_ST_UNITS = (
    oid(HR_STORAGE + "2"),
    oid(HR_STORAGE + "3"),
    oid(HR_STORAGE + "4"),
)
HR_ST_SIZE, HR_ST_USED = oid(HR_STORAGE + "5"), oid(HR_STORAGE + "6")
HR_TYPES = oid("1.3.6.1.2.1.25.2.1")
HR_TYPE_RAM = (*HR_TYPES, 2)
# Types that are never a volume: other, RAM, virtual memory.
HR_NOT_DISK = {(*HR_TYPES, 1), HR_TYPE_RAM, (*HR_TYPES, 3)}
# Types whose fullness is worth an alert (fixed and network disks, and agents that put an
# hrFSTypes OID here, as pfSense does); flash, RAM disks and removable media are reported only.
HR_ALERTABLE = {(*HR_TYPES, 4), (*HR_TYPES, 10)}
# Pseudo and memory file systems are full by design; pfSense names them "/dev, type: devfs".
PSEUDO_MOUNTS = re.compile(
    r"^(/dev|/run|/sys|/proc|/tmp)(/|,|\s|$)|type: (devfs|tmpfs|procfs|fdescfs|linprocfs)\b"
)
INT32_WRAP = 2**32


@dataclass(frozen=True)
class StorageRow:
    name: str
    units: int
    alertable: bool
    ram: bool


class StorageProfile(Profile):
    """Volumes (size, used, used %) and physical memory from hrStorageTable."""

    name = "storage"

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[OID, StorageRow] = {}

    async def _refresh(self, snmp: SnmpAccess) -> None:
        rows = await snmp.walk_columns([HR_ST_TYPE, HR_ST_DESCR, HR_ST_UNITS])
        names: dict[OID, str] = {}
        picked: dict[OID, tuple[int, bool, bool]] = {}
        ram_seen = False
        for idx, row in rows.items():
            kind = row.get(HR_ST_TYPE)
            kind_oid = kind.value if isinstance(kind, ObjectIdentifier) else None
            units = number(row.get(HR_ST_UNITS))
            if kind_oid is None or not units or units <= 0:
                continue
            descr = text(row.get(HR_ST_DESCR))
            is_ram = kind_oid == HR_TYPE_RAM
            if is_ram:
                # One physical-memory row; pfSense lists hundreds of MALLOC zones as RAM too.
                if ram_seen or descr.startswith("MALLOC"):
                    continue
                ram_seen = True
            elif kind_oid in HR_NOT_DISK:
                continue
            standard = kind_oid[: len(HR_TYPES)] == HR_TYPES
            alertable = (kind_oid in HR_ALERTABLE or not standard) and not PSEUDO_MOUNTS.search(
                descr
            )
            names[idx] = descr
            picked[idx] = (int(units), alertable, is_ram)
        self.rows = {idx: StorageRow(name, *picked[idx]) for idx, name in _unique(names).items()}

    async def _poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        if self.needs_meta(ctx):
            await self._refresh(snmp)
        oids = [col + idx for idx in self.rows for col in (HR_ST_SIZE, HR_ST_USED)]
        got = await snmp.get(oids) if oids else {}
        out: list[Reading] = []
        for idx, row in self.rows.items():
            size, used = number(got.get(HR_ST_SIZE + idx)), number(got.get(HR_ST_USED + idx))
            if size is None or used is None:
                continue
            # hrStorageSize is an Integer32: agents with big volumes wrap it negative.
            size += INT32_WRAP if size < 0 else 0
            used += INT32_WRAP if used < 0 else 0
            size_b, used_b = size * row.units, used * row.units
            pct = 100.0 * used_b / size_b if size_b > 0 else None
            if row.ram:
                out.append(Reading("mem.used_pct", pct, "", "%"))
                out.append(Reading("mem.size_bytes", size_b, "", "B"))
                continue
            out.append(Reading("storage.size_bytes", size_b, row.name, "B"))
            out.append(Reading("storage.used_bytes", used_b, row.name, "B"))
            # used_pct is what alerts read: only volumes a person can act on get one.
            if row.alertable and size_b > 0:
                out.append(Reading("storage.used_pct", pct, row.name, "%"))
        return out


# ---------------------------------------------------------------- CPU (HOST-RESOURCES-MIB)

HR_PROCESSOR_LOAD = oid("1.3.6.1.2.1.25.3.3.1.2")


class CpuProfile(Profile):
    """Average hrProcessorLoad over every processor (percent busy over the last minute)."""

    name = "cpu"

    async def _poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        rows = await snmp.walk_columns([HR_PROCESSOR_LOAD])
        loads = [v for r in rows.values() if (v := number(r.get(HR_PROCESSOR_LOAD))) is not None]
        loads = [v for v in loads if 0 <= v <= 100]
        return [Reading("cpu.load_pct", sum(loads) / len(loads), "", "%")] if loads else []


# ---------------------------------------------------------------- Synology (SYNOLOGY-*-MIB)

SYNO_DISK = "1.3.6.1.4.1.6574.2.1.1."
SYNO_DISK_ID, SYNO_DISK_STATUS, SYNO_DISK_TEMP = (
    oid(SYNO_DISK + "2"),
    oid(SYNO_DISK + "5"),
    oid(SYNO_DISK + "6"),
)
SYNO_RAID = "1.3.6.1.4.1.6574.3.1.1."
SYNO_RAID_NAME, SYNO_RAID_STATUS = oid(SYNO_RAID + "2"), oid(SYNO_RAID + "3")
SYNO_DISK_OK = {1, 2}  # normal, initialized
SYNO_RAID_OK = {1}  # normal (2..10 are repairing/migrating/..., 11 degraded, 12 crashed)
SYNO_RAID_BUSY = set(range(2, 11))


class SynologyProfile(Profile):
    """Disk health and temperature, RAID (volume) state of a Synology NAS."""

    name = "synology"

    def __init__(self) -> None:
        super().__init__()
        self.disks: dict[OID, str] = {}
        self.raids: dict[OID, str] = {}

    async def _poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        if self.needs_meta(ctx):
            disks = await snmp.walk_columns([SYNO_DISK_ID])
            self.disks = _unique({i: text(r.get(SYNO_DISK_ID)) for i, r in disks.items()})
            raids = await snmp.walk_columns([SYNO_RAID_NAME])
            self.raids = _unique({i: text(r.get(SYNO_RAID_NAME)) for i, r in raids.items()})
        out: list[Reading] = []
        if self.disks:
            rows = await snmp.walk_columns([SYNO_DISK_STATUS, SYNO_DISK_TEMP])
            for idx, name in self.disks.items():
                row = rows.get(idx, {})
                status = number(row.get(SYNO_DISK_STATUS))
                ok = None if status is None else float(status in SYNO_DISK_OK)
                out.append(Reading("disk.health_ok", ok, name))
                out.append(Reading("disk.temp_c", number(row.get(SYNO_DISK_TEMP)), name, "°C"))
        if self.raids:
            rows = await snmp.walk_columns([SYNO_RAID_STATUS])
            for idx, name in self.raids.items():
                status = number(rows.get(idx, {}).get(SYNO_RAID_STATUS))
                ok = None if status is None or status in SYNO_RAID_BUSY else float(status == 1)
                out.append(Reading("raid.ok", ok, name))
        return out


# ---------------------------------------------------------------- printers (Printer-MIB)

PRT_SUPPLY = "1.3.6.1.2.1.43.11.1.1."
PRT_SUPPLY_DESCR, PRT_SUPPLY_MAX, PRT_SUPPLY_LEVEL = (
    oid(PRT_SUPPLY + "6"),
    oid(PRT_SUPPLY + "8"),
    oid(PRT_SUPPLY + "9"),
)
PRT_INPUT = "1.3.6.1.2.1.43.8.2.1."
PRT_INPUT_MAX, PRT_INPUT_LEVEL = oid(PRT_INPUT + "9"), oid(PRT_INPUT + "10")
PRT_INPUT_NAME, PRT_INPUT_DESCR = oid(PRT_INPUT + "13"), oid(PRT_INPUT + "18")
HR_PRINTER_ERRORS = oid("1.3.6.1.2.1.25.3.5.1.2")
# hrPrinterDetectedErrorState bits, numbered from the most significant bit of the first byte.
PRINTER_ERROR_BITS = {
    "printer.low_paper": 0,
    "printer.no_paper": 1,
    "printer.low_toner": 2,
    "printer.no_toner": 3,
    "printer.door_open": 4,
    "printer.jammed": 5,
    "printer.offline": 6,
    "printer.service_requested": 7,
}
# Metrics that are yes/no facts (1.0 = yes): stored with unit "0/1" so that every reader (the
# status page, home) shows them as yes/no rather than as a number.
BOOLEAN_METRICS = frozenset(
    {
        "tcp.open",
        "if.admin_up",
        "if.oper_up",
        "disk.health_ok",
        "raid.ok",
        "supply.empty",
        "ups.on_battery",
        "ups.battery_replace",
        "ups.selftest_ok",
        *PRINTER_ERROR_BITS,
    }
)
# Printer-MIB special values of level and capacity (RFC 3805): not quantities.
LEVEL_OTHER, LEVEL_UNKNOWN, LEVEL_SOME = -1, -2, -3


def supply_percent(level: float | None, capacity: float | None) -> float | None:
    """Level as a percentage of capacity, or None when either is a special value."""
    if level is None or capacity is None or level < 0 or capacity <= 0:
        return None
    return min(100.0, 100.0 * level / capacity)


def supply_empty(level: float | None) -> float | None:
    """1 when the device says empty, 0 when it says something is left, None when unknown."""
    if level is None or level in (LEVEL_OTHER, LEVEL_UNKNOWN) or level < LEVEL_SOME:
        return None
    return 1.0 if level == 0 else 0.0


@dataclass(frozen=True)
class SupplyMeta:
    name: str
    capacity: float | None


class PrinterProfile(Profile):
    """Supply levels (toner, ink, drums), paper trays, and jam/door/paper error states."""

    name = "printer"

    def __init__(self) -> None:
        super().__init__()
        self.supplies: dict[OID, SupplyMeta] = {}
        self.trays: dict[OID, SupplyMeta] = {}

    async def _refresh(self, snmp: SnmpAccess) -> None:
        rows = await snmp.walk_columns([PRT_SUPPLY_DESCR, PRT_SUPPLY_MAX])
        names = _unique({i: text(r.get(PRT_SUPPLY_DESCR)) for i, r in rows.items()})
        self.supplies = {
            i: SupplyMeta(n, number(rows[i].get(PRT_SUPPLY_MAX))) for i, n in names.items()
        }
        rows = await snmp.walk_columns([PRT_INPUT_NAME, PRT_INPUT_DESCR, PRT_INPUT_MAX])
        names = _unique(
            {
                i: text(r.get(PRT_INPUT_NAME)) or text(r.get(PRT_INPUT_DESCR))
                for i, r in rows.items()
            }
        )
        self.trays = {
            i: SupplyMeta(n, number(rows[i].get(PRT_INPUT_MAX))) for i, n in names.items()
        }

    async def _poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        if self.needs_meta(ctx):
            await self._refresh(snmp)
        out: list[Reading] = []
        oids = [PRT_SUPPLY_LEVEL + i for i in self.supplies] + [
            PRT_INPUT_LEVEL + i for i in self.trays
        ]
        got = await snmp.get(oids) if oids else {}
        for idx, meta in self.supplies.items():
            level = number(got.get(PRT_SUPPLY_LEVEL + idx))
            cap = meta.capacity if meta.capacity is not None and meta.capacity > 0 else None
            out.append(Reading("supply.level_pct", supply_percent(level, cap), meta.name, "%"))
            out.append(Reading("supply.empty", supply_empty(level), meta.name))
            out.append(Reading("supply.capacity", cap, meta.name, "units"))
        for idx, meta in self.trays.items():
            level = number(got.get(PRT_INPUT_LEVEL + idx))
            cap = meta.capacity if meta.capacity is not None and meta.capacity > 0 else None
            out.append(Reading("tray.level_pct", supply_percent(level, cap), meta.name, "%"))
            out.append(Reading("tray.capacity", cap, meta.name, "sheets"))
        errors = await snmp.walk_columns([HR_PRINTER_ERRORS])
        bits = b""
        for row in errors.values():
            value = row.get(HR_PRINTER_ERRORS)
            if isinstance(value, OctetString):
                bits = value.value
                break
        if errors:
            for metric, bit in PRINTER_ERROR_BITS.items():
                byte = bits[bit // 8] if bit // 8 < len(bits) else 0
                out.append(Reading(metric, float(bool(byte & (0x80 >> (bit % 8))))))
        return out


# ---------------------------------------------------------------- UPS (UPS-MIB and vendors)


@dataclass(frozen=True)
class UpsSource:
    """Where one UPS fact lives in one MIB, and how to scale it to our unit."""

    oid: OID
    convert: Callable[[float], float | None]


def _scale(factor: float) -> Callable[[float], float | None]:
    return lambda v: v * factor


def _state_in(on: set[int]) -> Callable[[float], float | None]:
    return lambda v: float(int(v) in on)


def _selftest(ok: set[int], bad: set[int]) -> Callable[[float], float | None]:
    return lambda v: 1.0 if int(v) in ok else (0.0 if int(v) in bad else None)


UPS_MIB = "1.3.6.1.2.1.33.1."
APC = "1.3.6.1.4.1.318.1.1.1."
CPW = "1.3.6.1.4.1.3808.1.1.1."
XUPS = "1.3.6.1.4.1.534.1."
MGE = "1.3.6.1.4.1.705.1."
# Per fact, the sources in order of preference: vendor high-precision values first, then the
# standard UPS-MIB, then older vendor MIBs. TimeTicks arrive as hundredths of a second.
UPS_FACTS: dict[str, tuple[str, tuple[UpsSource, ...]]] = {
    "ups.on_battery": (
        "",
        (
            UpsSource(oid(APC + "4.1.1.0"), _state_in({3})),  # upsBasicOutputStatus onBattery
            UpsSource(oid(CPW + "4.1.1.0"), _state_in({3})),  # upsBaseOutputStatus onBattery
            UpsSource(oid(UPS_MIB + "4.1.0"), _state_in({5})),  # upsOutputSource battery
            UpsSource(oid(XUPS + "4.5.0"), _state_in({5})),  # xupsOutputSource battery
        ),
    ),
    "ups.charge_pct": (
        "%",
        (
            UpsSource(oid(APC + "2.3.1.0"), _scale(0.1)),  # upsHighPrecBatteryCapacity
            UpsSource(oid(APC + "2.2.1.0"), _scale(1)),  # upsAdvBatteryCapacity
            UpsSource(oid(CPW + "2.2.1.0"), _scale(1)),  # upsAdvanceBatteryCapacity
            UpsSource(oid(UPS_MIB + "2.4.0"), _scale(1)),  # upsEstimatedChargeRemaining
            UpsSource(oid(XUPS + "2.4.0"), _scale(1)),  # xupsBatCapacity
            UpsSource(oid(MGE + "5.2.0"), _scale(1)),  # upsmgBatteryLevel
        ),
    ),
    "ups.runtime_s": (
        "s",
        (
            UpsSource(oid(APC + "2.2.3.0"), _scale(0.01)),  # upsAdvBatteryRunTimeRemaining
            UpsSource(oid(CPW + "2.2.4.0"), _scale(0.01)),  # upsAdvanceBatteryRunTimeRemaining
            UpsSource(oid(UPS_MIB + "2.3.0"), _scale(60)),  # upsEstimatedMinutesRemaining
            UpsSource(oid(XUPS + "2.1.0"), _scale(1)),  # xupsBatTimeRemaining
            UpsSource(oid(MGE + "5.1.0"), _scale(1)),  # upsmgBatteryRemainingTime
        ),
    ),
    "ups.load_pct": (
        "%",
        (
            UpsSource(oid(APC + "4.3.3.0"), _scale(0.1)),  # upsHighPrecOutputLoad
            UpsSource(oid(APC + "4.2.3.0"), _scale(1)),  # upsAdvOutputLoad
            UpsSource(oid(CPW + "4.2.3.0"), _scale(1)),  # upsAdvanceOutputLoad
            UpsSource(oid(UPS_MIB + "4.4.1.5.1"), _scale(1)),  # upsOutputPercentLoad.1
            UpsSource(oid(XUPS + "4.1.0"), _scale(1)),  # xupsOutputLoad
        ),
    ),
    "ups.battery_temp_c": (
        "°C",
        (
            UpsSource(oid(APC + "2.3.2.0"), _scale(0.1)),  # upsHighPrecBatteryTemperature
            UpsSource(oid(APC + "2.2.2.0"), _scale(1)),  # upsAdvBatteryTemperature
            UpsSource(oid(CPW + "2.2.3.0"), _scale(1)),  # upsAdvanceBatteryTemperature
            UpsSource(oid(UPS_MIB + "2.7.0"), _scale(1)),  # upsBatteryTemperature
        ),
    ),
    "ups.input_v": (
        "V",
        (
            UpsSource(oid(APC + "3.3.1.0"), _scale(0.1)),  # upsHighPrecInputLineVoltage
            UpsSource(oid(APC + "3.2.1.0"), _scale(1)),  # upsAdvInputLineVoltage
            UpsSource(oid(CPW + "3.2.1.0"), _scale(0.1)),  # upsAdvanceInputLineVoltage
            UpsSource(oid(UPS_MIB + "3.3.1.3.1"), _scale(1)),  # upsInputVoltage.1
        ),
    ),
    "ups.battery_replace": (
        "",
        (
            UpsSource(oid(APC + "2.2.4.0"), _state_in({2})),  # upsAdvBatteryReplaceIndicator
            UpsSource(oid(CPW + "2.2.5.0"), _state_in({2})),  # upsAdvanceBatteryReplaceIndicator
        ),
    ),
    "ups.selftest_ok": (
        "",
        (
            UpsSource(oid(APC + "7.2.3.0"), _selftest({1}, {2})),  # upsAdvTestDiagnosticsResults
            UpsSource(oid(CPW + "7.2.3.0"), _selftest({1}, {2})),  # upsAdvanceTestDiagnostics..
            UpsSource(oid(UPS_MIB + "7.3.0"), _selftest({1, 2}, {3})),  # upsTestResultsSummary
        ),
    ),
}


class UpsProfile(Profile):
    """On battery, charge, runtime, load, temperature, input voltage, last self-test."""

    name = "ups"

    def __init__(self) -> None:
        super().__init__()
        # After the first poll, only the OIDs that answered are asked for again.
        self.sources: dict[str, UpsSource] | None = None

    async def _poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        if self.sources is None or self.needs_meta(ctx):
            oids = [s.oid for _, sources in UPS_FACTS.values() for s in sources]
            got = await snmp.get(oids)
            self.sources = {}
            for metric, (_, sources) in UPS_FACTS.items():
                for source in sources:
                    if number(got.get(source.oid)) is not None:
                        self.sources[metric] = source
                        break
        else:
            got = await snmp.get([s.oid for s in self.sources.values()])
        out = []
        for metric, source in self.sources.items():
            raw = number(got.get(source.oid))
            value = None if raw is None else source.convert(raw)
            out.append(Reading(metric, value, "", UPS_FACTS[metric][0]))
        return out


# ---------------------------------------------------------------- choosing profiles

ProfileFactory = Callable[[], Profile]
KIND_PROFILES: dict[str, Sequence[ProfileFactory]] = {
    "router": (InterfacesProfile, CpuProfile, StorageProfile),
    "switch": (InterfacesProfile, CpuProfile),
    "ap": (InterfacesProfile, CpuProfile),
    "nas": (InterfacesProfile, StorageProfile, CpuProfile),
    "server": (InterfacesProfile, StorageProfile, CpuProfile),
    "workstation": (InterfacesProfile, StorageProfile, CpuProfile),
    "printer": (InterfacesProfile, PrinterProfile, StorageProfile),
    "ups": (InterfacesProfile, UpsProfile),
}
DEFAULT_PROFILES: Sequence[ProfileFactory] = (InterfacesProfile, StorageProfile)
SYNOLOGY_ENTERPRISE = (1, 3, 6, 1, 4, 1, 6574)
UPS_ENTERPRISES = {(1, 3, 6, 1, 4, 1, n) for n in (318, 3808, 534, 705)}


def profiles_for(kind: str, sys_object_id: str = "") -> list[Profile]:
    """The profiles one device gets, system first (its uptime is every rate's time base)."""
    factories = list(KIND_PROFILES.get(kind, DEFAULT_PROFILES))
    enterprise: OID = ()
    if sys_object_id:
        try:
            enterprise = oid_from_str(sys_object_id)[:7]
        except ValueError:
            enterprise = ()
    if enterprise == SYNOLOGY_ENTERPRISE or kind == "nas":
        factories.append(SynologyProfile)
    if enterprise in UPS_ENTERPRISES and UpsProfile not in factories:
        factories.append(UpsProfile)
    return [SystemProfile()] + [f() for f in dict.fromkeys(factories)]
