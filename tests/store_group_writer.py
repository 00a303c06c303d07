"""A process that writes through the real Store with a group commit window, for the crash test.

Poll-like writes (a measurement each) are deferred and never awaited; every so often an
alert-like write (an event) is committed at once. Each line on stdout is one fact:

    m I T   measurement I was asked for at monotonic time T (deferred, maybe not committed)
    e I T   event I was asked for at T
    E I T   event I is committed (its write returned)

Usage: python -m tests.store_group_writer DB START WINDOW_S
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from functools import partial
from typing import Any

from services.store import Event, Measurement, Store, Tx, insert_event, insert_measurements

POLL_GAP_S = 0.01  # a poll result every 10 ms
ALERT_EVERY_S = (0.2, 1.0)  # an alert transition at random gaps, often longer than the window


def _line(kind: str, i: int, at: float) -> None:
    sys.stdout.write(f"{kind} {i} {at:.6f}\n")
    sys.stdout.flush()


async def main(path: str, start: int, window_s: float) -> None:
    store = Store(path, commit_window_s=window_s)
    await store.open()
    rng = random.Random(start)
    pending: set[asyncio.Future[Any]] = set()
    i = start
    next_alert = time.monotonic() + rng.uniform(*ALERT_EVERY_S)
    while True:
        value = float(i)
        at = time.monotonic()
        future = store.submit(
            partial(insert_measurements, items=[Measurement(1, "poll.value", value)]),
            defer=True,
        )
        pending.add(future)
        future.add_done_callback(pending.discard)
        _line("m", i, at)
        i += 1
        if time.monotonic() >= next_alert:
            n = i
            i += 1

            def alert(tx: Tx, n: int = n) -> int:
                return insert_event(tx, Event("alert.opened", message=str(n)))

            at = time.monotonic()
            committed = store.submit(alert)
            _line("e", n, at)
            await committed
            _line("E", n, time.monotonic())
            next_alert = time.monotonic() + rng.uniform(*ALERT_EVERY_S)
        await asyncio.sleep(POLL_GAP_S)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
