"""The appliance's side of updates: a release on trial reports itself healthy, and only then."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from core import fsops
from core.clock import VirtualClock
from core.config import parse_config
from core.status import StatusKey
from firmware.updater.service import UpdaterService
from services.context import AppContext
from services.store import Store


def _ctx(tmp_path: Path, uplink: bool) -> AppContext:
    text = (
        f'[updates]\nroot = "{tmp_path}"\nmailbox_dir = "{tmp_path / "mailbox"}"\n'
        "healthy_after_s = 0.3\n"
    )
    if uplink:
        text += '[uplink]\nurl = "https://198.19.0.2:8443"\n'
    return AppContext(
        config=parse_config(text),
        store=Store(tmp_path / "o.db"),
        clock=VirtualClock(),  # the 0.3 s clean-running window passes on virtual time
        version="1.1.0",
    )


def _trial(tmp_path: Path, version: str) -> None:
    (tmp_path / "updater").mkdir(exist_ok=True)
    fsops.write_json_atomic(
        tmp_path / "updater" / "state.json",
        {"phase": "trial", "trial": {"version": version}, "history": []},
    )


async def _run_for(service: UpdaterService, seconds: float) -> None:
    """Run the service's loop for ``seconds`` of virtual time (no real waiting)."""
    clock = service.ctx.clock
    end = clock.monotonic() + seconds
    await service.setup()
    task = asyncio.create_task(service.run())
    for _ in range(10_000):  # each turn of the loop advances the clock by its wait
        if clock.monotonic() >= end or task.done():
            break
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_trial_release_reports_healthy_after_running_cleanly(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, uplink=False)
    _trial(tmp_path, "1.1.0")
    service = UpdaterService(ctx)
    ctx.status.publish(StatusKey.PHASE, "running")
    await _run_for(service, 0.1)
    assert not (tmp_path / "mailbox" / "health.json").exists()  # too early
    assert ctx.status.snapshot()["update.state"] == "trial"
    await _run_for(service, 0.5)
    health = json.loads((tmp_path / "mailbox" / "health.json").read_text())
    assert health["version"] == "1.1.0"


async def test_release_that_cannot_reach_home_never_reports_healthy(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, uplink=True)
    _trial(tmp_path, "1.1.0")
    service = UpdaterService(ctx)
    ctx.status.publish(StatusKey.PHASE, "running")
    ctx.status.publish(StatusKey.UPLINK_STATE, "failing")
    await _run_for(service, 0.6)
    assert not (tmp_path / "mailbox" / "health.json").exists()
    assert service.healthy() == "has not reached home yet"
    ctx.status.publish(StatusKey.UPLINK_STATE, "connected")
    await _run_for(service, 0.3)
    assert (tmp_path / "mailbox" / "health.json").exists()


async def test_no_report_for_another_version_or_outside_a_trial(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, uplink=False)
    _trial(tmp_path, "1.2.0")  # the updater put another release on trial than the one running
    service = UpdaterService(ctx)
    ctx.status.publish(StatusKey.PHASE, "running")
    await _run_for(service, 0.6)
    assert not (tmp_path / "mailbox" / "health.json").exists()
    (tmp_path / "updater" / "state.json").unlink()
    await _run_for(service, 0.2)
    assert ctx.status.snapshot()["update.state"] == "idle"
    service.request_update("https://home/bundle", "1.2.0", "c1")
    request = json.loads((tmp_path / "mailbox" / "request.json").read_text())
    assert request["url"] == "https://home/bundle" and request["command_id"] == "c1"
