"""A month of an office's history, written through the real store, polling's writer and the
alerting service, with planted incidents whose truth is known (tests/test_report_month.py and
bench/report.py share it).

Virtual time (FixedClock): every ``interval_s`` each device is "polled" (a PollResult built
from the plan below), stored with ``services.polling.service.store_result`` in one transaction
per cycle and handed to ``AlertingService.handle_result``, so the alerts, events and outbox
rows are the product's own. Site: Europe/Berlin, October 2026 (its DST change included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core.clock import FixedClock
from core.config import Config, parse_config
from services.alerting.service import AlertingService
from services.context import AppContext
from services.polling.profiles import Reading
from services.polling.results import PollResult
from services.polling.service import store_result
from services.store import Store, Tx
from services.store.records import Event, insert_event
from services.uplink.devices import forward_changes
from services.uplink.outbox import Expander, OutboxRow
from services.uplink.service import OutboxForwarder

TZ = ZoneInfo("Europe/Berlin")
DAY_S = 86400.0
GATEWAY_IP = "198.18.0.1"
CONFIG = f"""
[site]
name = "Demo Dental Practice"
timezone = "Europe/Berlin"
[site.business_hours]
start = "08:00"
end = "18:00"
days = ["mon", "tue", "wed", "thu", "fri"]
[alerting]
gateway_ip = "{GATEWAY_IP}"
down_after_missed = 2
"""


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=TZ).timestamp()


START_S = local(2026, 10, 1)
END_S = local(2026, 11, 1)


@dataclass(frozen=True)
class PlannedDevice:
    id: int
    name: str
    kind: str
    ip: str
    vendor: str = ""
    joined_s: float = START_S - 40 * DAY_S


# The NAS volume: 55 % at the start, +0.9 points a day (so 100 % 50 days after the start).
VOLUME = "/volume1"
VOLUME_START_PCT = 55.0
VOLUME_PER_DAY = 0.9
# The printer's toner: 45 % at the start, -1.3 points a day.
SUPPLY = "black toner"
SUPPLY_START_PCT = 45.0
SUPPLY_PER_DAY = -1.3
# The switch's ports: "Gi0/12" (labelled "front desk" on the switch) with inbound errors growing
# from none to 0.02 a second (1728 a day) over the month: a worn cable; "Gi0/1" with a steady
# 0.01 a second (no trend); "Gi0/2" with one burst of 0.9 a second for two hours. All far below
# alerting's 1 error a second: no alert, only the report's outlook sees the growth.
GROWING_PORT, GROWING_LABEL = "Gi0/12", "front desk"
GROWING_ERRORS_PS = 0.02  # at the end of the month
FLAT_PORT, FLAT_ERRORS_PS = "Gi0/1", 0.01
BURST_PORT, BURST_ERRORS_PS = "Gi0/2", 0.9


@dataclass(frozen=True)
class Truth:
    """What was planted (epoch seconds)."""

    server_down: tuple[tuple[float, float], ...] = (
        (local(2026, 10, 14, 14, 0), local(2026, 10, 14, 16, 0)),  # Wednesday afternoon
        (local(2026, 10, 17, 2, 0), local(2026, 10, 17, 2, 20)),  # Saturday night
    )
    on_battery: tuple[float, float] = (local(2026, 10, 20, 10, 0), local(2026, 10, 20, 10, 25))
    box_off: tuple[float, float] = (local(2026, 10, 22, 9, 0), local(2026, 10, 22, 12, 0))
    unknown_joined_s: float = local(2026, 10, 14, 10, 12)
    battery_replace_s: float = local(2026, 10, 12, 14, 0)  # the UPS asks from then on
    error_burst: tuple[float, float] = (local(2026, 10, 8, 11, 0), local(2026, 10, 8, 13, 0))
    ack_s: float = local(2026, 10, 14, 14, 20)
    volume_full_s: float = START_S + (100.0 - VOLUME_START_PCT) / VOLUME_PER_DAY * DAY_S
    volume_80_s: float = START_S + (80.0 - VOLUME_START_PCT) / VOLUME_PER_DAY * DAY_S
    toner_10_s: float = START_S + (10.0 - SUPPLY_START_PCT) / SUPPLY_PER_DAY * DAY_S
    toner_empty_s: float = START_S + (0.0 - SUPPLY_START_PCT) / SUPPLY_PER_DAY * DAY_S
    devices: tuple[PlannedDevice, ...] = field(default_factory=tuple)


def office(extra_workstations: int = 2) -> tuple[PlannedDevice, ...]:
    fixed = (
        PlannedDevice(1, "Internet gateway", "router", GATEWAY_IP, "Netgate"),
        PlannedDevice(2, "Office switch", "switch", "198.18.0.2", "Cisco"),
        PlannedDevice(3, "File server", "server", "198.18.0.10", "Dell"),
        PlannedDevice(4, "Backup NAS", "nas", "198.18.0.11", "Synology"),
        PlannedDevice(5, "Front desk printer", "printer", "198.18.0.20", "HP"),
        PlannedDevice(6, "Server room UPS", "ups", "198.18.0.30", "APC"),
        PlannedDevice(7, "", "unknown", "198.18.0.99", "", local(2026, 10, 14, 10, 12)),
    )
    pcs = tuple(
        PlannedDevice(100 + i, f"PC {i + 1}", "workstation", f"198.18.{1 + i // 250}.{i % 250 + 1}")
        for i in range(extra_workstations)
    )
    return fixed + pcs


def _within(t: float, spans: tuple[tuple[float, float], ...]) -> bool:
    return any(a <= t < b for a, b in spans)


def _wobble(t: float) -> float:
    """Deterministic noise of +-0.3 points, so the forecast is a real fit."""
    return 0.3 * math.sin((t - START_S) / DAY_S * 2.1)


def volume_pct(t: float) -> float:
    """The NAS volume's planted fill level at ``t``, % (rounded as a device reports it)."""
    return round(VOLUME_START_PCT + VOLUME_PER_DAY * (t - START_S) / DAY_S + _wobble(t), 2)


