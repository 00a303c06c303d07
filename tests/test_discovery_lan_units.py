"""The rules behind the discovery field cases, without namespaces (fast, no root): vendor by
longest prefix, which services describe a host, mDNS address expiry, identity owned by the
MAC, the gateway role, lost addresses, randomised MAC links, the bounded dependency wait."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest

from core.clock import FixedClock
from core.config import parse_config
from firmware.app import MIGRATION_CHAINS
from services.alerting.service import AlertingService
from services.context import AppContext
from services.discovery import inventory, service_roles
from services.discovery.mdns import MdnsService, MdnsWatcher
from services.discovery.migrations import DISCOVERY
from services.discovery.oui import lookup
from services.polling.gateway import REREAD_S, GatewayRole
from services.polling.results import CheckOutcome, PollResult
from services.store import Event, Store
from services.uplink.service import OutboxForwarder

# ---- vendors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mac", "vendor", "block"),
    [
        ("4c:74:a7:e1:52:6f", "KYOCERA CORPORATION", "MA-M"),
        ("6c:5c:3d:21:07:9a", "Vertiv Industrial Systems", "MA-M"),
        ("00:50:c2:b0:4c:11", "Ubiquiti Inc", "IAB"),
        ("70:b3:d5:98:7a:30", "AXIS CORPORATION", "MA-S"),
        ("00:11:32:00:00:01", "Synology Incorporated", "MA-L"),
        # A small block we have no entry for: unknown, never the registrar.
        ("00:1b:c5:1f:ff:f0", "", ""),
        ("70:b3:d5:ff:ff:f0", "", ""),  # listed as "Private": no maker either
    ],
)
def test_vendor_by_longest_prefix(mac: str, vendor: str, block: str) -> None:
    info = lookup(mac)
    assert (info.vendor, info.block, info.local) == (vendor, block, False)


def test_a_randomised_mac_is_not_looked_up() -> None:
    info = lookup("0a:5e:00:00:87:01")
    assert (info.vendor, info.local) == ("", True)


# ---- services that are not the host ----------------------------------------------------


def _svc(type_: str, name: str, txt: dict[str, str], host: str = "h.local.") -> MdnsService:
    return MdnsService(type_, name, host, 1, ("198.18.0.9",), txt)


def test_which_services_describe_the_host() -> None:
    speaker = _svc("_googlecast._tcp.local.", "s", {"md": "Google Nest Audio", "fn": "Kitchen"})
    group = _svc("_googlecast._tcp.local.", "g", {"md": "Google Cast Group", "fn": "All"})
    queue = _svc("_ipp._tcp.local.", "q", {"rp": "printers/HP", "ty": "HP LaserJet"})
    cups_class = _svc("_ipps._tcp.local.", "c", {"rp": "classes/office", "ty": "x"})
    flagged = _svc("_printer._tcp.local.", "f", {"printer-type": "0x809046", "rp": "lp"})
    own_printer = _svc("_ipp._tcp.local.", "p", {"rp": "ipp/print", "ty": "Brother HL"})
    proxy = _svc("_sleep-proxy._udp.local.", "70-35-60-63.1 Living Room", {})
    own, hosted = service_roles.split(
        [speaker, group, queue, cups_class, flagged, own_printer, proxy]
    )
    assert own == [speaker, own_printer]
    assert [h.service for h in hosted] == [group, queue, cups_class, flagged, proxy]
    assert "group" in hosted[0].why and "print queue" in hosted[1].why


# ---- mDNS addresses expire with their records -------------------------------------------


def test_mdns_addresses_expire_with_their_a_records() -> None:
    watcher = MdnsWatcher()
    svc = MdnsService(
        "_ipp._tcp.local.", "P", "p.local.", 631, ("198.18.0.61", "198.18.0.60"), {},
        resolved_at=5.0, expires={"198.18.0.61": 200.0, "198.18.0.60": 100.0},
    )  # fmt: skip
    # White box: a resolved service planted directly (resolving needs a real responder).
    watcher._services[("_ipp._tcp.local.", "P._ipp._tcp.local.")] = svc  # noqa: SLF001
    assert not watcher.expire(now_s=99.0) and watcher.version == 0
    assert watcher.expire(now_s=150.0) and watcher.version == 1
    [left] = watcher.snapshot()
    assert left.addresses == ("198.18.0.61",) and left.resolved_at == 5.0
    assert watcher.expire(now_s=250.0)
    assert watcher.snapshot()[0].addresses == ()


# ---- the inventory's rules ---------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "o.db", chains=[DISCOVERY], clock=FixedClock())
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def test_primary_ip_never_a_role_address_when_there_is_another() -> None:
    roles = frozenset({"198.18.90.1"})
    assert inventory.primary_ip(["198.18.90.1", "198.18.90.2"], roles) == "198.18.90.2"
    assert inventory.primary_ip(["198.18.90.1"], roles) == "198.18.90.1"
    assert inventory.primary_ip(["198.18.90.3", "198.18.90.4"], roles, "198.18.90.4") == (
        "198.18.90.4"
    )


async def test_a_role_address_moving_is_no_ip_change(store: Store) -> None:
    r1, r2 = "00:08:a2:00:00:01", "00:08:a2:00:00:02"
    gw, roles = "198.18.90.1", frozenset({"198.18.90.1"})

    def sweep(answers: dict[str, set[str]]) -> Awaitable[list[Event]]:
        seen: dict[str, list[str]] = {}
        for ip, macs in answers.items():
            for mac in macs:
                seen.setdefault(mac, []).append(ip)
        items = [inventory.Seen(m, tuple(ips)) for m, ips in seen.items()]
        frozen = {ip: frozenset(m) for ip, m in answers.items()}

        def write(tx):  # type: ignore[no-untyped-def]
            events = inventory.record_seen(tx, items, 1.0, active=True, source="arp", roles=roles)
            inventory.release_lost_addresses(tx, frozen)
            inventory.record_gateway_role(tx, roles, frozen, 1.0)
            return events

        return store.write(write)

    await sweep({gw: {r1}, "198.18.90.2": {r1}, "198.18.90.3": {r2}})
    await sweep({"198.18.90.2": {r1}, gw: {r2}, "198.18.90.3": {r2}})  # failover
    rows = {r["mac"]: dict(r) for r in await store.query("SELECT * FROM devices")}
    assert rows[r1]["ip"] == "198.18.90.2" and rows[r2]["ip"] == "198.18.90.3"
    role = rows[None]
    assert (role["ip"], role["source"], role["kind"]) == (gw, "gateway", "router")
    assert json.loads(role["attrs"])["answered_by"] == [r2]
    kinds = [r["kind"] for r in await store.query("SELECT kind FROM events")]
    assert "device.ip_changed" not in kinds


async def test_a_mac_that_stops_answering_an_address_another_answers_loses_it(
    store: Store,
) -> None:
    nas, intruder, sleeper = "00:11:32:00:00:30", "00:26:73:00:00:31", "00:11:32:00:00:40"
    seen = [
        inventory.Seen(nas, ("198.18.91.30",)),
        inventory.Seen(intruder, ("198.18.91.30",)),
        inventory.Seen(sleeper, ("198.18.91.40",)),
    ]
    await store.write(lambda tx: inventory.record_seen(tx, seen, 1.0, active=True, source="arp"))
    answers = {"198.18.91.30": frozenset({nas})}  # the intruder left, the sleeper is asleep
    lost = await store.write(lambda tx: inventory.release_lost_addresses(tx, answers))
    assert lost == [intruder]
    ips = {r["mac"]: r["ip"] for r in await store.query("SELECT mac, ip FROM devices")}
    assert ips == {nas: "198.18.91.30", intruder: "", sleeper: "198.18.91.40"}


async def test_held_randomised_mac_and_rekey(store: Store) -> None:
    old, new = "0a:5e:00:00:87:01", "0a:5e:00:00:87:02"
    held: dict[str, tuple[str, ...]] = {}
    events = await store.write(
        lambda tx: inventory.record_seen(
            tx, [inventory.Seen(old, ("198.18.87.70",))], 1.0, active=True, source="arp",
            hold_local=held,
        )
    )  # fmt: skip
    assert events == [] and held == {old: ("198.18.87.70",)}, "held, not joined"
    await store.write(
        lambda tx: inventory.record_seen(
            tx, [inventory.Seen(old, ("198.18.87.70",))], 1.0, active=True, source="arp"
        )
    )
    events = await store.write(lambda tx: inventory.rekey(tx, old, new, ["198.18.87.71"], 2.0))
    assert [e.kind for e in events] == ["device.mac_rotated"]
    [row] = await store.query("SELECT mac, ip, attrs FROM devices")
    assert (row["mac"], row["ip"]) == (new, "198.18.87.71")
    assert json.loads(row["attrs"])["previous_macs"] == [old]


async def test_hosted_services_are_kept_but_do_not_name_or_classify(store: Store) -> None:
    mac = "f8:bc:12:00:00:31"
    await store.write(
        lambda tx: inventory.record_seen(
            tx, [inventory.Seen(mac, ("198.18.83.31",))], 1.0, active=True, source="arp"
        )
    )
    mdns = [
        _svc("_workstation._tcp.local.", "reception-pc [x]", {}, "reception-pc.local."),
        _svc("_ipp._tcp.local.", "HP @ reception-pc", {"rp": "printers/HP", "ty": "HP M404"},
             "reception-pc.local."),
    ]  # fmt: skip
    row = await store.write(
        lambda tx: inventory.update_identity(
            tx, mac, snmp=None, credential="", mdns=mdns, is_gateway=False, now=1.0
        )
    )
    assert row is not None and (row.name, row.kind) == ("reception-pc", "workstation")
    assert "model" not in row.attrs
    assert [bool(s.get("hosted")) for s in row.attrs["mdns"]] == [False, True]


# ---- the gateway role in polling and alerting ---------------------------------------------


def test_the_gateway_role_follows_the_default_route(tmp_path: Path) -> None:
    table = tmp_path / "route"
    head = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
    table.write_text(head + "eth0\t00000000\t015A12C6\t0003\t0\t0\t0\t00000000\n")
    now = [0.0]
    role = GatewayRole(route_table=table, monotonic=lambda: now[0])
    assert role.ip == "198.18.90.1"
    table.write_text(head + "eth0\t00000000\tFE5A12C6\t0003\t0\t0\t0\t00000000\n")
    assert role.ip == "198.18.90.1", "read again only every REREAD_S"
    now[0] = REREAD_S
    assert role.ip == "198.18.90.254"
    assert GatewayRole("198.18.90.9", route_table=table).ip == "198.18.90.9"


def _result(device_id: int, ip: str, reachable: bool, t: float) -> PollResult:
    checks = (CheckOutcome("icmp", reachable, "" if reachable else "no echo reply"),)
    return PollResult(device_id, ip, f"dev{device_id}", "server", t, t, reachable, (), checks, 0.1)


async def test_a_held_down_alert_is_released_when_the_gateway_poll_never_comes(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "a.db", chains=MIGRATION_CHAINS, forward=OutboxForwarder())
    await store.open()
    config = parse_config('[alerting]\ngateway_ip = "198.18.90.1"\ndown_after_missed = 2\n')
    svc = AlertingService(AppContext(config=config, store=store, clock=store.clock))
    await svc.setup()
    try:
        svc.dependency_wait_s = 0.3
        t = asyncio.get_running_loop().time()
        await svc.handle_result(_result(1, "198.18.90.1", True, t))  # the gateway, once
        await svc.handle_result(_result(5, "198.18.90.20", False, t + 1))
        await svc.handle_result(_result(5, "198.18.90.20", False, t + 2))
        await svc.sweep()
        assert "device.down:5" not in svc.engine.open, "held: the gateway was not polled since"
        await asyncio.sleep(0.4)  # ...and it never is (its address moved, say)
        await svc.sweep()
        assert "device.down:5" in svc.engine.open, "the wait is bounded"
    finally:
        await svc.teardown()
        await store.close()


async def test_a_sleep_proxy_answering_for_a_sleeping_mac_takes_nothing(store: Store) -> None:
    """A Bonjour Sleep Proxy answers ARP for a sleeping Mac's address with its own MAC: that
    is not the address moving, the Mac keeps it (an intruder would lose it)."""
    mac, proxy = "70:3e:ac:00:00:50", "70:3e:ac:00:00:51"
    seen = [inventory.Seen(mac, ("198.18.0.50",)), inventory.Seen(proxy, ("198.18.0.51",))]
    await store.write(lambda tx: inventory.record_seen(tx, seen, 1.0, active=True, source="arp"))
    sleep_proxy = _svc("_sleep-proxy._udp.local.", "70-35-60-63.1 Living Room", {})
    await store.write(
        lambda tx: inventory.update_identity(
            tx, proxy, snmp=None, credential="", mdns=[sleep_proxy], is_gateway=False, now=1.0
        )
    )
    answers = {"198.18.0.50": frozenset({proxy}), "198.18.0.51": frozenset({proxy})}
    assert await store.write(lambda tx: inventory.release_lost_addresses(tx, answers)) == []
    [row] = await store.query("SELECT ip FROM devices WHERE mac = ?", (mac,))
    assert row["ip"] == "198.18.0.50"
