"""The supervisor: start order, reverse stop within 5 s, crash restart with capped back-off."""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import subprocess
import time
from pathlib import Path

import pytest

from core import supervisor as sup
from core.clock import VirtualClock
from core.logs import get_log, setup_logging
from core.schema import Secret
from core.supervisor import FatalStartError, Supervisor
from tests.conftest import OUTPOST, REPO


class Recorder:
    def __init__(
        self,
        name: str,
        journal: list[str],
        *,
        crash_times: int = 0,
        ignore_cancel: bool = False,
        fail_setup: bool = False,
    ) -> None:
        self.name = name
        self.journal = journal
        self.crash_times = crash_times
        self.ignore_cancel = ignore_cancel
        self.fail_setup = fail_setup

    async def setup(self) -> None:
        self.journal.append(f"setup {self.name}")
        if self.fail_setup:
            raise RuntimeError("disk not mounted")

    async def run(self) -> None:
        self.journal.append(f"run {self.name}")
        if self.crash_times > 0:
            self.crash_times -= 1
            raise RuntimeError("boom")
        if self.ignore_cancel:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                # A badly written service: swallows the cancel and stalls in its cleanup
                # (until it is cancelled once more, by the loop's own shutdown).
                self.journal.append(f"ignored cancel {self.name}")
                await asyncio.sleep(3600)
        await asyncio.Event().wait()

    async def teardown(self) -> None:
        self.journal.append(f"teardown {self.name}")


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sup, "BACKOFF_FIRST_S", 0.05)
    monkeypatch.setattr(sup, "BACKOFF_CAP_S", 0.2)


async def test_starts_in_order_and_stops_in_reverse() -> None:
    journal: list[str] = []
    s = Supervisor(
        [Recorder(n, journal) for n in ("store", "web", "polling")], critical=frozenset({"store"})
    )
    await s.start()
    await asyncio.sleep(0.05)
    assert journal[:2] == ["setup store", "run store"] or journal[0] == "setup store"
    assert journal.index("setup web") < journal.index("setup polling")
    journal.clear()
    await s.stop()
    assert journal == ["teardown polling", "teardown web", "teardown store"]
    assert {st.state for st in s.states.values()} == {"stopped"}


async def test_crashing_service_is_restarted_and_others_keep_running() -> None:
    journal: list[str] = []
    flaky = Recorder("flaky", journal, crash_times=3)
    steady = Recorder("steady", journal)
    s = Supervisor([steady, flaky], clock=VirtualClock())  # back-off waits take no real time
    await s.start()
    for _ in range(100):
        if s.states["flaky"].state == "running" and flaky.crash_times == 0:
            break
        await asyncio.sleep(0)
    assert s.states["flaky"].restarts == 3
    assert "RuntimeError: boom" in s.states["flaky"].last_error
    assert s.states["steady"].state == "running"
    # Each crash tears down and sets up again before the next run.
    assert journal.count("setup flaky") == 4 and journal.count("teardown flaky") == 3
    await s.stop()


async def test_backoff_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real back-off (1 s doubling, capped at 60 s), on virtual time: no real waiting.
    monkeypatch.setattr(sup, "BACKOFF_FIRST_S", 1.0)
    monkeypatch.setattr(sup, "BACKOFF_CAP_S", 60.0)
    clock = VirtualClock()
    journal: list[str] = []
    s = Supervisor([Recorder("flaky", journal, crash_times=8)], clock=clock)
    await s.start()
    for _ in range(200):
        if s.states["flaky"].restarts == 8:
            break
        await asyncio.sleep(0)
    await s.stop()
    assert clock.slept[:8] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


class CrashesAfter:
    """A service that runs ``run_s`` of virtual time before each crash."""

    def __init__(self, clock: VirtualClock, run_s: list[float]) -> None:
        self.name = "late"
        self.clock = clock
        self.run_s = run_s

    async def setup(self) -> None:
        pass

    async def run(self) -> None:
        if not self.run_s:
            await asyncio.Event().wait()
        await self.clock.sleep(self.run_s.pop(0))
        raise RuntimeError("boom")

    async def teardown(self) -> None:
        pass


async def test_a_service_stable_for_two_minutes_starts_its_backoff_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sup, "BACKOFF_FIRST_S", 1.0)
    monkeypatch.setattr(sup, "BACKOFF_CAP_S", 60.0)
    clock = VirtualClock()
    # Three quick crashes (back-off grows), then one after 121 s of running (STABLE_AFTER_S is
    # 120 s): the count starts over, so the next wait is the first one again.
    service = CrashesAfter(clock, [0.0, 0.0, 0.0, 121.0])
    s = Supervisor([service], clock=clock)
    await s.start()
    for _ in range(200):
        if s.states["late"].restarts == 4:
            break
        await asyncio.sleep(0)
    await s.stop()
    backoffs = [w for w in clock.slept if w not in (0.0, 121.0)]
    assert backoffs == [1.0, 2.0, 4.0, 1.0]


async def test_stop_finishes_within_budget_even_if_a_service_ignores_cancel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sup, "STOP_BUDGET_S", 1.0)
    journal: list[str] = []
    s = Supervisor([Recorder("ok", journal), Recorder("stubborn", journal, ignore_cancel=True)])
    await s.start()
    await asyncio.sleep(0.05)
    began = time.monotonic()
    await s.stop()
    assert time.monotonic() - began < 1.5
    assert "teardown ok" in journal


async def test_critical_setup_failure_stops_the_start() -> None:
    journal: list[str] = []
    s = Supervisor(
        [Recorder("store", journal, fail_setup=True), Recorder("web", journal)],
        critical=frozenset({"store"}),
    )
    with pytest.raises(FatalStartError, match="store: disk not mounted"):
        await s.start()
    assert "setup web" not in journal


def test_log_lines_are_single_line_and_hide_secrets() -> None:
    stream = io.StringIO()
    setup_logging("info", stream)
    log = get_log("discovery")
    log.info("device.named", name="evil\nname=forged <b>", community=Secret("hunter2"))
    try:
        raise ValueError("multi\nline")
    except ValueError:
        log.exception("oops")
    lines = stream.getvalue().splitlines()
    logging.getLogger("outpost").handlers.clear()
    assert len(lines) == 2
    assert 'name="evil\ufffdname=forged <b>"' in lines[0]
    assert "hunter2" not in stream.getvalue() and "community=<hidden>" in lines[0]
    assert "ValueError: multi" in lines[1]


def test_real_process_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "outpost.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "o.db"}"\n[web]\nlisten = "127.0.0.1"\nport = 18931\n'
        "[discovery]\nenabled = false\n[polling]\nenabled = false\n"
    )
    proc = subprocess.Popen(
        [*OUTPOST, "run", "--config", str(config)], cwd=REPO, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if "appliance.running" in line:
                break
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
        took = time.monotonic() - began
    finally:
        proc.kill()
    rest = proc.stderr.read()
    assert rc == 0
    assert took < 5.0
    assert "appliance.stopped" in rest


async def test_stop_abandons_a_teardown_that_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sup, "STOP_BUDGET_S", 0.5)
    journal: list[str] = []

    class HangingTeardown(Recorder):
        async def teardown(self) -> None:
            journal.append("teardown hangs")
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await asyncio.sleep(3600)  # and ignores being cancelled once

    s = Supervisor([Recorder("store", journal), HangingTeardown("web", journal)])
    await s.start()
    await asyncio.sleep(0.05)
    began = time.monotonic()
    await s.stop()
    assert time.monotonic() - began < 1.5
    assert "teardown hangs" in journal and "teardown store" in journal
