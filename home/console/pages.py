"""The console's HTML pages (Jinja2 templates in home/templates/console/, autoescape on).

GETs render; POSTs change something through home/console/actions.py and answer 303 back to the
page (or re-render it with the problem shown, e.g. a refused configuration). Every handler
declares its role with :func:`guard.needs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from home import remote
from home.console import accounts, actions, audit, devices, fleet, settings
from home.console.accounts import Principal
from home.console.actions import ActionError, Actor
from home.console.guard import (
    CSRF_FIELD,
    LOGIN_PATH,
    PRE_CSRF_COOKIE,
    PRINCIPAL_KEY,
    SESSION_COOKIE,
    client_of,
    needs,
    principal,
)
from home.console.roles import ROLE_NAMES, Role, allows
from home.console.state import CONSOLE_KEY, Console

NAV = (
    ("sites", "/console", "Sites", Role.READ_ONLY),
    ("alerts", "/console/alerts", "Alerts", Role.READ_ONLY),
    ("boxes", "/console/boxes", "Boxes", Role.READ_ONLY),
    ("users", "/console/users", "Users", Role.ADMIN),
    ("settings", "/console/settings", "Notifications", Role.ADMIN),
    ("audit", "/console/audit", "Audit log", Role.ADMIN),
)
DONE = {
    "ack": "Alert acknowledged.",
    "note": "Note saved.",
    "assign": "Assignment saved.",
    "silence": "Alert silenced.",
    "claimed": "Box claimed; it starts reporting at its next hello.",
    "released": "Box released; it shows a new claim code.",
    "config": "Configuration signed and queued; the box takes it at its next sync.",
    "command": "Command signed and queued; its result shows below once the box reports it.",
    "user": "User saved.",
    "update": "Update signed and queued; each box reports its outcome below.",
    "token": "Token revoked.",
    "settings": "Notification settings saved; every home instance applies them within seconds.",
}
STREAM_TICK_S = 2.0
OVERVIEW_ROWS = 100
MAX_STREAMS = 50
COOKIE_ATTRS = {"httponly": True, "secure": True, "samesite": "Strict", "path": "/"}


def _console(request: web.Request) -> Console:
    return request.app[CONSOLE_KEY]


def _actor(request: web.Request) -> Actor:
    return Actor(principal(request), client_of(request))


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    console = _console(request)
    who: Principal | None = request.get(PRINCIPAL_KEY)
    chrome = {
        "user": who.user if who else "",
        "role": who.role.value if who else "",
        "csrf": who.csrf if who else "",
        "nav": [n for n in NAV if who and allows(who.role, n[3])],
        "active": values.pop("active", ""),
        "live": values.pop("live", ""),
        "done": DONE.get(request.query.get("done", ""), ""),
    }
    env = console.templates
    partial = request.query.get("partial") == "1"
    name = template if partial else "layout.html"
    text = env.get_template(name).render(
        chrome=chrome,
        body_template=template,
        now=console.clock(),
        can=lambda role: who is not None and allows(who.role, Role(role)),
        **values,
    )
    return web.Response(text=text, status=status, content_type="text/html")


def _back(request: web.Request, fallback: str, done: str) -> web.Response:
    return web.Response(status=303, headers={"Location": f"{fallback}?done={done}"})


# ---- login, logout, setup ----


def _pre_csrf(request: web.Request) -> tuple[str, bool]:
    token = request.cookies.get(PRE_CSRF_COOKIE, "")
    if len(token) >= 32:
        return token, False
    return secrets.token_urlsafe(32), True


def _safe_next(target: str) -> str:
    # Only a path of this console: never another host (open redirect).
    if target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console"


async def login_form(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    console = _console(request)
    token, fresh = _pre_csrf(request)
    no_user = not await console.on_db(accounts.user_count)
    response = render(
        request,
        "login.html",
        status=status,
        error=error,
        csrf=token,
        next_url=_safe_next(request.query.get("next", "")),
        no_user=no_user,
    )
    if fresh:
        response.set_cookie(PRE_CSRF_COOKIE, token, **COOKIE_ATTRS)  # type: ignore[arg-type]
    return response


async def login_post(request: web.Request) -> web.Response:
    console = _console(request)
    form = await request.post()
    cookie = request.cookies.get(PRE_CSRF_COOKIE, "")
    given = str(form.get(CSRF_FIELD, ""))
    client = client_of(request)
    name = str(form.get("name", "")).strip()[:64]
    if not cookie or not secrets.compare_digest(cookie.encode(), given.encode()):
        return await login_form(request, "The form expired; log in again.", 403)
    wait_s = console.limiter.retry_after_s(f"ip:{client}", f"user:{name.lower()}")
    if wait_s > 0:
        entry = audit.Entry(console.clock(), name or "-", "", "login", name, "rate limited",
                            client, "refused")  # fmt: skip
        await console.in_tx(audit.record, entry)
        response = await login_form(
            request, f"Too many failed logins; try again in {wait_s:.0f} s.", 429
        )
        response.headers["Retry-After"] = str(int(wait_s) + 1)
        return response
    now = console.clock()
    user = await console.on_db(accounts.check_password, name, str(form.get("password", "")))
    if user is not None and user.totp:
        code_ok = await console.in_tx(accounts.accept_code, name, str(form.get("code", "")), now)
        user = user if code_ok else None
    if user is None:
        console.limiter.failed(f"ip:{client}", f"user:{name.lower()}")
        entry = audit.Entry(now, name or "-", "", "login", name,
                            "wrong name, password or code", client, "refused")  # fmt: skip
        await console.in_tx(audit.record, entry)
        return await login_form(
            request, "Wrong name or password, or a wrong or used code (if you use one).", 401
        )
    console.limiter.succeeded(f"ip:{client}", f"user:{name.lower()}")

    def start(conn: Any) -> tuple[str, str]:
        made = accounts.create_session(conn, user, client, now)
        audit.record(conn, audit.Entry(now, user.name, user.role.value, "login", user.name,
                                       "", client, "ok"))  # fmt: skip
        return made

    token, _csrf = await console.in_tx(start)
    response = web.Response(status=303, headers={"Location": _safe_next(str(form.get("next", "")))})
    response.set_cookie(SESSION_COOKIE, token, **COOKIE_ATTRS)  # type: ignore[arg-type]
    response.del_cookie(PRE_CSRF_COOKIE, path="/")
    return response


@needs(Role.READ_ONLY)
async def logout(request: web.Request) -> web.Response:
    console = _console(request)
    who = principal(request)
    now = console.clock()

    def end(conn: Any) -> None:
        if who.via == "session":
            accounts.drop_session(conn, who.session)
        audit.record(conn, audit.Entry(now, who.user, who.role.value, "logout", who.user, "",
                                       client_of(request), "ok"))  # fmt: skip

    await console.in_tx(end)
    response = web.Response(status=303, headers={"Location": LOGIN_PATH})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def setup_form(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    console = _console(request)
    token = str(request.query.get("token", "")) or str((await request.post()).get("token", ""))
    if not await console.on_db(accounts.setup_token_valid, token):
        return render(request, "message.html", status=403, title="Setup link refused",
                      message="This setup link is not valid: a user exists already, or home "
                      "was restarted and printed a new link.")  # fmt: skip
    pre, fresh = _pre_csrf(request)
    response = render(request, "setup.html", status=status, error=error, csrf=pre, token=token)
    if fresh:
        response.set_cookie(PRE_CSRF_COOKIE, pre, **COOKIE_ATTRS)  # type: ignore[arg-type]
    return response


async def setup_post(request: web.Request) -> web.Response:
    console = _console(request)
    form = await request.post()
    token = str(form.get("token", ""))
    cookie = request.cookies.get(PRE_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(
        cookie.encode(), str(form.get(CSRF_FIELD, "")).encode()
    ):
        return await setup_form(request, "The form expired; try again.", 403)
    password = str(form.get("password", ""))
    if password != str(form.get("confirm", "")):
        return await setup_form(request, "The two passwords differ.", 400)
    name = str(form.get("name", "")).strip()
    now = console.clock()
    client = client_of(request)

    def make(conn: Any) -> Any:
        if not accounts.setup_token_valid(conn, token):
            raise accounts.AccountError("this setup link is spent or not valid")
        user = accounts.create_user(conn, name, Role.ADMIN, password, now)
        audit.record(conn, audit.Entry(now, user.name, user.role.value, "user.create",
                                       user.name, "first admin, by the setup link", client,
                                       "ok"))  # fmt: skip
        return user

    try:
        await console.in_tx(make)
    except accounts.AccountError as exc:
        return await setup_form(request, str(exc), 400)
    return web.Response(status=303, headers={"Location": LOGIN_PATH})


# ---- sites overview and live updates ----


def _filter_sites(sites: list[fleet.Site], q: str, health: str) -> list[fleet.Site]:
    q = q.strip().lower()
    return [
        s
        for s in sites
        if (not q or q in s.site.lower() or q in s.appliance.lower())
        and (not health or s.health == health)
    ]


@needs(Role.READ_ONLY)
async def root(_request: web.Request) -> web.Response:
    return web.Response(status=303, headers={"Location": "/console"})


@needs(Role.READ_ONLY)
async def overview(request: web.Request) -> web.Response:
    console = _console(request)
    now = console.clock()
    sites = await console.on_db(fleet.sites, now, False)  # the page lists no single alert
    q, health = request.query.get("q", ""), request.query.get("health", "")
    matching = _filter_sites(sites, q, health)
    # The worst OVERVIEW_ROWS first; the rest on request (a technician starts at the top, and
    # rendering 500 rows costs more than reading them).
    everything = request.query.get("all") == "1"
    shown = matching if everything else matching[:OVERVIEW_ROWS]
    counts = {h: sum(1 for s in sites if s.health == h) for h in ("red", "amber", "green")}
    return render(request, "overview.html", active="sites", live="/console/stream",
                  sites=shown, matching=len(matching), total=len(sites), counts=counts, q=q,
                  health=health)  # fmt: skip


def _digest(sites: list[fleet.Site]) -> str:
    # What the overview shows, rounded so ages ticking on do not count as a change each second.
    doc = [
        (s.appliance, s.health, s.silent, s.alerts, s.silenced, s.unacked_urgent, s.backlog // 10,
         s.version, s.site,
         [(a.key, a.acked_by, a.silenced, a.note, a.assigned_to) for a in s.open_alerts])
        for s in sites
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


async def _shared_digest(console: Console) -> str:
    """The fleet's digest, computed at most once per STREAM_TICK_S however many pages follow
    the stream (each open page would otherwise read every site every tick)."""
    now = console.clock()
    at, digest = console.extra.get("digest", (float("-inf"), ""))
    if now - at >= STREAM_TICK_S * 0.9:
        digest = _digest(await console.on_db(fleet.sites, now))
        console.extra["digest"] = (now, digest)
    return str(digest)


@needs(Role.READ_ONLY)
async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``event: change`` with a digest of the fleet whenever it changes
    (checked every STREAM_TICK_S); the page refetches itself (?partial=1) on a new digest."""
    console = _console(request)
    if console.streams >= MAX_STREAMS:
        return web.Response(status=503, text="too many live pages open; the page polls instead")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    console.streams += 1
    try:
        await response.prepare(request)
        last = ""
        while True:
            digest = await _shared_digest(console)
            if digest != last:
                await response.write(f"event: change\ndata: {digest}\n\n".encode())
                last = digest
            else:
                await response.write(b": keep-alive\n\n")
            await asyncio.sleep(STREAM_TICK_S)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        console.streams -= 1
    with contextlib.suppress(Exception):
        await response.write_eof()
    return response


