"""The real appliance (store, budget keeper, uplink) writing a poll's worth of measurements
every half second, reporting what its status says of the uplink against the outbox itself.

Run inside the simulated site's appliance namespace by test_uplink_states.py:
    python -m tests.uplink_states_driver CONFIG OUTAGE_S
Prints one JSON line once home acknowledged ("connected"), then waits for "cut" on stdin (the
test has cut the site's internet), samples for OUTAGE_S seconds and prints them ("samples":
[[t since the cut, uplink.state, uplink.backlog, rows in the outbox], ...]), waits for
"restored" and prints one line when the outbox has drained, then exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from functools import partial

from core.config import load_config
from core.status import StatusKey
from services.context import AppContext
from services.store import Measurement, insert_measurements
from simsite.harness.appliance import running_appliance

WRITE_EVERY_S = 0.5
SAMPLE_EVERY_S = 0.25
DEVICES = 25  # x 4 metrics per write: a small office's poll results


async def _produce(ctx: AppContext) -> None:
    n = 0
    while True:
        items = [
            Measurement(d, metric, float(n), unit="x")
            for d in range(1, DEVICES + 1)
            for metric in ("icmp.rtt_ms", "if.in_bps", "if.out_bps", "cpu.load_pct")
        ]
        await ctx.store.write(partial(insert_measurements, items=items))
        n += 1
        await asyncio.sleep(WRITE_EVERY_S)


async def _outbox_rows(ctx: AppContext) -> int:
    rows = await ctx.store.query("SELECT COUNT(*) AS n FROM outbox")
    return int(rows[0]["n"])


async def main(config_path: str, outage_s: float) -> None:
    config = load_config(config_path)
    async with running_appliance(config) as (ctx, _supervisor):
        producer = asyncio.create_task(_produce(ctx))
        try:
            deadline = time.monotonic() + 60
            while ctx.status.snapshot().get(StatusKey.UPLINK_STATE) != "connected":
                if time.monotonic() > deadline:
                    raise SystemExit("never connected to home")
                await asyncio.sleep(0.1)
            print(json.dumps({"connected": True}), flush=True)
            await asyncio.to_thread(sys.stdin.readline)  # "cut"
            cut = time.monotonic()
            samples = []
            while (t := time.monotonic() - cut) < outage_s:
                status = ctx.status.snapshot()
                rows = await _outbox_rows(ctx)
                samples.append(
                    [
                        round(t, 3),
                        status.get(StatusKey.UPLINK_STATE),
                        status.get(StatusKey.UPLINK_BACKLOG),
                        rows,
                    ]
                )
                await asyncio.sleep(SAMPLE_EVERY_S)
            print(json.dumps({"samples": samples}), flush=True)
            await asyncio.to_thread(sys.stdin.readline)  # "restored"
        finally:
            producer.cancel()
        restored = time.monotonic()
        while await _outbox_rows(ctx) or (
            ctx.status.snapshot().get(StatusKey.UPLINK_STATE) != "connected"
        ):
            if time.monotonic() - restored > 120:
                raise SystemExit("the outbox did not drain within 120 s of the restore")
            await asyncio.sleep(0.2)
        print(json.dumps({"drained_s": round(time.monotonic() - restored, 1)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
