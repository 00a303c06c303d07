"""What every service of one appliance process shares: configuration, store, clock, status.

Services receive an :class:`AppContext` at construction. ``status`` is the appliance's live
state for the status page, the LEDs and the heartbeat; services publish into it, readers take
``status.snapshot()``. ``changed`` wakes anyone waiting for the next change (server-sent events,
the LED state machine) without polling. ``bus`` carries typed records between services.

Status keys are listed in core/status.py.

:meth:`AppContext.uptime_s` is the process's uptime from the clock's time since boot
(CLOCK_BOOTTIME), never from the wall clock: a Pi without a real-time clock starts at its
last saved time and jumps (by hours, or years) at the first NTP sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.bus import Bus
from core.clock import Clock
from core.config import Config
from core.status import LiveStatus
from services.store import Store


@dataclass
class AppContext:
    config: Config
    store: Store
    clock: Clock
    status: LiveStatus = field(default_factory=LiveStatus)
    bus: Bus = field(default_factory=Bus)
    version: str = "0.0.0"
    # Time since boot (s) when this context (the process) started; see uptime_s().
    started_mono_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.started_mono_s = self.clock.now().mono

    def uptime_s(self) -> float:
        """Seconds this process has run (boot time, so suspend counts and NTP steps do not)."""
        return max(0.0, self.clock.now().mono - self.started_mono_s)
