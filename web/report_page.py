"""``/report``: the monthly report from the appliance's own records, for the office manager.

Works without the MSP's systems (the store is local). ``?month=YYYY-MM`` picks a month; the
default is the last calendar month in the site's time zone (``[site] timezone``). The page is
HTML only (a PDF engine is too heavy for the box; home makes the PDF) with print CSS, so the
browser's "Print" gives a clean A4 report. Template and stylesheet are core/report/assets/
(home renders the same ones); the stylesheet is served at ``/report.css``.
"""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
import time

import jinja2
from aiohttp import web

from core.report import ASSETS, STYLESHEET, TEMPLATE
from core.report.build import build_report
from core.report.hours import Period, month_period, previous_month
from core.report.inputs import ReportInput
from core.report.model import Report
from core.report.page import context
from services.context import AppContext
from services.polling.gateway import default_gateway
from web import report_data

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@functools.cache
def environment() -> jinja2.Environment:
    """Autoescape on (every name comes from the network), undefined names are errors."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(ASSETS),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def period_for(query: str, now_s: float, timezone: str) -> Period:
    """The month of ``?month=YYYY-MM``, else the last calendar month; HTTP 400 if malformed."""
    if not query:
        return previous_month(now_s, timezone)
    m = _MONTH.match(query)
    if m is None or not 1 <= int(m[2]) <= 12:
        raise web.HTTPBadRequest(text=f"month={query!r}: write the month as YYYY-MM, e.g. 2026-11")
    return month_period(int(m[1]), int(m[2]), timezone)


async def build(ctx: AppContext, period: Period) -> tuple[ReportInput, Report]:
    site = ctx.config.site
    hours = site.hours()
    gateway = ctx.config.alerting.gateway_ip or default_gateway()
    data = await ctx.store.read(
        lambda conn: report_data.load_input(
            conn, site=site.name, period=period, hours=hours, gateway_ip=gateway
        )
    )
    # CPU-bound (a month of polls): off the event loop, the status page stays responsive.
    report = await asyncio.to_thread(build_report, data)
    return data, report


def render(data: ReportInput, report: Report, built_ms: float | None = None) -> str:
    page = context(
        data,
        report,
        css_href="/report.css",
        icon_href="/static/favicon.svg",
        back_href="/",
        back_label="Status page",
        built_ms=built_ms,
    )
    return environment().get_template(TEMPLATE).render(page)


CACHE_MAX_PAGES = 12
CACHE_TTL_S = 3600.0  # a closed month's page is kept this long while its records stand still
_cache: dict[tuple[int, float], tuple[tuple[object, ...], float, str]] = {}


def clear_cache() -> None:
    """Forget every cached page (the benchmark measures builds from the store)."""
    _cache.clear()


def _stamp(conn: sqlite3.Connection, end_s: float) -> tuple[object, ...]:
    """What changes a closed month's report: its events (every alert transition and change
    writes one) and its alerts' state (a late acknowledgement or resolution)."""
    events = conn.execute("SELECT COUNT(*), MAX(id) FROM events WHERE ts < ?", (end_s,))
    alerts = conn.execute(
        "SELECT COUNT(*), SUM(acked), SUM(resolved_ts IS NULL) FROM alerts WHERE opened_ts < ?",
        (end_s,),
    )
    return (*events.fetchone(), *alerts.fetchone())


async def report_page(request: web.Request, ctx: AppContext) -> web.Response:
    """The month's report; a closed month's page is cached (a month of polls of a 250-device
    site is millions of rows to read) until its events or alerts change, at most an hour."""
    site = ctx.config.site
    now = ctx.clock.now().wall
    period = period_for(request.query.get("month", ""), now, site.timezone)
    key = (id(ctx.store), period.start_s)
    closed = period.end_s <= now
    stamp: tuple[object, ...] = ()
    if closed:
        stamp = await ctx.store.read(lambda conn: _stamp(conn, period.end_s))
        hit = _cache.get(key)
        if hit is not None and hit[0] == stamp and time.monotonic() - hit[1] < CACHE_TTL_S:
            return web.Response(text=hit[2], content_type="text/html")
    started = time.perf_counter()
    data, report = await build(ctx, period)
    html = await asyncio.to_thread(render, data, report, (time.perf_counter() - started) * 1000)
    if closed:
        if len(_cache) >= CACHE_MAX_PAGES:
            _cache.pop(next(iter(_cache)))  # the oldest entry
        _cache[key] = (stamp, time.monotonic(), html)
    return web.Response(text=html, content_type="text/html")


async def stylesheet(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STYLESHEET, headers={"Content-Type": "text/css"})