def toner_pct(t: float) -> float:
    """The printer's planted toner level at ``t``, %."""
    days = (t - START_S) / DAY_S
    return round(max(0.0, SUPPLY_START_PCT + SUPPLY_PER_DAY * days + _wobble(t)), 2)


def port_errors_ps(port: str, t: float, truth: Truth) -> float:
    """The planted inbound error rate of a switch port at ``t``, errors a second."""
    if port == GROWING_PORT:
        return round(GROWING_ERRORS_PS * max(0.0, t - START_S) / (END_S - START_S), 6)
    if port == FLAT_PORT:
        return FLAT_ERRORS_PS
    return BURST_ERRORS_PS if truth.error_burst[0] <= t < truth.error_burst[1] else 0.0


def _readings(d: PlannedDevice, t: float, truth: Truth) -> tuple[Reading, ...]:
    if d.kind == "switch":
        return tuple(
            r
            for port in (FLAT_PORT, BURST_PORT, GROWING_PORT)
            for r in (
                Reading("if.in_errors_ps", port_errors_ps(port, t, truth), port, "1/s"),
                Reading("if.out_errors_ps", 0.0, port, "1/s"),
            )
        )
    if d.kind == "nas":
        return (Reading("storage.used_pct", volume_pct(t), VOLUME, "%"),)
    if d.kind == "printer":
        return (Reading("supply.level_pct", toner_pct(t), SUPPLY, "%"),)
    if d.kind == "ups":
        battery = truth.on_battery[0] <= t < truth.on_battery[1]
        return (
            Reading("ups.on_battery", 1.0 if battery else 0.0),
            Reading("ups.charge_pct", 80.0 if battery else 100.0, "", "%"),
            Reading("ups.runtime_s", 1500.0, "", "s"),
            Reading("ups.battery_replace", 1.0 if t >= truth.battery_replace_s else 0.0),
            Reading("ups.selftest_ok", 1.0),
        )
    return ()


async def _insert_devices(
    store: Store, devices: tuple[PlannedDevice, ...], at_s: float, joined: Event | None = None
) -> None:
    """Devices into the inventory, and (``joined``) discovery's event in the same transaction,
    as discovery writes them, so the device record home gets says "joined"."""

    def write(tx: Tx) -> None:
        conn = tx.conn
        for d in devices:
            conn.execute(
                "INSERT INTO devices (id, mac, ip, name, kind, vendor, source, first_seen,"
                " last_seen) VALUES (?, ?, ?, ?, ?, ?, 'test', ?, ?)",
                (d.id, f"02:00:00:00:{d.id // 256:02x}:{d.id % 256:02x}", d.ip, d.name, d.kind,
                 d.vendor, d.joined_s, at_s),
            )  # fmt: skip
        if joined is not None:
            insert_event(tx, joined)
        # The device records home's inventory is kept from (what discovery's writes do).
        forward_changes(tx)
        # The switch's label on its port to the front desk, as the topology reads it.
        for d in devices:
            if d.kind == "switch":
                conn.execute(
                    "INSERT INTO topology_ports (switch_id, if_index, name, alias, ts)"
                    " VALUES (?, 12, ?, ?, ?)",
                    (d.id, GROWING_PORT, GROWING_LABEL, at_s),
                )

    await store.write(write)


