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
from core.report.inputs import Point, Segment

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
    """The period ``[start_s, end_s)`` as runs of up/down/unknown, merged, in order: the polls
    made into segments (:func:`segments_of`), then :func:`runs_of_segments`, one rule for both
    kinds of source. One pass each (a month of one-minute polls is 44,640 points a device)."""
    spacing = typical_spacing(points)
    segments = segments_of(points, spacing * GAP_SPACINGS)
    return runs_of_segments(segments, spacing, start_s, end_s)


def segments_of(points: Sequence[Point], max_gap: float) -> list[Segment]:
    """Polls (time order) as :class:`Segment` s: consecutive polls with the same verdict (up,
    down, unknown), cut where two polls are further apart than ``max_gap`` seconds."""
    out: list[Segment] = []
    first = last = 0.0
    verdict: float | None = None
    steps = -1  # no segment open
    for ts, value in points:
        now = None if value is None else (1.0 if value >= 0.5 else 0.0)
        if steps >= 0 and now == verdict and ts - last <= max_gap:
            last = ts
            steps += 1
            continue
        if steps >= 0:
            out.append(Segment(first, last, verdict, steps))
        first = last = ts
        verdict, steps = now, 0
    if steps >= 0:
        out.append(Segment(first, last, verdict, steps))
    return out


def availability(run_list: Sequence[Run], business: Sequence[Interval]) -> Availability:
    total = {UP: 0.0, DOWN: 0.0, UNKNOWN: 0.0}
    bh = {UP: 0.0, DOWN: 0.0, UNKNOWN: 0.0}
    for r in run_list:
        total[r.state] += r.end_s - r.start_s
        bh[r.state] += overlap((r.start_s, r.end_s), business)
    return Availability(total[UP], total[DOWN], total[UNKNOWN], bh[UP], bh[DOWN], bh[UNKNOWN])


def segment_spacing(segments: Sequence[Segment]) -> float:
    """The typical spacing (s) of the polls behind ``segments``: the median step, each
    segment's inner steps counted at their mean ((last - first) / steps, weight steps), the
    steps between segments as they are. Equal to :func:`typical_spacing` of the polls when they
    are regular; with jitter it can differ by the jitter, which moves the gap threshold by 2.5
    times that."""
    weighted: list[tuple[float, int]] = []
    previous: Segment | None = None
    for s in segments:
        if previous is not None:
            weighted.append((s.first_s - previous.last_s, 1))
        if s.steps > 0:
            weighted.append(((s.last_s - s.first_s) / s.steps, s.steps))
        previous = s
    total = sum(w for _, w in weighted)
    if not total:
        return 0.0
    middle = total // 2  # the element typical_spacing picks: sorted(steps)[len // 2]
    seen = 0
    for step, w in sorted(weighted):
        seen += w
        if seen > middle:
            return step
    return weighted[-1][0]  # not reached


def runs_of_segments(
    segments: Sequence[Segment], spacing: float, start_s: float, end_s: float
) -> list[Run]:
    """:func:`runs` from segments: the same runs the polls inside them give, provided no step
    inside a segment is longer than ``GAP_SPACINGS * spacing`` (the source reads the raw polls
    of a segment that has one). A segment's verdict holds from its first poll to the next
    segment's first (or one spacing past its last poll, across a gap)."""
    max_gap = spacing * GAP_SPACINGS
    out: list[Run] = []
    state, run_start, run_end = UNKNOWN, start_s, start_s  # the run being extended
    count = len(segments)
    for i in range(count):
        seg = segments[i]
        last = seg.last_s
        nxt = segments[i + 1].first_s if i + 1 < count else last + spacing
        if nxt - last > max_gap:
            nxt = last + spacing  # the verdict holds one spacing; the rest is a gap
        a = seg.first_s if seg.first_s > start_s else start_s
        b = nxt if nxt < end_s else end_s
        if b <= a:
            continue
        value = seg.value
        now = UNKNOWN if value is None else (UP if value >= 0.5 else DOWN)
        if a > run_end:  # a gap before this segment
            if state == UNKNOWN:
                run_end = a
            else:
                out.append(Run(state, run_start, run_end))
                state, run_start, run_end = UNKNOWN, run_end, a
        if now == state:
            run_end = b
        else:
            if run_end > run_start:
                out.append(Run(state, run_start, run_end))
            state, run_start, run_end = now, a, b
    if end_s > run_end:
        if state == UNKNOWN:
            run_end = end_s
        else:
            if run_end > run_start:
                out.append(Run(state, run_start, run_end))
            state, run_start, run_end = UNKNOWN, run_end, end_s
    if run_end > run_start:
        out.append(Run(state, run_start, run_end))
    return out
