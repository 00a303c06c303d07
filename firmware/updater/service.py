"""The appliance's updater service: reports a release on trial healthy, and shows update state.

A release on trial is healthy when it has run ``healthy_after_s`` with every service up, no
fault, and, when an uplink is configured, after it has reached home at least once: a release
that cannot phone home is exactly the one nobody could fix remotely, so it must not commit.
The updater (root, outside this process) reads the report and commits or, at the end of the
window, rolls back. This service never touches the install root itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from core import mailbox
from core.clock import BootInfo
from core.logs import get_log
from core.status import StatusKey
from core.update_state import UpdateJournal, read_update_journal
from services.context import AppContext

log = get_log("updater")

CHECK_EVERY_S = 2.0
# Journal phases as the status page and LEDs show them.
_SHOWN = {
    "idle": "idle",
    "downloading": "downloading",
    "verifying": "installing",
    "unpacking": "installing",
    "building": "installing",
    "switching": "installing",
    "trial": "trial",
    "rolling_back": "installing",
}


class UpdaterService:
    name = "updater"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.settings = ctx.config.updates
        self.mailbox = Path(self.settings.mailbox_dir)
        self.started = self.ctx.clock.monotonic()
        self.reached_home = False
        self.reported_for: str | None = None

    def journal(self) -> UpdateJournal:
        """The updater's journal (core/update_state.py); "idle" when absent or unreadable."""
        return read_update_journal(self.settings.root)

    def request_update(self, url: str, version: str | None, command_id: str | None) -> None:
        """Ask the updater (via the mailbox; a path unit starts it) to install a bundle."""
        mailbox.write_request(self.mailbox, url, version, command_id, clock=self.ctx.clock)
        log.info("update.request_sent", url=url, version=version, command_id=command_id)

    def healthy(self) -> str | None:
        """Why this process is not healthy yet, or None when it is."""
        facts = self.ctx.status.snapshot()
        if facts.get(StatusKey.UPLINK_STATE) == "connected":
            self.reached_home = True
        if self.ctx.clock.monotonic() - self.started < self.settings.healthy_after_s:
            return f"running less than {self.settings.healthy_after_s:g} s"
        if facts.get(StatusKey.PHASE) != "running":
            return "services not all started"
        if facts.get(StatusKey.FAULT):
            return f"fault: {facts['fault']}"
        if self.ctx.config.uplink.url and not self.reached_home:
            return "has not reached home yet"
        return None

    async def setup(self) -> None:
        self.ctx.status.publish(StatusKey.UPDATE_STATE, _SHOWN.get(self.journal().phase, "idle"))

    async def run(self) -> None:
        while True:
            state = self.journal()
            self.ctx.status.publish(StatusKey.UPDATE_STATE, _SHOWN.get(state.phase, "idle"))
            if (
                state.phase == "trial"
                and state.trial_version == self.ctx.version
                and self.reported_for != self.ctx.version
            ):
                why_not = self.healthy()
                if why_not is None:
                    await asyncio.to_thread(
                        mailbox.write_health,
                        self.mailbox,
                        self.ctx.version,
                        BootInfo.read().boot_id,
                        "services up" + (", home reached" if self.reached_home else ""),
                        clock=self.ctx.clock,
                    )
                    self.reported_for = self.ctx.version
                    log.info("update.healthy_reported", version=self.ctx.version)
            wait_s = CHECK_EVERY_S
            if state.phase == "trial":
                # Wake right when the clean-running time is up rather than up to 2 s later.
                due = self.started + self.settings.healthy_after_s - self.ctx.clock.monotonic()
                wait_s = min(wait_s, max(0.05, due + 0.01))
            # A plain sleep, not status.wait_changed: on Python 3.11 asyncio.wait_for can
            # swallow a cancellation that races with the event firing, and stop() would hang.
            # On the clock: tests run the clean-running window on virtual time.
            await self.ctx.clock.sleep(wait_s)

    async def teardown(self) -> None:
        return None


def make_updater(ctx: AppContext) -> UpdaterService:
    return UpdaterService(ctx)
