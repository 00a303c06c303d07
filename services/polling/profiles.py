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
from services.polling.rates import SPEED_SLACK, CounterReading, RateTracker
from services.snmp.errors import SnmpError, SnmpErrorStatus, SnmpWalkLoop
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
        """This profile's readings. A table the agent answered badly (a walk that loops, an
        error status) costs this profile's readings only: it is noted in ``ctx.errors`` and
        the device's other profiles still run. Silence (SnmpTimeout) is raised: asking the
        next profile would only spend another timeout."""
        try:
            out = await self._poll(snmp, ctx)
        except (SnmpWalkLoop, SnmpErrorStatus) as exc:
            ctx.errors.append(f"{self.name}: {exc}")
            out = []
        self.polls += 1
        return out

    async def _poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        raise NotImplementedError


# ---------------------------------------------------------------- system (SNMPv2-MIB)

SYS_UPTIME = oid("1.3.6.1.2.1.1.3.0")  # the SNMP agent's uptime (TimeTicks, 32 bits)
HR_SYSTEM_UPTIME = oid("1.3.6.1.2.1.25.1.1.0")  # the host's uptime, not the agent's
SNMP_ENGINE_TIME = oid("1.3.6.1.6.3.10.2.1.3.0")  # SNMP-FRAMEWORK-MIB snmpEngineTime (s)
#: A TimeTicks counter (hundredths of a second in 32 bits) rolls over after 497.1 days.
TIMETICKS_WRAP_S = 2**32 / 100
#: How far a wrapped uptime may miss the poll interval and still be a roll-over (s, plus a
#: share of the interval: agents update sysUpTime lazily, polls are not exactly periodic).
WRAP_SLACK_S = 10.0
WRAP_SLACK_SHARE = 0.25
#: A step back smaller than this is jitter between the agent's clocks, not a restart (s).
BACKWARDS_TOLERANCE_S = 1.0


def went_back(prev_s: float, cur_s: float, elapsed_s: float, wrap_s: float | None) -> bool:
    """Whether an uptime clock restarted between two polls ``elapsed_s`` apart: it went
    backwards, and not by rolling over (the rolled-over difference would match the interval)."""
    if cur_s >= prev_s - BACKWARDS_TOLERANCE_S:
        return False
    if wrap_s is not None:
        wrapped = cur_s + wrap_s - prev_s
        if abs(wrapped - elapsed_s) <= WRAP_SLACK_S + WRAP_SLACK_SHARE * elapsed_s:
            return False  # a roll-over of the 32-bit counter, not a restart
    return True


