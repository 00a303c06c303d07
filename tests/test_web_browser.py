"""The status page in headless Chromium on loopback, with data written through the Store API.

Screenshots of every page go to test-artifacts/screenshots/ (desktop and phone widths).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from core.messages import RediscoverRequested
from core.status import StatusKey
from tests.browser_support import browser, screenshot, wait_js, watch
from tests.web_support import appliance, free_port, mark_down, seed_site, serve

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


async def test_every_page_renders_real_data(tmp_path: Path) -> None:
    async with appliance(tmp_path) as ctx:
        ids = await seed_site(ctx.store, time.time())
        ctx.status.publish(StatusKey.PHASE, "running")
        ctx.status.publish(StatusKey.UPLINK_STATE, "connected")
        ctx.status.publish(
            StatusKey.PANEL,
            {
                "state": "minor_alert",
                "leds": {"power": "on", "uplink": "on", "alert": "slow_pulse"},
            },
        )
        async with serve(ctx) as base, browser() as b:
            page = await b.new_page(viewport=DESKTOP)  # type: ignore[attr-defined]
            seen = watch(page)
            shots = []
            await page.goto(base + "/")
            assert "Attention: 1 open alert" in await page.inner_text("#health h1")
            assert await page.inner_text("#devices-total") == "14"
            assert "Connected to your IT provider" in await page.inner_text("#uplink-state")
            assert "slow pulse" in await page.inner_text("#panel-leds")
            shots.append(await screenshot(page, "overview-desktop"))
            await page.goto(base + "/devices")
            rows = await page.locator("table.devices tbody tr").count()
            assert rows == 14
            await page.fill("input[name=q]", "reception")
            await page.press("input[name=q]", "Enter")
            await page.wait_for_url("**/devices?q=reception*")
            assert await page.locator("table.devices tbody tr").count() == 2
            await page.goto(base + "/devices?sort=-name")
            shots.append(await screenshot(page, "devices-desktop"))
            await page.goto(base + f"/devices/{ids['gw-leith']}")
            assert await page.inner_text("#device-name") == "gw-leith"
            # The SVG charts load from the box and have a real size.
            await page.wait_for_load_state("networkidle")
            sizes = await page.eval_on_selector_all(
                "figure img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])"
            )
            assert len(sizes) == 4 and all(done and width > 0 for done, width in sizes)
            shots.append(await screenshot(page, "device-detail-desktop"))
            await page.goto(base + f"/devices/{ids['hp-laserjet-reception']}")
            assert "Black Toner" in await page.inner_text("main")
            await page.goto(base + "/alerts")
            assert "Black toner at 12%" in await page.inner_text("table.alerts")
            shots.append(await screenshot(page, "alerts-desktop"))
            await page.goto(base + "/network")
            assert "This appliance" in await page.inner_text("main")
            shots.append(await screenshot(page, "network-desktop"))
            phone = await b.new_page(viewport=PHONE, device_scale_factor=2)  # type: ignore[attr-defined]
            seen_phone = watch(phone)
            for name, path in (
                ("overview", "/"),
                ("devices", "/devices"),
                ("device-detail", f"/devices/{ids['nas-files']}"),
            ):
                await phone.goto(base + path)
                await phone.wait_for_load_state("networkidle")
                # Nothing wider than the phone: no sideways scrolling of the whole page.
                width = await phone.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"], (path, width)
                shots.append(await screenshot(phone, f"{name}-phone"))
            assert seen.errors == [] and seen_phone.errors == []
            assert all(p.stat().st_size > 10_000 for p in shots)


async def test_live_update_when_a_device_goes_down(tmp_path: Path) -> None:
    async with appliance(tmp_path) as ctx:
        ids = await seed_site(ctx.store, time.time(), history_days=0.2)
        async with serve(ctx) as base, browser() as b:
            page = await b.new_page(viewport=DESKTOP)  # type: ignore[attr-defined]
            seen = watch(page)
            await page.goto(base + "/devices?q=cam-door")
            await wait_js(
                page, "document.getElementById('live-state').textContent.startsWith('Live')"
            )
            state = page.locator("table.devices tbody tr .state")
            assert await state.get_attribute("data-state") == "up"
            await page.evaluate("window.__sameDocument = true")
            started = time.monotonic()
            await mark_down(ctx.store, ids["cam-door"], "cam-door")
            await page.wait_for_selector(
                "table.devices tbody tr .state[data-state=down]", timeout=10_000
            )
            took = time.monotonic() - started
            assert await page.evaluate("window.__sameDocument") is True, "updated, not reloaded"
            assert took < 6.0
            await screenshot(page, "devices-live-down")
            # The overview follows too.
            await page.goto(base + "/")
            assert "1 device down" in await page.inner_text("#health h1")
            assert seen.errors == []


async def _evil_site(port: int, target: str) -> web.AppRunner:
    """Another origin on loopback whose page posts a form to the appliance (CSRF attempt)."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(
            content_type="text/html",
            text=f'<form id="f" method="post" action="{target}/actions/rediscover">'
            '<input name="csrf" value="guess"></form>'
            "<script>document.getElementById('f').submit()</script>",
        )

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.2", port).start()
    return runner


