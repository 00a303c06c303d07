"""Line charts drawn on the server as SVG: no JavaScript library, no CDN, works offline.

:func:`line_chart` computes the geometry (a :class:`Chart`); the template
``web/templates/chart.svg`` draws it with autoescape on, so every text (the title, a legend's
interface name) is escaped like on the pages. A chart is served as ``image/svg+xml`` and shown
with ``<img>``, so even a hostile name that got through could not run script (images never do).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from web.data import Point

WIDTH = 720
HEIGHT = 220
PAD_LEFT = 56
PAD_RIGHT = 12
PAD_TOP = 14
PAD_BOTTOM = 44
COLORS = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2")
# A gap longer than this many buckets breaks the line: no data is shown as no data.
GAP_BUCKETS = 3
# ... or longer than this many times the series' own typical spacing (slow pollers).
GAP_SPACINGS = 2.5


def _typical_spacing(points: Sequence[Point]) -> float:
    """Median time between consecutive points (0 with fewer than two)."""
    steps = sorted(b.ts - a.ts for a, b in itertools.pairwise(points))
    return steps[len(steps) // 2] if steps else 0.0


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def _fmt(value: float, unit: str) -> str:
    if unit in ("bps", "bit/s"):
        for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"{value / scale:g}{prefix}b/s"
        return f"{value:g}b/s"
    if unit == "ms":
        return f"{value:g} ms"
    if unit == "%":
        return f"{value:g}%"
    return f"{value:g}"


# Coordinates are SVG user units, written as the attribute text ("56", "131.5").


@dataclass(frozen=True)
class Label:
    x: str  # from the left
    y: str  # from the top (the text's baseline)
    anchor: str  # text-anchor: "start" | "middle" | "end"
    text: str


@dataclass(frozen=True)
class Mark:
    """A run of points drawn as a polyline ("x,y x,y ..."), or a lone point as a dot."""

    points: str = ""
    cx: str = ""  # set for a dot
    cy: str = ""


@dataclass(frozen=True)
class Series:
    color: str  # "#2563eb"
    marks: tuple[Mark, ...]  # in time order; a gap in the data starts a new mark
    legend_x: int  # where its legend swatch starts
    name: str  # the legend (at most 40 characters)


@dataclass(frozen=True)
class Chart:
    """What chart.svg draws (sizes in SVG user units, the image is WIDTH x HEIGHT)."""

    width: int
    height: int
    title: str
    grid_y: tuple[str, ...]  # horizontal grid lines
    grid_x1: int
    grid_x2: int
    value_labels: tuple[Label, ...]  # left axis
    time_labels: tuple[Label, ...]  # bottom axis
    empty_note: Label | None  # "No data in this period"
    series: tuple[Series, ...]
    legend_y: int  # top of the legend swatches


def line_chart(
    lines: Mapping[str, Sequence[Point]],
    since: float,
    until: float,
    unit: str,
    title: str,
) -> Chart:
    """One polyline per named series (at most six, legend below) over [since, until]."""
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    values = [p.avg for pts in lines.values() for p in pts if p.avg is not None]
    top = _nice_max(max(values) if values else 0.0)
    span = max(1.0, until - since)

    def x(ts: float) -> float:
        return PAD_LEFT + (ts - since) / span * plot_w

    def y(v: float) -> float:
        return PAD_TOP + plot_h - (v / top) * plot_h

    grid = [y(top * i / 4) for i in range(5)]
    value_labels = [
        Label(str(PAD_LEFT - 6), f"{yy + 4:.1f}", "end", _fmt(top * i / 4, unit))
        for i, yy in enumerate(grid)
    ]
    # Time ticks: 6 across the range, labelled by hour (24 h) or weekday+day (7 d).
    long_range = span > 2 * 86400
    time_labels = []
    for i in range(7):
        ts = since + span * i / 6
        label = time.strftime("%a %d" if long_range else "%H:%M", time.localtime(ts))
        anchor = "start" if i == 0 else ("end" if i == 6 else "middle")
        time_labels.append(Label(f"{x(ts):.1f}", str(PAD_TOP + plot_h + 16), anchor, label))
    empty_note = None
    if not values:
        middle = (str(PAD_LEFT + plot_w / 2), str(PAD_TOP + plot_h / 2))
        empty_note = Label(*middle, "middle", "No data in this period")
    bucket = span / 288
    legend_x = PAD_LEFT
    series = []
    for index, (name, points) in enumerate(list(lines.items())[: len(COLORS)]):
        segments: list[list[str]] = []
        last_ts: float | None = None
        gap = max(GAP_BUCKETS * bucket, GAP_SPACINGS * _typical_spacing(points))
        for p in points:
            if p.avg is None:
                last_ts = None
                continue
            if last_ts is None or p.ts - last_ts > gap:
                segments.append([])
            segments[-1].append(f"{x(p.ts):.1f},{y(p.avg):.1f}")
            last_ts = p.ts
        label = name or title
        series.append(
            Series(
                color=COLORS[index],
                marks=tuple(_mark(seg) for seg in segments),
                legend_x=legend_x,
                name=label[:40],
            )
        )
        legend_x += 24 + 7 * min(len(label), 40)
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        title=title,
        grid_y=tuple(f"{yy:.1f}" for yy in grid),
        grid_x1=PAD_LEFT,
        grid_x2=WIDTH - PAD_RIGHT,
        value_labels=tuple(value_labels),
        time_labels=tuple(time_labels),
        empty_note=empty_note,
        series=tuple(series),
        legend_y=HEIGHT - 16,
    )


def _mark(points: list[str]) -> Mark:
    if len(points) == 1:
        cx, cy = points[0].split(",")
        return Mark(cx=cx, cy=cy)
    return Mark(points=" ".join(points))
