"""The MSP console in headless Chromium (Playwright) against a real ``outpost-home`` process.

Boxes are light signed appliances (simsite.harness.signed_client): home cannot tell them from a
box. The test logs in, sees the overview with a site whose box is silent and a site with a major
alert sorted first, watches a new alert arrive without a reload (server-sent events),
acknowledges an alert, claims a pending box from the page and sees it report, and has a
configuration with an error refused with the message shown. Screenshots at desktop and phone
width go to test-artifacts/screenshots/console-*.png.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.wire.claim_codes import code_hash
from home.db import HomeDB
from home.remote import HELLO_PATH, SYNC_PATH
from simsite.harness.signed_client import LightAppliance, new_identity
from tests.browser_support import browser, screenshot, wait_js, watch
from tests.uplink_support import HOME, Home, running_home

pytestmark = pytest.mark.usefixtures("home_backend")

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "a long console password"
CLAIM_CODE = "KX7P-3QMA"


def _cli(home: Home, *args: str) -> str:
    done = subprocess.run([*HOME, *args, *home.where()], check=True, capture_output=True,
                          text=True)  # fmt: skip
    return done.stdout


def _age_heartbeat(home: Home, appliance: str, age_s: float) -> None:
    """Make a box's last heartbeat ``age_s`` old (a silent box without waiting 3 minutes)."""
    db = HomeDB(home.location)
    db.open_sync()
    try:
        db.conn.execute(
            "UPDATE appliances SET heartbeat_at = ?, last_seen = ? WHERE id = ?",
            (time.time() - age_s, time.time() - age_s, appliance),
        )
    finally:
        db.close_sync()


async def _beat(box: LightAppliance, http: aiohttp.ClientSession, home: Home,
                tls: ssl.SSLContext, version: str = "1.4.2") -> None:  # fmt: skip
    doc = {"v": 1, "appliance": box.identity.appliance_id, "stream": box.stream,
           "version": version, "queue": {"0": 0, "1": 12}, "uptime_s": 86400,
           "clock_synced": True, "state": "connected"}  # fmt: skip
    status, answer = await box.post(http, home.url, doc, tls, "/api/v1/heartbeat")
    assert status == 200, answer


async def _alert(
    box: LightAppliance, http: aiohttp.ClientSession, home: Home, tls: ssl.SSLContext, *,
    key: str, severity: str, message: str,
) -> None:  # fmt: skip
    body = {"key": key, "id": key, "state": "open", "severity": severity, "message": message}
    status, answer = await box.post(
        http, home.url, box.batch([(0, "alert", body)], time.time() - 1800), tls
    )
    assert status == 200 and answer["accepted"] == 1, answer


async def _inventory(
    box: LightAppliance, http: aiohttp.ClientSession, home: Home, tls: ssl.SSLContext
) -> None:
    """Two devices (device records, lane 0), an hour of ping times of the NAS (measurements,
    lane 1) and an open alert on the NAS, as a claimed box sends them."""
    now = time.time()
    nas = {"change": "joined", "device_id": 7, "mac": "00:11:32:aa:bb:07", "ip": "198.18.0.10",
           "name": "nas-1", "kind": "nas", "vendor": "Synology", "model": "DS920+",
           "source": "snmp", "state": "present", "watched": True, "first_seen": now - 3600,
           "last_seen": now}  # fmt: skip
    pc = {**nas, "device_id": 8, "mac": "f8:bc:12:00:00:61", "ip": "198.18.0.61",
          "name": "Reception PC <i>", "kind": "workstation", "vendor": "Dell", "model": "",
          "watched": False}  # fmt: skip
    records = [(0, "device", nas), (0, "device", pc)]
    for minute in range(60):
        rtt = 1.0 + (minute % 10) / 10.0
        ping = {"device_id": 7, "metric": "icmp.rtt_ms", "instance": "", "unit": "ms", "value": rtt}
        records.append((1, "measurement", ping))
    records.append((0, "alert", {"key": "storage.full:7:/volume1", "id": "a9", "state": "open",
                                 "severity": "minor", "message": "volume1 88 % full"}))  # fmt: skip
    doc = box.batch(records, now)
    for n, rec in enumerate(doc["records"][2:-1]):
        rec["ts"] = now - 3600 + 60 * n
    status, answer = await box.post(http, home.url, doc, tls)
    assert status == 200 and answer["accepted"] == len(records), answer


async def _login(page: Any, home: Home) -> None:
    await page.goto(home.url + "/console")
    assert "/console/login" in page.url
    await page.fill("input[name=name]", "ann")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(home.url + "/console")


