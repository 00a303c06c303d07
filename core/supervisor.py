"""The supervisor: starts every service in order, restarts crashed ones, stops them in reverse.

A service is an object with a ``name`` and three coroutines:
  ``setup()``: acquire what it needs (open a socket, load state); runs in start order;
  ``run()``: its work, until cancelled; an exception is a crash;
  ``teardown()``: release what setup acquired; runs in reverse order at stop.
A crash (in setup or run) is logged with the service's name and the service is set up and run
again after a capped exponential back-off; the process itself never goes down for it. A
``critical`` service (the store) that fails its first setup stops the start: the appliance
cannot work without it and says why.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from core.logs import get_log

log = get_log("supervisor")

BACKOFF_FIRST_S = 1.0
BACKOFF_CAP_S = 60.0
# A service that ran this long without crashing starts its back-off from the beginning again.
STABLE_AFTER_S = 120.0
STOP_BUDGET_S = (
    5.0  # the whole stop, every service included (systemd waits longer, but users don't)
)


class Service(Protocol):
    name: str

    async def setup(self) -> None: ...

    async def run(self) -> None: ...

    async def teardown(self) -> None: ...


class FatalStartError(Exception):
    """A critical service could not start; the appliance exits with this message."""


@dataclass
class ServiceState:
    name: str
    state: str = "stopped"  # starting | running | backoff | stopped | finished
    restarts: int = 0
    last_error: str = ""
    since: float = 0.0


class Supervisor:
    def __init__(self, services: list[Service], *, critical: frozenset[str] = frozenset()) -> None:
        names = [s.name for s in services]
        if len(set(names)) != len(names):
            raise ValueError(f"service names must be unique: {names}")
        self.services = services
        self.critical = critical
        self.states = {s.name: ServiceState(s.name) for s in services}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._set_up: set[str] = set()

    async def start(self) -> None:
        """Set up services in order and launch their run loops."""
        for service in self.services:
            state = self.states[service.name]
            state.state, state.since = "starting", time.monotonic()
            if service.name in self.critical:
                try:
                    await service.setup()
                except Exception as exc:
                    log.exception("service.setup_failed", service=service.name)
                    await self.stop()
                    raise FatalStartError(f"{service.name}: {exc}") from exc
                self._set_up.add(service.name)
            task = asyncio.create_task(self._guard(service), name=f"service:{service.name}")
            self._tasks[service.name] = task
            log.info("service.started", service=service.name)

    async def _guard(self, service: Service) -> None:
        state = self.states[service.name]
        failures = 0
        while True:
            started = time.monotonic()
            try:
                if service.name not in self._set_up:
                    await service.setup()
                    self._set_up.add(service.name)
                state.state, state.since = "running", time.monotonic()
                await service.run()
                state.state = "finished"
                log.info("service.finished", service=service.name)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if time.monotonic() - started >= STABLE_AFTER_S:
                    failures = 0
                failures += 1
                delay = min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2 ** (failures - 1))
                state.state, state.restarts = "backoff", state.restarts + 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "service.crashed", service=service.name, restart_in_s=delay, crashes=failures
                )
                await self._teardown(service)
                await asyncio.sleep(delay)

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
        deadline = time.monotonic() + STOP_BUDGET_S
        for service in reversed(self.services):
            task = self._tasks.pop(service.name, None)
            if task is not None:
                task.cancel()
                remaining = max(0.1, deadline - time.monotonic())
                # asyncio.wait, not wait_for: a task that swallows its cancellation must not
                # hold the whole stop hostage; it is abandoned and named in the log.
                done, _ = await asyncio.wait({task}, timeout=remaining)
                if not done:
                    log.error("service.ignored_cancel", service=service.name)
            remaining = max(0.1, deadline - time.monotonic())
            teardown = asyncio.create_task(self._teardown(service))
            done, _ = await asyncio.wait({teardown}, timeout=remaining)
            if not done:  # a stuck teardown is abandoned, like a stuck run loop
                teardown.cancel()
                log.error("service.teardown_timeout", service=service.name)
            self.states[service.name].state = "stopped"
            log.info("service.stopped", service=service.name)
