"""The front panel as a supervised service: LEDs follow the live status, the button acts.

Every tick the service takes ``ctx.status.snapshot()``, adds the open-alert counts from the
store when alerting has not published them, runs the LED state machine (hardware.leds) with
the button's feedback overlay, hands the patterns to the backend and publishes them as the
``panel`` status fact ({"state", "leds"}) that the status page shows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from core.logs import get_log
from core.messages import IdentifyRequested
from core.status import StatusKey
from hardware.backends import Backend, SimBackend, make_backend
from hardware.button import (
    RESET_CONFIRM_S,
    Action,
    ButtonMonitor,
    FactoryReset,
    feedback_for_hold,
    run_command_reboot,
    store_files,
)
from hardware.leds import LED_NAMES, Panel, PanelState, panel
from services.context import AppContext
from services.store.records import Event, insert_event

log = get_log("hardware")

TICK_S = 0.05  # 20 Hz: smooth enough for software pulses, and button feedback feels instant
ALERT_REFRESH_S = 5.0  # how often open-alert counts are read from the store as a fallback
SHORT_PRESS_IDENTIFY_S = 10.0


class HardwareService:
    name = "hardware"

    def __init__(
        self,
        ctx: AppContext,
        backend: Backend | None = None,
        reboot: Callable[[], Awaitable[None]] | None = None,
        confirm_s: float = RESET_CONFIRM_S,
    ) -> None:
        self.ctx = ctx
        self.settings = ctx.config.hardware
        self.backend = backend
        self.confirm_s = confirm_s
        self.monitor = ButtonMonitor()
        self.actions: list[Action] = []  # every button action taken, for tests and the log
        self.reboots: list[float] = []  # reboots recorded by the simulated backend
        self.panel: Panel | None = None
        self._reboot = reboot
        self._identify_until = 0.0
        self._identifying = False
        self._confirm_until: float | None = None
        self._swallow_release = False
        self._alerts: dict[str, int] = {}
        self._alerts_at = -ALERT_REFRESH_S
        self._tasks: set[asyncio.Task[Any]] = set()
        self._identify_sub: Any = None
        self.reset: FactoryReset | None = None

    # ---- lifecycle ----

    async def setup(self) -> None:
        if self.backend is None:
            self.backend = make_backend(self.settings, asyncio.get_running_loop(), self.ctx.clock)
        if self._reboot is None:
            if isinstance(self.backend, SimBackend):
                self._reboot = self._recorded_reboot
            else:
                command = self.settings.reboot_command
                self._reboot = lambda: run_command_reboot(command)
        self.backend.on_button(self._on_button)
        self._identify_sub = self.ctx.bus.subscribe(IdentifyRequested, limit=16)
        log.info("hardware.ready", backend=self.settings.backend)

    async def run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(TICK_S)

    async def teardown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._identify_sub is not None:
            self.ctx.bus.unsubscribe(self._identify_sub)
            self._identify_sub = None
        if self.backend is not None:
            for name in LED_NAMES:
                self.backend.set_led(name, "off")
            self.backend.close()

    # ---- one tick ----

    async def step(self) -> Panel:
        """Recompute the panel from the current facts and drive the LEDs once."""
        assert self.backend is not None
        now = self.ctx.clock.monotonic()
        self._take_identify_requests(now)
        identifying = now < self._identify_until
        if identifying != self._identifying:
            # Only on this timer's own transitions, so an identify that provisioning
            # publishes into the status is honoured rather than overwritten every tick.
            self._identifying = identifying
            self.ctx.status.publish(StatusKey.IDENTIFY, identifying)
        if self._confirm_until is not None and now >= self._confirm_until:
            self._confirm_until = None
            self._spawn(self._factory_reset())
        facts = self.ctx.status.snapshot()
        if not isinstance(facts.get(StatusKey.ALERTS_OPEN), dict):
            facts[StatusKey.ALERTS_OPEN] = await self._stored_alert_counts(now)
        current = panel(facts, self._overlay(now))
        for name, pattern in current.leds.as_dict().items():
            self.backend.set_led(name, pattern)
        self.backend.tick(now)
        if self.panel is None or current.state != self.panel.state:
            log.info("hardware.panel", state=current.state.value)
        self.panel = current
        self.ctx.status.publish(
            StatusKey.PANEL, {"state": current.state.value, "leds": current.leds.as_dict()}
        )
        return current

    def _overlay(self, now: float) -> PanelState | None:
        if self._confirm_until is not None:
            return PanelState.RESET_CONFIRM
        held = self.monitor.held_s(now)
        return feedback_for_hold(held) if held is not None else None

    def _take_identify_requests(self, now: float) -> None:
        sub = self._identify_sub
        while sub is not None and not sub.queue.empty():
            request: IdentifyRequested = sub.queue.get_nowait()
            self._identify_until = max(self._identify_until, now + request.duration_s)
            log.info("hardware.identify", seconds=request.duration_s, by=request.requested_by)

    async def _stored_alert_counts(self, now: float) -> dict[str, int]:
        if now - self._alerts_at >= ALERT_REFRESH_S:
            self._alerts_at = now
            with contextlib.suppress(Exception):  # store closing: keep the last counts
                rows = await self.ctx.store.query(
                    "SELECT severity, COUNT(*) AS n FROM alerts WHERE state = 'open'"
                    " GROUP BY severity"
                )
                self._alerts = {str(r["severity"]): int(r["n"]) for r in rows}
        return self._alerts

    # ---- the button ----

    def _on_button(self, pressed: bool, at: float) -> None:
        if pressed:
            if self._confirm_until is not None:
                # A press during the confirm blink cancels the factory reset.
                self._confirm_until = None
                self._swallow_release = True
                self.actions.append(Action.CANCEL)
                log.warning("hardware.factory_reset_cancelled")
                return
            self.monitor.press(at)
            return
        if self._swallow_release:
            self._swallow_release = False
            self.monitor.pressed_at = None
            return
        held = self.monitor.held_s(at) or 0.0
        action = self.monitor.release(at)
        log.info("hardware.button", held_s=round(held, 2), action=action.value)
        self.actions.append(action)
        now = self.ctx.clock.monotonic()
        if action is Action.STATUS:
            self._identify_until = max(self._identify_until, now + SHORT_PRESS_IDENTIFY_S)
            self._spawn(self._record_event("panel.button", "Front-panel button pressed"))
        elif action is Action.REBOOT:
            self._spawn(self._do_reboot())
        elif action is Action.FACTORY_RESET:
            self._confirm_until = now + self.confirm_s
            log.warning("hardware.factory_reset_confirm", seconds=self.confirm_s)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record_event(self, kind: str, message: str) -> None:
        with contextlib.suppress(Exception):  # an event is nice to have; the action matters
            await self.ctx.store.write(lambda tx: insert_event(tx, Event(kind, message=message)))

    async def _do_reboot(self) -> None:
        await self._record_event("panel.reboot", "Reboot requested with the front-panel button")
        assert self._reboot is not None
        await self._reboot()

    async def _factory_reset(self) -> None:
        assert self._reboot is not None
        log.warning("hardware.factory_reset")
        self.reset = FactoryReset(
            wipe_dirs=(
                Path(self.ctx.config.provisioning.identity_dir),
                Path(self.ctx.config.provisioning.state_dir),
            ),
            data_files=store_files(self.ctx.config.store.path),
            reboot=self._reboot,
        )
        await self.reset.run()

    async def _recorded_reboot(self) -> None:
        self.reboots.append(self.ctx.clock.wall())
        log.warning("hardware.reboot_simulated")


def make_hardware(ctx: AppContext) -> HardwareService:
    """Factory for firmware.app.SERVICE_FACTORIES: the panel always runs (sim or GPIO)."""
    return HardwareService(ctx)