async def build_month(
    db_path: Path, *, interval_s: float = 300.0, extra_workstations: int = 2, forward: bool = False
) -> tuple[Truth, Config]:
    """Write October 2026 of the demo office into a new store at ``db_path``.

    ``forward``: also fill the uplink's outbox (every record bound for home, device records
    included), for :func:`send_to_home`.
    """
    from firmware.app import MIGRATION_CHAINS  # the appliance's own tables (polling's, ...)

    devices = office(extra_workstations)
    truth = Truth(devices=devices)
    config = parse_config(CONFIG)
    clock = FixedClock(wall=START_S - 2 * DAY_S)
    store = Store(
        db_path,
        chains=MIGRATION_CHAINS,
        clock=clock,
        forward=OutboxForwarder() if forward else None,
    )
    await store.open()
    ctx = AppContext(config=config, store=store, clock=clock)
    alerting = AlertingService(ctx)
    await alerting.setup()
    try:
        present = [d for d in devices if d.joined_s <= clock.wall()]
        await _insert_devices(store, tuple(present), clock.wall())
        joined = False
        acked = False
        t = clock.wall()
        while t < END_S + interval_s:
            if not joined and t >= truth.unknown_joined_s:
                joined = True
                newcomer = next(d for d in devices if d.kind == "unknown")
                event = Event(
                    "device.joined",
                    newcomer.id,
                    message=f"New device on the LAN: {newcomer.ip}",
                    data={"mac": "02:00:00:00:00:07", "ip": newcomer.ip, "vendor": ""},
                )
                await _insert_devices(store, (newcomer,), t, joined=event)
                await alerting.handle_event(event)
                present.append(newcomer)
            if not acked and t >= truth.ack_s:
                acked = True
                await store.write(_ack_server_down)
            if not (truth.box_off[0] <= t < truth.box_off[1]):
                await _poll_cycle(
                    store, alerting=alerting, clock=clock, devices=present, t=t, truth=truth
                )
            clock.advance(interval_s)
            t = clock.wall()
    finally:
        await alerting.teardown()
        await store.close()
    return truth, config


def _ack_server_down(tx: object) -> None:
    """What the status page's acknowledge button does (web/app.py: ack_alert)."""
    conn = tx.conn  # type: ignore[attr-defined]
    row = conn.execute(
        "SELECT id FROM alerts WHERE key = 'device.down:3' AND state = 'open'"
    ).fetchone()
    if row is None:
        raise AssertionError("the server's down alert should be open when the technician acks")
    conn.execute("UPDATE alerts SET acked = 1 WHERE id = ?", (row[0],))
    insert_event(
        tx,  # type: ignore[arg-type]
        Event(
            "alert.acked",
            message=f"Alert {row[0]} acknowledged on the status page",
            data={"alert_id": row[0], "client": "198.18.0.50"},
        ),
    )


async def _poll_cycle(
    store: Store,
    *,
    alerting: AlertingService,
    clock: FixedClock,
    devices: list[PlannedDevice],
    t: float,
    truth: Truth,
) -> None:
    results = []
    for d in devices:  # the gateway first: its dependents' down alerts wait for its poll
        up = not (d.kind == "server" and _within(t, truth.server_down))
        results.append(
            PollResult(
                device_id=d.id, ip=d.ip, name=d.name, kind=d.kind, wall_s=t,
                mono_s=clock.monotonic(), reachable=up,
                readings=_readings(d, t, truth) if up else (), checks=(), duration_s=0.05,
                answered_by=("icmp",) if up else (), silent=() if up else ("icmp",),
            )
        )  # fmt: skip
    missed = {r.device_id: 0 if r.reachable else 1 for r in results}

    def write(tx: object) -> None:
        for r in results:
            store_result(tx, r, missed[r.device_id], ("icmp",))  # type: ignore[arg-type]

    await store.write(write)
    for r in results:
        await alerting.handle_result(r)


def send_to_home(box_db: Path, home: Any, appliance: str, batch: int = 2000) -> int:
    """Hand the box's outbox to home's ingest (``home.db.HomeDB.ingest_sync``) in order, in
    batches of the uplink's format (docs/uplink.md), as the uplink would after an outage; run
    on home's database thread. Returns the records home accepted."""
    import secrets
    import sqlite3

    accepted = 0
    expander = Expander()  # the uplink's own: compact measurement rows -> wire records
    with sqlite3.connect(box_db) as conn:
        rows = [
            OutboxRow(seq, lane, kind, body, ts, bool(synced))
            for seq, lane, kind, body, ts, synced in conn.execute(
                "SELECT seq, lane, kind, body, ts, synced FROM outbox ORDER BY seq"
            )
        ]
        for i in range(0, len(rows), batch):
            records = expander.records(conn, rows[i : i + batch])
            answer = home.ingest_sync(
                appliance, secrets.token_hex(16), {"stream": "month", "records": records}
            )
            accepted += int(answer.get("accepted", len(records)))
    return accepted


def dump_alerts(db_path: Path) -> list[dict[str, object]]:
    """The alerts table as written (for a failing test's message)."""
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM alerts ORDER BY id")]


__all__ = [
    "CONFIG",
    "END_S",
    "START_S",
    "Truth",
    "build_month",
    "dump_alerts",
    "port_errors_ps",
    "send_to_home",
    "toner_pct",
    "volume_pct",
]
