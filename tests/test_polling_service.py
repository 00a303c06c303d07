"""The polling service end to end on loopback: a dead device costs its own budget only, the
good device keeps its interval, and each device's state says why."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from core.config import parse_config
from firmware.app import MIGRATION_CHAINS
from services.context import AppContext
from services.polling.results import PollResult
from services.polling.service import PollingService
from services.store import Store
from tests.polling_agents import TableAgent
from tests.test_polling_bad_agents import GOOD

CONFIG = """
[polling]
interval_s = 1.0
concurrency = 1
icmp = false
snmp_timeout_s = 0.3
snmp_retries = 1
snmp_budget_s = 2.0
kind_tcp_ports = []
# On loopback every address's TCP answers (RST), which proves liveness: "dead" here means a
# silent SNMP agent, so the TCP last-resort probe is off.
probe_tcp_ports = []
[[polling.devices]]
name = "good"
ip = "127.0.0.2"
kind = "nas"
snmp_credential = "public-v2c"
[[polling.devices]]
name = "dead"
ip = "127.0.0.3"
kind = "nas"
snmp_credential = "public-v2c"
"""
RUN_S = 5.0


async def test_dead_device_never_delays_the_good_one(tmp_path: Path) -> None:
    store = Store(tmp_path / "p.db", chains=MIGRATION_CHAINS)
    await store.open()
    ctx = AppContext(config=parse_config(CONFIG), store=store, clock=store.clock)
    results = ctx.bus.subscribe(PollResult)
    service = PollingService(ctx)
    try:
        async with (
            TableAgent(GOOD, host="127.0.0.2") as good,
            TableAgent(GOOD, "silent", host="127.0.0.3", port=good.port),
        ):
            await service.setup()
            assert service.poller is not None
            service.poller.snmp_port = good.port
            task = asyncio.create_task(service.run())
            await asyncio.sleep(RUN_S)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await service.teardown()
    finally:
        got: list[PollResult] = []
        while not results.queue.empty():
            got.append(results.queue.get_nowait())
        state = await store.query("SELECT ip, reachable, missed FROM poll_state ORDER BY ip")
        checks = await store.query(
            "SELECT d.ip, c.check_name, c.ok, c.error FROM poll_checks c"
            " JOIN devices d ON d.id = c.device_id ORDER BY d.ip"
        )
        await store.close()
    good_polls = [r for r in got if r.ip == "127.0.0.2"]
    dead_polls = [r for r in got if r.ip == "127.0.0.3"]
    print(f"good polls: {len(good_polls)}, dead polls: {len(dead_polls)}")
    # One slot, a dead neighbour timing out at 0.6 s a poll: the good device still gets
    # (nearly) every 1 s interval, and the dead one is re-checked sooner than its interval.
    assert len(good_polls) >= int(RUN_S / 1.0) - 1
    assert all(r.duration_s < 0.5 for r in good_polls)
    assert all(r.duration_s < 2.0 + 0.5 for r in dead_polls)
    assert state == [
        {"ip": "127.0.0.2", "reachable": 1, "missed": 0},
        {"ip": "127.0.0.3", "reachable": 0, "missed": len(dead_polls)},
    ]
    dead_check = [c for c in checks if c["ip"] == "127.0.0.3"]
    assert dead_check[0]["ok"] == 0 and "no answer from 127.0.0.3" in dead_check[0]["error"]


def test_configured_devices_are_checked_with_clear_messages() -> None:
    from core.schema import ConfigError

    bad = {
        "[[polling.devices]]\nname = 'x'\n": "needs an ip",
        "[[polling.devices]]\nip = '198.18.0.9'\nkind = 'toaster'\n": "is not a device kind",
        "[polling]\nkind_tcp_ports = ['printer:9100']\n": "write it like 'printer=9100,631'",
        "[alerting]\nmaintenance = ['weekends']\n": "write a window like",
        "[alerting]\nvolume_minor_pct = 90\nvolume_major_pct = 85\n": "volume_major_pct must be",
    }
    for text, words in bad.items():
        try:
            parse_config(text)
        except ConfigError as exc:
            assert words in str(exc), (text, str(exc))
        else:
            raise AssertionError(f"accepted: {text!r}")


async def test_configured_devices_join_the_inventory_with_their_settings(tmp_path: Path) -> None:
    from services.polling.inventory import load_targets, upsert_configured

    config = parse_config(
        "[polling]\nkind_tcp_ports = ['printer=9100']\n"
        "[[polling.devices]]\nname = 'Printer'\nip = '198.18.0.30'\nkind = 'printer'\n"
        "snmp_credential = 'public-v2c'\ntcp_ports = [631]\ninterval_s = 30\n"
    )
    store = Store(tmp_path / "i.db", chains=MIGRATION_CHAINS)
    await store.open()
    try:
        for _ in range(2):  # twice: an upsert, not a duplicate
            await store.write(lambda tx: upsert_configured(tx, config.polling.devices))
        targets = await store.read(lambda conn: load_targets(conn, config.polling))
        source = await store.query("SELECT source FROM devices")
    finally:
        await store.close()
    assert source == [{"source": "config"}]
    (t,) = targets
    assert (t.ip, t.name, t.kind, t.credential) == (
        "198.18.0.30",
        "Printer",
        "printer",
        "public-v2c",
    )
    assert t.tcp_ports == (9100, 631) and t.interval_s == 30.0


async def test_yes_no_readings_are_stored_with_unit_0_1(tmp_path: Path) -> None:
    """A disk's health or a port's state is a yes/no fact, shown as yes/no, never as '1'."""
    from core.clock import FixedClock
    from services.polling.profiles import Reading
    from services.polling.results import PollResult
    from services.polling.schema import POLLING
    from services.polling.service import store_result
    from services.store import Store

    store = Store(tmp_path / "o.db", chains=[POLLING], clock=FixedClock())
    await store.open()
    try:
        result = PollResult(
            device_id=1,
            ip="198.18.0.30",
            name="nas",
            kind="nas",
            wall_s=0.0,
            mono_s=0.0,
            reachable=True,
            checks=(),
            duration_s=0.1,
            readings=(
                Reading("disk.health_ok", 1.0, "Disk 1"),
                Reading("if.oper_up", 0.0, "eth1"),
                Reading("printer.jammed", 0.0),
                Reading("storage.used_pct", 71.0, "/volume1", "%"),
            ),
        )
        await store.write(lambda tx: store_result(tx, result, missed=0))
        units = {
            r["metric"]: r["unit"] for r in await store.query("SELECT metric, unit FROM series")
        }
    finally:
        await store.close()
    assert units == {
        "disk.health_ok": "0/1",
        "if.oper_up": "0/1",
        "printer.jammed": "0/1",
        "storage.used_pct": "%",
        "device.reachable": "0/1",  # every poll's verdict (the monthly report's availability)
    }
