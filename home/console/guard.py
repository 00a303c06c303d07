"""The console's middleware: every request to home passes here.

* Appliance paths (signed requests: ingest, heartbeat, hello, sync, diagnostics) and the signed
  acknowledgement link of home/notify pass untouched: they authenticate themselves.
* The login and setup pages and the console's static files are open; their POSTs still need a
  same-origin request and the double-submit CSRF cookie.
* Everything else needs a principal: a session cookie or an ``Authorization: Bearer`` API token.
  With no console user at all, home refuses (503) and says how to make one.
* The matched route must declare the role it needs (:func:`needs`); a route that declares none
  is refused, so a route added without thought is closed, not open.
* A state-changing method (POST, PUT, PATCH, DELETE) must come from home's own origin (Origin,
  else Referer, and Sec-Fetch-Site) and, with a session cookie, carry the session's CSRF token
  (form field ``csrf`` or header ``X-CSRF-Token``). Refusals of role or CSRF are audited.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from aiohttp import web

from core.logs import get_log
from core.wire.protocol import HEARTBEAT_PATH, INGEST_PATH
from home.console import accounts, audit
from home.console.accounts import Principal
from home.console.roles import Role, allows
from home.console.state import CONSOLE_KEY, Console
from home.notify.ack import ACK_PATH
from home.ops import HEALTH_PATH, METRICS_PATH
from home.remote import DIAGNOSTICS_PATH, HELLO_PATH, SYNC_PATH

log = get_log("home.console")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

SESSION_COOKIE = "outpost_console"
PRE_CSRF_COOKIE = "outpost_console_csrf"  # double-submit token of the login and setup forms
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_PATH = "/console/login"
SETUP_PATH = "/console/setup"
STATIC_PREFIX = "/console/static/"
ROLE_ATTR = "console_role"
PRINCIPAL_KEY = web.RequestKey("console.principal", Principal)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Paths the console does not guard, with the reason: requests that prove themselves (a
# signature, an HMAC link) and the operations endpoints. Never a console login.
SIGNED_PATHS: dict[str, str] = {
    INGEST_PATH: "appliance records, signed (home/signed.py)",
    HEARTBEAT_PATH: "appliance heartbeat, signed",
    HELLO_PATH: "unclaimed box's hello, signed by the key it carries (home/claims.py)",
    SYNC_PATH: "configurations and commands, signed (home/remote.py)",
    DIAGNOSTICS_PATH: "diagnostics bundle, signed",
    ACK_PATH: "acknowledgement link with an HMAC token (home/notify/ack.py)",
    # home/ops.py: the load balancer's health check and Prometheus; counts only, no secret.
    HEALTH_PATH: "load balancer health check (home/ops.py)",
    METRICS_PATH: "Prometheus metrics, counts only (home/ops.py)",
}
# Console paths open without a login: the way in.
OPEN_PATHS: dict[str, str] = {
    LOGIN_PATH: "the login form",
    SETUP_PATH: "the first admin, with the one-time setup token printed at start",
}

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def needs(role: Role) -> Callable[[H], H]:
    """Declare the least role a route's handler needs (read by the guard)."""

    def mark(handler: H) -> H:
        setattr(handler, ROLE_ATTR, role)
        return handler

    return mark


def principal(request: web.Request) -> Principal:
    """The authenticated principal of a request the guard let through."""
    found: Principal = request[PRINCIPAL_KEY]
    return found


def client_of(request: web.Request) -> str:
    return request.remote or ""


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def cross_origin(request: web.Request) -> str:
    """Why a state-changing request is not from home's own pages, or ''."""
    fetch_site = request.headers.get("Sec-Fetch-Site", "")
    if fetch_site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site is {fetch_site}"
    origin = request.headers.get("Origin")
    if origin is not None:
        return "" if origin == own_origin(request) else f"Origin {origin[:80]} is not home's"
    referer = request.headers.get("Referer")
    if referer:
        parts = urlsplit(referer)
        if f"{parts.scheme}://{parts.netloc}" != own_origin(request):
            return "Referer is not home's"
    return ""


