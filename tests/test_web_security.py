"""Hostile names never become markup, and no configured secret ever reaches a page or the API."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from core.config import Config, parse_config
from core.schema import Secret
from tests.browser_support import browser, screenshot, wait_js, watch
from tests.web_support import appliance, insert_device, mark_down, seed_site, serve
from web import auth

# What a hostile device could announce: script, markup with handlers, an attribute breakout.
HOSTILE_MDNS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
HOSTILE_SYSNAME = "\"><svg onload=window.__xss=3><b>bold</b>'"
HOSTILE_DESCR = "</td></tr></table><iframe src=javascript:window.__xss=4>"


async def _hostile_device(ctx: Any) -> int:
    def write(tx: Any) -> int:
        did = insert_device(
            tx, ip="198.18.0.66", name=HOSTILE_MDNS, kind="printer", mac="02:66:66:66:66:66",
            vendor=HOSTILE_SYSNAME, now=time.time(),
            attrs={"mdns": [{"type": "_ipp._tcp", "name": HOSTILE_MDNS, "host": "p.local.",
                             "port": 631, "txt": {}}],
                   "snmp": {"sysName": HOSTILE_SYSNAME, "sysDescr": HOSTILE_DESCR},
                   "evidence": [{"source": "snmp", "kind": "printer", "weight": 0.9,
                                 "why": f"sysName {HOSTILE_SYSNAME}"}],
                   "model": HOSTILE_DESCR},
        )  # fmt: skip
        tx.conn.execute(
            "INSERT INTO device_snmp (device_id, credential, sys_object_id, sys_descr, updated)"
            " VALUES (?, 'office-v2c', '1.3.6.1.4.1.11.2.3.9.1', ?, ?)",
            (did, HOSTILE_DESCR, time.time()),
        )
        tx.conn.execute(
            "INSERT INTO alerts (key, rule, device_id, severity, state, message, opened_ts)"
            " VALUES ('x', 'supply.low', ?, 'major', 'open', ?, ?)",
            (did, f"Toner low on {HOSTILE_MDNS}", time.time()),
        )
        return did

    return int(await ctx.store.write(write))


async def test_hostile_names_show_as_text_and_no_script_runs(tmp_path: Path) -> None:
    async with appliance(tmp_path) as ctx:
        await seed_site(ctx.store, time.time(), history_days=0.1)
        did = await _hostile_device(ctx)
        async with serve(ctx) as base, browser() as b:
            page = await b.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
            seen = watch(page)
            dialogs: list[str] = []
            page.on("dialog", lambda d: dialogs.append(d.message))
            for path in ("/", "/devices", f"/devices/{did}", "/alerts", "/devices?q=script"):
                await page.goto(base + path)
                await page.wait_for_load_state("networkidle")
                assert await page.evaluate("typeof window.__xss") == "undefined", path
                for tag in ("main script", "main img[src=x]", "main svg[onload]", "main iframe"):
                    assert await page.locator(tag).count() == 0, (path, tag)
            text = await page.inner_text("main")
            assert HOSTILE_MDNS in text  # shown literally, as the device announced it
            await page.goto(base + f"/devices/{did}")
            text = await page.inner_text("main")
            assert HOSTILE_MDNS in text and HOSTILE_SYSNAME in text and HOSTILE_DESCR in text
            await screenshot(page, "xss-device-detail")
            # The live refresh (innerHTML of server-escaped HTML) is just as inert.
            await page.goto(base + "/devices?q=script")
            await wait_js(page, "document.getElementById('live-state').textContent")
            before = await page.evaluate("document.body.getAttribute('data-refreshed')")
            await mark_down(ctx.store, did, HOSTILE_MDNS)
            await wait_js(
                page,
                f"document.body.getAttribute('data-refreshed') !== {json.dumps(before)}",
                within_s=10.0,
            )
            assert await page.locator(".state[data-state=down]").count() == 1
            assert await page.evaluate("typeof window.__xss") == "undefined"
            assert dialogs == [] and seen.errors == []


def _secrets_in(obj: Any) -> list[str]:
    if isinstance(obj, Secret):
        return [obj.reveal()] if obj.reveal() else []
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [s for f in dataclasses.fields(obj) for s in _secrets_in(getattr(obj, f.name))]
    if isinstance(obj, tuple | list):
        return [s for item in obj for s in _secrets_in(item)]
    return []


def _config_with_secrets(admin_hash: str) -> Config:
    text = f'[site]\nname = "Secret Test Site"\n[web]\nadmin_password_hash = "{admin_hash}"\n'
    if "snmp" in {f.name for f in dataclasses.fields(Config)}:
        text += (
            '[[snmp.credentials]]\nname = "office-v2c"\nversion = "2c"\n'
            'community = "c0mmunity-s3cret-v2"\n'
            '[[snmp.credentials]]\nname = "nas-v3"\nversion = "3"\nuser = "monitor"\n'
            'auth_protocol = "SHA256"\nauth_key = "auth-s3cret-passphrase"\n'
            'priv_protocol = "AES"\npriv_key = "priv-s3cret-passphrase"\n'
        )
    return parse_config(text)


async def test_no_configured_secret_in_any_page_or_api(tmp_path: Path) -> None:
    password = "admin-s3cret-password"
    admin_hash = auth.hash_password(password, n=2**10)
    config = _config_with_secrets(admin_hash)
    secrets = {password, admin_hash, admin_hash.split("$")[-1], "attr-s3cret-community",
               "attr-s3cret-psk", *_secrets_in(config)}  # fmt: skip
    async with appliance(tmp_path, config) as ctx:
        ids = await seed_site(ctx.store, time.time(), history_days=0.1)
        nas = ids["nas-files"]
        # Free-form attributes a discovery module might keep: secret-looking keys never show.
        await ctx.store.write(
            lambda tx: tx.conn.execute(
                "UPDATE devices SET attrs = json_set(attrs, '$.snmp_community', ?,"
                " '$.wifi', json_object('psk', ?)) WHERE id = ?",
                ("attr-s3cret-community", "attr-s3cret-psk", nas),
            )
        )
        ctx.status.publish("uplink.token", "status-s3cret-token")
        secrets.add("status-s3cret-token")
        paths = [
            "/", "/devices", f"/devices/{nas}", "/alerts", "/network", "/login", "/setup",
            f"/devices/{nas}/chart/latency.svg?range=24h", "/api/v1/status", "/api/v1/overview",
            "/api/v1/devices", f"/api/v1/devices/{nas}", f"/api/v1/devices/{nas}/series",
            "/api/v1/alerts", "/api/v1/events", "/api/v1/network", "/api/v1/openapi.json",
            "/metrics", "/static/app.js", "/nope", "/account",
        ]  # fmt: skip
        async with (
            serve(ctx) as base,
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        ):
            bodies: dict[str, str] = {}
            for path in paths:
                async with http.get(base + path) as r:
                    bodies[path] = await r.text()
            # Logged in as admin too: the admin sees no secret either.
            async with http.get(base + "/login") as r:
                csrf = (await r.text()).split('name="csrf" value="')[1].split('"')[0]
            async with http.post(base + "/login", data={"csrf": csrf, "password": password}) as r:
                assert r.status == 200 and "Log out" in await r.text()
            for path in paths:
                async with http.get(base + path) as r:
                    bodies["admin " + path] = await r.text()
        assert len(secrets) >= 6
        for path, body in bodies.items():
            for secret in secrets:
                assert secret not in body, f"{path} shows a secret"
        assert "nas-files" in bodies[f"/devices/{nas}"]  # the page itself did render