class SystemProfile(Profile):
    """Uptime: reboot detection, and the time base of counter rates.

    Three clocks may answer: sysUpTime (the agent's, 32-bit TimeTicks that roll over after
    497 days), hrSystemUptime (the host's, same width) and snmpEngineTime (seconds since the
    SNMP engine started). A reboot is claimed only when every clock asked agrees: sysUpTime
    going backwards is checked against a roll-over, then against hrSystemUptime (an agent
    restarting on a host that kept running resets sysUpTime only), and, without a host clock,
    against snmpEngineTime (asked only then, in its own request: some agents never answer
    for it). The uptime reported (``system.uptime_s``) goes backwards only on a reboot, so
    every reader comparing two readings (alerting, counter rates) reaches the same verdict.
    """

    name = "system"

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[OID, float] = {}  # each clock's previous reading (s)
        self.last_at_s: float | None = None
        self.last_uptime_s: float | None = None  # the previous reported uptime
        self.offset_s = 0.0  # added to the clock read after roll-overs and agent restarts

    async def _poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        got = await snmp.get([SYS_UPTIME, HR_SYSTEM_UPTIME])
        now = {o: v.seconds for o in (SYS_UPTIME, HR_SYSTEM_UPTIME)
               if isinstance(v := got.get(o), TimeTicks)}  # fmt: skip
        clock = SYS_UPTIME if SYS_UPTIME in now else HR_SYSTEM_UPTIME
        if clock not in now:
            ctx.errors.append("sysUpTime missing or not TimeTicks: reboots go undetected")
            return []
        raw = now[clock]
        elapsed = ctx.at_s - self.last_at_s if self.last_at_s is not None else 0.0
        rebooted = await self._rebooted(snmp, now, elapsed)
        if self.last_uptime_s is None or rebooted:
            self.offset_s = 0.0
            uptime = raw
        else:
            uptime = raw + self.offset_s
            if uptime < self.last_uptime_s:
                # The clock rolled over, or the agent restarted and the host did not: keep
                # counting from the last reading.
                self.offset_s += self.last_uptime_s + elapsed - uptime
                uptime = self.last_uptime_s + elapsed
        ctx.uptime_s = uptime
        ctx.rebooted = rebooted
        self.last, self.last_at_s, self.last_uptime_s = now, ctx.at_s, uptime
        return [Reading("system.uptime_s", uptime, unit="s")]

    async def _rebooted(self, snmp: SnmpAccess, now: dict[OID, float], elapsed: float) -> bool:
        verdicts = [
            went_back(self.last[o], now[o], elapsed, TIMETICKS_WRAP_S)
            for o in (SYS_UPTIME, HR_SYSTEM_UPTIME)
            if o in now and o in self.last
        ]
        if not verdicts or not all(verdicts):
            return False
        if HR_SYSTEM_UPTIME in now and HR_SYSTEM_UPTIME in self.last:
            return True  # the host's own clock restarted too
        try:
            engine = number((await snmp.get([SNMP_ENGINE_TIME])).get(SNMP_ENGINE_TIME))
        except SnmpError:
            engine = None
        # The engine has been running longer than the poll interval: it did not restart.
        return not (engine is not None and engine > elapsed + WRAP_SLACK_S)


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
        self.hc: bool | None = None  # whether any interface answered ifHC* (last poll)
        # Per interface, the last (64-bit, 32-bit) octet readings: frozen 64-bit detection.
        self.last_octets: dict[OID, tuple[tuple[int, ...], tuple[int, ...]]] = {}

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

    async def _poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        out: list[Reading] = []
        fresh = self.needs_meta(ctx)
        if fresh:
            await self._refresh(snmp)
        if not self.meta:
            return out
        columns = [IF_ADMIN, IF_OPER, IF_IN_ERRORS, IF_OUT_ERRORS, IF_IN_DISCARDS, IF_OUT_DISCARDS]
        # Both widths, every poll: the choice is made per interface (below), since one agent
        # may give 64-bit counters on some ports, none on others, and frozen ones on a third.
        rows = await snmp.walk_columns([*columns, IF_HC_IN, IF_HC_OUT])
        rows = _merge(rows, await snmp.walk_columns([IF_IN_OCTETS, IF_OUT_OCTETS]))
        self.hc = any(isinstance(r.get(IF_HC_IN), Counter64) for r in rows.values())
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
            # The stated speed bounds only a 32-bit counter's wrap decision (rates.py).
            max_bytes = meta.speed_bps / 8 * SPEED_SLACK if meta.speed_bps else None
            use_hc = self._use_hc(idx, row)
            for metric, hc_col, col32 in (
                ("if.in_bps", IF_HC_IN, IF_IN_OCTETS),
                ("if.out_bps", IF_HC_OUT, IF_OUT_OCTETS),
            ):
                rates = {
                    bits: self._rate(ctx, (metric, idx, bits), row.get(col), max_bytes)
                    for bits, col in ((64, hc_col), (32, col32))
                }
                rate = rates[64] if use_hc else rates[32]
                if rate is not None:
                    out.append(Reading(metric, rate * 8, inst, "bit/s"))
            for metric, col in (
                ("if.in_errors_ps", IF_IN_ERRORS),
                ("if.out_errors_ps", IF_OUT_ERRORS),
                ("if.in_discards_ps", IF_IN_DISCARDS),
                ("if.out_discards_ps", IF_OUT_DISCARDS),
            ):
                rate = self._rate(ctx, (metric, idx), row.get(col), None)
                if rate is not None:
                    out.append(Reading(metric, rate, inst, "1/s"))
        return out

    @staticmethod
    def _rate(
        ctx: PollContext, key: tuple[object, ...], value: SnmpValue | None, limit: float | None
    ) -> float | None:
        if not isinstance(value, Counter32 | Counter64):
            return None
        bits = 64 if isinstance(value, Counter64) else 32
        return ctx.rates.update(key, CounterReading(value.value, bits, ctx.at_s, ctx.uptime_s),
                                limit)  # fmt: skip

    def _use_hc(self, idx: OID, row: dict[OID, SnmpValue]) -> bool:
        """64-bit counters for this interface, unless absent or frozen while the 32-bit ones
        move (agents that list ifHC* but never update them, or leave them at 0)."""
        hc = [row.get(c) for c in (IF_HC_IN, IF_HC_OUT)]
        c32 = [row.get(c) for c in (IF_IN_OCTETS, IF_OUT_OCTETS)]
        if not all(isinstance(v, Counter64) for v in hc):
            return False
        hc_now = tuple(v.value for v in hc if isinstance(v, Counter64))
        c32_now = tuple(v.value for v in c32 if isinstance(v, Counter32))
        last = self.last_octets.get(idx)
        self.last_octets[idx] = (hc_now, c32_now)
        if len(c32_now) == 2 and not any(hc_now) and any(c32_now):
            return False  # 64-bit at 0 while 32-bit counted something: not implemented
        # Frozen 64-bit counters while the 32-bit ones move: use the 32-bit ones.
        frozen = last is not None and hc_now == last[0] and c32_now != last[1]
        return not (frozen and len(c32_now) == 2)


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
# Read-only images are 100 % used by design and can never be acted on: snap packages
# (squashfs under /snap), loop-mounted images and ISOs, optical media, live-system and
# read-only roots, the Nix store. Reported (size, used), never judged for fullness.
FULL_BY_DESIGN = re.compile(
    r"^/snap(/|$)|^/var/lib/snapd/|/loop\d|\.(iso|img|squashfs|sfs)$|"
    r"^/(media|mnt|run/media)/(.+/)?(cdrom|dvd|sr\d|iso)\w*(/|$)|^/cdrom|"
    r"^/(rofs|run/archiso|lib/live/mount|run/initramfs/live)(/|$)|^/nix/store$|"
    r"type: (squashfs|iso9660|udf|cd9660|erofs|cramfs)\b",
    re.IGNORECASE,
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
            alertable = (
                (kind_oid in HR_ALERTABLE or not standard)
                and not PSEUDO_MOUNTS.search(descr)
                and not FULL_BY_DESIGN.search(descr)
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


# ---------------------------------------------------------------- NAS health (vendor MIBs)

# Every value of a vendor status enum is named and given one meaning. Only "fault" raises an
# alert; "busy" (scrubbing, rebuilding, expanding) and "idle" (an empty bay, a new disk not
# yet initialised) are reported, never judged; a value not listed is unknown (None).
OK, BUSY, IDLE, FAULT = "ok", "busy", "idle", "fault"


@dataclass(frozen=True)
class StatusEnum:
    """A vendor status column: value -> (the vendor's name for it, what it means)."""

    mib: str
    values: dict[int, tuple[str, str]]

    def meaning(self, value: float | None) -> tuple[str, str] | None:
        return None if value is None else self.values.get(int(value))


SYNOLOGY_RAID_STATUS = StatusEnum(
    "SYNOLOGY-RAID-MIB raidStatus",
    {
        1: ("Normal", OK),
        2: ("Repairing", BUSY),
        3: ("Migrating", BUSY),
        4: ("Expanding", BUSY),
        5: ("Deleting", BUSY),
        6: ("Creating", BUSY),
        7: ("RaidSyncing", BUSY),
        8: ("RaidParityChecking", BUSY),
        9: ("RaidAssembling", BUSY),
        10: ("Canceling", BUSY),
        11: ("Degrade", FAULT),
        12: ("Crashed", FAULT),
        13: ("DataScrubbing", BUSY),
        14: ("RaidDeploying", BUSY),
        15: ("RaidUnDeploying", BUSY),
        16: ("RaidMountCache", BUSY),
        17: ("RaidUnmountCache", BUSY),
        18: ("RaidExpandingUnfinishedSHR", BUSY),
        19: ("RaidConvertSHRToPool", BUSY),
        20: ("RaidMigrateSHR1ToSHR2", BUSY),
        21: ("RaidUnknownStatus", "unknown"),
    },
)
SYNOLOGY_DISK_STATUS = StatusEnum(
    "SYNOLOGY-DISK-MIB diskStatus",
    {
        1: ("Normal", OK),
        2: ("Initialized", OK),
        3: ("NotInitialized", IDLE),  # a new disk, not yet part of a volume: not failed
        4: ("SystemPartitionFailed", FAULT),
        5: ("Crashed", FAULT),
    },
)
QNAP_DISK_STATUS = StatusEnum(
    "NAS-MIB HdStatus (QNAP)",
    {
        0: ("ready", OK),
        -4: ("unknown", "unknown"),
        -5: ("noDisk", IDLE),  # an empty bay
        -6: ("invalid", FAULT),
        -9: ("rwError", FAULT),
    },
)


@dataclass(frozen=True)
class NasTables:
    """Where one NAS maker keeps its disks and arrays (columns of its MIB)."""

    vendor: str
    disk_name: OID
    disk_status: OID
    disk_enum: StatusEnum
    disk_temp: OID | None = None
    array_name: OID | None = None
    array_status: OID | None = None
    array_enum: StatusEnum | None = None
    # Arrays whose status is a string ("Ready", "Rebuilding...", "Degraded"): words -> meaning.
    array_status_words: tuple[tuple[str, str], ...] = ()


SYNOLOGY = NasTables(
    "Synology",
    disk_name=oid("1.3.6.1.4.1.6574.2.1.1.2"),  # diskID
    disk_status=oid("1.3.6.1.4.1.6574.2.1.1.5"),  # diskStatus
    disk_enum=SYNOLOGY_DISK_STATUS,
    disk_temp=oid("1.3.6.1.4.1.6574.2.1.1.6"),  # diskTemperature (°C)
    array_name=oid("1.3.6.1.4.1.6574.3.1.1.2"),  # raidName
    array_status=oid("1.3.6.1.4.1.6574.3.1.1.3"),  # raidStatus
    array_enum=SYNOLOGY_RAID_STATUS,
)
QNAP = NasTables(
    "QNAP",
    disk_name=oid("1.3.6.1.4.1.24681.1.2.11.1.2"),  # HdDescr
    disk_status=oid("1.3.6.1.4.1.24681.1.2.11.1.4"),  # HdStatus
    disk_enum=QNAP_DISK_STATUS,
    disk_temp=oid("1.3.6.1.4.1.24681.1.2.11.1.3"),  # HdTemperature ("36 C/96 F")
    array_name=oid("1.3.6.1.4.1.24681.1.2.17.1.2"),  # SysVolumeDescr
    array_status=oid("1.3.6.1.4.1.24681.1.2.17.1.6"),  # SysVolumeStatus (a string)
    array_status_words=(
        (r"degraded|crash|fail|error|not active|unmounted", FAULT),
        (r"rebuild|resync|scrub|check|migrat|expand|initiali|synchroni", BUSY),
        (r"ready|normal|good", OK),
    ),
)
NAS_TABLES = (SYNOLOGY, QNAP)
# Backwards-compatible names (docs, tests).
SYNO_DISK_ID, SYNO_DISK_STATUS, SYNO_DISK_TEMP = (
    SYNOLOGY.disk_name,
    SYNOLOGY.disk_status,
    SYNOLOGY.disk_temp,
)
SYNO_RAID_NAME, SYNO_RAID_STATUS = oid("1.3.6.1.4.1.6574.3.1.1.2"), oid("1.3.6.1.4.1.6574.3.1.1.3")


def celsius(value: SnmpValue | None) -> float | None:
    """A temperature in °C: a number, or QNAP's text "36 C/96 F"."""
    if isinstance(value, OctetString):
        match = re.match(r"\s*(-?\d+(?:\.\d+)?)\s*C\b", value.text(32))
        return float(match.group(1)) if match else None
    return number(value)


def _state_readings(prefix: str, inst: str, meaning: tuple[str, str] | None) -> list[Reading]:
    """``{prefix}.ok`` (0 only for a fault) and ``{prefix}.busy`` from a named state."""
    if meaning is None or meaning[1] == "unknown":
        return [Reading(f"{prefix}.ok", None, inst)]
    state = meaning[1]
    return [
        Reading(f"{prefix}.ok", 0.0 if state == FAULT else 1.0, inst),
        Reading(f"{prefix}.busy", float(state == BUSY), inst),
    ]


class NasHealthProfile(Profile):
    """Disk health and temperature, array (RAID / volume) state, from the maker's MIB.

    Whichever of NAS_TABLES answers is used; each status value means what its enum says, so
    a monthly data scrub (Synology raidStatus 13) or a new disk is never reported as a fault.
    """

    name = "nas"

    def __init__(self) -> None:
        super().__init__()
        self.tables: NasTables | None = None
        self.disks: dict[OID, str] = {}
        self.arrays: dict[OID, str] = {}

    async def _refresh(self, snmp: SnmpAccess) -> None:
        self.tables, self.disks, self.arrays = None, {}, {}
        for tables in NAS_TABLES:
            disks = await snmp.walk_columns([tables.disk_name])
            arrays = await snmp.walk_columns([tables.array_name]) if tables.array_name else {}
            if not disks and not arrays:
                continue
            self.tables = tables
            self.disks = _unique({i: text(r.get(tables.disk_name)) for i, r in disks.items()})
            if tables.array_name is not None:
                names = {i: text(r.get(tables.array_name)) for i, r in arrays.items()}
                self.arrays = _unique(names)
            return

    async def _poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        if self.needs_meta(ctx):
            await self._refresh(snmp)
        t = self.tables
        out: list[Reading] = []
        if t is None:
            return out
        if self.disks:
            cols = [t.disk_status] + ([t.disk_temp] if t.disk_temp else [])
            rows = await snmp.walk_columns(cols)
            for idx, name in self.disks.items():
                row = rows.get(idx, {})
                meaning = t.disk_enum.meaning(number(row.get(t.disk_status)))
                ok = _state_readings("disk.health", name, meaning)[0]
                out.append(Reading("disk.health_ok", ok.value, name))
                if t.disk_temp is not None:
                    out.append(Reading("disk.temp_c", celsius(row.get(t.disk_temp)), name, "°C"))
        if self.arrays and t.array_status is not None:
            rows = await snmp.walk_columns([t.array_status])
            for idx, name in self.arrays.items():
                value = rows.get(idx, {}).get(t.array_status)
                state: tuple[str, str] | None = None
                if t.array_enum is not None:
                    state = t.array_enum.meaning(number(value))
                elif isinstance(value, OctetString):
                    said = value.text(64)
                    state = next(
                        ((said, m) for w, m in t.array_status_words if re.search(w, said, re.I)),
                        None,
                    )
                out.extend(_state_readings("raid", name, state))
        return out


# The profile's old name: it now reads every NAS maker in NAS_TABLES.
SynologyProfile = NasHealthProfile


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
        "raid.busy",
        "supply.empty",
        "supply.almost_empty",
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


@dataclass(frozen=True)
class VendorSupplies:
    """A maker's own supply table, read when the Printer-MIB gives no number (-3 "some
    remaining", -2 unknown): names and levels in percent, with the maker's special values."""

    vendor: str
    name_col: OID
    level_col: OID
    almost_empty: frozenset[int]  # levels that mean "almost empty" (no percentage)


VENDOR_SUPPLIES: tuple[VendorSupplies, ...] = (
    VendorSupplies(
        "Ricoh",
        name_col=oid("1.3.6.1.4.1.367.3.2.1.2.24.1.1.2"),  # ricohEngTonerName
        level_col=oid("1.3.6.1.4.1.367.3.2.1.2.24.1.1.5"),  # ricohEngTonerLevel: %, -100 near end
        almost_empty=frozenset({-100}),
    ),
)


def _same_supply(a: str, b: str) -> bool:
    return re.sub(r"\W+", "", a).lower() == re.sub(r"\W+", "", b).lower()


class PrinterProfile(Profile):
    """Supply levels (toner, ink, drums), paper trays, and jam/door/paper error states."""

    name = "printer"

    def __init__(self) -> None:
        super().__init__()
        self.supplies: dict[OID, SupplyMeta] = {}
        self.trays: dict[OID, SupplyMeta] = {}
        # Supplies the Printer-MIB gives no number for, and the maker's row that has one.
        self.vendor: VendorSupplies | None = None
        self.vendor_rows: dict[OID, OID] = {}
        self.vendor_looked = False

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
        self.vendor, self.vendor_rows, self.vendor_looked = None, {}, False

    async def _find_vendor_rows(self, snmp: SnmpAccess, unknown: list[OID]) -> None:
        """Match supplies without a number to the maker's table, by name, else by order."""
        self.vendor_looked = True
        for table in VENDOR_SUPPLIES:
            rows = await snmp.walk_columns([table.name_col])
            if not rows:
                continue
            names = {i: text(r.get(table.name_col)) for i, r in rows.items()}
            for n, idx in enumerate(unknown):
                match = next(
                    (i for i, name in names.items() if _same_supply(name, self.supplies[idx].name)),
                    None,
                )
                if match is None and len(names) == len(self.supplies):
                    match = list(names)[list(self.supplies).index(idx)] if n < len(names) else None
                if match is not None:
                    self.vendor_rows[idx] = match
            self.vendor = table
            return

    async def _poll(self, snmp: SnmpAccess, ctx: PollContext) -> list[Reading]:
        if self.needs_meta(ctx):
            await self._refresh(snmp)
        out: list[Reading] = []
        oids = [PRT_SUPPLY_LEVEL + i for i in self.supplies] + [
            PRT_INPUT_LEVEL + i for i in self.trays
        ]
        got = await snmp.get(oids) if oids else {}
        unknown = [
            idx
            for idx in self.supplies
            if (level := number(got.get(PRT_SUPPLY_LEVEL + idx))) is not None and level < 0
        ]
        if unknown and not self.vendor_looked:
            await self._find_vendor_rows(snmp, unknown)
        vendor: dict[OID, float | None] = {}
        if self.vendor is not None and self.vendor_rows:
            col = self.vendor.level_col
            answer = await snmp.get([col + row for row in self.vendor_rows.values()])
            vendor = {i: number(answer.get(col + row)) for i, row in self.vendor_rows.items()}
        for idx, meta in self.supplies.items():
            level = number(got.get(PRT_SUPPLY_LEVEL + idx))
            cap = meta.capacity if meta.capacity is not None and meta.capacity > 0 else None
            pct = supply_percent(level, cap)
            own = vendor.get(idx)
            if own is not None and self.vendor is not None:
                if pct is None and 0 <= own <= 100:
                    pct = own  # the maker's level, in percent
                near_end = int(own) in self.vendor.almost_empty
                out.append(Reading("supply.almost_empty", float(near_end), meta.name))
            out.append(Reading("supply.level_pct", pct, meta.name, "%"))
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
NAS_ENTERPRISES = {(1, 3, 6, 1, 4, 1, n) for n in (6574, 24681, 55062)}  # Synology, QNAP
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
    if enterprise in NAS_ENTERPRISES or kind == "nas":
        factories.append(NasHealthProfile)
    if enterprise in UPS_ENTERPRISES and UpsProfile not in factories:
        factories.append(UpsProfile)
    return [SystemProfile()] + [f() for f in dict.fromkeys(factories)]
