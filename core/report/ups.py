"""A UPS that asks for a new battery, or whose battery failed its last self-test.

Source: the UPS's own yes/no facts as polling reads them (services/polling/profiles.py
``UPS_FACTS``): ``ups.battery_replace`` (APC upsAdvBatteryReplaceIndicator, CyberPower
upsAdvanceBatteryReplaceIndicator: 1 = "replace the battery") and ``ups.selftest_ok`` (APC /
CyberPower diagnostics result, UPS-MIB upsTestResultsSummary: 1 passed, 0 failed; a UPS keeps
the result of its last test until the next one). No agent we read gives the battery's install
or manufacture date, so the report says nothing about the battery's age.

Rule: a line when the last known value (within the window) is the bad one; it is dated by the
start of that last bad stretch (the first bad reading after the last good one, or the first of
the window) and says when it was last read so. A UPS whose battery was replaced (the flag back to
0) or whose later test passed gets no line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.report.forecast import DAY_S, WINDOW_DAYS
from core.report.inputs import Point


@dataclass(frozen=True)
class Flagged:
    since_s: float  # first reading of the last bad stretch (the window's start at the earliest)
    last_s: float  # the last reading that was still bad
    readings: int  # bad readings in that stretch


def still_flagged(points: Sequence[Point], end_s: float, bad: float) -> Flagged | None:
    """The last bad stretch of a yes/no series if it is still bad at the end.

    ``points``: (ts, 0/1/None) in time order; ``bad``: the value that means trouble (1.0 for
    ``ups.battery_replace``, 0.0 for ``ups.selftest_ok``); only the ``WINDOW_DAYS`` before
    ``end_s`` count; None (no answer) neither starts nor ends a stretch.
    """
    since: float | None = None
    last: float | None = None
    count = 0
    for ts, value in points:
        if value is None or not end_s - WINDOW_DAYS * DAY_S <= ts <= end_s:
            continue
        if value == bad:
            if since is None:
                since, count = ts, 0
            last = ts
            count += 1
        else:
            since, last = None, None
    if since is None or last is None:
        return None
    return Flagged(since, last, count)
