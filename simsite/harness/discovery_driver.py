"""The store and the real discovery service in one process, with the status page's
"Rediscover now" request taken from stdin (for tests inside a simulated site's namespace).

    python -m simsite.harness.discovery_driver CONFIG [--flush-s S]
Each line read on stdin publishes one ``RediscoverRequested`` on the process's bus, as the
status page does; the service's own log lines (``discovery.swept`` ...) go to stdout. Runs
until SIGTERM or the end of stdin. ``--flush-s`` shortens the service's flush interval (the
moment a pending request is taken), so a test waits a fraction of a second instead of 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading

from core.clock import Clock
from core.config import load_config
from core.logs import setup_logging
from core.messages import RediscoverRequested
from core.supervisor import Supervisor
from services.context import AppContext
from services.discovery import service as discovery_service
from services.discovery.migrations import DISCOVERY
from services.discovery.service import DiscoveryService
from services.store import Store
from services.store.service import StoreService

REQUESTED_BY = "test@simsite"


async def main(config_path: str, flush_s: float | None) -> None:
    config = load_config(config_path)
    setup_logging(config.log.level)
    if flush_s is not None:
        # A timing knob for tests (run() reads it at each pause); Final for the product.
        discovery_service.FLUSH_INTERVAL_S = flush_s  # type: ignore[misc]
    clock = Clock()
    store = Store(config.store.path, chains=[DISCOVERY], clock=clock)
    ctx = AppContext(config=config, store=store, clock=clock)
    supervisor = Supervisor(
        [StoreService(store), DiscoveryService(ctx)], critical=frozenset({"store"})
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def request() -> None:
        ctx.bus.publish(RediscoverRequested(requested_by=REQUESTED_BY, at=clock.now().wall))

    def read_stdin() -> None:
        # A daemon thread, not the loop's executor: a blocked read must not hold up the exit.
        for _line in sys.stdin:
            loop.call_soon_threadsafe(request)
        loop.call_soon_threadsafe(stop.set)

    await supervisor.start()
    threading.Thread(target=read_stdin, name="stdin", daemon=True).start()
    try:
        await stop.wait()
    finally:
        await supervisor.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m simsite.harness.discovery_driver")
    parser.add_argument("config")
    parser.add_argument("--flush-s", type=float, default=None)
    args = parser.parse_args()
    asyncio.run(main(args.config, args.flush_s))