# ---- alerts ----


def _alert_filter(alerts: list[fleet.Alert], query: Any, me: str) -> list[fleet.Alert]:
    site = str(query.get("site", "")).strip().lower()
    mine = query.get("mine") == "1"
    severity = str(query.get("severity", ""))
    acked = str(query.get("acked", ""))
    try:
        min_age_s = float(query.get("older_than_min", "") or 0) * 60.0
    except ValueError:
        min_age_s = 0.0
    return [
        a
        for a in alerts
        if (not site or site in a.site.lower() or site in a.appliance.lower())
        and (not severity or a.severity == severity)
        and (acked != "yes" or a.acked_by)
        and (acked != "no" or not a.acked_by)
        and a.age_s >= min_age_s
        and (not mine or a.assigned_to == me)
    ]


@needs(Role.READ_ONLY)
async def alerts_page(request: web.Request) -> web.Response:
    console = _console(request)
    every = await console.on_db(fleet.open_alerts, console.clock())
    shown = _alert_filter(every, request.query, principal(request).user)
    people = [u.name for u in await console.on_db(accounts.users)
              if allows(u.role, Role.TECHNICIAN)]  # fmt: skip
    return render(request, "alerts.html", active="alerts", live="/console/stream",
                  alerts=shown, total=len(every), query=request.query,
                  severities=fleet.SEVERITIES, people=people)  # fmt: skip


