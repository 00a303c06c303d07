"""The supervisor: opens shared resources, sets services up in order, restarts crashed ones.

Start, in this order:
  1. every shared :class:`Resource` (the store, the client to home, the SNMP client) is entered
     in declared order into one ``contextlib.AsyncExitStack``; one that cannot open stops the
     start (the appliance cannot work without it) and says why;
  2. every service's ``setup()`` is awaited in declared order, before any ``run()`` starts, so a
     service may rely on what an earlier one set up;
  3. every service's ``run()`` starts.
Stop is the reverse: run loops cancelled, ``teardown()`` in reverse order, then the stack
closes the resources in reverse order. A model: aiohttp's cleanup contexts.

A service is an object with a ``name`` and three coroutines:
  ``setup()``: acquire what it needs (open a socket, load state);
  ``run()``: its work, until cancelled; an exception is a crash;
  ``teardown()``: release what setup acquired.
A crash (in setup or run) is logged with the service's name and the service is set up and run
again after a capped exponential back-off; the process itself never goes down for it. A
``critical`` service that fails its first setup stops the start, like a resource.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from core.clock import Clock
from core.logs import get_log

log = get_log("supervisor")

BACKOFF_FIRST_S = 1.0
BACKOFF_CAP_S = 60.0
# A service that ran this long without crashing starts its back-off from the beginning again.
STABLE_AFTER_S = 120.0
# One service's setup at start, at most: setups run one after the other, so one that hangs
# (a mount that never answers) must not keep every later service from starting.
SETUP_BUDGET_S = 30.0
STOP_BUDGET_S = (
    5.0  # the whole stop, every service included (systemd waits longer, but users don't)
)


class Service(Protocol):
    name: str

    async def setup(self) -> None: ...

    async def run(self) -> None: ...

    async def teardown(self) -> None: ...


@dataclass(frozen=True)
class Resource:
    """Something several services share, opened once before any service and closed after all.

    ``open`` returns an async context manager (``contextlib.asynccontextmanager`` functions
    fit); it is called once, at start.
    """

    name: str
    open: Callable[[], AbstractAsyncContextManager[Any]]


class FatalStartError(Exception):
    """A critical service could not start; the appliance exits with this message."""


@dataclass
class ServiceState:
    name: str
    state: str = "stopped"  # starting | running | backoff | stopped | finished
    restarts: int = 0
    last_error: str = ""
    since: float = 0.0


async def _setup_within_budget(service: Service) -> None:
    """``service.setup()``, cancelled after SETUP_BUDGET_S (then TimeoutError saying so)."""
    task = asyncio.ensure_future(service.setup())
    done, _ = await asyncio.wait({task}, timeout=SETUP_BUDGET_S)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)  # let it unwind what it had begun
        raise TimeoutError(
            f"setup did not finish within {SETUP_BUDGET_S:g} s; the others start without it "
            "and it is tried again after the back-off"
        )
    task.result()


class Supervisor:
    def __init__(
        self,
        services: list[Service],
        *,
        critical: frozenset[str] = frozenset(),
        resources: Sequence[Resource] = (),
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or Clock()  # back-off waits and "stable for" are measured on it
        names = [r.name for r in resources] + [s.name for s in services]
        if len(set(names)) != len(names):
            raise ValueError(f"resource and service names must be unique: {names}")
        self.services = services
        self.resources = list(resources)
        self.critical = critical
        # Resources show here too ("running" while open), so readers see the store's state.
        self.states = {n: ServiceState(n) for n in names}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._set_up: set[str] = set()
        self._failed_setup: set[str] = set()
        self._stack = contextlib.AsyncExitStack()

    async def start(self) -> None:
        """Open the resources, set every service up in order, then launch their run loops."""
        for resource in self.resources:
            state = self.states[resource.name]
            try:
                await self._stack.enter_async_context(resource.open())
            except Exception as exc:
                log.exception("resource.open_failed", resource=resource.name)
                await self.stop()
                raise FatalStartError(f"{resource.name}: {exc}") from exc
            state.state, state.since = "running", self.clock.monotonic()
            self._stack.callback(self._closed, resource.name)
            log.info("resource.opened", resource=resource.name)
        for service in self.services:
            state = self.states[service.name]
            state.state, state.since = "starting", self.clock.monotonic()
            try:
                await _setup_within_budget(service)
            except Exception as exc:
                if service.name in self.critical:
                    log.exception("service.setup_failed", service=service.name)
                    await self.stop()
                    raise FatalStartError(f"{service.name}: {exc}") from exc
                # Not fatal: its guard sets it up again after the back-off.
                self._failed_setup.add(service.name)
                state.state, state.restarts = "backoff", state.restarts + 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "service.crashed", service=service.name, restart_in_s=BACKOFF_FIRST_S, crashes=1
                )
                continue
            self._set_up.add(service.name)
        for service in self.services:
            task = asyncio.create_task(self._guard(service), name=f"service:{service.name}")
            self._tasks[service.name] = task
            log.info("service.started", service=service.name)

    def _closed(self, name: str) -> None:
        self.states[name].state = "stopped"
        log.info("resource.closed", resource=name)

    async def _guard(self, service: Service) -> None:
        state = self.states[service.name]
        failures = 0
        if service.name in self._failed_setup:  # its setup failed in start(): back off first
            self._failed_setup.discard(service.name)
            failures = 1
            await self.clock.sleep(BACKOFF_FIRST_S)
        while True:
            started = self.clock.monotonic()
            try:
                if service.name not in self._set_up:
                    await service.setup()
                    self._set_up.add(service.name)
                state.state, state.since = "running", self.clock.monotonic()
                await service.run()
                state.state = "finished"
                log.info("service.finished", service=service.name)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.clock.monotonic() - started >= STABLE_AFTER_S:
                    failures = 0
                failures += 1
                delay = min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2 ** (failures - 1))
                state.state, state.restarts = "backoff", state.restarts + 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "service.crashed", service=service.name, restart_in_s=delay, crashes=failures
                )
                await self._teardown(service)
                await self.clock.sleep(delay)

    async def _teardown(self, service: Service) -> None:
        if service.name not in self._set_up:
            return
        self._set_up.discard(service.name)
        try:
            await service.teardown()
        except Exception:
            log.exception("service.teardown_failed", service=service.name)

    async def stop(self) -> None:
        """Cancel and await every run loop, then tear down in reverse order, within 5 s."""
        # The stop budget is in the event loop's time: asyncio.wait's timeouts run on it.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_BUDGET_S
        for service in reversed(self.services):
            task = self._tasks.pop(service.name, None)
            if task is not None:
                task.cancel()
                remaining = max(0.1, deadline - loop.time())
                # asyncio.wait, not wait_for: a task that swallows its cancellation must not
                # hold the whole stop hostage; it is abandoned and named in the log.
                done, _ = await asyncio.wait({task}, timeout=remaining)
                if not done:
                    log.error("service.ignored_cancel", service=service.name)
            remaining = max(0.1, deadline - loop.time())
            teardown = asyncio.create_task(self._teardown(service))
            done, _ = await asyncio.wait({teardown}, timeout=remaining)
            if not done:  # a stuck teardown is abandoned, like a stuck run loop
                teardown.cancel()
                log.error("service.teardown_timeout", service=service.name)
            self.states[service.name].state = "stopped"
            log.info("service.stopped", service=service.name)
        # Resources close last, in reverse order of opening; each one's failure is logged
        # and the others still close.
        try:
            await self._stack.aclose()
        except Exception:
            log.exception("resource.close_failed")
        self._stack = contextlib.AsyncExitStack()
