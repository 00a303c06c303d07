"""The status page and JSON API over HTTP on loopback, with data written through the Store API."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.messages import IdentifyRequested, RediscoverRequested
from core.status import StatusKey
from services.context import AppContext
from tests.web_support import appliance, make_config, mark_down, seed_site, serve
from web import auth
from web.app import create_app

PAGES = ["/", "/devices", "/devices?q=nas&sort=-ip", "/alerts", "/network", "/login", "/setup"]
APIS = [
    "/api/v1/status",
    "/api/v1/overview",
    "/api/v1/devices",
    "/api/v1/alerts",
    "/api/v1/alerts?state=resolved",
    "/api/v1/events",
    "/api/v1/network",
    "/api/v1/openapi.json",
    "/metrics",
]


@dataclass
class Site:
    ctx: AppContext
    base: str
    ids: dict[str, int]
    http: aiohttp.ClientSession


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with appliance(tmp_path) as ctx:
        ids = await seed_site(ctx.store, time.time(), history_days=1.0)
        ctx.status.publish(StatusKey.UPLINK_STATE, "buffering")
        ctx.status.publish(StatusKey.UPLINK_BACKLOG, 1234)
        async with (
            serve(ctx) as base,
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        ):
            yield Site(ctx, base, ids, http)


async def get(site: Site, path: str, **kw: Any) -> tuple[int, str, Any]:
    async with site.http.get(site.base + path, **kw) as r:
        return r.status, await r.text(), r.headers


async def post(site: Site, path: str, data: dict[str, str], **kw: Any) -> tuple[int, str, Any]:
    async with site.http.post(site.base + path, data=data, allow_redirects=False, **kw) as r:
        return r.status, await r.text(), r.headers


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "form without a CSRF token"
    return match.group(1)


async def test_pages_render_real_data_with_security_headers(site: Site) -> None:
    for path in PAGES:
        status, html, headers = await get(site, path)
        assert status == 200, path
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "<script>" not in html and " style=" not in html and " on" + "click" not in html
        assert 'src="/static/app.js"' in html
        assert "http://" not in html.replace(site.base, "") and "https://" not in html  # no CDN
    _, html, _ = await get(site, "/")
    assert "Harbour Dental, Leith" in html
    assert "Attention: 1 open alert" in html  # the minor toner alert
    assert "1234 records waiting to send" in html
    _, html, _ = await get(site, "/devices")
    assert "hp-laserjet-reception" in html and "198.18.0.14" in html
    _, html, _ = await get(site, "/devices?q=laserjet")
    assert "1 device matching" in html and "nas-files" not in html
    nas = site.ids["nas-files"]
    _, html, _ = await get(site, f"/devices/{nas}")
    assert "nas-files" in html and "volume1" in html and "72%" in html
    assert "MAC prefix 00:11:32 is Synology" in html  # the classification evidence
    assert f"/devices/{nas}/chart/traffic.svg?range=7d" in html


async def test_charts_are_svg_from_the_local_store(site: Site) -> None:
    router = site.ids["gw-leith"]
    status, svg, headers = await get(site, f"/devices/{router}/chart/latency.svg?range=24h")
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
    assert svg.count("<polyline") >= 1 and "No data" not in svg
    _, svg, _ = await get(site, f"/devices/{router}/chart/traffic.svg?range=7d")
    assert svg.count("<polyline") >= 2  # in and out
    status, _, _ = await get(site, f"/devices/{router}/chart/latency.svg?range=1y")
    assert status == 400


async def test_api_matches_the_openapi_document(site: Site) -> None:
    status, _, _ = await get(site, "/api/v1/openapi.json")
    async with site.http.get(site.base + "/api/v1/openapi.json") as r:
        spec = await r.json()
    assert status == 200 and spec["openapi"].startswith("3.")
    app = create_app(site.ctx)
    routes = {
        res.canonical
        for res in app.router.resources()
        if res.canonical.startswith("/api/") or res.canonical == "/metrics"
    }
    routes = {re.sub(r"\{id:[^}]*\}", "{id}", r) for r in routes}
    assert routes == set(spec["paths"]), "every API route is documented, nothing more"
    async with site.http.get(site.base + "/api/v1/status") as r:
        body = await r.json()
    assert body["health"]["level"] == "degraded"
    assert body["uplink"] == {
        "state": "buffering",
        "backlog": 1234,
        "text": body["uplink"]["text"],
        "tone": "warn",
    }
    assert body["devices"]["total"] == 14 and body["alerts_open"]["minor"] == 1
    async with site.http.get(site.base + "/api/v1/devices?sort=-ip") as r:
        devices = (await r.json())["devices"]
    assert [d["ip"] for d in devices][:2] == ["198.18.0.23", "198.18.0.22"]
    async with site.http.get(
        site.base + f"/api/v1/devices/{site.ids['gw-leith']}/series?metric=icmp.rtt_ms"
    ) as r:
        series = await r.json()
    assert len(series["series"][""]) > 100
    status, _, _ = await get(site, "/api/v1/devices/9999")
    assert status == 404


async def test_metrics_in_prometheus_text_format(site: Site) -> None:
    await get(site, "/")
    status, text, headers = await get(site, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    for name in (
        "outpost_uptime_seconds",
        "outpost_store_queue_depth",
        "outpost_outbox_records",
        "outpost_web_request_seconds_bucket",
        "outpost_process_resident_memory_bytes",
        "outpost_bus_dropped_total",
    ):
        assert f"# TYPE {name.removesuffix('_bucket')}" in text, name
    assert 'outpost_status{key="uplink.backlog"} 1234' in text
    assert 'outpost_web_request_seconds_count{route="/"} 1' in text
    sample = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+$')
    for line in text.splitlines():
        assert line.startswith("#") or sample.match(line), line


async def test_live_stream_announces_a_change(site: Site) -> None:
    async with site.http.get(site.base + "/api/v1/stream") as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        first = await r.content.readuntil(b"\n\n")
        assert first.startswith(b"event: change\ndata: ")
        await mark_down(site.ctx.store, site.ids["cam-door"], "cam-door")
        second = await r.content.readuntil(b"\n\n")
        assert second.startswith(b"event: change") and second != first


async def test_first_use_setup_login_csrf_and_actions(site: Site) -> None:
    # State changes need the admin: anonymous POSTs are refused before anything happens.
    status, _, _ = await post(site, "/actions/rediscover", {"csrf": "x"})
    assert status == 403
    # No password yet: /login sends to /setup; the setup form carries a CSRF token.
    status, html, _ = await get(site, "/login")
    assert status == 200 and "Set the admin password" in html
    token = csrf_of(html)
    status, _, _ = await post(
        site, "/setup", {"password": "correct horse", "confirm": "correct horse"}
    )
    assert status == 403, "a POST without the CSRF token is refused"
    status, html, _ = await post(
        site, "/setup", {"csrf": token, "password": "short", "confirm": "short"}
    )
    assert status == 400 and "at least 10 characters" in html
    password = "correct horse battery"
    form = {"csrf": token, "password": password, "confirm": password}
    status, _, headers = await post(site, "/setup", form)
    assert status == 303
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    stored = await site.ctx.store.query("SELECT value FROM kv WHERE key = ?", (auth.KV_ADMIN_HASH,))
    assert stored[0]["value"].startswith("scrypt$") and password not in stored[0]["value"]
    # Logged in now: acknowledge the open alert with the session's token.
    _, html, _ = await get(site, "/alerts")
    session_token = csrf_of(html)
    alert_id = int(re.search(r'action="/alerts/(\d+)/ack"', html).group(1))  # type: ignore[union-attr]
    status, _, _ = await post(site, f"/alerts/{alert_id}/ack", {"csrf": "forged"})
    assert status == 403
    status, _, _ = await post(site, f"/alerts/{alert_id}/ack", {"csrf": session_token})
    assert status == 303
    rows = await site.ctx.store.query("SELECT acked FROM alerts WHERE id = ?", (alert_id,))
    assert rows[0]["acked"] == 1
    _, html, _ = await get(site, "/")
    assert "Attention: 1 open alert (acknowledged, being handled)" in html
    # Rediscover and identify go on the bus for discovery and the front panel.
    sub = site.ctx.bus.subscribe(RediscoverRequested, IdentifyRequested)
    assert (await post(site, "/actions/rediscover", {"csrf": session_token}))[0] == 303
    assert (await post(site, "/actions/identify", {"csrf": session_token}))[0] == 303
    first, second = sub.queue.get_nowait(), sub.queue.get_nowait()
    assert isinstance(first, RediscoverRequested) and first.requested_by.startswith("admin@")
    assert isinstance(second, IdentifyRequested)
    # A cross-site form post is refused even with the right token.
    status, _, _ = await post(
        site,
        "/actions/rediscover",
        {"csrf": session_token},
        headers={"Origin": "http://evil.example"},
    )
    assert status == 403
    # Log out; the second visitor cannot set the password again.
    assert (await post(site, "/logout", {"csrf": session_token}))[0] == 303
    status, _, _ = await post(
        site, "/setup", {"csrf": session_token, "password": "x" * 12, "confirm": "x" * 12}
    )
    assert status in (403, 409)
    status, html, _ = await get(site, "/login")
    assert "Admin login" in html


async def test_login_is_rate_limited_and_uses_provisioned_hash(tmp_path: Path) -> None:
    hashed = auth.hash_password("provisioned-secret-1")
    config = make_config(admin_password_hash=hashed, login_attempts_per_min=3)
    async with (
        appliance(tmp_path, config) as ctx,
        serve(ctx) as base,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        site = Site(ctx, base, {}, http)
        status, html, _ = await get(site, "/setup")
        assert "Admin login" in html, "with a provisioned password there is no first-use setup"
        token = csrf_of(html)
        for _ in range(3):
            status, _, _ = await post(site, "/login", {"csrf": token, "password": "guess"})
            assert status == 401
        right = {"csrf": token, "password": "provisioned-secret-1"}
        status, _, headers = await post(site, "/login", right)
        assert status == 429 and int(headers["Retry-After"]) > 0, "even the right one waits"
    # A restarted appliance (a fresh limiter): the right password logs in.
    async with (
        appliance(tmp_path, config) as ctx,
        serve(ctx) as base,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        site = Site(ctx, base, {}, http)
        _, html, _ = await get(site, "/login")
        status, _, _ = await post(
            site,
            "/login",
            {"csrf": csrf_of(html), "password": "provisioned-secret-1", "next": "//evil.example/"},
        )
        assert status == 303
        _, html, _ = await get(site, "/network")
        assert "Rediscover now" in html


def test_password_rules_and_lan_only_setup() -> None:
    assert auth.verify_password("pw-123456789", auth.hash_password("pw-123456789", n=2**10))
    assert not auth.verify_password("other", auth.hash_password("pw-123456789", n=2**10))
    assert not auth.verify_password("x", "not-a-hash")
    assert auth.is_lan_client("192.168.1.20") and auth.is_lan_client("127.0.0.1")
    assert auth.is_lan_client("fe80::1") and auth.is_lan_client("")
    assert not auth.is_lan_client("8.8.8.8") and not auth.is_lan_client("2001:4860::1")
    assert auth.password_problem("a" * 12, "b" * 12)
    from core.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="not a scrypt hash"):
        parse_config('[web]\nadmin_password_hash = "hunter2"\n')


async def test_live_streams_are_bounded(site: Site) -> None:
    from web.app import MAX_STREAMS

    connector = aiohttp.TCPConnector(limit=MAX_STREAMS + 5)
    async with aiohttp.ClientSession(connector=connector) as http:
        streams = []
        try:
            for _ in range(MAX_STREAMS):
                r = await http.get(site.base + "/api/v1/stream")
                assert r.status == 200
                await r.content.readuntil(b"\n\n")
                streams.append(r)
            async with http.get(site.base + "/api/v1/stream") as extra:
                assert extra.status == 503  # that page polls instead
            async with http.get(site.base + "/metrics") as r:
                assert f"outpost_web_sse_clients {MAX_STREAMS}" in await r.text()
        finally:
            for r in streams:
                r.close()


async def test_change_password_ends_other_sessions(site: Site) -> None:
    _, html, _ = await get(site, "/setup")
    first = "first-password-1"
    form = {"csrf": csrf_of(html), "password": first, "confirm": first}
    assert (await post(site, "/setup", form))[0] == 303
    # A second browser logs in with the first password.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        async with other.get(site.base + "/login") as r:
            token = csrf_of(await r.text())
        async with other.post(site.base + "/login", data={"csrf": token, "password": first}) as r:
            assert "Log out" in await r.text()
        _, html, _ = await get(site, "/account")
        token = csrf_of(html)
        wrong = {"csrf": token, "current": "nope", "password": "x" * 12, "confirm": "x" * 12}
        assert (await post(site, "/account", wrong))[0] == 401
        second = "second-password-2"
        right = {"csrf": token, "current": first, "password": second, "confirm": second}
        status, _, headers = await post(site, "/account", right)
        assert status == 303 and headers["Location"] == "/account?done=1"
        _, html, _ = await get(site, "/account?done=1")
        assert "Password changed." in html  # this browser stays logged in
        async with other.get(site.base + "/network") as r:
            assert "Log out" not in await r.text(), "the other session ended"
        async with other.get(site.base + "/login") as r:
            token = csrf_of(await r.text())
        async with other.post(site.base + "/login", data={"csrf": token, "password": first}) as r:
            assert r.status == 401
        async with other.post(site.base + "/login", data={"csrf": token, "password": second}) as r:
            assert "Log out" in await r.text()
    events = await site.ctx.store.query("SELECT kind FROM events WHERE kind LIKE 'admin.%'")
    assert [e["kind"] for e in events] == ["admin.password_set", "admin.password_changed"]


async def test_claim_code_shown_only_while_unclaimed(site: Site) -> None:
    site.ctx.status.publish(StatusKey.PROVISIONING_STATE, "unclaimed")
    site.ctx.status.publish(StatusKey.PROVISIONING_CLAIM_CODE, "ABCD-EFGH-JKLM-NPQR")
    for path in ("/", "/network"):
        _, html, _ = await get(site, path)
        assert "ABCD-EFGH-JKLM-NPQR" in html, path
    site.ctx.status.publish(StatusKey.PROVISIONING_STATE, "claimed")
    site.ctx.status.publish(StatusKey.PROVISIONING_CLAIM_CODE, "")
    _, html, _ = await get(site, "/")
    assert 'id="claim"' not in html
