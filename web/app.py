"""The status page and its JSON API (aiohttp application).

Pages are rendered on the server from the store (reads off the loop) and carry no inline
script or style; /static/app.js follows ``/api/v1/stream`` (server-sent events) and refetches
the page body when something changes. Every state change is a POST that needs the admin
session and its CSRF token; see web.auth for the login model and docs/web.md for the API.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from core.logs import get_log
from core.messages import IdentifyRequested, RediscoverRequested
from core.status import StatusKey
from services.context import AppContext
from services.polling.gateway import default_gateway
from services.store.records import Event, insert_event
from web import auth, charts, data, pages, render, report_page, sitemap, topology_data
from web.metrics import WebMetrics
from web.metrics import render as render_metrics
from web.netinfo import NetInfo, subnets_with_counts
from web.openapi import spec
from web.render import Chrome, fmt_duration

log = get_log("web")

STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "outpost_session"
PRELOGIN_COOKIE = "outpost_csrf"
STREAM_CHECK_S = 2.0  # how often a live stream looks for new data when no status changed
STREAM_MIN_GAP_S = 1.0  # at most one change event per this many seconds per browser
STREAM_KEEPALIVE_S = 15.0
MAX_STREAMS = 32  # browsers following live updates at once; more get 503 and poll instead
IDENTIFY_S = 60.0
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_SECRET_KEY = re.compile(r"community|secret|password|passphrase|token|credential|psk|_key$", re.I)


@dataclass
class WebState:
    sessions: auth.Sessions
    limiter: auth.LoginLimiter
    netinfo: NetInfo = field(default_factory=NetInfo)
    metrics: WebMetrics = field(default_factory=WebMetrics)
    streams: set[asyncio.Task[Any]] = field(default_factory=set)
    admin_hash: str | None = None  # cached once known (never changes back to None)


CTX = web.AppKey("ctx", AppContext)
STATE = web.AppKey("web_state", WebState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ---- helpers ----


def _now(ctx: AppContext) -> float:
    return ctx.clock.now().wall


def _client(request: web.Request) -> str:
    return request.remote or ""


def _session(request: web.Request) -> auth.Session | None:
    return request.app[STATE].sessions.get(request.cookies.get(SESSION_COOKIE))


def _public_status(ctx: AppContext) -> dict[str, Any]:
    return {k: v for k, v in ctx.status.snapshot().items() if not _SECRET_KEY.search(k)}


def scrub(value: Any) -> Any:
    """Drop secret-looking keys anywhere in a JSON-able value (device attrs are free-form)."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


async def _admin_hash(request: web.Request) -> str | None:
    state = request.app[STATE]
    if state.admin_hash:
        return state.admin_hash
    ctx = request.app[CTX]
    configured = ctx.config.web.admin_password_hash
    if configured:
        state.admin_hash = configured
        return configured
    rows = await ctx.store.query("SELECT value FROM kv WHERE key = ?", (auth.KV_ADMIN_HASH,))
    if rows:
        state.admin_hash = str(rows[0]["value"])
    return state.admin_hash


def _prelogin_token(request: web.Request) -> str:
    """The CSRF token of forms shown before login (kept in a cookie, see _set_prelogin)."""
    return request.cookies.get(PRELOGIN_COOKIE) or secrets.token_urlsafe(24)


