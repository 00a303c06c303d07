"""The composition root: the one place an appliance process is assembled.

:func:`build` makes each shared resource once and hands it to the services that use it:
  - the store (every service);
  - the client to home (:class:`HomeClient`: the box's identity, loaded or made by
    :func:`provisioning.identity.load_or_create`, and one ``aiohttp`` session), shared by the
    uplink and provisioning;
  - the SNMP client (one socket set, one pysnmp MIB view), shared by discovery and polling.
The supervisor opens them in that order in one ``AsyncExitStack``, awaits every service's setup
in :data:`SERVICE_FACTORIES` order before any run loop starts, and closes everything in reverse
(core/supervisor.py). Models: aiohttp's cleanup contexts, Home Assistant's shared client session.

A box that cannot read its key must not crash in a loop (systemd would restart it forever,
and the site would lose its monitoring too): the home resource logs the problem and opens
anyway; the uplink and provisioning then fail their setup and the supervisor retries them with
capped back-off (their next ``HomeClient.open()`` tries the key again), while polling, alerting
and the page keep working and records keep being stored for later.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from core.clock import Clock
from core.config import Config
from core.logs import get_log
from core.status import StatusKey
from core.supervisor import Resource, Service, Supervisor
from core.wire.keys import IdentityError
from firmware.updater.service import make_updater
from firmware.version import __version__
from hardware.service import make_hardware
from hardware.watchdog import make_watchdog
from provisioning.identity import load_or_create
from provisioning.service import make_provisioning
from services.alerting.schema import ALERTING
from services.alerting.service import make_alerting
from services.context import AppContext
from services.discovery.migrations import DISCOVERY
from services.discovery.service import discovery_factory
from services.polling.schema import POLLING
from services.polling.service import make_polling
from services.polling.topology_schema import TOPOLOGY
from services.polling.topology_service import make_topology
from services.snmp import SnmpClient
from services.store import MigrationChain, Store
from services.store.reach import ReachBackfill
from services.uplink.budget import budget_factory
from services.uplink.client import HomeClient, UplinkConfigError
from services.uplink.outbox import UPLINK_CHAIN
from services.uplink.selfmon import selfmon_factory
from services.uplink.service import make_forwarder, uplink_factory
from web.server import WebService

log = get_log("app")

# A key still being written by another process (a restore, a technician) may read as damaged
# for a moment: a few quick tries before the start goes on without home.
IDENTITY_TRIES = 5
IDENTITY_RETRY_S = 0.2


@dataclass(frozen=True)
class Shared:
    """What the root builds once and hands to the services that use it."""

    store: Store
    home: HomeClient | None  # None when no uplink is configured
    snmp: SnmpClient | None  # None when neither discovery nor polling speaks SNMP


# Each entry builds one service from the context and the shared resources, or returns None when
# the configuration turns it off. Order is setup and start order (stop order is the reverse).
ServiceFactory = Callable[[AppContext, Shared], Service | None]


def _web(ctx: AppContext, shared: Shared) -> Service | None:
    return WebService(ctx) if ctx.config.web.enabled else None


def _budget(ctx: AppContext, shared: Shared) -> Service | None:
    return budget_factory(ctx)


def _reach_summary(ctx: AppContext, shared: Shared) -> Service | None:
    # Summarises history the reachability summary lacks (an upgraded box), in short writes.
    return ReachBackfill(shared.store)


def _uplink(ctx: AppContext, shared: Shared) -> Service | None:
    return uplink_factory(ctx, shared.home)


def _provisioning(ctx: AppContext, shared: Shared) -> Service | None:
    return make_provisioning(ctx, shared.home)


def _selfmon(ctx: AppContext, shared: Shared) -> Service | None:
    return selfmon_factory(ctx)


def _alerting(ctx: AppContext, shared: Shared) -> Service | None:
    return make_alerting(ctx)


def _discovery(ctx: AppContext, shared: Shared) -> Service | None:
    return discovery_factory(ctx, shared.snmp)


def _polling(ctx: AppContext, shared: Shared) -> Service | None:
    return make_polling(ctx, shared.snmp)


def _topology(ctx: AppContext, shared: Shared) -> Service | None:
    return make_topology(ctx, shared.snmp)


def _hardware(ctx: AppContext, shared: Shared) -> Service | None:
    return make_hardware(ctx)


def _watchdog(ctx: AppContext, shared: Shared) -> Service | None:
    return make_watchdog(ctx)


def _updater(ctx: AppContext, shared: Shared) -> Service | None:
    return make_updater(ctx)


SERVICE_FACTORIES: list[ServiceFactory] = [
    _web,
    _budget,
    _reach_summary,
    _uplink,
    _provisioning,
    _selfmon,
    _alerting,
    _discovery,
    _polling,
    _topology,
    _hardware,
    _watchdog,
    _updater,
]

# Schema chains of components beyond the core tables, applied in this order at open.
MIGRATION_CHAINS: list[MigrationChain] = [UPLINK_CHAIN, DISCOVERY, POLLING, TOPOLOGY, ALERTING]


def make_shared(config: Config, clock: Clock) -> Shared:
    """Every shared resource, built (not opened) once; opening is the supervisor's, at start."""
    store = Store(
        config.store.path,
        chains=MIGRATION_CHAINS,
        clock=clock,
        batch_max_ops=config.store.batch_max_ops,
        commit_window_s=config.store.commit_window_s,
        forward=make_forwarder(config.uplink.url),
    )
    home = None
    if config.uplink.url:
        home = HomeClient(
            config.uplink.url,
            partial(load_or_create, config.provisioning.identity_dir),
            config.uplink.ca_file,
            config.uplink.request_timeout_s,
            clock,
        )
    snmp = None
    discovery, polling = config.discovery, config.polling
    if (discovery.enabled and discovery.snmp) or (polling.enabled and polling.snmp):
        snmp = SnmpClient(config.snmp)
    return Shared(store=store, home=home, snmp=snmp)


