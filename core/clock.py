"""Time stamps that stay meaningful on a box with no real-time clock.

A Raspberry Pi boots with its wall clock wherever it was last saved (or 1970) until NTP
synchronises it. Every stored record therefore carries the wall time, the time since boot
(CLOCK_BOOTTIME, which also counts suspend) and the kernel's boot id, plus a flag telling
whether the wall clock was synchronised when the stamp was taken. Home can then re-date
records taken before synchronisation from (boot id, time since boot).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
# adjtimex(2) returns TIME_ERROR when the kernel considers the clock unsynchronised.
_TIME_ERROR = 5
_SYNC_CACHE_S = 10.0  # how long a sync check is trusted; adjtimex is cheap but not free


@dataclass(frozen=True)
class Stamp:
    wall: float  # seconds since the Unix epoch, as the wall clock says
    mono: float  # seconds since boot (CLOCK_BOOTTIME)
    boot_id: str  # the kernel's boot id: mono values compare only within one boot
    synced: bool  # whether the wall clock was synchronised (NTP) when taken


@dataclass(frozen=True)
class BootInfo:
    """Which boot this is and how long it has run (CLOCK_BOOTTIME counts suspended time too)."""

    boot_id: str
    uptime_s: float

    @classmethod
    def read(cls) -> BootInfo:
        try:
            boot_id = _BOOT_ID_PATH.read_text().strip()
        except OSError:
            boot_id = "unknown"
        return cls(boot_id, time.clock_gettime(time.CLOCK_BOOTTIME))


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>; only its size and the leading fields matter to us,
    # the kernel fills the rest. 64-bit longs on every platform we run on (aarch64, x86_64).
    _fields_ = [("modes", ctypes.c_uint), ("pad", ctypes.c_long * 25)]


def _read_boot_id() -> str:
    try:
        return _BOOT_ID_PATH.read_text().strip()
    except OSError:
        return "unknown"


class Clock:
    """The one source of time for product code; tests substitute :class:`FixedClock`.

    - :meth:`wall`: seconds since the Unix epoch (may jump at an NTP sync), for records and
      what people read;
    - :meth:`monotonic`: seconds on ``CLOCK_MONOTONIC``, for intervals, deadlines, back-off;
    - :meth:`boot_s`: seconds since boot on ``CLOCK_BOOTTIME`` (counts suspend), for uptime;
    - :meth:`clock_synced`: whether NTP has synchronised the wall clock (adjtimex(2));
    - :meth:`local`: the wall time as an aware local ``datetime`` (maintenance windows);
    - :meth:`now`: all of them in one :class:`Stamp` for a stored record.
    """

    def __init__(self) -> None:
        self.boot_id = _read_boot_id()
        self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._synced = False
        self._checked_at = -_SYNC_CACHE_S

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def boot_s(self) -> float:
        return time.clock_gettime(time.CLOCK_BOOTTIME)

    def local(self) -> datetime:
        """The wall time in the box's local zone, time-zone aware."""
        return datetime.fromtimestamp(self.wall(), tz=UTC).astimezone()

    def utc(self) -> datetime:
        """The wall time as an aware UTC ``datetime``."""
        return datetime.fromtimestamp(self.wall(), tz=UTC)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time (real time here; virtual in VirtualClock)."""
        await asyncio.sleep(seconds)

    def clock_synced(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= _SYNC_CACHE_S:
            timex = _Timex()
            state = self._libc.adjtimex(ctypes.byref(timex))
            self._synced = state not in (-1, _TIME_ERROR)
            self._checked_at = now
        return self._synced

    def now(self) -> Stamp:
        return Stamp(
            wall=self.wall(),
            mono=self.boot_s(),
            boot_id=self.boot_id,
            synced=self.clock_synced(),
        )


_SYSTEM_CLOCK: list[Clock] = []


def system_clock() -> Clock:
    """The process's real clock, for callers that were handed none (a default, a CLI)."""
    if not _SYSTEM_CLOCK:
        _SYSTEM_CLOCK.append(Clock())
    return _SYSTEM_CLOCK[0]


class FixedClock(Clock):
    """Virtual time a test sets and advances (no sleeping, no real NTP).

    ``wall_s`` and ``mono`` are plain attributes; :meth:`advance` moves both (and boot time)
    together, :meth:`set_wall` steps only the wall clock, as an NTP sync does.
    """

    def __init__(self, wall: float = 1_800_000_000.0, synced: bool = True) -> None:
        self.boot_id = "test-boot"
        self.wall_s = wall
        self.mono = 100.0
        self.synced = synced

    def wall(self) -> float:
        return self.wall_s

    def monotonic(self) -> float:
        return self.mono

    def boot_s(self) -> float:
        return self.mono

    def clock_synced(self) -> bool:
        return self.synced

    def advance(self, seconds: float) -> None:
        self.wall_s += seconds
        self.mono += seconds

    def set_wall(self, wall: float) -> None:
        self.wall_s = wall


class VirtualClock(FixedClock):
    """A FixedClock whose :meth:`sleep` advances virtual time at once instead of waiting.

    For tests of schedulers and back-off: a loop that sleeps 60 s runs its next round after
    one event-loop turn, and ``slept`` lists every requested wait (seconds) in order.
    """

    def __init__(self, wall: float = 1_800_000_000.0, synced: bool = True) -> None:
        super().__init__(wall, synced)
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)  # let the other tasks run, as a real wait would
