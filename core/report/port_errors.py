"""A network port whose transmission errors grow over the month (a worn cable, a bad connector,
a failing port), told apart from a port with a steady trickle of errors or one burst.

Source: polling's ``if.in_errors_ps`` / ``if.out_errors_ps`` (services/polling/profiles.py:
the IF-MIB ifInErrors / ifOutErrors counters as errors a second between two reads).

Rule (:func:`growing`): the ``WINDOW_DAYS`` before the end are cut into days counted back from
the end; a day's errors = the mean rate of its readings x 86 400 s, both directions added. The
port is "growing" when

* at least ``MIN_DAYS`` days have readings and errors were seen (>= ``MIN_DAILY_ERRORS``) on at
  least ``MIN_ERROR_DAYS`` of them: one burst, however big, is not a trend;
* the least-squares line through the daily counts (:func:`core.report.forecast.fit`) rises and
  explains them (R^2 >= ``MIN_R2``);
* the line's value at the end is at least ``MIN_DAILY_NOW`` errors a day and at least
  ``GROWTH_FACTOR`` times its value at the first day with readings: a flat rate is no growth.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from core.report.forecast import DAY_S, WINDOW_DAYS, Trend, fit
from core.report.inputs import Point

MIN_DAYS = 10
MIN_ERROR_DAYS = 7
MIN_DAILY_ERRORS = 10.0  # errors a day for a day to count as "errors seen"
MIN_R2 = 0.5
MIN_DAILY_NOW = 100.0  # errors a day at the end of the window, on the fitted line
GROWTH_FACTOR = 2.0


@dataclass(frozen=True)
class Growing:
    trend: Trend  # over the daily counts: slope in errors a day per day
    per_day_now: float  # fitted errors a day at the end
    per_day_then: float  # fitted errors a day at the first day with readings (>= 0)
    error_days: int  # days with errors seen
    days: int  # days with readings


def daily_errors(directions: Sequence[Sequence[Point]], end_s: float) -> dict[int, float]:
    """Days back from ``end_s`` (0: the last 24 h) -> estimated errors that day, both
    directions added; a day without any reading is absent. The window [end - WINDOW_DAYS, end)
    is cut into days from its start (each day includes its first instant, as an hourly
    roll-up does), counted back from the end."""
    last_day = int(WINDOW_DAYS) - 1
    out: dict[int, float] = defaultdict(float)
    for points in directions:
        sums: dict[int, list[float]] = defaultdict(list)
        for ts, value in points:
            if value is None or not end_s - WINDOW_DAYS * DAY_S <= ts < end_s:
                continue
            day = last_day - int((ts - (end_s - WINDOW_DAYS * DAY_S)) // DAY_S)
            sums[day].append(max(0.0, value))
        for day, values in sums.items():
            out[day] += sum(values) / len(values) * DAY_S
    return dict(out)


def growing(directions: Sequence[Sequence[Point]], end_s: float) -> Growing | None:
    """Whether the port's errors grow over the window (see the module's rule), else None."""
    days = daily_errors(directions, end_s)
    error_days = sum(1 for v in days.values() if v >= MIN_DAILY_ERRORS)
    if len(days) < MIN_DAYS or error_days < MIN_ERROR_DAYS:
        return None
    points: list[Point] = [(end_s - (day + 0.5) * DAY_S, v) for day, v in sorted(days.items())]
    points.reverse()  # time order
    trend = fit(points, end_s)
    if trend is None or trend.slope_per_day <= 0 or trend.r2 < MIN_R2:
        return None
    now = trend.level_now
    first_x = -(max(days) + 0.5)  # the first day's middle, in days before the end
    then = max(0.0, now + trend.slope_per_day * first_x)
    if now < MIN_DAILY_NOW or now < GROWTH_FACTOR * then:
        return None
    return Growing(trend, now, then, error_days, len(days))
