"""Business hours in the site's own time zone, and calendar periods, as epoch-second intervals.

The format in words is the one of home's notification settings (``home/notify/config.py``):
``start``/``end`` as "HH:MM" local time, ``days`` as "mon".."sun", ``holidays`` as YYYY-MM-DD
whole days off, ``timezone`` an IANA name. Intervals are ``(start_s, end_s)``, half open.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_WORDS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_CLOCK = re.compile(r"^(\d\d):(\d\d)$")

Interval = tuple[float, float]


class HoursError(ValueError):
    """A business-hours setting that cannot be understood; the message names the fix."""


def parse_clock(text: str, where: str) -> time:
    m = _CLOCK.match(text)
    if m is None or int(m[1]) > 23 or int(m[2]) > 59:
        raise HoursError(f'{where}: {text!r} is not a time of day; write it as HH:MM, e.g. "08:00"')
    return time(int(m[1]), int(m[2]))


@dataclass(frozen=True)
class BusinessHours:
    """Open from ``start`` to ``end`` local time on ``days`` (0 = Monday), not on holidays."""

    timezone: str = "UTC"
    start: time = time(8, 0)
    end: time = time(18, 0)
    days: frozenset[int] = frozenset(range(5))
    holidays: frozenset[date] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def intervals(self, start_s: float, end_s: float) -> list[Interval]:
        """The open hours within ``[start_s, end_s)``, in order (local time, DST-aware)."""
        zone = self.zone
        day = datetime.fromtimestamp(start_s, zone).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end_s, zone).date()
        out: list[Interval] = []
        while day <= last:
            if self.is_open_day(day):
                a = datetime.combine(day, self.start, tzinfo=zone).timestamp()
                b = datetime.combine(day, self.end, tzinfo=zone).timestamp()
                a, b = max(a, start_s), min(b, end_s)
                if a < b:
                    out.append((a, b))
            day += timedelta(days=1)
        return out

    def contains(self, at_s: float) -> bool:
        local = datetime.fromtimestamp(at_s, self.zone)
        return self.is_open_day(local.date()) and self.start <= local.time() < self.end

    def describe(self) -> str:
        """e.g. "Monday to Friday, 08:00 to 18:00 (Europe/Berlin)"."""
        days = sorted(self.days)
        if days and days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
            day_text = f"{DAY_WORDS[days[0]]} to {DAY_WORDS[days[-1]]}"
        else:
            day_text = ", ".join(DAY_WORDS[d] for d in days) or "no day"
        hours = f"{self.start:%H:%M} to {self.end:%H:%M}"
        return f"{day_text}, {hours} ({self.timezone})"


def business_hours(
    timezone: str, start: str, end: str, days: Sequence[str], holidays: Iterable[str]
) -> BusinessHours:
    """Build :class:`BusinessHours` from the settings' words; raise :class:`HoursError`."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(
            f'timezone: {timezone!r} is not an IANA time zone; write e.g. "Europe/Berlin"'
        ) from None
    for day in days:
        if day not in DAYS:
            raise HoursError(f"days: {day!r} is not one of {', '.join(DAYS)}")
    off = set()
    for text in holidays:
        try:
            off.add(date.fromisoformat(text))
        except ValueError:
            raise HoursError(f"holidays: {text!r} is not a date; write YYYY-MM-DD") from None
    a, b = parse_clock(start, "start"), parse_clock(end, "end")
    if b <= a:
        raise HoursError(f"end {end} is not after start {start}; business hours within one day")
    return BusinessHours(
        timezone, a, b, frozenset(DAYS.index(d) for d in days or DAYS[:5]), frozenset(off)
    )


@dataclass(frozen=True)
class Period:
    """A calendar month in the site's time zone: ``[start_s, end_s)`` and its name."""

    start_s: float
    end_s: float
    label: str  # "November 2026"


def month_period(year: int, month: int, timezone: str) -> Period:
    zone = ZoneInfo(timezone)
    first = datetime(year, month, 1, tzinfo=zone)
    nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return Period(first.timestamp(), nxt.timestamp(), f"{first:%B %Y}")


def previous_month(now_s: float, timezone: str) -> Period:
    """The last whole calendar month before ``now_s`` in the site's time zone."""
    local = datetime.fromtimestamp(now_s, ZoneInfo(timezone))
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return month_period(year, month, timezone)


def overlap(a: Interval, spans: Sequence[Interval]) -> float:
    """Seconds of ``a`` covered by ``spans`` (sorted, disjoint)."""
    total = 0.0
    for s, e in spans:
        if e <= a[0]:
            continue
        if s >= a[1]:
            break
        total += min(e, a[1]) - max(s, a[0])
    return total
