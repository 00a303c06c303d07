"""Hostile names never become markup, and no configured secret ever reaches a page or the API."""

from __future__ import annotations

import dataclasses
import json
import re
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import jinja2
import pytest
from aiohttp import web

from core.config import Config, parse_config
from core.schema import Secret
from core.status import StatusKey
from home.console import accounts
from home.console.roles import Role
from home.db import HomeDB
from home.server import create_app as create_home_app
from tests.browser_support import browser, screenshot, wait_js, watch
from tests.web_support import (
    appliance,
    free_port,
    insert_device,
    make_config,
    mark_down,
    seed_site,
    serve,
)
from web import auth, charts, render
from web.data import Point

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
        # Not a real key: a secret planted in the live facts must reach no page.
        ctx.status.publish("uplink.token", "status-s3cret-token")  # type: ignore[arg-type]
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


# Script, both quotes, and template syntax: a template engine that evaluated data would print 49.
HOSTILE = "<script>alert(1)</script>\"'{{7*7}}"
TEMPLATES = Path(render.TEMPLATES_DIR)


class _Parsed(HTMLParser):
    """Text (character references resolved), attribute values and the tags of a page."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


async def _device_named_hostile(ctx: Any) -> int:
    """A device whose every free-text field (and its alert, event, check) is HOSTILE."""

    def write(tx: Any) -> int:
        did = insert_device(
            tx, ip="198.18.0.77", name=HOSTILE, kind="printer", mac="02:77:77:77:77:77",
            vendor=HOSTILE, now=time.time(),
            attrs={"model": HOSTILE, "snmp": {"sysName": HOSTILE, "location": HOSTILE},
                   "services": [{"type": "_ipp._tcp", "name": HOSTILE, "port": 631}],
                   "evidence": [{"source": HOSTILE, "kind": "printer", "weight": 0.9,
                                 "why": HOSTILE}]},
        )  # fmt: skip
        tx.conn.execute(
            "INSERT INTO alerts (key, rule, device_id, severity, state, message, opened_ts)"
            " VALUES ('hostile', 'supply.low', ?, 'major', 'open', ?, ?)",
            (did, HOSTILE, time.time()),
        )
        return did

    did = int(await ctx.store.write(write))
    await mark_down(ctx.store, did, HOSTILE)  # also in "Down now" and the events
    return did


async def test_hostile_text_renders_as_text_on_every_page_that_shows_it(tmp_path: Path) -> None:
    """Through the templates: the site name, a device's fields, alert and event messages, the
    claim code, the search query and the login's next address show literally, never as markup
    and never evaluated; on full pages and on the live (partial) bodies."""
    config = make_config(admin_password_hash=auth.hash_password("a long password", n=2**10))
    config = dataclasses.replace(config, site=dataclasses.replace(config.site, name=HOSTILE))
    async with appliance(tmp_path, config) as ctx:
        await seed_site(ctx.store, time.time(), history_days=0.05)
        did = await _device_named_hostile(ctx)
        ctx.status.publish(StatusKey.PROVISIONING_STATE, "unclaimed")
        ctx.status.publish(StatusKey.PROVISIONING_CLAIM_CODE, HOSTILE)
        # path -> least times HOSTILE shows as text (the site name in the header counts once)
        expected = {
            "/": 5,  # site, claim code, down now, two events naming it
            "/devices": 3,  # site, name, vendor
            f"/devices/{did}": 11,
            "/alerts": 6,  # site, its alert (message, device), events (message, device)
            "/network": 3,  # site (header, facts), claim code
            "/login?next=/" + HOSTILE: 1,  # site (the address is in a value, below)
            "/devices?q=" + HOSTILE: 2,  # site, "matching ..." (+ the search box's value)
        }
        partial = {
            "/?partial=1": 4,
            "/devices?partial=1": 2,
            f"/devices/{did}?partial=1": 10,
            "/alerts?partial=1": 5,
            "/network?partial=1": 2,
        }
        async with serve(ctx) as base, aiohttp.ClientSession() as http:
            for path, least in {**expected, **partial}.items():
                async with http.get(base + path) as response:
                    assert response.status == 200, path
                    page = await response.text()
                parsed = _Parsed(page)
                text = "".join(parsed.text)
                # Intact, so also not evaluated ({{7*7}} would have become 49).
                assert text.count(HOSTILE) >= least, (path, text.count(HOSTILE))
                assert "<script>alert(1)</script>" not in page, path
                scripts = [v for tag, name, v in parsed.attrs if tag == "script" and name == "src"]
                assert parsed.tags.count("script") == len(scripts), path  # no inline script
                assert set(scripts) <= {"/static/app.js"}, path
                assert not [a for a in parsed.attrs if a[1].startswith("on")], path
            # Attribute context: the search box keeps the query, the login form its next address.
            async with http.get(base + "/devices?q=" + HOSTILE) as response:
                values = [
                    v for _, name, v in _Parsed(await response.text()).attrs if name == "value"
                ]
            assert HOSTILE in values
            async with http.get(base + "/login?next=/" + HOSTILE) as response:
                values = [
                    v for _, name, v in _Parsed(await response.text()).attrs if name == "value"
                ]
            assert "/" + HOSTILE in values


async def test_hostile_series_name_in_a_chart_is_svg_text() -> None:
    """chart.svg escapes a legend like the pages do (a chart's series are named after
    interfaces, which devices name)."""
    points = [Point(1000.0 + 600 * i, float(i), float(i), float(i)) for i in range(10)]
    chart = charts.line_chart({HOSTILE: points}, 1000.0, 7000.0, "bps", HOSTILE)
    svg = render.environment().get_template("chart.svg").render(chart=chart)
    root = ET.fromstring(svg)  # well-formed XML: no attribute or element was broken out of
    ns = "{http://www.w3.org/2000/svg}"
    assert root.get("aria-label") == HOSTILE and root.findtext(ns + "title") == HOSTILE
    assert HOSTILE in [t.text for t in root.iter(ns + "text")]
    assert not list(root.iter(ns + "script")) and not list(root.iter("script"))


def test_templates_escape_everything_and_mark_nothing_safe() -> None:
    """The rule the templates live by: autoescape on, no |safe or autoescape off anywhere, and
    an undefined name is an error rather than an empty cell."""
    env = render.environment()
    repo = Path(render.__file__).parents[1]
    # Every template of the product: the box's pages, home's console, the monthly report.
    folders = (TEMPLATES, repo / "home" / "templates", repo / "core" / "report")
    paths = [p for f in folders for p in f.rglob("*") if p.suffix in (".html", ".svg", ".j2")]
    assert len(paths) >= 25, paths
    for path in paths:
        source = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)  # comments may say it
        for unsafe in ("|safe", "| safe", "autoescape false", "Markup", "|e(", "escape("):
            assert unsafe not in source, (path.name, unsafe)
    for name in env.list_templates():
        assert env.get_template(name).environment.autoescape, name
        assert callable(env.autoescape) and env.autoescape(name), name
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ not_passed_in }}").render()


async def test_hostile_site_and_alert_on_homes_fleet_page(tmp_path: Path) -> None:
    """Home's console (home/templates/console/, the fleet view's successor) with a real HomeDB:
    the site name and an open alert's message an appliance reported show as text."""
    db = HomeDB(tmp_path / "home.db")
    await db.open()
    await db.call(db.register_sync, "app-hostile", "unused-public-key", HOSTILE)

    def alert() -> None:
        db.conn.execute(
            "INSERT INTO alerts (appliance, key, state, severity, message, ts)"
            " VALUES ('app-hostile', 'k', 'open', 'critical', ?, 1.8e9)",
            (HOSTILE,),
        )

    await db.call(alert)
    await db.call(accounts.create_user, db.conn, "viewer", Role.READ_ONLY, "x" * 16, 0.0)
    _id, token = await db.call(accounts.create_token, db.conn, "viewer", "t", Role.READ_ONLY, 0.0)
    runner = web.AppRunner(create_home_app(db), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"http://127.0.0.1:{port}/console/alerts",
                headers={"Authorization": f"Bearer {token}"},
            ) as response,
        ):
            page = await response.text()
    finally:
        await runner.cleanup()
        await db.close()
    parsed = _Parsed(page)
    text = "".join(parsed.text)
    assert response.status == 200 and text.count(HOSTILE) == 2  # the site and the message
    assert "<script>alert(1)</script>" not in page
    # The one script element is the console's own file (the CSP allows no other).
    assert parsed.tags.count("script") == 1 and '<script src="/console/static/' in page
