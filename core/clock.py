"""Time stamps that stay meaningful on a box with no real-time clock.

A Raspberry Pi boots with its wall clock wherever it was last saved (or 1970) until NTP
synchronises it. Every stored record therefore carries the wall time, the time since boot
(CLOCK_BOOTTIME, which also counts suspend) and the kernel's boot id, plus a flag telling
whether the wall clock was synchronised when the stamp was taken. Home can then re-date
records taken before synchronisation from (boot id, time since boot).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from dataclasses import dataclass
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
    """The appliance's source of time stamps; tests substitute a clock with fixed answers."""

    def __init__(self) -> None:
        self.boot_id = _read_boot_id()
        self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._synced = False
        self._checked_at = -_SYNC_CACHE_S

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
            wall=time.time(),
            mono=time.clock_gettime(time.CLOCK_BOOTTIME),
            boot_id=self.boot_id,
            synced=self.clock_synced(),
        )


class FixedClock(Clock):
    """A clock whose wall time and sync state a test sets (no sleeping, no real NTP)."""

    def __init__(self, wall: float = 1_800_000_000.0, synced: bool = True) -> None:
        self.boot_id = "test-boot"
        self.wall = wall
        self.mono = 100.0
        self.synced = synced

    def clock_synced(self) -> bool:
        return self.synced

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def now(self) -> Stamp:
        return Stamp(wall=self.wall, mono=self.mono, boot_id=self.boot_id, synced=self.synced)