@asynccontextmanager
async def _store_open(store: Store) -> AsyncIterator[None]:
    await store.open()
    try:
        yield
    finally:
        await store.close()


@asynccontextmanager
async def _home_open(home: HomeClient) -> AsyncIterator[None]:
    """Load the identity and open the session; a failure is logged, never fatal (see above)."""
    for attempt in range(1, IDENTITY_TRIES + 1):
        try:
            identity = await home.open()
        except (OSError, IdentityError) as exc:
            if attempt < IDENTITY_TRIES:
                log.info("app.identity_retry", error=str(exc), attempt=attempt)
                await asyncio.sleep(IDENTITY_RETRY_S)
                continue
            log.error("app.identity_unavailable", error=str(exc), then="retried with back-off")
        except UplinkConfigError as exc:
            log.error("app.home_unavailable", error=str(exc), then="retried with back-off")
        else:
            log.info("app.identity", appliance=identity.appliance_id)
        break
    try:
        yield
    finally:
        await home.close()


@asynccontextmanager
async def _snmp_open(snmp: SnmpClient) -> AsyncIterator[None]:
    async with snmp:
        yield


def resources(shared: Shared) -> list[Resource]:
    """The shared resources in opening order (closing is the reverse)."""
    found = [Resource("store", partial(_store_open, shared.store))]
    if shared.home is not None:
        found.append(Resource("home", partial(_home_open, shared.home)))
    if shared.snmp is not None:
        found.append(Resource("snmp", partial(_snmp_open, shared.snmp)))
    return found


def build(config: Config, clock: Clock | None = None) -> tuple[AppContext, Supervisor]:
    """The context and a supervisor holding every resource and service, not started yet."""
    clock = clock or Clock()
    shared = make_shared(config, clock)
    ctx = AppContext(config=config, store=shared.store, clock=clock, version=__version__)
    services: list[Service] = []
    for factory in SERVICE_FACTORIES:
        service = factory(ctx, shared)
        if service is not None:
            services.append(service)
    return ctx, Supervisor(services, resources=resources(shared), clock=clock)


async def run_until_signalled(config: Config) -> None:
    """Run the appliance until SIGTERM or SIGINT, then stop every service cleanly."""
    ctx, supervisor = build(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("appliance.starting", version=ctx.version, site=config.site.name)
    await supervisor.start()
    ctx.status.publish(StatusKey.PHASE, "running")
    log.info("appliance.running", services=",".join(s.name for s in supervisor.services))
    await stop.wait()
    log.info("appliance.stopping")
    await supervisor.stop()
    log.info("appliance.stopped")
