"""The field cases (../shared/field-cases/CASES.md), each with its right value, plus one variant
of our own per kind, through real agents.

The recordings (and our variants, written here as snmprec) are served by one snmpsim on
loopback; a ``-t0``/``-t1`` pair is the same device at two polls, read by the same profiles
with the same rate memory, the clock of the second poll set to the interval the case states.
Profiles are the poller's own (services/polling/profiles.py), alerts the real rules
(services/alerting/rules.py). Walks out of order need an agent that answers from its own list,
which snmpsim cannot be: a small UDP agent (tests/polling_agents.TableAgent) does that.
"""

from __future__ import annotations

import bisect
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

from core.schema import Secret
from core.settings.alerting import AlertingSettings
from services.alerting.rules import Condition, DeviceMemory, evaluate
from services.discovery.fingerprint import ClientReader
from services.discovery.multihomed import MultiHomed, split_conflicts
from services.discovery.snmp_identity import read_identity
from services.polling.access import ClientAccess
from services.polling.profiles import (
    CpuProfile,
    InterfacesProfile,
    NasHealthProfile,
    PollContext,
    PrinterProfile,
    Profile,
    Reading,
    StorageProfile,
    SystemProfile,
)
from services.polling.rates import RateTracker
from services.polling.results import CheckOutcome, PollResult
from services.snmp import SnmpClient, SnmpCredential, Target
from services.snmp.values import (
    OID,
    Counter32,
    EndOfMibView,
    Gauge32,
    Integer,
    ObjectIdentifier,
    OctetString,
    SnmpValue,
    TimeTicks,
    Varbind,
    oid_from_str,
)
from simsite import netns
from simsite.harness.paths import CORPUS, corpus_missing_reason
from simsite.harness.snmp_corpus import corpus_target
from simsite.local_agents import Snmpsim
from tests.conftest import IS_ROOT
from tests.polling_agents import TableAgent

CASES = CORPUS.parent / "field-cases"
_missing = corpus_missing_reason(CASES)
if _missing:
    print(f"SKIP test_field_cases: {_missing}")
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")

DAY_S = 86400

# ---- our variants, one per kind (snmprec: OID|tag|value) ----
_SYS = "1.3.6.1.2.1.1"


def _rec(*lines: str) -> str:
    return "\n".join(lines) + "\n"


