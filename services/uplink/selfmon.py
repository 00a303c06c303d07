"""The appliance measuring itself: CPU, memory, load, disk free, store size, uplink backlog.

These are ordinary measurements of device ``None`` (the appliance), so they are stored, graphed
and sent home like any other: the MSP sees a box whose SD card is filling or whose backlog is
growing before it becomes a silent site.
"""

from __future__ import annotations

import asyncio
import os
import time
from functools import partial

from services.context import AppContext
from services.store import Measurement, Tx, insert_measurements
from services.uplink import outbox

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _store(items: list[Measurement], tx: Tx) -> int:
    return insert_measurements(tx, items)


class SelfMonitor:
    name = "selfmon"

    def __init__(self, ctx: AppContext, interval_s: float) -> None:
        self.ctx = ctx
        self.interval_s = interval_s
        self.samples = 0

    async def setup(self) -> None:
        pass

    async def teardown(self) -> None:
        pass

    def sample(self, cpu_pct: float, backlog: int) -> list[Measurement]:
        path = self.ctx.store.path
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
        try:
            store_bytes = os.path.getsize(path)
        except OSError:
            store_bytes = 0
        return [
            Measurement(None, "self.cpu_pct", round(cpu_pct, 2), unit="%"),
            Measurement(None, "self.rss_bytes", float(_rss_bytes()), unit="B"),
            Measurement(None, "self.load1", os.getloadavg()[0]),
            Measurement(None, "self.disk_free_bytes", float(st.f_bavail * st.f_frsize), unit="B"),
            Measurement(None, "self.store_bytes", float(store_bytes), unit="B"),
            Measurement(None, "self.uplink_backlog", float(backlog), unit="records"),
        ]

    async def run(self) -> None:
        # Real time on purpose: CPU seconds are real, so is the interval they are divided by.
        last_cpu, last_t = _cpu_seconds(), time.monotonic()
        while True:
            await asyncio.sleep(self.interval_s)
            cpu, now = _cpu_seconds(), time.monotonic()
            cpu_pct = 100.0 * (cpu - last_cpu) / max(1e-6, now - last_t)
            last_cpu, last_t = cpu, now
            backlog = await self.ctx.store.read(outbox.read_backlog)
            items = self.sample(cpu_pct, sum(backlog.pending.values()))
            await self.ctx.store.write(partial(_store, items))
            self.samples += 1


def selfmon_factory(ctx: AppContext) -> SelfMonitor | None:
    interval = ctx.config.uplink.self_measure_s
    return SelfMonitor(ctx, interval) if interval > 0 else None
