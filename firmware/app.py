"""Assembling one appliance process: the context and its services, in start order."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from core.clock import Clock
from core.config import Config
from core.logs import get_log
from core.supervisor import Service, Supervisor
from firmware.updater.service import make_updater
from firmware.version import __version__
from hardware.service import make_hardware
from hardware.watchdog import make_watchdog
from provisioning.service import make_provisioning
from services.alerting.service import make_alerting
from services.context import AppContext
from services.discovery.migrations import DISCOVERY
from services.discovery.service import discovery_factory
from services.polling.schema import POLLING
from services.polling.service import make_polling
from services.store import MigrationChain, Store
from services.store.service import StoreService
from services.uplink.budget import budget_factory
from services.uplink.outbox import UPLINK_CHAIN
from services.uplink.selfmon import selfmon_factory
from services.uplink.service import make_forwarder, uplink_factory
from web.server import WebService

log = get_log("app")

# Each entry builds one service from the context, or returns None when the configuration
# turns it off. Order is start order (stop order is the reverse); the store always comes first.
ServiceFactory = Callable[[AppContext], Service | None]


def _web(ctx: AppContext) -> Service | None:
    return WebService(ctx) if ctx.config.web.enabled else None


SERVICE_FACTORIES: list[ServiceFactory] = [
    _web,
    budget_factory,
    uplink_factory,
    make_provisioning,
    selfmon_factory,
    make_alerting,
    discovery_factory,
    make_polling,
    make_hardware,
    make_watchdog,
    make_updater,
]

# Schema chains of components beyond the core tables, applied in this order at open.
MIGRATION_CHAINS: list[MigrationChain] = [UPLINK_CHAIN, DISCOVERY, POLLING]


def build(config: Config, clock: Clock | None = None) -> tuple[AppContext, Supervisor]:
    clock = clock or Clock()
    store = Store(
        config.store.path,
        chains=MIGRATION_CHAINS,
        clock=clock,
        batch_max_ops=config.store.batch_max_ops,
        forward=make_forwarder(config.uplink.url),
    )
    ctx = AppContext(config=config, store=store, clock=clock, version=__version__)
    services: list[Service] = [StoreService(store)]
    for factory in SERVICE_FACTORIES:
        service = factory(ctx)
        if service is not None:
            services.append(service)
    return ctx, Supervisor(services, critical=frozenset({"store"}))


async def run_until_signalled(config: Config) -> None:
    """Run the appliance until SIGTERM or SIGINT, then stop every service cleanly."""
    ctx, supervisor = build(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("appliance.starting", version=ctx.version, site=config.site.name)
    await supervisor.start()
    ctx.status.publish("phase", "running")
    log.info("appliance.running", services=",".join(s.name for s in supervisor.services))
    await stop.wait()
    log.info("appliance.stopping")
    await supervisor.stop()
    log.info("appliance.stopped")
