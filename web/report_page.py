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


async def report_page(request: web.Request, ctx: AppContext) -> web.Response:
    site = ctx.config.site
    period = period_for(request.query.get("month", ""), ctx.clock.now().wall, site.timezone)
    started = time.perf_counter()
    data, report = await build(ctx, period)
    html = await asyncio.to_thread(render, data, report, (time.perf_counter() - started) * 1000)
    return web.Response(text=html, content_type="text/html")


async def stylesheet(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STYLESHEET, headers={"Content-Type": "text/css"})
