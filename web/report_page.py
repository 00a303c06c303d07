"""``/report``: the monthly report from the appliance's own records, for the office manager.

Works without the MSP's systems (the store is local). ``?month=YYYY-MM`` picks a month; the
default is the last calendar month in the site's time zone (``[site] timezone``). The page is
HTML only (a PDF engine is too heavy for the box; home makes the PDF) with print CSS, so the
browser's "Print" gives a clean A4 report.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from core.report import words
from core.report.build import build_report
from core.report.charts import TrendChart, month_strip, trend_chart
from core.report.hours import Period, month_period, previous_month
from core.report.inputs import ReportInput
from core.report.model import Outlook, Report
from services.context import AppContext
from services.polling.gateway import default_gateway
from web import report_data

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class Formats:
    """Times in the site's zone and durations in words, for the template."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)

    def when(self, ts: float | None) -> str:
        if ts is None:
            return "still open"
        return f"{datetime.fromtimestamp(ts, self.zone):%a %d %b, %H:%M}"

    def day(self, ts: float | None) -> str:
        if ts is None:
            return ""
        return f"{datetime.fromtimestamp(ts, self.zone):%d %B %Y}"

    def iso(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.zone).isoformat(timespec="minutes")

    def dur(self, seconds: float | None) -> str:
        return "not over yet" if seconds is None else words.duration(seconds)

    def pct(self, value: float | None) -> str:
        return words.pct(value)


def period_for(query: str, now_s: float, timezone: str) -> Period:
    """The month of ``?month=YYYY-MM``, else the last calendar month; HTTP 400 if malformed."""
    if not query:
        return previous_month(now_s, timezone)
    m = _MONTH.match(query)
    if m is None or not 1 <= int(m[2]) <= 12:
        raise web.HTTPBadRequest(text=f"month={query!r}: write the month as YYYY-MM, e.g. 2026-11")
    return month_period(int(m[1]), int(m[2]), timezone)


def _trend_charts(data: ReportInput, report: Report) -> list[tuple[Outlook, TrendChart]]:
    """A chart for each forecast (volumes first), at most three: the page stays short."""
    out = []
    for o in report.outlook:
        if o.series is None:
            continue
        kind, device_id, instance = o.series
        points = (data.volumes if kind == "volume" else data.supplies).get((device_id, instance))
        chart = trend_chart(points or (), data.period.end_s, o.due_s, data.hours.timezone)
        if chart is not None:
            out.append((o, chart))
    out.sort(key=lambda pair: pair[0].series is None or pair[0].series[0] != "volume")
    return out[:3]


def context(data: ReportInput, report: Report) -> dict[str, Any]:
    strip = month_strip(report.availability, data.period.start_s, data.period.end_s, data.hours)
    return {
        "r": report,
        "f": Formats(report.timezone),
        "strip": strip,
        "trend_charts": _trend_charts(data, report),
        "more_problems": max(0, len(report.problems) - 5),
    }


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


async def report_page(request: web.Request, ctx: AppContext) -> web.Response:
    site = ctx.config.site
    period = period_for(request.query.get("month", ""), ctx.clock.now().wall, site.timezone)
    started = time.perf_counter()
    data, report = await build(ctx, period)
    page = context(data, report)
    page["built_ms"] = (time.perf_counter() - started) * 1000
    return aiohttp_jinja2.render_template("report.html", request, page)
