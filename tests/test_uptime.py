"""Uptime on the page, in the API and in /metrics counts time since boot, not the wall clock.

A Pi has no real-time clock: it boots at its last saved wall time and NTP then steps the clock,
by hours or years. The uptime must not step with it.
"""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from core.clock import FixedClock
from tests.web_support import appliance, serve

YEAR_S = 365 * 86400.0


async def _uptimes(http: aiohttp.ClientSession, base: str) -> tuple[float, float, str]:
    async with http.get(base + "/api/v1/status") as r:
        assert r.status == 200
        api = float((await r.json())["uptime_s"])
    async with http.get(base + "/metrics") as r:
        assert r.status == 200
        found = re.search(r"^outpost_uptime_seconds (\S+)$", await r.text(), re.MULTILINE)
        assert found, "outpost_uptime_seconds is missing from /metrics"
        metric = float(found.group(1))
    async with http.get(base + "/network") as r:
        assert r.status == 200
        page = await r.text()
    return api, metric, page


async def test_a_wall_clock_step_does_not_change_the_uptime(tmp_path: Path) -> None:
    clock = FixedClock(wall=1_500_000_000.0, synced=False)  # booted at a stale saved time
    async with (
        appliance(tmp_path, clock=clock) as ctx,
        serve(ctx) as base,
        aiohttp.ClientSession() as http,
    ):
        clock.advance(7500.0)  # 2 h 5 min of running: wall and boot time move together
        api, metric, page = await _uptimes(http, base)
        assert api == 7500.0 and metric == 7500.0
        assert "2 h 5 min" in page
        # NTP synchronises: the wall clock steps forward a year, time since boot does not.
        clock.set_wall(clock.wall() + YEAR_S)
        clock.synced = True
        assert ctx.uptime_s() == 7500.0
        api, metric, page = await _uptimes(http, base)
        assert api == 7500.0 and metric == 7500.0
        assert "2 h 5 min" in page and "365 d" not in page
        # And a step backwards (a bad saved time in the future) does not make it negative.
        clock.set_wall(clock.wall() - 3 * YEAR_S)
        clock.advance(60.0)
        api, metric, _ = await _uptimes(http, base)
        assert api == 7560.0 and metric == 7560.0
