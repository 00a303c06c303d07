"""Business hours in a site's own time zone: is it open now, and when does it next open.

Times are epoch seconds; the site's wall-clock hours are converted with ``zoneinfo``, so a
business day that starts at 08:00 starts at 08:00 local time across DST changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from home.notify.config import Hours

_SEARCH_DAYS = 400  # a year of holidays and closed days cannot hide the next opening


def _open_day(hours: Hours, day: datetime) -> bool:
    return day.weekday() in hours.days and day.date() not in hours.holidays


def in_hours(hours: Hours, at_s: float) -> bool:
    """True when ``at_s`` (epoch seconds) falls within the site's business hours."""
    local = datetime.fromtimestamp(at_s, hours.zone)
    return _open_day(hours, local) and hours.start <= local.time() < hours.end


def next_start(hours: Hours, at_s: float) -> float:
    """The first business-hours start at or after ``at_s``, epoch seconds.

    Raises ValueError when none comes within a year (no open weekday configured).
    """
    local = datetime.fromtimestamp(at_s, hours.zone)
    for offset in range(_SEARCH_DAYS):
        day = (local + timedelta(days=offset)).date()
        start = datetime.combine(day, hours.start, tzinfo=hours.zone)
        if _open_day(hours, start) and start.timestamp() >= at_s:
            return start.timestamp()
    raise ValueError("the site has no business hours within a year; check its days and holidays")
