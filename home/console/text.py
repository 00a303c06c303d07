"""Small formatters of the console's pages (ages, durations, times), registered as filters."""

from __future__ import annotations

import time


def duration(seconds: float | None) -> str:
    """``42 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``; '-' for None."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def age(seconds: float | None) -> str:
    return "never" if seconds is None else f"{duration(seconds)} ago"


def when(ts: float | None) -> str:
    """UTC time of day (and date when not today's); '-' for None."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))
