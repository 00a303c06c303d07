"""systemd notification without libsystemd: READY, WATCHDOG keep-alives, STATUS, STOPPING.

systemd passes ``NOTIFY_SOCKET`` (a Unix datagram socket path, or "@name" in the abstract
namespace) and, with ``WatchdogSec=``, ``WATCHDOG_USEC``. The keep-alive is sent by a task on
the appliance's event loop at half the watchdog period, so a blocked or wedged loop stops the
pings and systemd restarts the process: exactly the failure the watchdog exists to catch.
READY=1 is sent once the app has started every service (status phase "running").
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

from core.logs import get_log
from core.status import StatusKey
from services.context import AppContext

log = get_log("watchdog")

READY_WAIT_S = 120.0  # READY is sent after this even if the phase never says "running"
STATUS_EVERY_PINGS = 10  # refresh the STATUS= line every this many keep-alives


class Notifier:
    """One datagram socket to systemd's notify socket (or a no-op when not under systemd)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self.address = ("\0" + path[1:]) if path.startswith("@") else path
        self.watchdog_s: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1_000_000
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *lines: str) -> bool:
        if not self.address:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            log.warning("watchdog.notify_failed", error=exc.strerror or str(exc))
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def status_line(facts: Mapping[str, object]) -> str:
    panel = facts.get(StatusKey.PANEL)
    state = panel.get("state") if isinstance(panel, Mapping) else None
    return (
        f"STATUS=panel {state or 'n/a'}, uplink {facts.get('uplink.state', 'n/a')}, "
        f"backlog {facts.get('uplink.backlog', 'n/a')}"
    )


class WatchdogService:
    name = "watchdog"

    def __init__(self, ctx: AppContext, notifier: Notifier | None = None) -> None:
        self.ctx = ctx
        self.notifier = notifier or Notifier()
        self.pings = 0

    async def setup(self) -> None:
        if self.notifier.enabled:
            log.info("watchdog.ready", keepalive_s=self.notifier.watchdog_s or 0)

    async def run(self) -> None:
        if not self.notifier.enabled:
            await asyncio.Event().wait()  # not under systemd: nothing to do
        await self._wait_running()
        self.notifier.send("READY=1", status_line(self.ctx.status.snapshot()))
        period = self.notifier.watchdog_s
        if period is None:
            await asyncio.Event().wait()
            return
        interval = period / 2
        while True:
            lines = ["WATCHDOG=1"]
            if self.pings % STATUS_EVERY_PINGS == 0:
                lines.append(status_line(self.ctx.status.snapshot()))
            self.notifier.send(*lines)
            self.pings += 1
            await asyncio.sleep(interval)

    async def _wait_running(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_WAIT_S
        while self.ctx.status.snapshot().get(StatusKey.PHASE) != "running":
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("watchdog.ready_without_running")
                return
            await self.ctx.status.wait_changed(min(remaining, 1.0))

    async def teardown(self) -> None:
        self.notifier.send("STOPPING=1")
        self.notifier.close()


def make_watchdog(ctx: AppContext) -> WatchdogService | None:
    """Factory for firmware.app.SERVICE_FACTORIES: only under systemd (NOTIFY_SOCKET set)."""
    notifier = Notifier()
    return WatchdogService(ctx, notifier) if notifier.enabled else None