async def _alert_action(request: web.Request, kind: str) -> web.Response:
    console = _console(request)
    form = await request.post()
    appliance, key = str(form.get("appliance", "")), str(form.get("key", ""))
    back = _safe_next(str(form.get("back", "/console/alerts")))
    try:
        if kind == "ack":
            await actions.acknowledge(console, _actor(request), appliance, key)
        elif kind == "assign":
            await actions.assign(console, _actor(request), appliance, key, str(form.get("to", "")))
        elif kind == "note":
            await actions.note(console, _actor(request), appliance, key, str(form.get("note", "")))
        else:
            minutes = float(str(form.get("minutes", "60")) or 0)
            await actions.silence(console, _actor(request), appliance, key, minutes)
    except ActionError as exc:
        return render(request, "message.html", status=exc.status, title="Not done",
                      message=str(exc))  # fmt: skip
    except ValueError:
        return render(request, "message.html", status=400, title="Not done",
                      message="minutes must be a number")  # fmt: skip
    sep = "&" if "?" in back else "?"
    return web.Response(status=303, headers={"Location": f"{back}{sep}done={kind}"})


@needs(Role.TECHNICIAN)
async def alert_ack(request: web.Request) -> web.Response:
    return await _alert_action(request, "ack")


@needs(Role.TECHNICIAN)
async def alert_assign(request: web.Request) -> web.Response:
    return await _alert_action(request, "assign")


