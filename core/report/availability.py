"""Availability from polling's reachability: up, down, and unknown where there is no data.

Each poll's verdict holds from that poll until the next one. When the next poll comes later
than ``GAP_SPACINGS`` times the series' typical spacing (the box was off, data was thinned),
the time in between is **unknown**, never up. Availability is up / (up + down): the share of
the time we know about; the unknown time is reported next to it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from core.report.hours import Interval, overlap
from core.report.inputs import Point

GAP_SPACINGS = 2.5  # a silence longer than this many poll spacings is a gap
UP, DOWN, UNKNOWN = "up", "down", "unknown"


@dataclass(frozen=True)
class Run:
    state: str  # up / down / unknown
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Availability:
    up_s: float
    down_s: float
    unknown_s: float
    bh_up_s: float  # the same within business hours
    bh_down_s: float
    bh_unknown_s: float

    @property
    def pct(self) -> float | None:
        known = self.up_s + self.down_s
        return 100.0 * self.up_s / known if known else None

    @property
    def bh_pct(self) -> float | None:
        known = self.bh_up_s + self.bh_down_s
        return 100.0 * self.bh_up_s / known if known else None


def typical_spacing(points: Sequence[Point]) -> float:
    steps = sorted(b[0] - a[0] for a, b in itertools.pairwise(points))
    return steps[len(steps) // 2] if steps else 0.0


def runs(points: Sequence[Point], start_s: float, end_s: float) -> list[Run]:
    """The period ``[start_s, end_s)`` as runs of up/down/unknown, merged, in order."""
    spacing = typical_spacing(points)
    max_gap = spacing * GAP_SPACINGS
    raw: list[Run] = []
    cursor = start_s
    for i, (ts, value) in enumerate(points):
        nxt = points[i + 1][0] if i + 1 < len(points) else ts + spacing
        if nxt - ts > max_gap:
            nxt = ts + spacing  # the verdict holds one spacing; the rest is a gap
        a, b = max(ts, start_s), min(nxt, end_s)
        if b <= a:
            continue
        if a > cursor:
            raw.append(Run(UNKNOWN, cursor, a))
        state = UNKNOWN if value is None else (UP if value >= 0.5 else DOWN)
        raw.append(Run(state, a, b))
        cursor = b
    if cursor < end_s:
        raw.append(Run(UNKNOWN, cursor, end_s))
    merged: list[Run] = []
    for r in raw:
        if merged and merged[-1].state == r.state and merged[-1].end_s >= r.start_s:
            merged[-1] = Run(r.state, merged[-1].start_s, r.end_s)
        else:
            merged.append(r)
    return merged


def availability(run_list: Sequence[Run], business: Sequence[Interval]) -> Availability:
    total = {UP: 0.0, DOWN: 0.0, UNKNOWN: 0.0}
    bh = {UP: 0.0, DOWN: 0.0, UNKNOWN: 0.0}
    for r in run_list:
        total[r.state] += r.end_s - r.start_s
        bh[r.state] += overlap((r.start_s, r.end_s), business)
    return Availability(total[UP], total[DOWN], total[UNKNOWN], bh[UP], bh[DOWN], bh[UNKNOWN])
