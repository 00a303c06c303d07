"""Chart geometry for the report, computed here and drawn by the pages' SVG templates.

Pure numbers (no markup): the box's page and home's PDF draw the same shapes. Two charts:
a month strip per key device (one cell a day: the worst of that day's business hours), and
a volume's fill line with its forecast extended to 100 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.report.availability import DOWN, UNKNOWN, UP
from core.report.forecast import DAY_S, fit
from core.report.hours import BusinessHours, overlap
from core.report.inputs import Point
from core.report.model import DeviceAvailability

STATE_COLOURS = {UP: "#16a34a", DOWN: "#dc2626", UNKNOWN: "#9ca3af", "closed": "#f3f4f6"}
STRIP_LABEL_W = 170
STRIP_CELL = 18
STRIP_ROW_H = 22
STRIP_TOP = 20


@dataclass(frozen=True)
class Cell:
    x: float
    y: float
    state: str  # up / down / unknown / closed
    tip: str  # "Tue 3 Nov: down 2 h"

    @property
    def colour(self) -> str:
        """A fill attribute, not a CSS class: PDF engines style SVG by attributes only."""
        return STATE_COLOURS[self.state]


@dataclass(frozen=True)
class Strip:
    width: float
    height: float
    rows: tuple[tuple[float, str], ...]  # (y of the label, device name)
    cells: tuple[Cell, ...]
    days: tuple[tuple[float, str], ...]  # (x, day of month) every few days
    cell: float


def month_strip(
    devices: Sequence[DeviceAvailability],
    start_s: float,
    end_s: float,
    hours: BusinessHours,
    max_rows: int = 12,
) -> Strip:
    """One row a key device, one cell a day: red if down in business hours that day, grey when
    part of the business hours is unknown, green when up all of them, pale when closed."""
    zone = ZoneInfo(hours.timezone)
    day = datetime.fromtimestamp(start_s, zone).date()
    bounds: list[tuple[float, float, str]] = []
    while True:
        a = datetime.combine(day, datetime.min.time(), tzinfo=zone).timestamp()
        if a >= end_s:
            break
        nxt = day + timedelta(days=1)
        b = datetime.combine(nxt, datetime.min.time(), tzinfo=zone).timestamp()
        bounds.append((a, b, f"{day:%a %d %b}"))
        day = nxt
    rows = [d for d in devices if d.key][:max_rows]
    cells: list[Cell] = []
    labels: list[tuple[float, str]] = []
    for r, dev in enumerate(rows):
        y = STRIP_TOP + r * STRIP_ROW_H
        labels.append((y + STRIP_CELL * 0.75, dev.name))
        for i, (a, b, label) in enumerate(bounds):
            business = hours.intervals(a, b)
            x = STRIP_LABEL_W + i * STRIP_CELL
            if not business:
                cells.append(Cell(x, y, "closed", f"{label}: closed"))
                continue
            down = sum(overlap((o.start_s, o.end_s), business) for o in dev.outages)
            if down > 0:
                cells.append(Cell(x, y, DOWN, f"{label}: down {down / 60:.0f} min"))
            elif sum(overlap((g.start_s, g.end_s), business) for g in dev.gaps) >= 60:
                cells.append(Cell(x, y, UNKNOWN, f"{label}: no data for part of the day"))
            else:
                cells.append(Cell(x, y, UP, f"{label}: up"))
    days = tuple(
        (STRIP_LABEL_W + i * STRIP_CELL + STRIP_CELL / 2, label.split()[1].lstrip("0"))
        for i, (_, _, label) in enumerate(bounds)
        if i % 5 == 0
    )
    width = STRIP_LABEL_W + len(bounds) * STRIP_CELL + 4
    height = STRIP_TOP + max(1, len(rows)) * STRIP_ROW_H + 4
    return Strip(width, height, tuple(labels), tuple(cells), days, STRIP_CELL - 2)


@dataclass(frozen=True)
class TrendChart:
    width: float
    height: float
    points: str  # SVG polyline points of the measured values
    forecast: tuple[float, float, float, float]  # x1 y1 x2 y2 of the fitted line to the target
    grid: tuple[tuple[float, str], ...]  # (y, "50 %")
    x_labels: tuple[tuple[float, str], ...]
    target_y: float


def trend_chart(
    points: Sequence[Point], end_s: float, due_s: float | None, timezone: str
) -> TrendChart | None:
    """The last 30 days of a level and its fitted line up to ``due_s`` (the forecast date)."""
    w, h, left, right, top, bottom = 640.0, 200.0, 44.0, 12.0, 10.0, 28.0
    start_s = end_s - 30 * DAY_S
    last_s = max(end_s, due_s or end_s)
    data = [(t, v) for t, v in points if v is not None and start_s <= t <= end_s]
    trend = fit(points, end_s)
    if len(data) < 2 or trend is None:
        return None

    def x(t: float) -> float:
        return left + (t - start_s) / (last_s - start_s) * (w - left - right)

    def y(v: float) -> float:
        return top + (100.0 - max(0.0, min(100.0, v))) / 100.0 * (h - top - bottom)

    step = max(1, len(data) // 300)  # at most ~300 vertices: the page stays light
    pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in data[::step])
    target_s = due_s or end_s
    line = (
        x(start_s),
        y(trend.level_now - 30 * trend.slope_per_day),
        x(target_s),
        y(trend.level_now + (target_s - end_s) / DAY_S * trend.slope_per_day),
    )
    zone = ZoneInfo(timezone)
    labels = tuple(
        (x(t), f"{datetime.fromtimestamp(t, zone):%d %b}")
        for t in (start_s, end_s, *((due_s,) if due_s and due_s > end_s + 5 * DAY_S else ()))
    )
    grid = tuple((y(v), f"{v:.0f} %") for v in (0, 50, 100))
    return TrendChart(w, h, pts, line, grid, labels, y(100.0))