@needs(Role.TECHNICIAN)
async def alert_note(request: web.Request) -> web.Response:
    return await _alert_action(request, "note")


@needs(Role.TECHNICIAN)
async def alert_silence(request: web.Request) -> web.Response:
    return await _alert_action(request, "silence")


# ---- boxes ----


async def _boxes(request: web.Request, status: int = 200, error: str = "",
                 form: dict[str, str] | None = None) -> web.Response:  # fmt: skip
    console = _console(request)
    boxes = await console.on_db(fleet.boxes, console.clock())
    return render(request, "boxes.html", status=status, active="boxes", boxes=boxes,
                  error=error, form=form or {})  # fmt: skip


@needs(Role.READ_ONLY)
async def boxes_page(request: web.Request) -> web.Response:
    return await _boxes(request)


@needs(Role.ADMIN)
async def box_claim(request: web.Request) -> web.Response:
    form = await request.post()
    code, site = str(form.get("code", "")), str(form.get("site", ""))
    try:
        await actions.claim(_console(request), _actor(request), code, site)
    except ActionError as exc:
        return await _boxes(request, exc.status, str(exc), {"code": code, "site": site})
    return _back(request, "/console/boxes", "claimed")


@needs(Role.ADMIN)
async def box_update(request: web.Request) -> web.Response:
    form = await request.post()
    target = str(form.get("target", ""))
    try:
        await actions.roll_out(_console(request), _actor(request), [target] if target else [],
                               str(form.get("url", "")), str(form.get("version", "")))  # fmt: skip
    except ActionError as exc:
        return await _boxes(request, exc.status, str(exc))
    return _back(request, "/console/boxes", "update")


