"""Per device "never alert for down" (issue 17): ``monitored = false`` in [[polling.devices]]
turns a device's down alert off even for an infrastructure kind (presence events instead); the
page says "not watched (configured)". ``monitored = true`` still alerts whatever the kind, and
unset leaves it to the kind. The gateway is always watched.
"""

from __future__ import annotations

import html
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from core.config import parse_config
from core.schema import ConfigError
from firmware.app import MIGRATION_CHAINS
from services.alerting.service import AlertingService
from services.context import AppContext
from services.polling.inventory import PollTarget, load_targets, upsert_configured
from services.polling.results import CheckOutcome, PollResult
from services.polling.service import store_result
from services.store import Store
from services.uplink.service import OutboxForwarder
from tests.web_support import appliance, insert_device, serve

CONFIG = """
[alerting]
down_after_missed = 2
gateway_ip = "198.18.0.1"

[[polling.devices]]
name = "Lab server"
ip = "198.18.0.40"
kind = "server"
monitored = false

[[polling.devices]]
name = "File server"
ip = "198.18.0.41"
kind = "server"

[[polling.devices]]
name = "Boss laptop"
ip = "198.18.0.60"
kind = "workstation"
monitored = true

[[polling.devices]]
name = "Gateway"
ip = "198.18.0.1"
kind = "router"
monitored = false
"""
T0 = 1_800_000_000.0


def test_monitored_is_true_false_or_unset() -> None:
    devices = parse_config(CONFIG).polling.devices
    assert [d.monitored for d in devices] == [False, None, True, False]
    with pytest.raises(ConfigError, match="monitored"):
        parse_config("[[polling.devices]]\nip = '198.18.0.9'\nmonitored = 'no'\n")


@pytest.fixture
async def alerting(tmp_path: Path) -> AsyncIterator[AlertingService]:
    store = Store(tmp_path / "m.db", chains=MIGRATION_CHAINS, forward=OutboxForwarder())
    await store.open()
    config = parse_config(CONFIG)
    svc = AlertingService(AppContext(config=config, store=store, clock=store.clock))
    await svc.setup()
    try:
        yield svc
    finally:
        await svc.teardown()
        await store.close()


def _result(target: PollTarget, wall: float, up: bool) -> PollResult:
    return PollResult(
        target.device_id, target.ip, target.name, target.kind, wall, wall, up, (),
        (CheckOutcome("arp", up, "" if up else "no ARP reply within 1 s"),), 0.1,
        answered_by=("arp",) if up else (), silent=() if up else ("arp",),
        last_answer_wall=T0, monitored=target.monitored,
    )  # fmt: skip


def _rows(svc: AlertingService, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(svc.ctx.store.path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_a_server_marked_false_leaves_without_an_alert(alerting: AlertingService) -> None:
    """From the configuration through the inventory the poller reads to the alert rules."""
    settings = alerting.ctx.config.polling
    await alerting.ctx.store.write(lambda tx: upsert_configured(tx, settings.devices))
    targets = {
        t.name: t for t in await alerting.ctx.store.read(lambda c: load_targets(c, settings))
    }
    assert {n: t.monitored for n, t in targets.items()} == {
        "Lab server": False, "File server": None, "Boss laptop": True, "Gateway": False,
    }  # fmt: skip
    order = ("Gateway", "Lab server", "File server", "Boss laptop")
    for name in order:
        await alerting.handle_result(_result(targets[name], T0, True))
    for poll in range(1, 4):  # everything but the gateway silent for three polls
        await alerting.handle_result(_result(targets["Gateway"], T0 + 60 * poll, True))
        for name in order[1:]:
            await alerting.handle_result(_result(targets[name], T0 + 60 * poll, False))
    for poll in range(4, 7):  # then the gateway: marked false, but every device depends on it
        await alerting.handle_result(_result(targets["Gateway"], T0 + 60 * poll, False))
    opened = _rows(alerting, "SELECT key, severity FROM alerts WHERE state = 'open'")
    ids = {name: t.device_id for name, t in targets.items()}
    assert sorted(opened) == sorted(
        [
            (f"device.down:{ids['Gateway']}", "critical"),  # the gateway is always watched
            (f"device.down:{ids['File server']}", "major"),  # a server, by its kind
            (f"device.down:{ids['Boss laptop']}", "major"),  # a laptop marked true
        ]
    )
    left = _rows(alerting, "SELECT device_id FROM events WHERE kind = 'presence.left'")
    assert left == [(ids["Lab server"],)], "the server marked false left, no alert"


async def test_the_page_says_not_watched_configured(tmp_path: Path) -> None:
    now = time.time()
    async with appliance(tmp_path) as ctx:
        ids: dict[str, int] = {}

        def seed(tx: object) -> None:
            for name, ip, attrs in (
                ("Lab server", "198.18.0.40", {"monitored": False}),
                ("File server", "198.18.0.41", {}),
                ("Boss server", "198.18.0.42", {"monitored": True}),
            ):
                ids[name] = insert_device(
                    tx, ip=ip, name=name, kind="server", mac=f"52:54:00:00:01:{ip[-2:]}",
                    now=now, attrs=attrs,
                )  # fmt: skip

        await ctx.store.write(seed)
        gone = PollResult(
            ids["Lab server"], "198.18.0.40", "Lab server", "server", now, 0.0, False, (),
            (CheckOutcome("arp", False, "no ARP reply within 1 s"),), 1.0,
            silent=("arp",), last_answer_wall=now - 600, monitored=False,
        )  # fmt: skip
        await ctx.store.write(lambda tx: store_result(tx, gone, 3))
        async with serve(ctx) as base, aiohttp.ClientSession() as http:

            async def page(path: str) -> str:
                async with http.get(base + path) as r:
                    assert r.status == 200, path
                    return html.unescape(await r.text())

            listing = await page("/devices")
            lab = await page(f"/devices/{ids['Lab server']}")
            files = await page(f"/devices/{ids['File server']}")
            boss = await page(f"/devices/{ids['Boss server']}")
    rows = {name: listing.split(name, 1)[1].split("</tr>", 1)[0] for name in ids}
    assert "not watched (configured)" in rows["Lab server"]
    assert ">Away<" in rows["Lab server"], "not watched: away, not down"
    assert "not watched" not in rows["File server"] and "watched" in rows["File server"]
    assert "no: not watched (configured)" in lab
    assert "yes: an alert when it stops answering" in files and "(configured)" not in files
    assert "yes: an alert when it stops answering (configured)" in boss
