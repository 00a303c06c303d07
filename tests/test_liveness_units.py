"""Liveness from every answer, on virtual time: the decision itself, TCP RST as an answer on
loopback, and what alerting makes of it (down alert for watched kinds, presence events for the
transient ones)."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from pathlib import Path

import pytest

from core.config import parse_config
from core.schema import ConfigError
from core.settings.alerting import AlertingSettings
from core.settings.polling import PollingSettings
from firmware.app import MIGRATION_CHAINS
from services.alerting.service import AlertingService
from services.context import AppContext
from services.polling.arp_probe import onlink_interface, read_routes
from services.polling.inventory import PollTarget
from services.polling.liveness import Answer, Liveness, silence_text
from services.polling.poller import DevicePoller
from services.polling.results import CheckOutcome, PollResult
from services.polling.tcp import check_port
from services.store import Store
from services.uplink.service import OutboxForwarder

# Naive on purpose: clock_time() shows the box's local time, so 21:04 is local here too.
T0 = datetime(2026, 11, 30, 21, 4, 0).timestamp()  # noqa: DTZ001
INTERVAL_S = 60.0


def answers(**methods: bool) -> list[Answer]:
    return [Answer(m, ok) for m, ok in methods.items()]


def test_a_host_that_ignores_pings_stays_up_on_arp() -> None:
    live = Liveness()
    for poll in range(10):
        v = live.decide(answers(icmp=False, arp=True), {}, T0 + poll * INTERVAL_S)
        assert v.reachable is True and v.answered == ("arp",) and v.missed == 0
        assert v.silent == ("icmp",)  # what did not answer this time, for the page


def test_down_only_when_every_method_that_worked_is_silent() -> None:
    live = Liveness()
    live.decide(answers(icmp=True, arp=True, snmp=True), {}, T0)
    # ICMP stops (a firewall rule), ARP still answers: up.
    v = live.decide(answers(icmp=False, arp=True, snmp=False), {}, T0 + 60)
    assert v.reachable is True and v.missed == 0
    # Everything silent: a miss; the message names what worked before and since when.
    v = live.decide(answers(icmp=False, arp=False, snmp=False), {}, T0 + 120)
    assert v.reachable is False and v.missed == 1
    assert v.silent == ("arp", "icmp", "snmp")
    assert v.last_answer_wall == T0 + 60
    v = live.decide(answers(icmp=False, arp=False, snmp=False), {}, T0 + 180)
    assert v.missed == 2
    assert silence_text(v.silent, v.last_answer_wall, T0 + 180) == (
        "no ARP, ICMP or SNMP answer since 21:05"
    )
    # Any one answer brings it back.
    v = live.decide(answers(icmp=False, arp=False, snmp=True), {}, T0 + 240)
    assert v.reachable is True and v.missed == 0 and v.answered == ("snmp",)


def test_icmp_unavailable_is_never_a_miss() -> None:
    live = Liveness()
    live.decide(answers(icmp=True), {}, T0)
    # No ICMP socket any more and nothing else to try (a host behind a router without SNMP):
    # no verdict, and no miss counted towards "down".
    for poll in range(1, 5):
        v = live.decide([], {}, T0 + poll * INTERVAL_S)
        assert v.reachable is None and v.missed == 0
    # With TCP answering (RST), the host is up without ICMP.
    v = live.decide(answers(tcp=True), {}, T0 + 300)
    assert v.reachable is True and v.answered == ("tcp",)


def test_passive_evidence_counts_only_when_newer_than_the_previous_poll() -> None:
    live = Liveness()
    live.decide(answers(arp=True), {}, T0)
    # Discovery heard an mDNS announcement between the polls: up although ARP was silent.
    v = live.decide(answers(arp=False), {"mdns": T0 + 30}, T0 + 60)
    assert v.reachable is True and v.answered == ("mdns",)
    # The same old announcement proves nothing at the next poll.
    v = live.decide(answers(arp=False), {"mdns": T0 + 30}, T0 + 120)
    assert v.reachable is False and v.silent == ("arp", "mdns")
    assert v.last_answer_wall == T0 + 60


def test_a_host_never_heard_names_what_was_tried() -> None:
    live = Liveness()
    v = live.decide(answers(icmp=False, tcp=False), {}, T0)
    assert v.reachable is False and v.silent == ("icmp", "tcp") and v.last_answer_wall is None
    assert silence_text(v.silent, None, T0) == "no ICMP or TCP answer since monitoring began"


def test_a_probe_that_never_worked_is_no_miss() -> None:
    """A host nobody can reach but by the last-resort TCP probe (ICMP unavailable, behind a
    router, no SNMP): silence of the probe alone leaves it unknown, not down; once the probe
    has answered, its silence is a miss like any other."""
    live = Liveness()
    v = live.decide([Answer("tcp", False, weak=True)], {}, T0)
    assert v.reachable is None and v.missed == 0
    v = live.decide([Answer("tcp", True, weak=True)], {}, T0 + 60)
    assert v.reachable is True
    v = live.decide([Answer("tcp", False, weak=True)], {}, T0 + 120)
    assert v.reachable is False and v.missed == 1 and v.silent == ("tcp",)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: refused (RST)


async def test_tcp_refused_is_an_answer_and_open_is_too() -> None:
    refused = await check_port("127.0.0.1", _closed_port(), 1.0)
    assert refused.open is False and refused.answered is True
    assert refused.error == "connection refused"
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        accepted = await check_port("127.0.0.1", port, 1.0)
    finally:
        server.close()
        await server.wait_closed()
    assert accepted.open is True and accepted.answered is True


async def test_poller_up_on_rst_only_without_icmp() -> None:
    """No ICMP (as without CAP_NET_RAW), no SNMP, one TCP port that refuses: up, by TCP."""
    port = _closed_port()
    settings = PollingSettings(icmp=False, snmp=False, arp=False, probe_tcp_ports=())
    poller = DevicePoller(settings, None, None, {})
    target = PollTarget(1, "127.0.0.1", "nas", "nas", "", "", (port,))
    state = poller.state_for(target, None)
    result = await poller.poll(target, state, time.time())
    assert result.reachable is True and result.answered_by == ("tcp",)
    check = result.checks[0]
    assert (check.check, check.ok, check.host_answered) == (f"tcp:{port}", False, True)


async def test_probe_ports_are_the_last_resort() -> None:
    """Nothing configured answers: the probe port's RST keeps the host up; with no probe
    ports, the same host is a miss."""
    port = _closed_port()
    target = PollTarget(1, "127.0.0.1", "pc", "workstation", "", "", ())
    on = PollingSettings(icmp=False, snmp=False, arp=False, probe_tcp_ports=(port,))
    poller = DevicePoller(on, None, None, {})
    result = await poller.poll(target, poller.state_for(target, None), time.time())
    assert result.reachable is True and [c.check for c in result.checks] == [f"tcp-probe:{port}"]
    off = PollingSettings(icmp=False, snmp=False, arp=False, probe_tcp_ports=())
    poller = DevicePoller(off, None, None, {})
    result = await poller.poll(target, poller.state_for(target, None), time.time())
    assert result.reachable is None and result.checks == ()


def test_routes_say_which_hosts_are_on_link(tmp_path: Path) -> None:
    table = tmp_path / "route"
    table.write_text(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"  # default via .1
        "eth0\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"  # 198.18.0.0/24
    )
    routes = read_routes(table)
    assert onlink_interface("198.18.0.20", routes) == "eth0"
    assert onlink_interface("198.19.0.2", routes) == ""  # behind the router: no ARP
    assert onlink_interface("127.18.0.5", routes) == ""  # loopback: not in the main table


def test_default_watch_list_and_config() -> None:
    default = AlertingSettings()
    assert set(default.down_alert_kinds) == {
        "router", "switch", "ap", "server", "nas", "printer", "ups", "camera",
    }  # fmt: skip
    for transient in ("workstation", "phone", "media", "iot", "unknown"):
        assert transient not in default.down_alert_kinds
    config = parse_config(
        "[alerting]\ndown_alert_kinds = ['server', 'phone']\n"
        "[[polling.devices]]\nip = '198.18.0.9'\nkind = 'workstation'\nmonitored = true\n"
    )
    assert config.alerting.down_alert_kinds == ("server", "phone")
    assert config.polling.devices[0].monitored is True
    with pytest.raises(ConfigError, match="is not a device kind"):
        parse_config("[alerting]\ndown_alert_kinds = ['laptop']\n")


# ---------------------------------------------------------------- alerting on virtual time


@pytest.fixture
async def alerting(tmp_path: Path) -> AsyncIterator[AlertingService]:
    store = Store(tmp_path / "a.db", chains=MIGRATION_CHAINS, forward=OutboxForwarder())
    await store.open()
    config = parse_config("[alerting]\ndown_after_missed = 2\n")
    svc = AlertingService(AppContext(config=config, store=store, clock=store.clock))
    svc.gateway_ip = ""  # no gateway in these tests: no dependency hold
    await svc.setup()
    try:
        yield svc
    finally:
        await svc.teardown()
        await store.close()


class Device:
    """A device polled on virtual time: its liveness decided as the poller does."""

    def __init__(self, device_id: int, kind: str, monitored: bool | None = None) -> None:
        self.id, self.kind, self.monitored = device_id, kind, monitored
        self.live = Liveness()

    def poll(self, wall_s: float, **methods: bool) -> PollResult:
        v = self.live.decide(answers(**methods), {}, wall_s)
        checks: Iterable[CheckOutcome] = (
            CheckOutcome(m, ok, "" if ok else "silent") for m, ok in methods.items()
        )
        return PollResult(
            self.id,
            f"198.18.0.{self.id}",
            f"{self.kind}-{self.id}",
            self.kind,
            wall_s,
            wall_s,
            v.reachable,
            (),
            tuple(checks),
            0.1,
            answered_by=v.answered,
            silent=v.silent,
            last_answer_wall=v.last_answer_wall,
            monitored=self.monitored,
        )


def _rows(svc: AlertingService, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(svc.ctx.store.path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_laptop_leaves_and_returns_server_goes_down(alerting: AlertingService) -> None:
    laptop, server = Device(5, "workstation"), Device(6, "server")
    marked = Device(7, "phone", monitored=True)
    t = T0
    for dev in (laptop, server, marked):
        await alerting.handle_result(dev.poll(t, icmp=False, arp=True))
    # 17:30 everywhere: all three stop answering for three polls.
    for _ in range(3):
        t += INTERVAL_S
        for dev in (laptop, server, marked):
            await alerting.handle_result(dev.poll(t, icmp=False, arp=False))
    opened = _rows(alerting, "SELECT key, severity, message FROM alerts WHERE state = 'open'")
    assert sorted((k, s) for k, s, _ in opened) == [
        ("device.down:6", "major"),
        ("device.down:7", "major"),  # a phone, but marked monitored
    ]
    message = str(next(m for k, _, m in opened if k == "device.down:6"))
    assert "no ARP answer since 21:04" in message, message
    left = _rows(alerting, "SELECT device_id, message FROM events WHERE kind = 'presence.left'")
    assert left == [(5, "workstation-5 (198.18.0.5) left (no ARP answer since 21:04)")]
    # Back 14 h later: "returned" with how long it was away; the alerts resolve.
    t = T0 + 14 * 3600
    for dev in (laptop, server, marked):
        await alerting.handle_result(dev.poll(t, icmp=False, arp=True))
    back = _rows(
        alerting, "SELECT device_id, message, data FROM events WHERE kind = 'presence.returned'"
    )
    assert [(d, m) for d, m, _ in back] == [
        (5, "workstation-5 (198.18.0.5) returned after 14 h away (answered ARP)")
    ]
    assert _rows(alerting, "SELECT key FROM alerts WHERE state = 'open'") == []
    # Presence events go home like every event (outbox), none is an alert.
    outbox = _rows(alerting, "SELECT kind, body FROM outbox WHERE body LIKE '%presence.%'")
    assert [k for k, _ in outbox] == ["event", "event"]


async def test_what_worked_survives_a_restart(tmp_path: Path) -> None:
    """poll_state keeps the methods that worked and the last answer; a restarted poller that
    finds the host silent still says what went silent and since when."""
    from services.polling.service import load_liveness, store_result

    store = Store(tmp_path / "p.db", chains=MIGRATION_CHAINS)
    await store.open()
    try:
        await store.write(
            lambda tx: tx.conn.execute(
                "INSERT INTO devices (id, ip, name, kind, source, first_seen, last_seen, attrs)"
                " VALUES (1, '198.18.0.40', 'server', 'server', 'config', 0, 0, '{}')"
            )
        )
        before = Device(1, "server")
        seen = before.poll(T0, icmp=False, arp=True, snmp=True)
        worked = ("arp", "snmp")
        await store.write(lambda tx: store_result(tx, seen, 0, worked))
        remembered = await store.read(load_liveness)
    finally:
        await store.close()
    after = remembered[1]  # as the restarted poller seeds its state
    assert after.worked == {"arp", "snmp"} and after.last_answer["arp"] == T0
    v = after.decide(answers(icmp=False, arp=False, snmp=False), {}, T0 + 600)
    assert v.reachable is False and v.silent == ("arp", "snmp")
    assert silence_text(v.silent, v.last_answer_wall, T0 + 600) == (
        "no ARP or SNMP answer since 21:04"
    )


async def test_polling_takes_discovery_evidence_from_the_bus(tmp_path: Path) -> None:
    """Discovery's HostHeard (an mDNS announcement) reaches the next poll of that address."""
    from core.messages import HostHeard
    from services.polling.service import PollingService

    config = parse_config(
        "[polling]\nicmp = false\narp = false\nsnmp = false\nprobe_tcp_ports = []\n"
        "[[polling.devices]]\nname = 'tv'\nip = '127.0.0.9'\nkind = 'media'\n"
    )
    store = Store(tmp_path / "p.db", chains=MIGRATION_CHAINS)
    await store.open()
    ctx = AppContext(config=config, store=store, clock=store.clock)
    results = ctx.bus.subscribe(PollResult)
    service = PollingService(ctx)
    try:
        await service.setup()
        await service._refresh_inventory()  # noqa: SLF001 - one step of run(), no scheduler
        (device_id,) = service.targets
        target, state = service.targets[device_id], service.states[device_id]
        ctx.bus.publish(HostHeard("127.0.0.9", "mdns", time.time()))
        ctx.bus.publish(HostHeard("127.0.0.99", "arp", time.time()))  # someone else
        await service._poll_one(target, state)  # noqa: SLF001 - one poll, no scheduler
        first: PollResult = results.queue.get_nowait()
        await service._poll_one(target, state)  # noqa: SLF001
        second: PollResult = results.queue.get_nowait()
    finally:
        await service.teardown()
        await store.close()
    assert first.reachable is True and first.answered_by == ("mdns",)
    # Nothing new heard and nothing else to try: no verdict (never "down" for it).
    assert second.reachable is None and second.answered_by == ()


async def test_a_restart_neither_repeats_left_nor_forgets_it(alerting: AlertingService) -> None:
    laptop = Device(8, "workstation")
    t = T0
    await alerting.handle_result(laptop.poll(t, arp=True))
    for _ in range(2):
        t += INTERVAL_S
        await alerting.handle_result(laptop.poll(t, arp=False))
    assert len(_rows(alerting, "SELECT 1 FROM events WHERE kind = 'presence.left'")) == 1
    # The appliance restarts: a new alerting service on the same store.
    again = AlertingService(alerting.ctx)
    again.gateway_ip = ""
    await again.setup()
    try:
        for _ in range(3):
            t += INTERVAL_S
            await again.handle_result(laptop.poll(t, arp=False))
        t = T0 + 3 * 3600
        await again.handle_result(laptop.poll(t, arp=True))
    finally:
        await again.teardown()
    kinds = _rows(alerting, "SELECT kind, message FROM events WHERE kind LIKE 'presence.%'")
    assert [k for k, _ in kinds] == ["presence.left", "presence.returned"]
    assert "returned after 3 h away" in str(kinds[1][1]), kinds
