"""Home's HTTPS server: signed ingest and heartbeats from appliances, and the fleet view."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import random
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from core.logs import get_log
from core.wire.protocol import (
    FLEET_PATH,
    HEARTBEAT_PATH,
    INGEST_PATH,
    MAX_WIRE_BYTES,
)
from home import ops
from home.db import HomeDB
from home.notify.worker import Notifier
from home.remote import add_routes as add_remote_routes
from home.signed import DB_KEY, Handler, signed_endpoint

log = get_log("home")


@dataclass(frozen=True)
class Faults:
    """Fault injection for tests (``outpost-home run --faults``); never set in production.

    Each rate is a probability per ingest/heartbeat request. ``reset`` and ``garbage`` strike
    after the batch was committed, the hardest case for exactly-once delivery.
    """

    seed: int = 0
    error500: float = 0.0  # answer 500 before doing anything
    unavailable: float = 0.0  # answer 503 with Retry-After
    slow: float = 0.0  # wait ``slow_s`` before answering (after committing)
    slow_s: float = 3.0
    reset: float = 0.0  # commit, then abort the connection without an answer
    garbage: float = 0.0  # commit, then answer 200 with bytes that are not the protocol
    slowdown: float = 0.0  # commit, then answer normally but ask for a pause of slow_s

    @classmethod
    def parse(cls, text: str) -> Faults:
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            if key not in cls.__dataclass_fields__:
                raise ValueError(
                    f"unknown fault {key!r}; known: {sorted(cls.__dataclass_fields__)}"
                )
            values[key] = int(value) if key == "seed" else float(value)
        return cls(**values)


def _fault_middleware(faults: Faults) -> Any:
    rng = random.Random(faults.seed)

    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in (INGEST_PATH, HEARTBEAT_PATH):
            return await handler(request)
        draw = rng.random()
        edge = faults.error500
        if draw < edge:
            return web.json_response({"ok": False, "error": "injected fault"}, status=500)
        edge += faults.unavailable
        if draw < edge:
            return web.json_response(
                {"ok": False, "error": "injected: busy"}, status=503, headers={"Retry-After": "1"}
            )
        response = await handler(request)
        edge += faults.slow
        if draw < edge:
            await asyncio.sleep(faults.slow_s)
            return response
        edge += faults.reset
        if draw < edge:
            if request.transport is not None:
                request.transport.abort()  # the answer is never written
            return response
        edge += faults.garbage
        if draw < edge:
            return web.Response(body=b"\x00\xffnot json{", content_type="application/json")
        edge += faults.slowdown
        if draw < edge and isinstance(response, web.Response) and response.status == 200:
            doc = json.loads(response.body or b"{}")  # type: ignore[arg-type]
            return web.json_response({**doc, "slow_down_s": faults.slow_s})
        return response

    return inject


ingest = signed_endpoint(HomeDB.ingest_sync, slow_down=True)
heartbeat = signed_endpoint(HomeDB.heartbeat_sync, slow_down=True)


async def fleet_json(request: web.Request) -> web.Response:
    db = request.app[DB_KEY]
    return web.json_response({"appliances": await db.call(db.fleet_sync)})


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


SILENT_AFTER_S = 180.0  # three missed heartbeats: the site is silent

# Home's pages are Jinja2 templates in home/templates/ with autoescape on: site names and alert
# messages come from appliances (and so from devices on customers' networks).
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=True),
    undefined=jinja2.StrictUndefined,
    auto_reload=False,
)


@dataclass(frozen=True)
class FleetRow:
    cells: tuple[str, ...]  # site, appliance, last heartbeat ... open alerts (plain text)
    silent: bool  # no heartbeat for SILENT_AFTER_S


async def fleet_html(request: web.Request) -> web.Response:
    db = request.app[DB_KEY]
    rows = []
    for a in await db.call(db.fleet_sync):
        age = a["last_heartbeat_age_s"]
        silent = age is None or age > SILENT_AFTER_S
        queue = a["queue"] or {}
        backlog = sum(v for v in queue.values() if isinstance(v, int))
        drops = sum(
            n
            for per_kind in a["drops"].values()
            if isinstance(per_kind, dict)
            for n in per_kind.values()
            if isinstance(n, int)
        )
        alerts = "; ".join(f"{x['severity']}: {x['message'] or x['key']}" for x in a["open_alerts"])
        oldest = a["oldest_unsent_age_s"]
        cells = [
            a["site"],
            a["appliance"],
            _age(age) + (" (silent)" if silent else ""),
            str(backlog),
            "-" if oldest is None else _age(oldest).replace(" ago", ""),
            str(a["records"]),
            str(drops),
            alerts or "none",
        ]
        rows.append(FleetRow(tuple(str(c) for c in cells), silent))
    page = _TEMPLATES.get_template("fleet.html").render(rows=rows)
    return web.Response(text=page, content_type="text/html")


FLEET_USER = "msp"
FLEET_PATHS = frozenset({"/", "/fleet", FLEET_PATH})


def _fleet_auth_middleware(password: str) -> Any:
    """HTTP Basic authentication (user ``msp``) for the fleet view only; appliances sign."""
    expected = "Basic " + base64.b64encode(f"{FLEET_USER}:{password}".encode()).decode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in FLEET_PATHS:
            return await handler(request)
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return web.Response(
                status=401,
                text="the fleet view needs the MSP's password",
                headers={"WWW-Authenticate": 'Basic realm="Outpost fleet", charset="UTF-8"'},
            )
        return await handler(request)

    return check


def create_app(
    db: HomeDB,
    faults: Faults | None = None,
    fleet_password: str = "",
    notifier: Notifier | None = None,
) -> web.Application:
    middlewares = [_fault_middleware(faults)] if faults else []
    if fleet_password:
        middlewares.append(_fleet_auth_middleware(fleet_password))
    app = web.Application(client_max_size=MAX_WIRE_BYTES, middlewares=middlewares)
    app[DB_KEY] = db
    app.router.add_post(INGEST_PATH, ingest)
    app.router.add_post(HEARTBEAT_PATH, heartbeat)
    app.router.add_get(FLEET_PATH, fleet_json)
    app.router.add_get("/fleet", fleet_html)
    app.router.add_get("/", _redirect)
    add_remote_routes(app)  # claiming, signed configuration, commands (home/remote.py)
    ops.install(app)  # /healthz for the load balancer, /metrics (home/ops.py)
    if notifier is not None:  # notifications: ingest hook, worker, ack links (home/notify)
        notifier.install(app, db)
    return app


async def _redirect(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/fleet")


def server_ssl(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


async def serve(
    db_path: str,
    *,
    host: str,
    port: int,
    cert: str,
    key: str,
    faults: Faults | None = None,
    fleet_password: str = "",
    notifier: Notifier | None = None,
) -> None:
    """Run home until cancelled (or SIGTERM/SIGINT via the CLI)."""
    db = HomeDB(db_path)
    await db.open()
    app = create_app(db, faults, fleet_password, notifier)
    runner = web.AppRunner(app, access_log=None, auto_decompress=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=server_ssl(cert, key))
        await site.start()
        log.info("home.listening", address=f"https://{host}:{port}", db=db.target.describe())
        print(json.dumps({"listening": f"https://{host}:{port}"}), flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await db.close()
