"""Line charts drawn on the server as SVG: no JavaScript library, no CDN, works offline.

A chart is served as ``image/svg+xml`` and shown with ``<img>``, so even a hostile interface
name in a legend cannot run script (images never do), and every text is escaped as well.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from html import escape

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
    exp = 10 ** math.floor(math.log10(value))
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


def line_chart(
    lines: Mapping[str, Sequence[Point]],
    since: float,
    until: float,
    unit: str,
    title: str,
) -> str:
    """An SVG document with one polyline per named series (at most six, legend below)."""
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    values = [p.avg for pts in lines.values() for p in pts if p.avg is not None]
    top = _nice_max(max(values) if values else 0.0)
    span = max(1.0, until - since)

    def x(ts: float) -> float:
        return PAD_LEFT + (ts - since) / span * plot_w

    def y(v: float) -> float:
        return PAD_TOP + plot_h - (v / top) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}" '
        'font-family="system-ui, sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    for i in range(5):
        v = top * i / 4
        yy = y(v)
        out.append(
            f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" '
            'stroke="#e5e7eb"/>'
        )
        out.append(
            f'<text x="{PAD_LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#6b7280">'
            f"{escape(_fmt(v, unit))}</text>"
        )
    # Time ticks: 6 across the range, labelled by hour (24 h) or weekday+day (7 d).
    long_range = span > 2 * 86400
    for i in range(7):
        ts = since + span * i / 6
        label = time.strftime("%a %d" if long_range else "%H:%M", time.localtime(ts))
        anchor = "start" if i == 0 else ("end" if i == 6 else "middle")
        out.append(
            f'<text x="{x(ts):.1f}" y="{PAD_TOP + plot_h + 16}" text-anchor="{anchor}" '
            f'fill="#6b7280">{escape(label)}</text>'
        )
    if not values:
        out.append(
            f'<text x="{PAD_LEFT + plot_w / 2}" y="{PAD_TOP + plot_h / 2}" text-anchor="middle" '
            'fill="#9ca3af" font-size="13">No data in this period</text>'
        )
    bucket = span / 288
    legend_x = PAD_LEFT
    for index, (name, points) in enumerate(list(lines.items())[: len(COLORS)]):
        color = COLORS[index]
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
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
            else:
                out.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="1.6" '
                    f'points="{" ".join(seg)}"/>'
                )
        label = name or title
        out.append(
            f'<rect x="{legend_x}" y="{HEIGHT - 16}" width="10" height="10" fill="{color}"/>'
            f'<text x="{legend_x + 14}" y="{HEIGHT - 7}" fill="#374151">'
            f"{escape(label[:40])}</text>"
        )
        legend_x += 24 + 7 * min(len(label), 40)
    out.append("</svg>")
    return "".join(out)
