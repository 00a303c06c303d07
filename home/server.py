"""Home's HTTPS server: signed ingest and heartbeats from appliances, and the MSP console."""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from core.logs import get_log
from core.wire.protocol import (
    FLEET_PATH,
    HEARTBEAT_PATH,
    INGEST_PATH,
    MAX_WIRE_BYTES,
)
from home import ops
from home import retention as retention_job
from home.console.app import announce_setup
from home.console.app import middleware as console_middleware
from home.console.app import mount as mount_console
from home.console.guard import needs
from home.console.reports import REPORT_CONFIG_KEY
from home.console.roles import Role
from home.db import HomeDB
from home.notify.worker import Notifier
from home.remote import add_routes as add_remote_routes
from home.report.monthly import ReportConfig
from home.retention import RetentionPolicy
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


@needs(Role.READ_ONLY)
async def fleet_json(request: web.Request) -> web.Response:
    db = request.app[DB_KEY]
    return web.json_response({"appliances": await db.call(db.fleet_sync)})


def create_app(
    db: HomeDB,
    faults: Faults | None = None,
    notifier: Notifier | None = None,
    data_dir: Path | None = None,
) -> web.Application:
    """Home's application. Every path but the appliances' signed ones (and the notify ack
    link) goes through the console's guard (home/console): a user or an API token with the
    role the route declares. ``data_dir`` holds the MSP's signing key for the console's claims,
    configurations and commands."""
    middlewares = [_fault_middleware(faults)] if faults else []
    middlewares.append(console_middleware())
    app = web.Application(client_max_size=MAX_WIRE_BYTES, middlewares=middlewares)
    app[DB_KEY] = db
    app.router.add_post(INGEST_PATH, ingest)
    app.router.add_post(HEARTBEAT_PATH, heartbeat)
    app.router.add_get(FLEET_PATH, fleet_json)
    app.router.add_get("/fleet", fleet_redirect)  # the old fleet page: now the console's sites
    mount_console(app, db, data_dir)
    add_remote_routes(app, data_dir)  # claiming, signed configuration, commands (home/remote.py)
    ops.install(app)  # /healthz for the load balancer, /metrics (home/ops.py)
    if notifier is not None:  # notifications: ingest hook, worker, ack links (home/notify)
        notifier.install(app, db)
    return app


@needs(Role.READ_ONLY)
async def fleet_redirect(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/console")


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
    notifier: Notifier | None = None,
    data_dir: Path | None = None,
    retention: RetentionPolicy | None = None,
    report_config: ReportConfig | None = None,
) -> None:
    """Run home until cancelled (or SIGTERM/SIGINT via the CLI). ``report_config``: ``[report]``
    (the MSP's name, colour and logo) for the console's report pages."""
    db = HomeDB(db_path)
    await db.open()
    app = create_app(db, faults, notifier, data_dir)
    if report_config is not None:
        app[REPORT_CONFIG_KEY] = report_config
    # Partitions, roll-ups and expiry: on one instance at a time (home/retention.py).
    lease = retention_job.install(app, db, retention or RetentionPolicy(), time.time)
    app[ops.OPS_KEY].leases.append(lease)
    await announce_setup(db, f"https://{'localhost' if host in ('0.0.0.0', '::') else host}:{port}")
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
