"""Least-squares trends: when will a volume fill, when will a supply run out.

A forecast is given only when the fit is meaningful: at least ``MIN_POINTS`` points over at
least ``MIN_SPAN_DAYS``, the level moving the right way (slope > 0 for a volume filling, < 0 for
a supply emptying) by at least ``MIN_SLOPE_PER_DAY``, and the line explaining the data
(coefficient of determination R^2 >= ``MIN_R2``). A flat or noisy series gets no date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.report.inputs import Point

DAY_S = 86400.0
WINDOW_DAYS = 30.0
MIN_POINTS = 10
MIN_SPAN_DAYS = 7.0
MIN_R2 = 0.6
MIN_SLOPE_PER_DAY = 0.05  # percentage points a day
HORIZON_DAYS = 365.0  # a date further out than this is no forecast worth a line


@dataclass(frozen=True)
class Trend:
    slope_per_day: float  # percentage points a day
    level_now: float  # fitted level at the end of the window, %
    r2: float
    points: int
    span_days: float


@dataclass(frozen=True)
class Forecast:
    trend: Trend
    target_pct: float  # 100 (full) or 0 (empty)
    at_s: float  # when the fitted line reaches the target

    def days_from(self, now_s: float) -> float:
        return (self.at_s - now_s) / DAY_S


def fit(points: Sequence[Point], end_s: float) -> Trend | None:
    """Least squares over the points of the last ``WINDOW_DAYS`` before ``end_s``.

    Lists, not generators, in the sums (the same additions in the same order: the same
    result, twice as fast for a month of 5-minute levels)."""
    start_s = end_s - WINDOW_DAYS * DAY_S
    xs = [
        (ts - end_s) / DAY_S for ts, value in points if value is not None and start_s <= ts <= end_s
    ]
    ys = [value for ts, value in points if value is not None and start_s <= ts <= end_s]
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    dx = [x - mx for x in xs]
    dy = [y - my for y in ys]
    sxx = sum([d**2 for d in dx])
    if sxx == 0:
        return None
    sxy = sum([a * b for a, b in zip(dx, dy, strict=True)])
    syy = sum([d**2 for d in dy])
    slope = sxy / sxx
    r2 = (sxy * sxy) / (sxx * syy) if syy > 0 else 0.0
    return Trend(slope, my + slope * (0.0 - mx), r2, n, xs[-1] - xs[0])


def meaningful(trend: Trend, rising: bool) -> bool:
    slope = trend.slope_per_day if rising else -trend.slope_per_day
    return (
        trend.points >= MIN_POINTS
        and trend.span_days >= MIN_SPAN_DAYS
        and slope >= MIN_SLOPE_PER_DAY
        and trend.r2 >= MIN_R2
    )


def forecast(points: Sequence[Point], end_s: float, target_pct: float) -> Forecast | None:
    """When the level reaches ``target_pct`` (100: a volume full; 0: a supply empty)."""
    trend = fit(points, end_s)
    rising = target_pct > 50
    if trend is None or not meaningful(trend, rising):
        return None
    days = (target_pct - trend.level_now) / trend.slope_per_day
    if days < 0 or days > HORIZON_DAYS:
        return None
    return Forecast(trend, target_pct, end_s + days * DAY_S)
