"""The status page and its JSON API (aiohttp application)."""

from __future__ import annotations

import html
import time

from aiohttp import web

from firmware.context import AppContext

CTX = web.AppKey("ctx", AppContext)


async def overview_counts(ctx: AppContext) -> dict[str, int]:
    rows = await ctx.store.query(
        "SELECT (SELECT COUNT(*) FROM devices) AS devices,"
        " (SELECT COUNT(*) FROM alerts WHERE state = 'open') AS open_alerts,"
        " (SELECT COUNT(*) FROM outbox) AS outbox"
    )
    return {key: int(value) for key, value in rows[0].items()}


async def api_status(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    counts = await overview_counts(ctx)
    return web.json_response(
        {
            "site": ctx.config.site.name,
            "version": ctx.version,
            "uptime_s": round(time.time() - ctx.status.started_at, 1),
            "clock_synced": ctx.clock.clock_synced(),
            **counts,
            "status": ctx.status.snapshot(),
        }
    )


async def index(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    counts = await overview_counts(ctx)
    site = html.escape(ctx.config.site.name or "unnamed site")
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Outpost</title></head><body>"
        f"<h1>Outpost: {site}</h1><p>{counts['devices']} devices, "
        f"{counts['open_alerts']} open alerts</p></body></html>"
    )
    return web.Response(text=body, content_type="text/html")


def create_app(ctx: AppContext) -> web.Application:
    app = web.Application()
    app[CTX] = ctx
    app.router.add_get("/", index)
    app.router.add_get("/api/v1/status", api_status)
    return app