VARIANTS: dict[str, str] = {
    # An SNMP agent restarted on a host that kept running: sysUpTime starts again, the host's
    # hrSystemUptime counts on (60 s later).
    "agent-restart-t0": _rec(f"{_SYS}.1.0|4|Linux files 6.1.0", f"{_SYS}.3.0|67|864000000",
                             "1.3.6.1.2.1.25.1.1.0|67|900000000"),
    "agent-restart-t1": _rec(f"{_SYS}.1.0|4|Linux files 6.1.0", f"{_SYS}.3.0|67|3000",
                             "1.3.6.1.2.1.25.1.1.0|67|900006000"),
    # A real reboot: every clock starts again. Must still be reported.
    "real-reboot-t0": _rec(f"{_SYS}.1.0|4|Linux files 6.1.0", f"{_SYS}.3.0|67|864000000",
                           "1.3.6.1.2.1.25.1.1.0|67|900000000"),
    "real-reboot-t1": _rec(f"{_SYS}.1.0|4|Linux files 6.1.0", f"{_SYS}.3.0|67|3000",
                           "1.3.6.1.2.1.25.1.1.0|67|3500"),
    # Another vendor's status enum: a QNAP with a ready disk, an empty bay, a failing disk, a
    # volume rebuilding and one degraded; temperatures as QNAP writes them ("36 C/96 F").
    "qnap-disks": _rec(
        f"{_SYS}.1.0|4|Linux TS-453D 5.10.60-qnap",
        f"{_SYS}.2.0|6|1.3.6.1.4.1.24681",
        f"{_SYS}.3.0|67|8640000",
        *(f"1.3.6.1.4.1.24681.1.2.11.1.2.{i}|4|HDD{i}" for i in (1, 2, 3)),
        "1.3.6.1.4.1.24681.1.2.11.1.3.1|4|36 C/96 F",
        "1.3.6.1.4.1.24681.1.2.11.1.3.2|4|--",
        "1.3.6.1.4.1.24681.1.2.11.1.3.3|4|41 C/105 F",
        "1.3.6.1.4.1.24681.1.2.11.1.4.1|2|0",
        "1.3.6.1.4.1.24681.1.2.11.1.4.2|2|-5",
        "1.3.6.1.4.1.24681.1.2.11.1.4.3|2|-9",
        "1.3.6.1.4.1.24681.1.2.17.1.2.1|4|DataVol1",
        "1.3.6.1.4.1.24681.1.2.17.1.2.2|4|Backup",
        "1.3.6.1.4.1.24681.1.2.17.1.6.1|4|Rebuilding...",
        "1.3.6.1.4.1.24681.1.2.17.1.6.2|4|Degraded",
    ),
    # A Synology with a new disk not yet initialised: not a failed disk.
    "synology-new-disk": _rec(
        f"{_SYS}.1.0|4|Linux nas 4.4.302+",
        f"{_SYS}.3.0|67|8640000",
        "1.3.6.1.4.1.6574.2.1.1.2.0|4|Drive 1",
        "1.3.6.1.4.1.6574.2.1.1.2.1|4|Drive 2",
        "1.3.6.1.4.1.6574.2.1.1.5.0|2|1",
        "1.3.6.1.4.1.6574.2.1.1.5.1|2|3",
        "1.3.6.1.4.1.6574.3.1.1.2.0|4|Volume 1",
        "1.3.6.1.4.1.6574.3.1.1.3.0|2|11",
    ),
    # Other read-only file systems: the Nix store and a loop-mounted ISO, both 100 % used,
    # next to a data volume at 97 % that must still be judged.
    "nixos-readonly": _rec(
        f"{_SYS}.1.0|4|Linux builder 6.6.30 #1-NixOS SMP x86_64",
        f"{_SYS}.3.0|67|360000",
        *(f"1.3.6.1.2.1.25.2.3.1.2.{i}|6|1.3.6.1.2.1.25.2.1.4" for i in (31, 32, 33)),
        "1.3.6.1.2.1.25.2.3.1.3.31|4|/nix/store",
        "1.3.6.1.2.1.25.2.3.1.3.32|4|/mnt/iso",
        "1.3.6.1.2.1.25.2.3.1.3.33|4|/srv",
        *(f"1.3.6.1.2.1.25.2.3.1.4.{i}|2|4096" for i in (31, 32, 33)),
        "1.3.6.1.2.1.25.2.3.1.5.31|2|1000",
        "1.3.6.1.2.1.25.2.3.1.5.32|2|1000",
        "1.3.6.1.2.1.25.2.3.1.5.33|2|1000",
        "1.3.6.1.2.1.25.2.3.1.6.31|2|1000",
        "1.3.6.1.2.1.25.2.3.1.6.32|2|1000",
        "1.3.6.1.2.1.25.2.3.1.6.33|2|970",
    ),
    # Windows-1252 bytes (the euro sign is 0x80 there, undefined in Latin-1) next to a string
    # that is valid UTF-8 and must stay as it is.
    "codepage-euro": _rec(
        f"{_SYS}.1.0|4|Kassensystem",
        f"{_SYS}.2.0|6|1.3.6.1.4.1.99999.7",
        f"{_SYS}.3.0|67|100",
        f"{_SYS}.4.0|4x|" + "Zürich Büro".encode().hex(),
        f"{_SYS}.6.0|4x|" + "Kasse 3 (€ 5 Pfand), Straße".encode("cp1252").hex(),
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("field-cases")
    variants = tmp / "variants"
    variants.mkdir()
    for name, text in VARIANTS.items():
        (variants / f"{name}.snmprec").write_text(text)
    recordings = [*CASES.glob("*.snmprec"), *variants.glob("*.snmprec")]
    with Snmpsim(recordings, tmp / "snmpsim") as sim:
        yield sim.port


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    async with SnmpClient() as snmp:
        yield snmp


class Device:
    """One device polled like the poller does: the same profiles and rate memory each poll."""

    def __init__(self, client: SnmpClient, port: int, profiles: list[Profile]) -> None:
        self.client, self.port, self.profiles = client, port, profiles
        self.rates = RateTracker()
        self.memory = DeviceMemory()
        self.ctx = PollContext(at_s=0.0, rates=self.rates)

    async def poll(self, recording: str, at_s: float) -> list[Reading]:
        self.ctx = PollContext(at_s=at_s, rates=self.rates)
        access = ClientAccess(self.client, corpus_target(self.port, recording))
        out: list[Reading] = []
        for profile in self.profiles:
            out.extend(await profile.poll(access, self.ctx))
        return out

    def alerts(self, readings: list[Reading], kind: str = "server") -> list[Condition]:
        result = PollResult(
            1, "198.18.0.9", "dev", kind, 0.0, self.ctx.at_s, True, tuple(readings),
            (CheckOutcome("snmp", True, ""),), 0.1,
        )  # fmt: skip
        found = evaluate(result, self.memory, AlertingSettings(), {}, is_gateway=False)
        return [c for c in found if c.severity is not None]


def value(readings: list[Reading], metric: str, instance: str = "") -> float | None:
    hits = [r.value for r in readings if r.metric == metric and r.instance == instance]
    assert hits, f"no {metric} {instance!r} in {[(r.metric, r.instance) for r in readings]}"
    return hits[0]


def rules_open(conditions: list[Condition]) -> set[str]:
    return {c.rule for c in conditions}


# ---- uptime roll-over and agent restarts are not reboots ----


async def test_uptime_rollover_is_not_a_reboot(agent: int, client: SnmpClient) -> None:
    dev = Device(client, agent, [SystemProfile(), InterfacesProfile()])
    first = await dev.poll("uptime-wrap-t0", 0.0)
    assert dev.alerts(first) == []
    second = await dev.poll("uptime-wrap-t1", 120.0)
    assert dev.ctx.rebooted is False
    before, after = value(first, "system.uptime_s"), value(second, "system.uptime_s")
    assert before is not None and after is not None and after >= before
    assert "device.rebooted" not in rules_open(dev.alerts(second))
    assert value(second, "if.in_bps", "1") == pytest.approx(80_000_000)


async def test_agent_restart_on_a_running_host_is_not_a_reboot(
    agent: int, client: SnmpClient
) -> None:
    dev = Device(client, agent, [SystemProfile()])
    dev.alerts(await dev.poll("agent-restart-t0", 0.0))
    second = await dev.poll("agent-restart-t1", 60.0)
    assert dev.ctx.rebooted is False
    assert "device.rebooted" not in rules_open(dev.alerts(second))


async def test_a_real_reboot_is_still_reported(agent: int, client: SnmpClient) -> None:
    dev = Device(client, agent, [SystemProfile()])
    dev.alerts(await dev.poll("real-reboot-t0", 0.0))
    second = await dev.poll("real-reboot-t1", 60.0)
    assert dev.ctx.rebooted is True
    assert "device.rebooted" in rules_open(dev.alerts(second))


# ---- vendor status values, faults only for real faults ----


async def test_raid_scrubbing_is_busy_not_degraded(agent: int, client: SnmpClient) -> None:
    dev = Device(client, agent, [SystemProfile(), NasHealthProfile()])
    readings = await dev.poll("nas-raid-scrubbing", 0.0)
    assert value(readings, "raid.ok", "Volume 1") == 1.0
    assert value(readings, "raid.busy", "Volume 1") == 1.0
    assert value(readings, "disk.temp_c", "Drive 1") == 36.0
    assert "raid.degraded" not in rules_open(dev.alerts(readings, "nas"))


async def test_qnap_status_values_are_named_one_by_one(agent: int, client: SnmpClient) -> None:
    dev = Device(client, agent, [SystemProfile(), NasHealthProfile()])
    readings = await dev.poll("qnap-disks", 0.0)
    assert value(readings, "disk.health_ok", "HDD1") == 1.0  # ready
    assert value(readings, "disk.health_ok", "HDD2") == 1.0  # an empty bay is not a fault
    assert value(readings, "disk.health_ok", "HDD3") == 0.0  # rwError
    assert value(readings, "disk.temp_c", "HDD1") == 36.0
    assert value(readings, "disk.temp_c", "HDD2") is None
    assert value(readings, "raid.ok", "DataVol1") == 1.0
    assert value(readings, "raid.busy", "DataVol1") == 1.0  # "Rebuilding..."
    assert value(readings, "raid.ok", "Backup") == 0.0  # "Degraded"
    keys = {c.key for c in dev.alerts(readings, "nas")}
    assert keys == {"disk.failed:1:HDD3", "raid.degraded:1:Backup"}


async def test_a_new_disk_is_not_a_failed_disk(agent: int, client: SnmpClient) -> None:
    dev = Device(client, agent, [SystemProfile(), NasHealthProfile()])
    readings = await dev.poll("synology-new-disk", 0.0)
    assert value(readings, "disk.health_ok", "Drive 2") == 1.0  # NotInitialized
    assert value(readings, "raid.ok", "Volume 1") == 0.0  # Degrade (11) is a fault
    assert "raid.degraded" in rules_open(dev.alerts(readings, "nas"))


# ---- full-by-design file systems are not judged ----


async def test_snap_images_are_not_judged(agent: int, client: SnmpClient) -> None:
    dev = Device(client, agent, [SystemProfile(), StorageProfile()])
    readings = await dev.poll("linux-readonly-images", 0.0)
    judged = {r.instance: r.value for r in readings if r.metric == "storage.used_pct"}
    assert set(judged) == {"/", "/boot"}
    assert judged["/"] == pytest.approx(40.0, abs=0.5)
    assert judged["/boot"] == pytest.approx(23.0, abs=0.5)
    assert value(readings, "storage.size_bytes", "/snap/core18/2128") == 446 * 131072
    assert "volume.full" not in rules_open(dev.alerts(readings))


async def test_other_read_only_images_are_not_judged(agent: int, client: SnmpClient) -> None:
    dev = Device(client, agent, [SystemProfile(), StorageProfile()])
    readings = await dev.poll("nixos-readonly", 0.0)
    judged = {r.instance: r.value for r in readings if r.metric == "storage.used_pct"}
    assert set(judged) == {"/srv"}  # /nix/store and /mnt/iso are 100 % by design
    assert {c.key for c in dev.alerts(readings)} == {"volume:1:/srv"}


# ---- legacy code-page strings ----


async def test_legacy_codepage_strings_are_decoded(agent: int, client: SnmpClient) -> None:
    reader = ClientReader(client, corpus_target(agent, "legacy-codepage-strings"))
    ident = await read_identity(reader)
    assert ident.sys_location == "Büro 2. OG, Raum 204"
    assert ident.sys_contact == "Empfang Erdgeschoß"
    variant = await read_identity(ClientReader(client, corpus_target(agent, "codepage-euro")))
    assert variant.sys_location == "Kasse 3 (€ 5 Pfand), Straße"
    assert variant.sys_contact == "Zürich Büro"  # valid UTF-8 stays UTF-8


# ---- counters: a stated speed never discards a 64-bit delta; 64/32 bits per interface ----


async def test_understated_ifspeed_keeps_64bit_rates(agent: int, client: SnmpClient) -> None:
    dev = Device(client, agent, [SystemProfile(), InterfacesProfile()])
    await dev.poll("understated-ifspeed-t0", 0.0)
    readings = await dev.poll("understated-ifspeed-t1", 60.0)
    assert value(readings, "if.in_bps", "eth0") == pytest.approx(300_000_000)
    assert value(readings, "if.out_bps", "eth0") == pytest.approx(40_000_000)
    assert value(readings, "if.in_bps", "vlan1") == pytest.approx(40_000_000)
    assert value(readings, "if.out_bps", "vlan1") == pytest.approx(300_000_000)


async def test_counter_width_is_chosen_per_interface(agent: int, client: SnmpClient) -> None:
    dev = Device(client, agent, [SystemProfile(), InterfacesProfile()])
    await dev.poll("mixed-hc-counters-t0", 0.0)
    readings = await dev.poll("mixed-hc-counters-t1", 60.0)
    assert value(readings, "if.in_bps", "gi1") == pytest.approx(10_000_000)
    assert value(readings, "if.in_bps", "mgmt") == pytest.approx(2_000_000)
    assert value(readings, "if.in_bps", "gi3") == pytest.approx(5_000_000)


# ---- vendor-only supply levels ----


async def test_vendor_only_toner_levels(agent: int, client: SnmpClient) -> None:
    dev = Device(client, agent, [SystemProfile(), PrinterProfile()])
    readings = await dev.poll("vendor-only-toner-levels", 0.0)
    assert value(readings, "supply.level_pct", "Black Toner") == 90.0
    assert value(readings, "supply.level_pct", "Cyan Toner") == 20.0
    assert value(readings, "supply.level_pct", "Yellow Toner") == 40.0
    assert value(readings, "supply.level_pct", "Magenta Toner") is None
    assert value(readings, "supply.almost_empty", "Magenta Toner") == 1.0
    low = {c.key: c.severity for c in dev.alerts(readings, "printer") if c.rule == "supply.low"}
    assert low == {"supply.low:1:Magenta Toner": "minor"}


# ---- tables walked out of order ----

IF_DESCR = "1.3.6.1.2.1.2.2.1.2"


class ListOrderAgent(TableAgent):
    """Answers GETNEXT in the order of its own list (``order``), not in OID order, the way
    some firewalls and printers walk their internal interface list."""

    def __init__(self, values: dict[OID, SnmpValue], order: list[OID]) -> None:
        super().__init__(values)
        self.order = order

    def _next(self, oid: OID) -> Varbind:
        if oid in self.order:
            i = self.order.index(oid) + 1
        else:
            keys = sorted(self.order)
            after = keys[bisect.bisect_right(keys, oid)] if oid < keys[-1] else None
            i = self.order.index(after) if after is not None else len(self.order)
        if i >= len(self.order):
            return Varbind(oid, EndOfMibView)
        nxt = self.order[i]
        return Varbind(nxt, self.values[nxt])


def _firewall(late: dict[str, list[int]]) -> tuple[dict[OID, SnmpValue], list[OID]]:
    """A firewall's MIB: six interfaces (13 a VLAN created later), hrStorage, CPU load; each
    column listed in the agent's own order (``late``: column -> row order)."""
    o = oid_from_str
    values: dict[OID, SnmpValue] = {
        o("1.3.6.1.2.1.1.3.0"): TimeTicks(100000),
        o("1.3.6.1.2.1.25.3.3.1.2.196608"): Integer(35),
    }
    rows = (1, 2, 3, 4, 5, 13)
    for i in rows:
        name = f"vlan{i}" if i == 13 else f"port{i}"
        values[o(f"{IF_DESCR}.{i}")] = OctetString(name.encode())
        values[o(f"1.3.6.1.2.1.2.2.1.3.{i}")] = Integer(6)
        values[o(f"1.3.6.1.2.1.2.2.1.5.{i}")] = Gauge32(1_000_000_000)
        values[o(f"1.3.6.1.2.1.2.2.1.8.{i}")] = Integer(1)
        values[o(f"1.3.6.1.2.1.2.2.1.10.{i}")] = Counter32(1000 * i)
    for i, path in ((1, "/"), (7, "/var/log"), (2, "/data")):
        values[o(f"1.3.6.1.2.1.25.2.3.1.2.{i}")] = values_oid("1.3.6.1.2.1.25.2.1.4")
        values[o(f"1.3.6.1.2.1.25.2.3.1.3.{i}")] = OctetString(path.encode())
        values[o(f"1.3.6.1.2.1.25.2.3.1.4.{i}")] = Integer(4096)
        values[o(f"1.3.6.1.2.1.25.2.3.1.5.{i}")] = Integer(1000)
        values[o(f"1.3.6.1.2.1.25.2.3.1.6.{i}")] = Integer(500)
    order: list[OID] = []
    columns = sorted({k[:-1] for k in values if len(k) > 9})
    for column in columns:
        cells = sorted(k for k in values if k[:-1] == column)
        wanted = late.get(".".join(map(str, column)))
        if wanted:
            cells = [(*column, i) for i in wanted]
        order.extend(cells)
    order += sorted(k for k in values if k not in order)
    return values, sorted_keys_first(order)


def values_oid(text: str) -> SnmpValue:
    return ObjectIdentifier(oid_from_str(text))


def sorted_keys_first(order: list[OID]) -> list[OID]:
    """Keep the columns in OID order (a real agent walks its tables in turn), each column in
    its own row order."""
    by_column: dict[OID, list[OID]] = {}
    for key in order:
        by_column.setdefault(key[:-1], []).append(key)
    return [k for column in sorted(by_column) for k in by_column[column]]


async def _poll_agent(
    client: SnmpClient, fake: TableAgent, profiles: list[Profile], ctx: PollContext | None = None
) -> list[Reading]:
    target = Target("127.0.0.1", fake.port, SnmpCredential(community=Secret("public")),
                    timeout_s=1.0, retries=0)  # fmt: skip
    access = ClientAccess(client, target)
    ctx = ctx or PollContext(at_s=0.0, rates=RateTracker())
    out: list[Reading] = []
    for profile in profiles:
        out.extend(await profile.poll(access, ctx))
    return out


async def test_interfaces_walked_out_of_order_are_all_read(client: SnmpClient) -> None:
    late = [1, 2, 3, 13, 4, 5]  # ifDescr.13 comes after .3, then .4 and the rest in order
    values, order = _firewall({f"{IF_DESCR}": late, "1.3.6.1.2.1.2.2.1.3": late})
    async with ListOrderAgent(values, order) as fake:
        readings = await _poll_agent(
            client, fake, [SystemProfile(), InterfacesProfile(), CpuProfile(), StorageProfile()]
        )
    up = {r.instance for r in readings if r.metric == "if.oper_up"}
    assert up == {"port1", "port2", "port3", "port4", "port5", "vlan13"}
    assert value(readings, "cpu.load_pct") == 35.0
    assert value(readings, "storage.used_pct", "/data") == 50.0


async def test_storage_walked_out_of_order_is_complete(client: SnmpClient) -> None:
    late = [1, 7, 2]  # /var/log (7) added before /data (2) in the agent's list
    cols = {f"1.3.6.1.2.1.25.2.3.1.{c}": late for c in (2, 3, 4)}
    values, order = _firewall(cols)
    async with ListOrderAgent(values, order) as fake:
        readings = await _poll_agent(client, fake, [SystemProfile(), StorageProfile()])
    judged = {r.instance for r in readings if r.metric == "storage.used_pct"}
    assert judged == {"/", "/var/log", "/data"}


async def test_a_real_loop_costs_only_its_table(client: SnmpClient) -> None:
    # ifDescr answers .2 again after .3: an OID seen twice is a loop. The interfaces are lost
    # (and the poll says why), the CPU load and the storage of the same device are still read.
    values, order = _firewall({})
    descr = [k for k in order if k[:-1] == oid_from_str(IF_DESCR)]
    at = order.index(descr[3])
    order = [*order[:at], descr[1], *order[at:]]  # .1 .2 .3 .2 -> the agent loops
    async with ListOrderAgent(values, order) as fake:
        profiles: list[Profile] = [SystemProfile(), InterfacesProfile(), CpuProfile(),
                                   StorageProfile()]  # fmt: skip
        ctx = PollContext(at_s=0.0, rates=RateTracker())
        readings = await _poll_agent(client, fake, profiles, ctx)
    assert not [r for r in readings if r.metric == "if.oper_up"]
    assert any("interfaces" in e and "went backwards" in e for e in ctx.errors), ctx.errors
    assert value(readings, "cpu.load_pct") == 35.0
    assert value(readings, "storage.used_pct", "/data") == 50.0


# ---- one host answering for several addresses is not an IP conflict (a real LAN) ----

LAN = "198.18.200"


def _cable(lan: str, ns: str, ifname: str, ip: str, peer: str) -> str:
    """A veth from ``ns`` (``ifname``, ``ip``/24) to the LAN bridge; returns its MAC."""
    netns.batch(lan, [f"link add {peer} type veth peer name {ifname} netns {ns}",
                      f"link set {peer} master br0", f"link set {peer} up"])  # fmt: skip
    netns.batch(ns, [f"addr add {ip}/24 dev {ifname}", f"link set {ifname} up", "link set lo up"])
    show = netns.run_in(ns, ["ip", "-j", "link", "show", ifname]).stdout
    return str(json.loads(show)[0]["address"])


def _sweep(app: str) -> dict[str, frozenset[str]]:
    argv = [sys.executable, "-m", "services.discovery", "sweep", f"{LAN}.0/24", "--timeout", "0.3"]
    out = netns.run_in(app, argv).stdout
    return {ip: frozenset(macs) for ip, macs in json.loads(out)["hosts"].items()}


@pytest.mark.skipif(not IS_ROOT, reason="needs root for network namespaces")
def test_two_cards_on_one_lan_are_one_host_not_a_conflict() -> None:
    prefix = f"fc{os.getpid() % 100000}"
    lan, app, host, other, intruder = (f"{prefix}-{n}" for n in ("lan", "app", "nas", "pc", "bad"))
    made: list[str] = []
    try:
        for ns in (lan, app, host, other, intruder):
            netns.add(ns)
            made.append(ns)
        netns.batch(lan, ["link add br0 type bridge", "link set br0 up"])
        # Linux defaults, said out loud: answer ARP for any local address on any card.
        netns.sysctl(
            host, {"net.ipv4.conf.all.arp_ignore": "0", "net.ipv4.conf.all.arp_filter": "0"}
        )
        _cable(lan, app, "eth0", f"{LAN}.2", "p-app")
        card1 = _cable(lan, host, "eth0", f"{LAN}.20", "p-nas0")
        card2 = _cable(lan, host, "eth1", f"{LAN}.21", "p-nas1")
        pc = _cable(lan, other, "eth0", f"{LAN}.30", "p-pc")
        links = [(app, "eth0"), (host, "eth0"), (host, "eth1"), (other, "eth0")]
        netns.wait_oper_up([*links, (lan, "br0")])
        answers = _sweep(app)
        # What the wire shows: each card answers for both addresses.
        assert answers[f"{LAN}.20"] == answers[f"{LAN}.21"] == frozenset({card1, card2})
        conflicts, hosts = split_conflicts(answers)
        assert conflicts == {}
        assert hosts == [
            MultiHomed(frozenset({card1, card2}), frozenset({f"{LAN}.20", f"{LAN}.21"}))
        ]
        # A device that takes the PC's address is still a conflict, next to the NAS.
        bad = _cable(lan, intruder, "eth0", f"{LAN}.30", "p-bad")
        netns.wait_oper_up([(intruder, "eth0")])
        conflicts, hosts = split_conflicts(_sweep(app))
        assert conflicts == {f"{LAN}.30": frozenset({pc, bad})}
        assert len(hosts) == 1
    finally:
        for ns in reversed(made):
            netns.delete(ns)
