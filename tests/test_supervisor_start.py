"""The supervisor's start and stop around shared resources: resources open first, in order, in
one exit stack; every setup is awaited in order before any run; a setup that fails or hangs
does not hold the others; everything closes in reverse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from core import supervisor as sup
from core.supervisor import FatalStartError, Resource, Supervisor


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sup, "BACKOFF_FIRST_S", 0.05)
    monkeypatch.setattr(sup, "BACKOFF_CAP_S", 0.2)
    monkeypatch.setattr(sup, "SETUP_BUDGET_S", 0.3)


def resource(
    name: str, journal: list[str], fail: bool = False
) -> Callable[[], AbstractAsyncContextManager[Any]]:
    @asynccontextmanager
    async def opened() -> AsyncIterator[None]:
        journal.append(f"open {name}")
        if fail:
            raise OSError("disk not mounted")
        try:
            yield
        finally:
            journal.append(f"close {name}")

    return opened


class Step:
    def __init__(self, name: str, journal: list[str], *, setup_fails: int = 0) -> None:
        self.name = name
        self.journal = journal
        self.setup_fails = setup_fails
        self.hang = False

    async def setup(self) -> None:
        self.journal.append(f"setup {self.name}")
        if self.hang:
            self.hang = False  # hangs the first time only
            await asyncio.sleep(3600)
        if self.setup_fails > 0:
            self.setup_fails -= 1
            raise RuntimeError("not yet")

    async def run(self) -> None:
        self.journal.append(f"run {self.name}")
        await asyncio.Event().wait()

    async def teardown(self) -> None:
        self.journal.append(f"teardown {self.name}")


async def test_resources_then_every_setup_then_runs_and_the_reverse_at_stop() -> None:
    journal: list[str] = []
    steps = [Step(n, journal) for n in ("web", "uplink", "polling")]
    s = Supervisor(
        list(steps),
        resources=[
            Resource("store", resource("store", journal)),
            Resource("snmp", resource("snmp", journal)),
        ],
    )
    await s.start()
    await asyncio.sleep(0.05)
    assert journal[:5] == ["open store", "open snmp", "setup web", "setup uplink", "setup polling"]
    assert sorted(journal[5:]) == ["run polling", "run uplink", "run web"]
    assert s.states["store"].state == s.states["web"].state == "running"
    journal.clear()
    await s.stop()
    assert journal == [
        "teardown polling",
        "teardown uplink",
        "teardown web",
        "close snmp",
        "close store",
    ]
    assert {st.state for st in s.states.values()} == {"stopped"}


async def test_a_resource_that_cannot_open_stops_the_start_and_closes_the_others() -> None:
    journal: list[str] = []
    s = Supervisor(
        [Step("web", journal)],
        resources=[
            Resource("store", resource("store", journal)),
            Resource("snmp", resource("snmp", journal, fail=True)),
        ],
    )
    with pytest.raises(FatalStartError, match="snmp: disk not mounted"):
        await s.start()
    assert journal == ["open store", "open snmp", "close store"]


async def test_a_failed_setup_backs_off_while_the_others_run() -> None:
    journal: list[str] = []
    flaky = Step("uplink", journal, setup_fails=2)
    s = Supervisor([Step("web", journal), flaky, Step("polling", journal)])
    await s.start()
    try:
        assert s.states["uplink"].state == "backoff"
        assert "RuntimeError: not yet" in s.states["uplink"].last_error
        await asyncio.sleep(0.02)
        assert s.states["web"].state == s.states["polling"].state == "running"
        for _ in range(100):
            if s.states["uplink"].state == "running":
                break
            await asyncio.sleep(0.02)
        assert s.states["uplink"].state == "running" and s.states["uplink"].restarts == 2
        assert journal.count("setup uplink") == 3 and journal.count("run uplink") == 1
    finally:
        await s.stop()
    assert "teardown uplink" in journal


async def test_a_hanging_setup_does_not_hold_the_start() -> None:
    journal: list[str] = []
    stuck = Step("discovery", journal)
    stuck.hang = True
    s = Supervisor([Step("web", journal), stuck, Step("polling", journal)])
    loop = asyncio.get_running_loop()
    began = loop.time()
    await s.start()
    try:
        assert loop.time() - began < 2.0  # the budget (0.3 s here), not the hour it would hang
        assert s.states["discovery"].state == "backoff"
        assert "did not finish within" in s.states["discovery"].last_error
        assert journal.index("setup polling") > journal.index("setup discovery")
        for _ in range(100):
            if s.states["discovery"].state == "running":
                break
            await asyncio.sleep(0.02)
        assert s.states["discovery"].state == "running"  # the second setup went through
    finally:
        await s.stop()
