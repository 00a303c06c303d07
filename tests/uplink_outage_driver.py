"""A whole appliance (store, budget keeper, uplink) fed a simulated day on an accelerated clock.

Run inside the simulated site's appliance namespace by test_uplink_outage.py:
    python -m tests.uplink_outage_driver CONFIG MINUTES
Prints one JSON line when the day is stored ("stored"), waits for a line on stdin (the test
restores the internet), then prints one when the outbox has drained ("drained") and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from functools import partial

from core.clock import FixedClock
from core.config import load_config
from core.vocabulary import Severity
from services.store import Event, Measurement, insert_event, insert_measurements
from simsite.harness.appliance import running_appliance

DEVICES = 20  # each with 3 metrics, every simulated minute
METRICS = ("icmp.rtt_ms", "if.in_bps", "cpu.load_pct")


class DayThenRealClock(FixedClock):
    """Virtual time for the simulated day, then real time once the internet is back (as NTP
    steps a box's clock): the requests the box signs while it drains the day stay inside
    home's time window, and its timers (the last, partial batch) run, however long it takes."""

    _mono_offset_s: float | None = None  # real monotonic -> this clock's, once real

    def go_real(self) -> None:
        self._mono_offset_s = self.mono - time.monotonic()

    def wall(self) -> float:
        return self.wall_s if self._mono_offset_s is None else time.time()

    def monotonic(self) -> float:
        if self._mono_offset_s is None:
            return self.mono
        return time.monotonic() + self._mono_offset_s

    def boot_s(self) -> float:
        return self.monotonic()


async def main(config_path: str, minutes: int) -> None:
    config = load_config(config_path)
    # The simulated day is the day before the test started.
    clock = DayThenRealClock(wall=time.time() - minutes * 60.0, synced=True)
    async with running_appliance(config, clock) as (ctx, _supervisor):
        for minute in range(minutes):
            items = [
                Measurement(d, metric, float(minute), unit="x")
                for d in range(1, DEVICES + 1)
                for metric in METRICS
            ]
            await ctx.store.write(partial(insert_measurements, items=items))
            if minute % 60 == 30:
                event = Event(
                    "alert.opened", severity=Severity.MAJOR, message=f"hour {minute // 60}"
                )
                await ctx.store.write(partial(insert_event, event=event))
            clock.advance(60.0)
        backlog = await ctx.store.query("SELECT lane, COUNT(*) AS n FROM outbox GROUP BY lane")
        print(json.dumps({"stored": backlog, "state": ctx.status.snapshot()}), flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        clock.go_real()
        started = time.monotonic()
        while True:
            rows = await ctx.store.query("SELECT COUNT(*) AS n FROM outbox")
            if rows[0]["n"] == 0:
                break
            await asyncio.sleep(0.05)
        print(json.dumps({"drained": True, "seconds": time.monotonic() - started}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
