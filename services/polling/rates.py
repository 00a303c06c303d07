"""Rates from SNMP counters, with wraps and resets handled so no rate is negative or absurd.

A counter only means something as a difference between two readings. Three things break
naive differences:
  a 32-bit counter wraps at 2^32 (a 1 Gbit/s link wraps ifInOctets every 34 s);
  the device reboots (sysUpTime goes backwards) and every counter starts again from 0;
  an agent re-indexes or resets one interface's counters (a negative delta on a 64-bit one).
A wrap is assumed only for 32-bit counters and only when the wrapped difference gives a rate
the interface could carry; anything else is a reset and yields no rate for that interval
(one missing point on the chart beats a spike of 10^12 bit/s on it).

The interface's stated speed (``max_per_s``) is a claim, not a measurement: home routers
report ifSpeed = 10 Mbit/s on gigabit ports. It bounds only what it can decide, whether a
32-bit counter that went backwards wrapped or was reset. A 64-bit counter that moved forward
is a measurement and is kept whatever the stated speed (only the physical bound
``MAX_BYTES_PER_S`` applies); one that went backwards was reset.
"""

from __future__ import annotations

from dataclasses import dataclass

WRAP_32 = 2**32
# A rate above this many times the interface's nominal speed is not believed (agents report
# ifSpeed loosely, e.g. 10 Mbit/s on a virtual interface carrying 1 Gbit/s; keep slack).
SPEED_SLACK = 4.0
# Without a known speed, the most bytes per second a LAN device plausibly moves (400 Gbit/s).
MAX_BYTES_PER_S = 50e9
MIN_INTERVAL_S = 0.5  # two readings closer than this give no trustworthy rate


@dataclass(frozen=True)
class CounterReading:
    value: int
    bits: int  # 32 or 64: the counter's width (Counter32 or Counter64)
    at_s: float  # monotonic seconds when it was read
    uptime_s: float | None = None  # the agent's sysUpTime at that poll, when known


def counter_rate(
    prev: CounterReading, cur: CounterReading, max_per_s: float | None = None
) -> float | None:
    """Units per second between two readings, or None when no honest rate exists."""
    elapsed = cur.at_s - prev.at_s
    if elapsed < MIN_INTERVAL_S:
        return None
    if cur.bits != prev.bits:
        return None  # the agent switched between 32- and 64-bit counters: start again
    if prev.uptime_s is not None and cur.uptime_s is not None and cur.uptime_s < prev.uptime_s:
        return None  # the device rebooted: its counters restarted from zero
    delta = cur.value - prev.value
    if cur.bits != 32:
        if delta < 0:
            return None  # a 64-bit counter never wraps in practice: it was reset
        rate = delta / elapsed
        return None if rate > MAX_BYTES_PER_S else rate  # never bounded by a stated speed
    limit = min(max_per_s, MAX_BYTES_PER_S) if max_per_s is not None else MAX_BYTES_PER_S
    if delta < 0:
        delta += WRAP_32
        # A reset also looks like a wrap; believe the wrap only if the rate is possible.
        if delta / elapsed > limit:
            return None
    rate = delta / elapsed
    return None if rate > limit else rate


class RateTracker:
    """Remembers the last reading of each counter (by key) and turns the next into a rate."""

    def __init__(self) -> None:
        self._last: dict[tuple[object, ...], CounterReading] = {}

    def update(
        self, key: tuple[object, ...], reading: CounterReading, max_per_s: float | None = None
    ) -> float | None:
        prev = self._last.get(key)
        self._last[key] = reading
        return None if prev is None else counter_rate(prev, reading, max_per_s)

    def forget(self, prefix: object) -> None:
        """Drop every counter whose key starts with ``prefix`` (a device left the inventory)."""
        for key in [k for k in self._last if k and k[0] == prefix]:
            del self._last[key]