def _json_or_text(request: web.Request, status: int, message: str) -> web.Response:
    if request.path.startswith("/api/"):
        return web.json_response({"ok": False, "error": message}, status=status)
    return web.Response(status=status, text=message, content_type="text/plain")


def harden(response: web.StreamResponse) -> web.StreamResponse:
    """Headers every console answer carries (not the appliance API's)."""
    if response.prepared:
        return response
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


async def _resolve(request: web.Request, console: Console) -> Principal | None:
    now = console.clock()
    authorization = request.headers.get("Authorization", "")
    if authorization:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        found: Principal | None = await console.on_db(accounts.token_principal, secret.strip(), now)
        return found
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not cookie:
        return None
    found = await console.on_db(accounts.session_principal, cookie, now)
    return found


async def _csrf_given(request: web.Request) -> str:
    header = request.headers.get(CSRF_HEADER, "")
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()  # cached: the handler reads it again for free
        return str(form.get(CSRF_FIELD, ""))
    return ""


async def refuse(
    request: web.Request,
    console: Console,
    who: Principal | None,
    *,
    status: int,
    action: str,
    why: str,
) -> web.Response:
    """Answer ``status`` and audit the refusal of a state-changing request."""
    entry = audit.Entry(
        at=console.clock(),
        user=who.user if who else "-",
        role=who.role.value if who else "",
        action=action,
        target=request.path,
        detail=why,
        client=client_of(request),
        outcome="refused",
    )
    await console.in_tx(audit.record, entry)
    log.warning("console.refused", path=request.path, user=entry.user, why=why)
    return _json_or_text(request, status, why)


async def _has_users(console: Console) -> bool:
    if console.extra.get("has_users"):
        return True  # the last admin cannot be removed: once true, true for good
    count = await console.on_db(accounts.user_count)
    console.extra["has_users"] = bool(count)
    return bool(count)


NO_USER = (
    "The console has no user yet, so it serves nothing. Make the first admin on home's server: "
    "outpost-home create-user NAME --role admin --data-dir DIR (the password is asked for, or "
    "read with --password-file), or open the one-time setup link home printed at start."
)


def middleware() -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path in SIGNED_PATHS:
            return await handler(request)
        console = request.app[CONSOLE_KEY]
        if path in OPEN_PATHS or path.startswith(STATIC_PREFIX):
            if request.method in UNSAFE_METHODS:
                why = cross_origin(request)
                if why:
                    return harden(
                        await refuse(
                            request, console, None, status=403, action="cross-origin", why=why
                        )
                    )
            return harden(await handler(request))
        if not await _has_users(console):
            return harden(_json_or_text(request, 503, NO_USER))
        who = await _resolve(request, console)
        if who is None:
            browser = "Authorization" not in request.headers  # a script's token: 401
            if browser and request.method == "GET" and not path.startswith("/api/"):
                target = quote(request.path_qs, safe="/?=&")
                return harden(
                    web.Response(status=303, headers={"Location": f"{LOGIN_PATH}?next={target}"})
                )
            return harden(_json_or_text(request, 401, "log in, or send an API token"))
        missing = getattr(request.match_info, "http_exception", None)
        if missing is not None:
            return harden(_json_or_text(request, missing.status, missing.reason))
        needed = getattr(request.match_info.handler, ROLE_ATTR, None)
        unsafe = request.method in UNSAFE_METHODS
        if not isinstance(needed, Role):
            return harden(_json_or_text(request, 403, "this route declares no role; refused"))
        if not allows(who.role, needed):
            why = f"{who.role.value} may not do this; it needs {needed.value}"
            if unsafe:
                return harden(
                    await refuse(request, console, who, status=403, action="forbidden", why=why)
                )
            return harden(_json_or_text(request, 403, why))
        if unsafe:
            why = cross_origin(request)
            if why:
                return harden(
                    await refuse(request, console, who, status=403, action="cross-origin", why=why)
                )
            if who.via == "session" and not hmac.compare_digest(
                (await _csrf_given(request)).encode(), who.csrf.encode()
            ):
                why = "missing or wrong CSRF token; reload the page and try again"
                return harden(
                    await refuse(request, console, who, status=403, action="csrf", why=why)
                )
        request[PRINCIPAL_KEY] = who
        return harden(await handler(request))

    return guard
