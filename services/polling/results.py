"""What one poll of one device produced: handed to the store and, on the bus, to alerting."""

from __future__ import annotations

from dataclasses import dataclass

from services.polling.profiles import Reading


@dataclass(frozen=True)
class CheckOutcome:
    check: str  # "icmp", "arp", "tcp:445", "tcp-probe:80", "snmp"
    ok: bool
    error: str = ""  # what went wrong, for a technician ("no answer from 10.0.0.5 ...")
    # Did the host itself answer (liveness)? None: same as ``ok``. A refused TCP connection
    # is not ok (the service is not there) but answered (the host is).
    answered: bool | None = None
    tried: bool = True  # False: nothing was sent (no credential): no liveness evidence

    @property
    def host_answered(self) -> bool:
        return self.ok if self.answered is None else self.answered


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
    # Liveness evidence (services/polling/liveness.py): methods ("arp", "icmp", "tcp", "snmp",
    # "mdns") that answered in this poll; those that worked before and stayed silent; the last
    # wall time anything answered (None: never).
    answered_by: tuple[str, ...] = ()
    silent: tuple[str, ...] = ()
    last_answer_wall: float | None = None
    # A technician's choice ([[polling.devices]] monitored): True, down alerts whatever the
    # kind; False, never; None, by the kind.
    monitored: bool | None = None

    def value(self, metric: str, instance: str = "") -> float | None:
        for r in self.readings:
            if r.metric == metric and r.instance == instance:
                return r.value
        return None
