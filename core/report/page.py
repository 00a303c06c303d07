"""What the report template needs besides the :class:`Report`: formatters in the site's time
zone and chart geometry. Shared by the box's page and home's HTML/PDF; pure (no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.report import words
from core.report.charts import TrendChart, month_strip, trend_chart
from core.report.inputs import ReportInput
from core.report.model import Outlook, Report

MAX_TREND_CHARTS = 3


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


def trend_charts(data: ReportInput, report: Report) -> list[tuple[Outlook, TrendChart]]:
    """A chart for each dated forecast, volumes first, at most three: the report stays short.
    Only the charts shown are drawn (each refits its 30 days of levels)."""
    out: list[tuple[Outlook, TrendChart]] = []
    dated = [(o, o.series) for o in report.outlook if o.series is not None]
    dated.sort(key=lambda pair: pair[1][0] != "volume")  # stable: volumes first
    for o, (kind, device_id, instance) in dated:
        if len(out) == MAX_TREND_CHARTS:
            break
        points = (data.volumes if kind == "volume" else data.supplies).get((device_id, instance))
        chart = trend_chart(points or (), data.period.end_s, o.due_s, data.hours.timezone)
        if chart is not None:
            out.append((o, chart))
    return out


def context(data: ReportInput, report: Report, **chrome: Any) -> dict[str, Any]:
    """The template's variables. ``chrome``: css_href (required), back_href/back_label,
    accent (a checked CSS colour), logo_src (a data: URI), built_ms."""
    strip = month_strip(report.availability, data.period.start_s, data.period.end_s, data.hours)
    return {
        "r": report,
        "f": Formats(report.timezone),
        "strip": strip,
        "trend_charts": trend_charts(data, report),
        "more_problems": max(0, len(report.problems) - 5),
        "back_href": "",
        "back_label": "",
        "accent": "",
        "logo_src": "",
        "icon_href": "",
        "built_ms": None,
        **chrome,
    }