async def test_login_csrf_and_acknowledge_in_the_browser(tmp_path: Path) -> None:
    async with appliance(tmp_path) as ctx:
        await seed_site(ctx.store, time.time(), history_days=0.1)
        sub = ctx.bus.subscribe(RediscoverRequested)
        async with serve(ctx) as base, browser() as b:
            context = await b.new_context(viewport=DESKTOP)  # type: ignore[attr-defined]
            page = await context.new_page()
            seen = watch(page)
            await page.goto(base + "/alerts")
            assert await page.locator("text=log in to acknowledge").count() == 1
            await page.click("text=Admin login")
            await page.wait_for_url("**/setup")
            await screenshot(page, "setup")
            await page.fill("input[name=password]", "harbour-dental-2026")
            await page.fill("input[name=confirm]", "harbour-dental-2026")
            await page.click("button[type=submit]")
            await page.wait_for_url(base + "/")
            cookies = {c["name"]: c for c in await page.context.cookies()}
            assert cookies["outpost_session"]["httpOnly"] is True
            assert cookies["outpost_session"]["sameSite"] == "Strict"
            assert await page.evaluate("document.cookie") == "", "no cookie readable by script"
            await page.goto(base + "/alerts")
            await page.click("table.alerts button:has-text('Acknowledge')")
            await page.wait_for_url(base + "/alerts")
            assert "Acknowledged" in await page.inner_text("table.alerts")
            rows = await ctx.store.query("SELECT acked FROM alerts WHERE state = 'open'")
            assert rows == [{"acked": 1}]
            await page.click("button:has-text('Log out')")
            await page.goto(base + "/login")
            await page.fill("input[name=password]", "wrong password!")
            await page.click("button[type=submit]")
            assert "Wrong password." in await page.inner_text("main")
            await page.fill("input[name=password]", "harbour-dental-2026")
            await page.click("button[type=submit]")
            await page.wait_for_url(base + "/")
            await screenshot(page, "overview-admin")
            # A page on another origin submits a form to the appliance: refused, no action.
            evil_port = free_port()
            evil = await _evil_site(evil_port, base)
            try:
                other = await context.new_page()
                responses: list[Any] = []
                other.on("response", lambda r: responses.append(r))  # noqa: PLW0108
                await other.goto(f"http://127.0.0.2:{evil_port}/")
                await other.wait_for_url("**/actions/rediscover")
                await other.wait_for_load_state()
                statuses = [r.status for r in responses if r.url.endswith("/actions/rediscover")]
                assert statuses == [403]
            finally:
                await evil.cleanup()
            await asyncio.sleep(0.1)
            assert sub.queue.empty(), "the cross-site post must not request a rediscovery"
            # The real button does.
            await page.goto(base + "/network")
            await page.click("button:has-text('Rediscover now')")
            await page.wait_for_url(base + "/network")
            assert isinstance(sub.queue.get_nowait(), RediscoverRequested)
            # The only console error is the wrong password's 401 response.
            assert len(seen.errors) == 1 and "401" in seen.errors[0], seen.errors
