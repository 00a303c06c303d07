"""Alert rules and lifecycle on a real store: thresholds, hysteresis, dependency, windows,
exactly one event and one outbox record per transition."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.clock import FixedClock
from core.config import parse_config
from core.settings.alerting import DAYS
from core.vocabulary import Severity
from firmware.app import MIGRATION_CHAINS
from services.alerting.engine import in_window
from services.alerting.service import AlertingService
from services.context import AppContext
from services.polling.profiles import Reading
from services.polling.results import CheckOutcome, PollResult
from services.store import Store
from services.store.records import Event
from services.uplink.service import OutboxForwarder

GATEWAY = "198.18.0.1"
CONFIG = f"""
[alerting]
gateway_ip = "{GATEWAY}"
down_after_missed = 2
"""


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[AlertingService]:
    store = Store(tmp_path / "a.db", chains=MIGRATION_CHAINS, forward=OutboxForwarder())
    await store.open()
    ctx = AppContext(config=parse_config(CONFIG), store=store, clock=store.clock)
    svc = AlertingService(ctx)
    await svc.setup()
    try:
        yield svc
    finally:
        await svc.teardown()
        await store.close()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def tick(self, seconds: float = 10.0) -> float:
        self.t += seconds
        return self.t


CLOCK = Clock()


def result(
    device_id: int, ip: str, reachable: bool | None = True, *readings: Reading, kind: str = "nas"
) -> PollResult:
    checks = (CheckOutcome("icmp", bool(reachable), "" if reachable else "no echo reply"),)
    now = CLOCK.tick()
    return PollResult(
        device_id,
        ip,
        f"dev{device_id}",
        kind,
        now,
        now,
        reachable,
        tuple(readings),
        checks if reachable is not None else (),
        0.1,
    )


def alerts(svc: AlertingService) -> list[dict[str, object]]:
    conn = sqlite3.connect(svc.ctx.store.path)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM alerts ORDER BY id")]
    conn.close()
    return rows


def open_alerts(svc: AlertingService) -> list[tuple[object, object]]:
    return [(a["key"], a["severity"]) for a in alerts(svc) if a["state"] == "open"]


async def test_device_down_opens_once_after_n_misses_and_resolves(service: AlertingService) -> None:
    await service.handle_result(result(1, GATEWAY))
    await service.handle_result(result(2, "198.18.0.20"))
    await service.handle_result(result(2, "198.18.0.20", False))
    assert open_alerts(service) == []  # one miss is not "down"
    await service.handle_result(result(1, GATEWAY))  # gateway polled after the miss: fine
    await service.handle_result(result(2, "198.18.0.20", False))
    await service.handle_result(result(2, "198.18.0.20", False))
    assert open_alerts(service) == [("device.down:2", "major")]
    await service.handle_result(result(2, "198.18.0.20", True))
    rows = alerts(service)
    assert [(r["key"], r["state"]) for r in rows] == [("device.down:2", "resolved")]
    assert "no echo reply" in str(rows[0]["message"])
    conn = sqlite3.connect(service.ctx.store.path)
    events = conn.execute("SELECT kind FROM events ORDER BY id").fetchall()
    outbox = conn.execute("SELECT lane, kind, body FROM outbox WHERE kind = 'alert'").fetchall()
    conn.close()
    assert [e[0] for e in events] == ["alert.opened", "alert.resolved"]
    assert [(lane, json.loads(body)["state"]) for lane, _, body in outbox] == [
        (0, "open"),
        (0, "resolved"),
    ]
    assert service.ctx.status.snapshot()["alerts.open"] == {
        "critical": 0,
        "major": 0,
        "minor": 0,
        "warning": 0,
    }


async def test_volume_thresholds_with_hysteresis(service: AlertingService) -> None:
    def vol(pct: float) -> PollResult:
        return result(3, "198.18.0.30", True, Reading("storage.used_pct", pct, "/volume1", "%"))

    steps = [
        (79.0, []),
        (85.0, [("volume:3:/volume1", "minor")]),
        (96.0, [("volume:3:/volume1", "major")]),
        (94.0, [("volume:3:/volume1", "major")]),  # within 2 % of 95: stays major
        (92.0, [("volume:3:/volume1", "minor")]),
        (79.0, [("volume:3:/volume1", "minor")]),  # within 2 % of 80: stays minor
        (77.0, []),
    ]
    for pct, expected in steps:
        await service.handle_result(vol(pct))
        assert open_alerts(service) == expected, pct
    # Each severity change is a resolve plus an open: 3 alert rows, every one resolved.
    assert [(a["severity"], a["state"]) for a in alerts(service)] == [
        ("minor", "resolved"),
        ("major", "resolved"),
        ("minor", "resolved"),
    ]


async def test_printer_supply_low_and_empty_and_special_values(service: AlertingService) -> None:
    def supply(level: float | None, empty: float | None) -> PollResult:
        return result(
            4,
            "198.18.0.40",
            True,
            Reading("supply.level_pct", level, "Black Toner", "%"),
            Reading("supply.empty", empty, "Black Toner"),
            kind="printer",
        )

    await service.handle_result(supply(None, 0.0))  # -3 "some remaining": no alert
    assert open_alerts(service) == []
    await service.handle_result(supply(8.0, 0.0))
    assert open_alerts(service) == [("supply.low:4:Black Toner", "minor")]
    await service.handle_result(supply(0.0, 1.0))
    assert ("supply.empty:4:Black Toner", "major") in open_alerts(service)
    await service.handle_result(supply(100.0, 0.0))  # replaced
    assert open_alerts(service) == []


async def test_gateway_down_suppresses_its_dependents(service: AlertingService) -> None:
    await service.handle_result(result(1, GATEWAY, kind="router"))
    await service.handle_result(result(5, "198.18.0.50"))
    # The gateway and a device behind it stop answering.
    for _ in range(3):
        await service.handle_result(result(5, "198.18.0.50", False))
        await service.handle_result(result(1, GATEWAY, False, kind="router"))
    assert open_alerts(service) == [("device.down:1", "critical")]
    # The gateway comes back, the device is still down: now its own alert opens.
    await service.handle_result(result(1, GATEWAY, kind="router"))
    await service.handle_result(result(5, "198.18.0.50", False))
    assert open_alerts(service) == [("device.down:5", "major")]


async def test_dependent_waits_for_a_fresh_gateway_poll(service: AlertingService) -> None:
    await service.handle_result(result(1, GATEWAY, kind="router"))
    await service.handle_result(result(6, "198.18.0.60", False))
    await service.handle_result(result(6, "198.18.0.60", False))
    assert open_alerts(service) == []  # the gateway has not been polled since the first miss
    await service.handle_result(result(1, GATEWAY, kind="router"))  # up: not the cause
    assert open_alerts(service) == [("device.down:6", "major")]


async def test_ups_on_battery_and_reboot_and_discovery_events(service: AlertingService) -> None:
    await service.handle_result(
        result(
            7,
            "198.18.0.70",
            True,
            Reading("ups.on_battery", 1.0),
            Reading("ups.charge_pct", 90.0),
            Reading("system.uptime_s", 5000.0),
            kind="ups",
        )
    )
    await service.handle_result(
        result(
            7,
            "198.18.0.70",
            True,
            Reading("ups.on_battery", 0.0),
            Reading("system.uptime_s", 20.0),
            kind="ups",
        )
    )
    await service.handle_event(Event("device.joined", 8, Severity.INFO, "new device 198.18.0.80"))
    await service.handle_event(
        Event("device.ip_conflict", 9, Severity.WARNING, "", {"ip": "198.18.0.90"})
    )
    # A new device is an info event (discovery stores it), never an open alert.
    assert sorted(open_alerts(service)) == [
        ("device.rebooted:7", "warning"),
        ("ip.conflict:198.18.0.90", "minor"),
    ]
    assert [a["rule"] for a in alerts(service) if a["state"] == "resolved"] == ["ups.on_battery"]
    # Timed alerts resolve by themselves once their hold time has passed.
    service.expiry = dict.fromkeys(service.expiry, 0.0)
    await service.sweep()
    assert open_alerts(service) == []


async def test_new_device_alerts_of_an_older_version_are_resolved_at_start(
    service: AlertingService,
) -> None:
    """An older version opened an info "new device" alert per device, kept open by a timer in
    memory (so, after a restart, for ever): they are resolved when alerting starts, each once,
    and a new device opens none."""

    def old_version(conn: sqlite3.Connection) -> None:
        for device_id in (11, 12):
            conn.execute(
                "INSERT INTO alerts (key, rule, device_id, severity, state, message, data,"
                " opened_ts) VALUES (?, 'device.new', ?, 'info', 'open', 'new device', '{}', 1)",
                (f"device.new:{device_id}", device_id),
            )

    await service.ctx.store.write(lambda tx: old_version(tx.conn))
    again = AlertingService(service.ctx)
    await again.setup()
    assert open_alerts(service) == []
    resolved = [str(a["key"]) for a in alerts(service) if a["state"] == "resolved"]
    assert sorted(resolved) == ["device.new:11", "device.new:12"]
    assert again.ctx.status.snapshot()["alerts.open"] == {
        "critical": 0, "major": 0, "minor": 0, "warning": 0,
    }  # fmt: skip
    await again.handle_event(Event("device.joined", 13, Severity.INFO, "new device"))
    assert open_alerts(service) == []
    await again.teardown()


async def test_open_alerts_survive_a_restart(service: AlertingService) -> None:
    for _ in range(2):
        await service.handle_result(result(2, "198.18.0.20", False))
    await service.handle_result(result(1, GATEWAY))
    assert open_alerts(service) == [("device.down:2", "major")]
    again = AlertingService(service.ctx)
    await again.setup()
    await again.handle_result(result(2, "198.18.0.20", False))
    await again.handle_result(result(2, "198.18.0.20", False))
    assert len(alerts(service)) == 1  # no duplicate after the restart
    await again.handle_result(result(2, "198.18.0.20", True))
    assert open_alerts(service) == []
    await again.teardown()


def test_maintenance_windows() -> None:
    # in_window reads only the weekday and time of day of a local time; the zone is irrelevant.
    sat_23 = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)  # a Saturday
    sun_01 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    sun_03 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    assert in_window(("sat 22:00-02:00",), sat_23)
    assert in_window(("sat 22:00-02:00",), sun_01)
    assert not in_window(("sat 22:00-02:00",), sun_03)
    assert in_window(("daily 03:00-03:30",), sun_03)
    assert not in_window(("mon 03:00-03:30",), sun_03)


# Two windows that together hold every minute of every day ("daily 00:00-23:59" alone leaves
# out 23:59): the test holds whenever it runs, with no condition on the wall clock.
# The service runs on a fixed clock: Wednesday 2026-11-25 12:00 UTC is a Wednesday in every
# time zone (UTC-12 to UTC+14), so a Friday window never holds and the test never depends on
# the day it runs.
WEDNESDAY_NOON_UTC_S = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp()
ALWAYS = ("daily 00:00-23:59", "daily 23:59-00:00")


async def _open_after_three_misses(tmp_path: Path, maintenance: tuple[str, ...]) -> list[object]:
    """Open alerts after a device missed three polls, with these maintenance windows."""
    store = Store(tmp_path / "m.db", chains=MIGRATION_CHAINS)
    await store.open()
    config = parse_config(f"[alerting]\nmaintenance = {json.dumps(list(maintenance))}\n")
    assert config.alerting.maintenance == maintenance
    ctx = AppContext(config=config, store=store, clock=FixedClock(wall=WEDNESDAY_NOON_UTC_S))
    svc = AlertingService(ctx)
    await svc.setup()
    try:
        for _ in range(3):
            await svc.handle_result(result(2, "198.18.0.20", False))
        return list(open_alerts(svc))
    finally:
        await svc.teardown()
        await store.close()


def test_the_always_windows_hold_every_minute_of_the_week() -> None:
    monday = datetime(2026, 11, 23, tzinfo=UTC)
    minutes = [monday + timedelta(minutes=m) for m in range(7 * 24 * 60)]
    assert [m for m in minutes if not in_window(ALWAYS, m)] == []


async def test_no_alert_opens_in_a_maintenance_window(tmp_path: Path) -> None:
    assert await _open_after_three_misses(tmp_path, ALWAYS) == []


async def test_the_same_misses_open_an_alert_outside_the_window(tmp_path: Path) -> None:
    # The clock says Wednesday (in any zone): a window on Friday does not hold.
    assert DAYS[4] == "fri"
    opened = await _open_after_three_misses(tmp_path, ("fri 00:00-23:59",))
    assert opened == [("device.down:2", "major")]


async def test_tcp_service_down_only_for_ports_seen_open(service: AlertingService) -> None:
    def tcp(port_open: dict[str, float]) -> PollResult:
        readings = [Reading("tcp.open", v, p) for p, v in port_open.items()]
        return result(10, "198.18.0.100", True, *readings)

    await service.handle_result(tcp({"445": 0.0, "22": 1.0}))  # 445 never open: no alert
    assert open_alerts(service) == []
    await service.handle_result(tcp({"445": 0.0, "22": 0.0}))
    assert open_alerts(service) == [("tcp.down:10:22", "minor")]
    await service.handle_result(tcp({"445": 0.0, "22": 1.0}))
    assert open_alerts(service) == []


async def test_workstations_coming_and_going_are_not_down_alerts(service: AlertingService) -> None:
    await service.handle_result(result(1, GATEWAY, kind="router"))
    for _ in range(3):
        await service.handle_result(result(11, "198.18.0.110", False, kind="workstation"))
    await service.handle_result(result(1, GATEWAY, kind="router"))
    assert open_alerts(service) == []


async def test_ip_conflict_stays_open_while_discovery_still_sees_it(
    service: AlertingService,
) -> None:
    has_table = await service.ctx.store.read(
        lambda conn: conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'ip_conflicts'"
        ).fetchone()
    )
    if not has_table:
        pytest.skip("discovery's migration chain (ip_conflicts) is not registered")
    await service.handle_event(
        Event("device.ip_conflict", 9, Severity.WARNING, "", {"ip": "198.18.0.9"})
    )
    await service.ctx.store.write(
        lambda tx: tx.conn.execute(
            "INSERT INTO ip_conflicts (ip, macs, first_seen, last_seen) VALUES (?, ?, 0, 0)",
            ("198.18.0.9", '["02:00:00:00:00:01", "02:00:00:00:00:02"]'),
        )
    )
    service.expiry = dict.fromkeys(service.expiry, 0.0)
    await service.sweep()
    assert open_alerts(service) == [("ip.conflict:198.18.0.9", "minor")]
    await service.ctx.store.write(lambda tx: tx.conn.execute("DELETE FROM ip_conflicts"))
    service.expiry = dict.fromkeys(service.expiry, 0.0)
    await service.sweep()
    assert open_alerts(service) == []


def test_yes_no_faults_of_ups_disks_and_raid() -> None:
    """UPS battery and self-test, a NAS's disk health and RAID state: alert while faulty."""
    from core.settings.alerting import AlertingSettings
    from services.alerting.rules import DeviceMemory, evaluate
    from services.polling.profiles import Reading
    from services.polling.results import PollResult

    def conditions(**values: float) -> dict[str, tuple[str | None, str]]:
        readings = (
            Reading("ups.battery_replace", values["replace"]),
            Reading("ups.selftest_ok", values["selftest"]),
            Reading("disk.health_ok", values["disk"], "Disk 3"),
            Reading("raid.ok", values["raid"], "Volume 1"),
        )
        result = PollResult(
            device_id=7,
            ip="198.18.0.30",
            name="nas",
            kind="nas",
            wall_s=0.0,
            mono_s=0.0,
            reachable=True,
            readings=readings,
            checks=(),
            duration_s=0.1,
        )
        found = evaluate(result, DeviceMemory(), AlertingSettings(), {}, is_gateway=False)
        return {c.key: (c.severity, c.message) for c in found if c.rule != "device.down"}

    faulty = conditions(replace=1, selftest=0, disk=0, raid=0)
    assert faulty["ups.battery_replace:7"] == (
        "minor",
        "nas (198.18.0.30): the battery needs replacing",
    )
    assert faulty["ups.selftest:7"] == (
        "minor",
        "nas (198.18.0.30): the last battery self-test failed",
    )
    assert faulty["disk.failed:7:Disk 3"] == (
        "major",
        "nas (198.18.0.30): Disk 3 reports a failure",
    )
    assert faulty["raid.degraded:7:Volume 1"] == (
        "major",
        "nas (198.18.0.30): Volume 1 is degraded or crashed",
    )
    healthy = conditions(replace=0, selftest=1, disk=1, raid=1)
    for key in (
        "ups.battery_replace:7",
        "ups.selftest:7",
        "disk.failed:7:Disk 3",
        "raid.degraded:7:Volume 1",
    ):
        assert healthy[key][0] is None, f"{key} must clear when the device is healthy"