async def test_console_in_chromium(tmp_path: Path) -> None:
    with running_home(tmp_path) as home:
        _cli(home, "init-signing")
        (tmp_path / "pw").write_text(PASSWORD + "\n")
        _cli(home, "create-user", "ann", "--role", "admin", "--password-file", str(tmp_path / "pw"))
        tls = ssl.create_default_context(cafile=str(home.ca_file))
        dental, law, bakery, pending = (LightAppliance(new_identity()) for _ in range(4))
        for box, site in ((dental, "Acme Dental"), (law, "Silent Law LLP"),
                          (bakery, "Fine Bakery <b>&</b> Co")):  # fmt: skip
            home.register(box.identity, site=site)
        async with aiohttp.ClientSession() as http, browser() as b:
            for box in (dental, law, bakery):
                await _beat(box, http, home, tls)
            await _alert(dental, http, home, tls, key="ups.on_battery:3", severity="major",
                         message="UPS on battery")  # fmt: skip
            await _alert(dental, http, home, tls, key="storage.full:9:/", severity="minor",
                         message="Disk 91 % full")  # fmt: skip
            _age_heartbeat(home, law.identity.appliance_id, 2 * 3600 + 300)
            hello = {"v": 1, "appliance": pending.identity.appliance_id,
                     "public_key": pending.identity.public_text,
                     "claim_code_sha256": code_hash(CLAIM_CODE),
                     "code_expires_at": time.time() + 3600, "version": "1.4.2"}  # fmt: skip
            status, answer = await pending.post(http, home.url, hello, tls, HELLO_PATH)
            assert status == 200 and answer["state"] == "pending", answer

            context = await b.new_context(viewport=DESKTOP, ignore_https_errors=True)  # type: ignore[attr-defined]
            page = await context.new_page()
            seen = watch(page)
            await _login(page, home)

            # Worst first: the major alert (unacknowledged), then the silent box, then OK.
            order = await page.eval_on_selector_all(
                "#sites tbody tr", "rows => rows.map(r => [r.dataset.appliance, r.dataset.health])"
            )
            assert order == [
                [dental.identity.appliance_id, "red"],
                [law.identity.appliance_id, "red"],
                [bakery.identity.appliance_id, "green"],
            ], order
            silent_row = await page.inner_text(f"tr[data-appliance='{law.identity.appliance_id}']")
            assert "silent for 2 h 05 min" in silent_row
            first_row = await page.inner_text("#sites tbody tr:first-child")
            assert "UPS on battery" in first_row and "1 major" in first_row
            assert "Fine Bakery <b>&</b> Co" in await page.inner_text("#sites")
            await screenshot(page, "console-overview-desktop")

            # Live: a new critical alert at the bakery turns its row red without a reload.
            await wait_js(page, "document.getElementById('live-state').textContent === 'Live'")
            await _alert(bakery, http, home, tls, key="icmp.down:4", severity="critical",
                         message="Till PC down")  # fmt: skip
            bakery_row = f"tr[data-appliance='{bakery.identity.appliance_id}']"
            await wait_js(
                page, f"(document.querySelector(\"{bakery_row}\") || {{}}).dataset"
                "?.health === 'red'", within_s=15)  # fmt: skip
            assert page.url == home.url + "/console"  # no navigation: the region was refetched

            # Acknowledge the UPS alert from the alert console.
            await page.click("nav.tabs a[href='/console/alerts']")
            row = "tr[data-key='ups.on_battery:3']"
            await page.click(f"{row} form.ack button")
            await page.wait_for_selector(".flash")
            assert "acknowledged by ann" in await page.inner_text(f"{row} .handling")
            await screenshot(page, "console-alerts-desktop")

            # Claim the pending box from the page; then it reports and joins the overview.
            await page.click("nav.tabs a[href='/console/boxes']")
            await screenshot(page, "console-boxes-pending-desktop")
            await page.fill("#claim-form input[name=code]", CLAIM_CODE.lower())
            await page.fill("#claim-form input[name=site]", "Harbour Vets")
            await page.click("#claim-form button")
            await page.wait_for_selector(".flash")
            box_row = f"tr[data-appliance='{pending.identity.appliance_id}']"
            assert await page.get_attribute(box_row, "data-state") == "claimed"
            await screenshot(page, "console-boxes-desktop")
            status, answer = await pending.post(http, home.url, hello, tls, HELLO_PATH)
            assert answer["state"] == "claimed" and answer["site"] == "Harbour Vets", answer
            await _beat(pending, http, home, tls)
            await _inventory(pending, http, home, tls)
            # Roll out an update to that one box first.
            await page.select_option("#update-form select", pending.identity.appliance_id)
            await page.fill("#update-form input[name=url]", "https://updates.example/o-1.5.0.tar")
            await page.fill("#update-form input[name=version]", "1.5.0")
            await page.click("#update-form button")
            await page.wait_for_selector(".flash")
            assert "update to 1.5.0: pending" in await page.inner_text(f"{box_row} .update-state")
            await page.goto(home.url + "/console?q=harbour")
            vets = await page.inner_text("#sites tbody tr")
            assert "Harbour Vets" in vets and "online" in vets

            # The site's devices from the box's device records, and one device's readings.
            await page.goto(home.url + f"/console/sites/{pending.identity.appliance_id}")
            listed = await page.eval_on_selector_all(
                "#devices tbody tr", "rows => rows.map(r => r.innerText)"
            )
            assert len(listed) == 2 and "Reception PC <i>" in listed[0] + listed[1], listed
            assert "1 open" in next(row for row in listed if "nas-1" in row)
            await page.click("#devices tr[data-device='7'] a")
            assert "nas-1" in await page.inner_text("#device-title")
            charts = await page.eval_on_selector_all("figure.reading svg polyline", "p => p.length")
            assert charts == 1 and "1.9 ms" in await page.inner_text("figure.reading")
            await screenshot(page, "console-device-desktop")

            # A configuration with an error is refused with the box's own message shown.
            await page.goto(home.url + f"/console/sites/{pending.identity.appliance_id}")
            await page.fill("#config-form textarea", "[uplink]\nheartbeat_s = 'often'\n")
            await page.click("#config-form button")
            error = await page.inner_text("#site-error")
            assert "refused" in error and "heartbeat_s" in error, error
            await page.fill("#config-form textarea", "[site]\nname = 'Harbour Vets'\n")
            await page.click("#config-form button")
            await page.wait_for_selector(".flash")
            await page.select_option("#command-form select", "rediscover")
            await page.click("#command-form button")
            await page.wait_for_selector("#commands tr[data-command]")
            # The box syncs (a signed /api/v1/sync): it takes the signed configuration and the
            # command, and reports the configuration applied and the command's result.
            status, answer = await pending.post(
                http, home.url, {"v": 1, "config_version": 0}, tls, SYNC_PATH
            )
            assert status == 200 and answer["config"] and len(answer["commands"]) == 2, (
                answer
            )  # +update
            command_id = await page.get_attribute("#commands tr[data-command]", "data-command")
            report = {"v": 1, "config_version": 1,
                      "config_reports": [{"version": 1, "outcome": "applied", "reason": "",
                                          "at": time.time()}],
                      "command_results": [{"id": command_id, "outcome": "done",
                                           "detail": "rediscovered: 2 devices"}]}  # fmt: skip
            status, answer = await pending.post(http, home.url, report, tls, SYNC_PATH)
            assert status == 200, answer
            await page.reload()
            result = await page.inner_text(f"#commands tr[data-command='{command_id}']")
            assert "done" in result and "rediscovered: 2 devices" in result, result
            assert "applied" in await page.inner_text("#config-reports")
            await screenshot(page, "console-site-desktop")

            phone = await context.new_page()
            await phone.set_viewport_size(PHONE)
            await phone.goto(home.url + "/console")
            await screenshot(phone, "console-overview-phone")
            wide = await phone.evaluate("document.documentElement.scrollWidth")
            assert wide <= PHONE["width"] + 1, f"the overview is {wide} px wide on a phone"
            await phone.goto(home.url + "/console/alerts")
            await screenshot(phone, "console-alerts-phone")
            await context.close()
            # No CSP violation, no script error; the one failed load is the refused config (422).
            unexpected = [e for e in seen.errors if "status of 422" not in e]
            assert len(seen.errors) - len(unexpected) == 1 and not unexpected, seen.errors

        audit = [a for (a,) in home.rows("SELECT action FROM console_audit ORDER BY id")]
        assert audit[-7:] == [
            "login", "alert.ack", "box.claim", "box.command.update", "box.config", "box.config",
            "box.command.rediscover",
        ], audit  # fmt: skip
        acked = home.rows("SELECT acked_by FROM console_alert_state WHERE key = ?",
                          ("ups.on_battery:3",))  # fmt: skip
        assert acked == [("ann",)]
        assert json.loads(_cli(home, "users").splitlines()[0])["user"] == "ann"
