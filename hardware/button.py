"""The front-panel button: hold time on release chooses the action.

Bands (seconds held, measured from press to release):
  < 0.05        ignored (contact bounce)
  0.05 - 3      short: show status and blink "identify" (the MSP sees a button event)
  3 - 5         nothing: a gap so a long "short" press can never reboot the box
  5 - 10        reboot
  10 - 20       factory reset, after a confirm blink that another press cancels
  >= 20         cancel: the way out for someone who changed their mind
While the button is held the LEDs show the band reached so far (reboot armed, reset armed),
so the person holding it knows when to let go.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from core.logs import get_log
from hardware.leds import PanelState

log = get_log("hardware")

BOUNCE_S = 0.05
SHORT_MAX_S = 3.0
REBOOT_FROM_S = 5.0
RESET_FROM_S = 10.0
CANCEL_FROM_S = 20.0
RESET_CONFIRM_S = 5.0  # the confirm blink before a factory reset; a press in it cancels


class Action(Enum):
    NONE = "none"
    STATUS = "status"
    REBOOT = "reboot"
    FACTORY_RESET = "factory_reset"
    CANCEL = "cancel"


def action_for_hold(held_s: float) -> Action:
    if held_s < BOUNCE_S:
        return Action.NONE
    if held_s < SHORT_MAX_S:
        return Action.STATUS
    if held_s < REBOOT_FROM_S:
        return Action.NONE
    if held_s < RESET_FROM_S:
        return Action.REBOOT
    if held_s < CANCEL_FROM_S:
        return Action.FACTORY_RESET
    return Action.CANCEL


def feedback_for_hold(held_s: float) -> PanelState | None:
    """What the LEDs show while the button is still held ``held_s`` seconds."""
    action = action_for_hold(held_s)
    if action is Action.REBOOT:
        return PanelState.REBOOT_ARMED
    if action is Action.FACTORY_RESET:
        return PanelState.RESET_ARMED
    return None


@dataclass
class ButtonMonitor:
    """Turns press/release edges (with monotonic time stamps) into actions."""

    pressed_at: float | None = None

    def press(self, at: float) -> None:
        self.pressed_at = at

    def held_s(self, now: float) -> float | None:
        return None if self.pressed_at is None else max(0.0, now - self.pressed_at)

    def release(self, at: float) -> Action:
        if self.pressed_at is None:
            return Action.NONE  # a release without a press (started while held): ignore
        held = max(0.0, at - self.pressed_at)
        self.pressed_at = None
        return action_for_hold(held)


def _remove_contents(directory: Path) -> int:
    """Delete everything inside ``directory`` (not the directory itself); count entries."""
    removed = 0
    if not directory.is_dir():
        return 0
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed += 1
    return removed


def store_files(store_path: str) -> list[Path]:
    """The SQLite database and its WAL/SHM/journal companions."""
    base = Path(store_path)
    return [base, *(base.with_name(base.name + s) for s in ("-wal", "-shm", "-journal"))]


@dataclass
class FactoryReset:
    """Wipe the appliance's identity and data, then reboot into a fresh, unclaimed box."""

    wipe_dirs: Iterable[Path]  # emptied, kept: identity, provisioning state (claim, configs)
    data_files: Iterable[Path]
    reboot: Callable[[], Awaitable[None]]
    wiped: list[str] = field(default_factory=list)

    async def run(self) -> None:
        await asyncio.to_thread(self._wipe)
        log.warning("hardware.factory_reset_done", removed=len(self.wiped))
        await self.reboot()

    def _wipe(self) -> None:
        for directory in self.wipe_dirs:
            count = _remove_contents(directory)
            self.wiped.append(f"{directory} ({count} entries)")
        for path in self.data_files:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            self.wiped.append(str(path))
        os.sync()  # the wipe must survive the reboot that follows


async def run_command_reboot(argv: tuple[str, ...]) -> None:
    """Reboot the Pi (``systemctl reboot``); systemd then stops the appliance cleanly."""
    log.warning("hardware.reboot", command=" ".join(argv))
    proc = await asyncio.create_subprocess_exec(*argv)
    await proc.wait()
