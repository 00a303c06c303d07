"""What one poll of one device produced: handed to the store and, on the bus, to alerting."""

from __future__ import annotations

from dataclasses import dataclass

from services.polling.profiles import Reading


@dataclass(frozen=True)
class CheckOutcome:
    check: str  # "icmp", "tcp:445", "snmp"
    ok: bool
    error: str = ""  # what went wrong, for a technician ("no answer from 10.0.0.5 ...")


@dataclass(frozen=True)
class PollResult:
    device_id: int
    ip: str
    name: str
    kind: str
    wall_s: float  # when the poll started (wall clock)
    mono_s: float  # when the poll started (monotonic)
    reachable: bool | None  # None: nothing could be tried (no ICMP, no TCP, no SNMP)
    readings: tuple[Reading, ...]
    checks: tuple[CheckOutcome, ...]
    duration_s: float

    def value(self, metric: str, instance: str = "") -> float | None:
        for r in self.readings:
            if r.metric == metric and r.instance == instance:
                return r.value
        return None