def _set_prelogin(response: web.StreamResponse, token: str) -> web.StreamResponse:
    response.set_cookie(PRELOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/")
    return response


async def _chrome(request: web.Request, active: str, live: bool = True) -> Chrome:
    ctx = request.app[CTX]
    session = _session(request)
    health = "ok"
    status = ctx.status.snapshot()
    if status.get(StatusKey.FAULT):
        health = "critical"
    live_url = ""
    if live:
        query = request.rel_url.query.copy()
        query["partial"] = "1"
        live_url = str(request.rel_url.with_query(query))
    return Chrome(
        site=ctx.config.site.name,
        version=ctx.version,
        active=active,
        admin=session is not None,
        csrf=session.csrf if session else "",
        live_url=live_url,
        health=health,
    )


async def _full_page(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    title: str,
    active: str,
    *,
    live: bool = True,
    status: int = 200,
) -> web.Response:
    """The body template inside layout.html (title, tabs, account links, footer)."""
    chrome = await _chrome(request, active, live)
    layout = {**context, "title": title, "chrome": chrome, "body_template": template}
    return aiohttp_jinja2.render_template("layout.html", request, layout, status=status)


async def _page(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    title: str,
    active: str,
    *,
    live: bool = True,
    status: int = 200,
    partial_template: str = "",
) -> web.Response:
    """A full page, or with ``?partial=1`` (app.js's live refresh) the body alone: by default
    the body template, or ``partial_template`` when only part of the body is live."""
    if request.query.get("partial") == "1":
        return aiohttp_jinja2.render_template(
            partial_template or template, request, context, status=status
        )
    return await _full_page(request, template, context, title, active, live=live, status=status)


def _see_other(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


def _safe_next(target: str) -> str:
    """Only same-site paths: an open redirect would let a link log someone in elsewhere."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


# ---- middlewares ----


@web.middleware
async def timing(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Real time on purpose: this measures how long the handler took (a latency histogram).
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        name = resource.canonical if resource is not None else "unmatched"
        request.app[STATE].metrics.observe(name, status, time.perf_counter() - started)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Added to every response just before its headers go out (pages, errors and streams)."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def csrf_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return await handler(request)
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="cross-site request refused: use the page on this box")
    form = await request.post()
    sent = request.headers.get("X-CSRF-Token") or str(form.get("csrf", ""))
    session = _session(request)
    expected = session.csrf if session else request.cookies.get(PRELOGIN_COOKIE)
    if not auth.csrf_equal(sent, expected):
        log.warning("web.csrf_refused", client=_client(request), path=request.path)
        raise web.HTTPForbidden(
            text="the form's security token is missing or expired; reload the page and try again"
        )
    return await handler(request)


def _require_admin(request: web.Request) -> auth.Session:
    session = _session(request)
    if session is None:
        raise _see_other(f"/login?next={request.path}")
    return session


# ---- pages ----


async def overview_page(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    now = _now(ctx)
    watch = _watch(ctx)
    ov = await ctx.store.read(lambda c: data.overview(c, now, watch))
    context = pages.overview_context(ov, _public_status(ctx), now)
    return await _page(request, "overview.html", context, "Overview", "overview")


async def devices_page(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    now = _now(ctx)
    query = request.query.get("q", "")[:100]
    sort = request.query.get("sort", "name")
    watch = _watch(ctx)
    rows = await ctx.store.read(lambda c: data.devices(c, now, query, sort, watch))
    context = pages.device_list_context(rows, query, sort, now)
    # Only the table is live, so a refresh never disturbs what is being typed in search.
    return await _page(
        request, "devices.html", context, "Devices", "devices", partial_template="device_table.html"
    )


def _device_id(request: web.Request) -> int:
    return int(request.match_info["id"])


def _watch(ctx: AppContext) -> data.WatchList:
    """Which devices are watched for down, as alerting decides (the gateway always)."""
    alerting = ctx.config.alerting
    return data.WatchList(alerting.down_alert_kinds, alerting.gateway_ip or default_gateway())


async def device_page(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    now = _now(ctx)
    device_id = _device_id(request)
    watch = _watch(ctx)
    dev = await ctx.store.read(lambda c: data.device(c, device_id, now, watch))
    if dev is None:
        context = pages.message_context(
            "No such device", "It may have been removed from the inventory."
        )
        return await _page(
            request, "message.html", context, "Not found", "devices", live=False, status=404
        )
    context = pages.device_context(dev, now)
    context["topo"] = await ctx.store.read(
        lambda c: {
            "port": topology_data.device_port(c, device_id),
            "ports": topology_data.switch_ports(c, device_id),
        }
    )
    return await _page(
        request, "device.html", context, dev["name"] or dev["ip"] or "Device", "devices"
    )


async def _site_map(request: web.Request) -> sitemap.SiteMap:
    ctx = request.app[CTX]
    now = _now(ctx)
    watch = _watch(ctx)

    def load(conn: Any) -> sitemap.SiteMap:
        rows = data.devices(conn, now, "", "name", watch)
        placed = topology_data.placements(conn)
        switches = topology_data.read_switches(conn)
        return sitemap.layout(rows, placed, switches, watch.gateway_ip)

    return await ctx.store.read(load)


async def map_page(request: web.Request) -> web.Response:
    """The site map, drawn on the server as SVG (gateway, switches, ports, devices)."""
    context = {"map": await _site_map(request)}
    return await _page(request, "sitemap.html", context, "Site map", "map")


async def map_svg(request: web.Request) -> web.Response:
    """The site map alone, as an SVG file."""
    svg = aiohttp_jinja2.render_string("sitemap.svg", request, {"map": await _site_map(request)})
    return web.Response(text=svg, content_type="image/svg+xml")


async def device_chart(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    device_id = _device_id(request)
    rng = request.query.get("range", "24h")
    if rng not in data.RANGES_S:
        raise web.HTTPBadRequest(text="range must be 24h or 7d")
    until = _now(ctx)
    since = until - data.RANGES_S[rng]
    which = request.match_info["metric"]

    def load(conn: Any) -> dict[str, list[data.Point]]:
        if which == "latency":
            pts = data.series_points(conn, device_id, data.RTT_METRIC, since, until, instance="")
            return {"latency": pts.get("", [])}
        lines: dict[str, list[data.Point]] = {}
        for metric, label in (("if.in_bps", "in"), ("if.out_bps", "out")):
            summed: dict[float, float] = {}
            for points in data.series_points(conn, device_id, metric, since, until).values():
                for p in points:
                    if p.avg is not None:
                        summed[p.ts] = summed.get(p.ts, 0.0) + p.avg
            lines[label] = [data.Point(ts, v, v, v) for ts, v in sorted(summed.items())]
        return lines

    if which not in ("latency", "traffic"):
        raise web.HTTPNotFound(text="charts: latency or traffic")
    lines = await ctx.store.read(load)
    unit = "ms" if which == "latency" else "bps"
    title = f"{which.capitalize()}, last {rng}"
    chart = charts.line_chart(lines, since, until, unit, title)
    svg = aiohttp_jinja2.render_string("chart.svg", request, {"chart": chart})
    return web.Response(
        text=svg, content_type="image/svg+xml", headers={"Cache-Control": "max-age=60"}
    )


async def monthly_report(request: web.Request) -> web.Response:
    """The monthly report from local records (web/report_page.py); open to the LAN like /."""
    return await report_page.report_page(request, request.app[CTX])


async def alerts_page(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    now = _now(ctx)

    def load(conn: Any) -> tuple[Any, Any, Any]:
        return (
            data.alerts(conn, "open"),
            data.alerts(conn, "resolved", 50),
            data.events(conn, 200),
        )

    open_alerts, resolved, events = await ctx.store.read(load)
    session = _session(request)
    context = pages.alerts_context(
        open_alerts, resolved, events, now, session.csrf if session else ""
    )
    return await _page(request, "alerts.html", context, "Alerts & events", "alerts")


async def _network_facts(request: web.Request) -> dict[str, Any]:
    ctx = request.app[CTX]
    net = dict(await request.app[STATE].netinfo.facts())
    ips = await ctx.store.read(lambda c: [r[0] for r in c.execute("SELECT ip FROM devices")])
    net["subnets"] = subnets_with_counts(ctx.config.discovery.subnets, net["addresses"], ips)
    return net


def _appliance_facts(ctx: AppContext) -> dict[str, Any]:
    status = ctx.status.snapshot()
    uptime = ctx.uptime_s()
    return {
        "Site": ctx.config.site.name or "(not named)",
        "Firmware": ctx.version,
        "Up for": fmt_duration(uptime),
        "Clock": "synchronised" if ctx.clock.clock_synced() else "NOT synchronised (no NTP yet)",
        "Provisioning": status.get(StatusKey.PROVISIONING_STATE, "unknown"),
        **(
            {"Claim code": status.get(StatusKey.PROVISIONING_CLAIM_CODE, "")}
            if status.get(StatusKey.PROVISIONING_STATE) == "unclaimed"
            else {}
        ),
        "Update": status.get(StatusKey.UPDATE_STATE, "idle"),
        "Uplink": status.get(StatusKey.UPLINK_STATE, "unconfigured"),
    }


async def network_page(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    net = await _network_facts(request)
    session = _session(request)
    context = pages.network_context(
        net, _appliance_facts(ctx), _public_status(ctx), session.csrf if session else ""
    )
    return await _page(request, "network.html", context, "Network", "network")


# ---- login, setup, actions ----


async def login_get(request: web.Request) -> web.StreamResponse:
    if await _admin_hash(request) is None:
        raise _see_other("/setup")
    token = _prelogin_token(request)
    context = {"csrf": token, "error": "", "next_url": _safe_next(request.query.get("next", "/"))}
    response = await _full_page(request, "login.html", context, "Admin login", "", live=False)
    return _set_prelogin(response, token)


async def login_post(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    client = _client(request)
    form = await request.post()
    next_url = _safe_next(str(form.get("next", "/")))
    wait = state.limiter.retry_after_s(client)
    if wait > 0:
        log.warning("web.login_rate_limited", client=client)
        context = pages.message_context(
            "Too many attempts", f"Wait {int(wait) + 1} seconds before trying again."
        )
        response = await _page(
            request, "message.html", context, "Too many attempts", "", live=False, status=429
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    stored = await _admin_hash(request)
    if stored is None:
        raise _see_other("/setup")
    password = str(form.get("password", ""))
    if not await asyncio.to_thread(auth.verify_password, password, stored):
        state.limiter.failed(client)
        log.warning("web.login_failed", client=client)
        token = _prelogin_token(request)
        context = {"csrf": token, "error": "Wrong password.", "next_url": next_url}
        response = await _full_page(
            request, "login.html", context, "Admin login", "", live=False, status=401
        )
        return _set_prelogin(response, token)
    state.limiter.succeeded(client)
    token, _ = state.sessions.create(client)
    log.info("web.login", client=client)
    redirect = web.HTTPSeeOther(next_url)
    redirect.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", path="/")
    raise redirect


async def logout_post(request: web.Request) -> web.StreamResponse:
    request.app[STATE].sessions.drop(request.cookies.get(SESSION_COOKIE))
    redirect = web.HTTPSeeOther("/")
    redirect.del_cookie(SESSION_COOKIE, path="/")
    raise redirect


async def setup_get(request: web.Request) -> web.StreamResponse:
    if await _admin_hash(request) is not None:
        raise _see_other("/login")
    if not auth.is_lan_client(request.remote):
        raise web.HTTPForbidden(text="the admin password can be set only from the local network")
    token = _prelogin_token(request)
    context = {"csrf": token, "error": ""}
    response = await _full_page(request, "setup.html", context, "Set up", "", live=False)
    return _set_prelogin(response, token)


async def account_get(request: web.Request) -> web.StreamResponse:
    session = _require_admin(request)
    return await _account_page(request, session, "", request.query.get("done") == "1", 200)


async def _account_page(
    request: web.Request, session: auth.Session, error: str, done: bool, status: int
) -> web.Response:
    if request.app[CTX].config.web.admin_password_hash:
        context = pages.message_context(
            "Admin password",
            "This password is set by your IT provider's provisioning; ask them to change it.",
        )
        return await _page(
            request, "message.html", context, "Admin password", "", live=False, status=status
        )
    context = {"csrf": session.csrf, "error": error, "done": done}
    return await _page(
        request, "account.html", context, "Admin password", "", live=False, status=status
    )


async def account_post(request: web.Request) -> web.StreamResponse:
    """Change the admin password (not when provisioning manages it); other sessions end."""
    session = _require_admin(request)
    ctx = request.app[CTX]
    state = request.app[STATE]
    client = _client(request)
    if ctx.config.web.admin_password_hash:
        raise web.HTTPConflict(text="the admin password is managed by provisioning")
    form = await request.post()

    async def again(problem: str, status: int) -> web.Response:
        return await _account_page(request, session, problem, False, status)

    wait = state.limiter.retry_after_s(client)
    if wait > 0:
        return await again(f"Too many attempts; wait {int(wait) + 1} seconds.", 429)
    stored = await _admin_hash(request)
    current = str(form.get("current", ""))
    if stored is None or not await asyncio.to_thread(auth.verify_password, current, stored):
        state.limiter.failed(client)
        return await again("The current password is wrong.", 401)
    password, confirm = str(form.get("password", "")), str(form.get("confirm", ""))
    problem = auth.password_problem(password, confirm)
    if problem:
        return await again(problem, 400)
    hashed = await asyncio.to_thread(auth.hash_password, password)

    def replace_hash(tx: Any) -> None:
        tx.conn.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (auth.KV_ADMIN_HASH, hashed),
        )
        insert_event(tx, Event("admin.password_changed", message="Admin password changed"))

    await ctx.store.write(replace_hash)
    state.admin_hash = hashed
    state.sessions.clear()  # every other browser must log in with the new password
    token, _ = state.sessions.create(client)
    log.info("web.admin_password_changed", client=client)
    redirect = web.HTTPSeeOther("/account?done=1")
    redirect.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", path="/")
    raise redirect


async def setup_post(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    if not auth.is_lan_client(request.remote):
        raise web.HTTPForbidden(text="the admin password can be set only from the local network")
    if await _admin_hash(request) is not None:
        raise web.HTTPConflict(text="the admin password is already set; log in instead")
    form = await request.post()
    password, confirm = str(form.get("password", "")), str(form.get("confirm", ""))
    problem = auth.password_problem(password, confirm)
    if problem:
        token = _prelogin_token(request)
        context = {"csrf": token, "error": problem}
        response = await _full_page(
            request, "setup.html", context, "Set up", "", live=False, status=400
        )
        return _set_prelogin(response, token)
    hashed = await asyncio.to_thread(auth.hash_password, password)

    def store_once(tx: Any) -> bool:
        cursor = tx.conn.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (auth.KV_ADMIN_HASH, hashed),
        )
        if cursor.rowcount:
            insert_event(tx, Event("admin.password_set", message="Admin password set at first use"))
        return bool(cursor.rowcount)

    if not await ctx.store.write(store_once):
        raise web.HTTPConflict(text="the admin password was set meanwhile; log in instead")
    request.app[STATE].admin_hash = hashed
    token, _ = request.app[STATE].sessions.create(_client(request))
    log.info("web.admin_password_set", client=_client(request))
    redirect = web.HTTPSeeOther("/")
    redirect.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", path="/")
    raise redirect


async def ack_alert(request: web.Request) -> web.StreamResponse:
    _require_admin(request)
    ctx = request.app[CTX]
    alert_id = int(request.match_info["id"])

    def ack(tx: Any) -> bool:
        done = data.ack_alert(tx.conn, alert_id)
        if done:
            insert_event(
                tx,
                Event(
                    "alert.acked",
                    message=f"Alert {alert_id} acknowledged on the status page",
                    data={"alert_id": alert_id, "client": _client(request)},
                ),
            )
        return done

    await ctx.store.write(ack)
    log.info("web.alert_acked", alert=alert_id, client=_client(request))
    raise _see_other("/alerts")


async def rediscover(request: web.Request) -> web.StreamResponse:
    _require_admin(request)
    ctx = request.app[CTX]
    who = f"admin@{_client(request)}"
    ctx.bus.publish(RediscoverRequested(requested_by=who, at=_now(ctx)))
    await ctx.store.write(
        lambda tx: insert_event(
            tx, Event("admin.rediscover", message="Rediscovery requested on the status page")
        )
    )
    log.info("web.rediscover_requested", client=_client(request))
    raise _see_other("/network")


async def identify(request: web.Request) -> web.StreamResponse:
    _require_admin(request)
    ctx = request.app[CTX]
    ctx.bus.publish(IdentifyRequested(duration_s=IDENTIFY_S, requested_by=_client(request)))
    log.info("web.identify_requested", client=_client(request))
    raise _see_other("/network")


# ---- JSON API ----


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(payload, default=str), content_type="application/json", status=status
    )


async def api_status(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    now = _now(ctx)
    watch = _watch(ctx)
    ov = await ctx.store.read(lambda c: data.overview(c, now, watch))
    status = _public_status(ctx)
    level, headline = pages.site_health(ov, status)
    return _json(
        {
            "site": ctx.config.site.name,
            "version": ctx.version,
            "uptime_s": round(ctx.uptime_s(), 1),
            "clock_synced": ctx.clock.clock_synced(),
            "health": {"level": level, "headline": headline},
            "uplink": pages.uplink_view(status, ov),
            "devices": ov["devices"],
            "alerts_open": ov["alerts_open"],
            # Kept from the foundation's API: flat counts for scripts.
            "open_alerts": sum(ov["alerts_open"].values()),
            "outbox": ov["outbox"],
            "panel": status.get(StatusKey.PANEL),
            "status": status,
        }
    )


async def api_overview(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    now = _now(ctx)
    watch = _watch(ctx)
    ov = await ctx.store.read(lambda c: data.overview(c, now, watch))
    return _json(scrub(ov))


async def api_devices(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    now = _now(ctx)
    query = request.query.get("q", "")[:100]
    sort = request.query.get("sort", "name")
    watch = _watch(ctx)
    rows = await ctx.store.read(lambda c: data.devices(c, now, query, sort, watch))
    return _json({"devices": rows, "count": len(rows)})


async def api_device(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    now = _now(ctx)
    device_id = _device_id(request)
    watch = _watch(ctx)
    dev = await ctx.store.read(lambda c: data.device(c, device_id, now, watch))
    if dev is None:
        return _json({"error": f"no device with id {device_id}"}, status=404)
    return _json(scrub(dev))


async def api_series(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    device_id = _device_id(request)
    metric = request.query.get("metric", data.RTT_METRIC)
    rng = request.query.get("range", "24h")
    if rng not in data.RANGES_S:
        return _json({"error": "range must be 24h or 7d"}, status=400)
    until = _now(ctx)
    since = until - data.RANGES_S[rng]
    lines = await ctx.store.read(lambda c: data.series_points(c, device_id, metric, since, until))
    return _json(
        {
            "metric": metric,
            "range": rng,
            "since": since,
            "until": until,
            "series": {
                inst: [[p.ts, p.avg, p.low, p.high] for p in pts] for inst, pts in lines.items()
            },
        }
    )


async def api_alerts(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    state = request.query.get("state", "open")
    if state not in ("open", "resolved"):
        return _json({"error": "state must be open or resolved"}, status=400)
    rows = await ctx.store.read(lambda c: data.alerts(c, state))
    return _json({"alerts": scrub(rows)})


async def api_events(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    try:
        limit = min(1000, max(1, int(request.query.get("limit", "200"))))
        before = int(request.query["before"]) if "before" in request.query else None
    except ValueError:
        return _json({"error": "limit and before must be whole numbers"}, status=400)
    severity = request.query.get("severity")
    rows = await ctx.store.read(lambda c: data.events(c, limit, before, severity))
    return _json({"events": rows})


async def api_network(request: web.Request) -> web.Response:
    return _json(await _network_facts(request))


async def api_openapi(request: web.Request) -> web.Response:
    return _json(spec(request.app[CTX].version))


async def metrics(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    store_facts = await ctx.store.read(data.store_metrics)
    counters = {
        "commits": ctx.store.commits,
        "ops": ctx.store.ops,
        "queue": ctx.store.queue_depth,
    }
    dropped = ctx.bus.dropped_by_types()
    text = render_metrics(
        uptime_s=ctx.uptime_s(),
        now_s=_now(ctx),
        store_facts=store_facts,
        store_counters=counters,
        bus_dropped=dropped,
        status=_public_status(ctx),
        web=request.app[STATE].metrics,
        sse_clients=len(request.app[STATE].streams),
    )
    return web.Response(
        text=text,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Prometheus-Format": "0.0.4"},
    )


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``change`` with a version whenever what the pages show changes."""
    ctx = request.app[CTX]
    state = request.app[STATE]
    if len(state.streams) >= MAX_STREAMS:
        raise web.HTTPServiceUnavailable(text="too many live pages open; this one will poll")
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    task = asyncio.current_task()
    assert task is not None
    state.streams.add(task)
    last: Any = None
    last_write = ctx.clock.monotonic()
    try:
        while True:
            fingerprint = (ctx.status.version, await ctx.store.read(data.fingerprint))
            if fingerprint != last:
                version = f"{hash(fingerprint) & 0xFFFFFFFF:08x}"
                await response.write(f"event: change\ndata: {version}\n\n".encode())
                last, last_write = fingerprint, ctx.clock.monotonic()
                # Coalesce bursts (a poll cycle commits many rows, the uplink moves its
                # backlog): a browser refetches at most once per interval.
                await asyncio.sleep(STREAM_MIN_GAP_S)
                continue
            if ctx.clock.monotonic() - last_write > STREAM_KEEPALIVE_S:
                await response.write(b": keepalive\n\n")
                last_write = ctx.clock.monotonic()
            await ctx.status.wait_changed(STREAM_CHECK_S)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        state.streams.discard(task)
    return response


async def _close_streams(app: web.Application) -> None:
    for task in list(app[STATE].streams):
        task.cancel()


async def not_found(request: web.Request) -> web.Response:
    context = pages.message_context("Page not found", "Use the tabs above to find your way.")
    return await _page(request, "message.html", context, "Not found", "", live=False, status=404)


def create_app(ctx: AppContext) -> web.Application:
    settings = ctx.config.web
    app = web.Application(middlewares=[timing, csrf_check], client_max_size=64 * 1024)
    app[CTX] = ctx
    app[aiohttp_jinja2.APP_KEY] = render.environment()
    app[STATE] = WebState(
        sessions=auth.Sessions(settings.session_ttl_s, clock=ctx.clock),
        limiter=auth.LoginLimiter(settings.login_attempts_per_min, clock=ctx.clock),
        netinfo=NetInfo(clock=ctx.clock),
    )
    app.on_shutdown.append(_close_streams)
    app.on_response_prepare.append(_security_headers)
    r = app.router
    r.add_get("/", overview_page)
    r.add_get("/devices", devices_page)
    r.add_get(r"/devices/{id:\d+}", device_page)
    r.add_get(r"/devices/{id:\d+}/chart/{metric}.svg", device_chart)
    r.add_get("/alerts", alerts_page)
    r.add_get("/report", monthly_report)
    r.add_get("/report.css", report_page.stylesheet)
    r.add_get("/network", network_page)
    r.add_get("/map", map_page)
    r.add_get("/map.svg", map_svg)
    r.add_get("/login", login_get)
    r.add_post("/login", login_post)
    r.add_post("/logout", logout_post)
    r.add_get("/setup", setup_get)
    r.add_post("/setup", setup_post)
    r.add_get("/account", account_get)
    r.add_post("/account", account_post)
    r.add_post(r"/alerts/{id:\d+}/ack", ack_alert)
    r.add_post("/actions/rediscover", rediscover)
    r.add_post("/actions/identify", identify)
    r.add_get("/api/v1/status", api_status)
    r.add_get("/api/v1/overview", api_overview)
    r.add_get("/api/v1/devices", api_devices)
    r.add_get(r"/api/v1/devices/{id:\d+}", api_device)
    r.add_get(r"/api/v1/devices/{id:\d+}/series", api_series)
    r.add_get("/api/v1/alerts", api_alerts)
    r.add_get("/api/v1/events", api_events)
    r.add_get("/api/v1/network", api_network)
    r.add_get("/api/v1/stream", stream)
    r.add_get("/api/v1/openapi.json", api_openapi)
    r.add_get("/metrics", metrics)
    r.add_static("/static/", STATIC_DIR, append_version=False)
    r.add_route("*", "/{tail:.*}", not_found)
    return app


__all__ = ["CTX", "create_app"]