@needs(Role.ADMIN)
async def box_release(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        await actions.release(_console(request), _actor(request), str(form.get("appliance", "")))
    except ActionError as exc:
        return await _boxes(request, exc.status, str(exc))
    return _back(request, "/console/boxes", "released")


# ---- a site ----


async def _site(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    console = _console(request)
    appliance = request.match_info["appliance"]
    now = console.clock()

    def read(conn: Any) -> dict[str, Any] | None:
        found = fleet.site(conn, now, appliance)
        if found is None:
            return None
        return {
            "site": found,
            "health": fleet.box_health(conn, appliance),
            "timeline": fleet.timeline(conn, appliance),
            "notifications": fleet.notifications(conn, appliance),
            "devices": devices.site_devices(conn, appliance, now),
            "remote": remote.status_sync(console.db, appliance),
        }

    data = await console.on_db(read)
    if data is None:
        return render(request, "message.html", status=404, title="No such site",
                      message=f"No claimed box {appliance}.")  # fmt: skip
    values = {"config_text": "", "problems": (), "error": "", "result": None}
    values.update(extra)
    return render(request, "site.html", status=status, active="sites", actions=remote.ACTIONS,
                  **data, **values)  # fmt: skip


@needs(Role.READ_ONLY)
async def site_page(request: web.Request) -> web.Response:
    return await _site(request)


@needs(Role.READ_ONLY)
async def device_page(request: web.Request) -> web.Response:
    console = _console(request)
    appliance = request.match_info["appliance"]
    try:
        device_id = int(request.match_info["device_id"])
    except ValueError:
        device_id = -1
    now = console.clock()

    def read(conn: Any) -> dict[str, Any] | None:
        found = fleet.site(conn, now, appliance)
        detail = devices.device_detail(conn, appliance, device_id, now) if found else None
        return None if detail is None else {**detail, "site": found}

    data = await console.on_db(read)
    if data is None:
        return render(request, "message.html", status=404, title="No such device",
                      message=f"No device {device_id} at {appliance}.")  # fmt: skip
    return render(request, "device.html", active="sites", chart_w=devices.CHART_W,
                  chart_h=devices.CHART_H, **data)  # fmt: skip


@needs(Role.ADMIN)
async def site_config(request: web.Request) -> web.Response:
    appliance = request.match_info["appliance"]
    text = str((await request.post()).get("config", ""))
    try:
        await actions.push_config(_console(request), _actor(request), appliance, text)
    except ActionError as exc:
        return await _site(request, exc.status, config_text=text, problems=exc.problems,
                           error=str(exc))  # fmt: skip
    return _back(request, f"/console/sites/{appliance}", "config")


def _command_args(text: str) -> dict[str, str]:
    out = {}
    for part in text.split():
        name, sep, value = part.partition("=")
        if not sep or not name:
            raise ActionError(400, f"argument {part!r}: write it as NAME=VALUE")
        out[name] = value
    return out


@needs(Role.TECHNICIAN)
async def site_command(request: web.Request) -> web.Response:
    appliance = request.match_info["appliance"]
    form = await request.post()
    try:
        args = _command_args(str(form.get("args", "")))
        await actions.command(_console(request), _actor(request), appliance,
                              str(form.get("action", "")), args)  # fmt: skip
    except ActionError as exc:
        return await _site(request, exc.status, error=str(exc))
    return _back(request, f"/console/sites/{appliance}", "command")


# ---- users, tokens, audit ----


async def _users(request: web.Request, status: int = 200, error: str = "",
                 secret: dict[str, Any] | None = None) -> web.Response:  # fmt: skip
    console = _console(request)
    users = await console.on_db(accounts.users)
    tokens = await console.on_db(accounts.tokens)
    return render(request, "users.html", status=status, active="users", users=users,
                  tokens=tokens, roles=ROLE_NAMES, error=error, secret=secret)  # fmt: skip


@needs(Role.ADMIN)
async def users_page(request: web.Request) -> web.Response:
    return await _users(request)


@needs(Role.ADMIN)
async def users_post(request: web.Request) -> web.Response:
    form = await request.post()
    op = str(form.get("op", ""))
    console, actor = _console(request), _actor(request)
    name = str(form.get("name", "")).strip()
    try:
        if op == "create":
            if str(form.get("password", "")) != str(form.get("confirm", "")):
                raise ActionError(400, "the two passwords differ")
            await actions.create_user(console, actor, name, str(form.get("role", "")),
                                      str(form.get("password", "")))  # fmt: skip
        elif op == "delete":
            await actions.delete_user(console, actor, name)
        elif op == "role":
            await actions.set_role(console, actor, name, str(form.get("role", "")))
        elif op == "token":
            made = await actions.create_token(console, actor, str(form.get("label", "")),
                                              str(form.get("role", "")))  # fmt: skip
            return await _users(request, secret=made)
        elif op == "revoke":
            await actions.revoke_token(console, actor, str(form.get("token_id", "")))
        else:
            raise ActionError(400, f"unknown operation {op!r}")
    except ActionError as exc:
        return await _users(request, exc.status, str(exc))
    return _back(request, "/console/users", "user")


async def _settings(request: web.Request, status: int = 200, error: str = "", done: str = "",
                    kept: tuple[str, int] | None = None) -> web.Response:  # fmt: skip
    """The settings page; ``kept``: the admin's refused text and the version it was edited from
    (shown again in the editor with the error)."""
    editor = await settings.editor(_console(request), request.app)
    text, base = kept or ((editor.text, editor.version) if editor else ("", 0))
    return render(request, "settings.html", status=status, active="settings",
                  notify=settings.shown(request.app), error=error, sent=done,
                  editor=editor, editor_text=text, base_version=base,
                  placeholder=settings.PLACEHOLDER)  # fmt: skip


@needs(Role.ADMIN)
async def settings_page(request: web.Request) -> web.Response:
    return await _settings(request)


@needs(Role.ADMIN)
async def settings_save(request: web.Request) -> web.Response:
    form = await request.post()
    text = str(form.get("toml", ""))
    try:
        base = int(str(form.get("base_version", "")))
    except ValueError:
        return await _settings(request, 400, "base_version: reload the page", kept=(text, 0))
    try:
        await settings.save(_console(request), _actor(request), request.app, text, base)
    except ActionError as exc:
        return await _settings(request, exc.status, str(exc), kept=(text, base))
    return _back(request, "/console/settings", "settings")


@needs(Role.ADMIN)
async def settings_test(request: web.Request) -> web.Response:
    channel = str((await request.post()).get("channel", ""))
    try:
        result = await settings.send_test(_console(request), _actor(request), request.app, channel)
    except ActionError as exc:
        return await _settings(request, exc.status, str(exc))
    return await _settings(
        request, done=f"Test message sent on {channel} in {result['latency_ms']} ms."
    )


@needs(Role.ADMIN)
async def audit_page(request: web.Request) -> web.Response:
    console = _console(request)
    entries = await console.on_db(audit.listing, 500, request.query.get("action", ""))
    return render(request, "audit.html", active="audit", entries=entries)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", root)
    r.add_get("/console", overview)
    r.add_get("/console/stream", stream)
    r.add_get(LOGIN_PATH, login_form)
    r.add_post(LOGIN_PATH, login_post)
    r.add_post("/console/logout", logout)
    r.add_get("/console/setup", setup_form)
    r.add_post("/console/setup", setup_post)
    r.add_get("/console/alerts", alerts_page)
    r.add_post("/console/alerts/ack", alert_ack)
    r.add_post("/console/alerts/note", alert_note)
    r.add_post("/console/alerts/assign", alert_assign)
    r.add_post("/console/alerts/silence", alert_silence)
    r.add_get("/console/boxes", boxes_page)
    r.add_post("/console/boxes/claim", box_claim)
    r.add_post("/console/boxes/release", box_release)
    r.add_post("/console/boxes/update", box_update)
    r.add_get("/console/sites/{appliance}", site_page)
    r.add_get("/console/sites/{appliance}/devices/{device_id}", device_page)
    r.add_post("/console/sites/{appliance}/config", site_config)
    r.add_post("/console/sites/{appliance}/command", site_command)
    r.add_get("/console/users", users_page)
    r.add_post("/console/users", users_post)
    r.add_get("/console/audit", audit_page)
    r.add_get("/console/settings", settings_page)
    r.add_post("/console/settings", settings_save)
    r.add_post("/console/settings/test", settings_test)


def query_url(path: str, **params: Any) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(clean) if clean else "")
