"""Group commit over a time window (store.commit_window_s): many deferred writes, one commit.

The window runs on the store's clock: these tests hold it still (FixedClock), advance it, and
call ``store.wake()`` so the writer thread looks again; one test uses the real clock to show the
bound holds in real time too. The crash test kills a child process running the real store.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.clock import Clock, FixedClock
from core.config import ConfigError, parse_config
from services.store import Event, Measurement, Store, Tx, insert_event, insert_measurements
from tests.conftest import REPO

WINDOW_S = 5.0
SETTLE_S = 10.0  # longest real wait for the writer thread to catch up (a loaded machine)


def _measure(i: int) -> Callable[[Tx], int]:
    return lambda tx: insert_measurements(tx, [Measurement(1, "test.value", float(i))])


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SETTLE_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.005)


async def _held(store: Store, n: int) -> None:
    """Wait until the writer has taken ``n`` deferred writes in and holds them uncommitted."""
    await _until(lambda: store.held == n, f"the writer holds {n} writes (holds {store.held})")


def _committed_values(path: str) -> list[float]:
    """What another connection sees: committed rows only (WAL readers never see the rest)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [float(v) for (v,) in conn.execute("SELECT value FROM measurements ORDER BY id")]
    finally:
        conn.close()


@pytest.fixture
async def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FixedClock):  # type: ignore[no-untyped-def]
    s = Store(tmp_path / "outpost.db", clock=clock, commit_window_s=WINDOW_S)
    await s.open()
    yield s
    await s.close()


async def test_writes_within_the_window_share_one_commit(store: Store, clock: FixedClock) -> None:
    futures = []
    for i in range(20):  # 20 poll results over 4 s: all inside the first one's window
        futures.append(store.submit(_measure(i), defer=True))
        clock.advance(0.2)
    store.wake()
    await _held(store, 20)
    assert store.commits == 0
    assert _committed_values(store.path) == []
    assert not any(f.done() for f in futures)
    clock.advance(WINDOW_S)  # the first write's window has ended
    store.wake()
    assert await asyncio.gather(*futures) == [1] * 20
    assert store.commits == 1, "20 writes inside one window must commit together"
    assert store.ops == 20
    assert _committed_values(store.path) == [float(i) for i in range(20)]


async def test_nothing_waits_longer_than_the_window(store: Store, clock: FixedClock) -> None:
    first = store.submit(_measure(0), defer=True)
    clock.advance(WINDOW_S - 0.25)
    store.wake()
    # A second write queued after the wake-up: once the writer holds it, it has seen the clock
    # 0.25 s short of the first write's deadline, and kept both.
    second = store.submit(_measure(1), defer=True)
    await _held(store, 2)
    assert store.commits == 0 and not first.done()
    clock.advance(0.25)  # exactly the window (binary fractions: no rounding)
    store.wake()
    await asyncio.wait_for(first, SETTLE_S)
    # The second write's window had not ended, but it rode along with the first one's commit.
    await asyncio.wait_for(second, SETTLE_S)
    assert store.commits == 1
    assert store.held == 0
    assert _committed_values(store.path) == [0.0, 1.0]


async def test_the_window_holds_in_real_time(tmp_path: Path) -> None:
    window = 0.3
    store = Store(tmp_path / "o.db", clock=Clock(), commit_window_s=window)
    await store.open()
    try:
        waited = []
        for i in range(3):
            began = time.monotonic()
            await store.write(_measure(i), defer=True)
            waited.append(time.monotonic() - began)
        assert store.commits == 3
    finally:
        await store.close()
    # Held for the window (not committed at once), and not much longer (a loaded machine).
    assert all(window * 0.9 <= w < window + 1.0 for w in waited), waited


async def test_a_write_that_cannot_wait_commits_what_is_held(
    store: Store, clock: FixedClock
) -> None:
    held = [store.submit(_measure(i), defer=True) for i in range(5)]
    await _held(store, 5)
    # An alert transition: committed at once, without the clock moving, with the 5 before it.
    event_id = await asyncio.wait_for(
        store.write(lambda tx: insert_event(tx, Event("alert.opened"))), SETTLE_S
    )
    assert event_id == 1
    assert all(f.done() for f in held)
    assert store.commits == 1 and store.held == 0
    assert _committed_values(store.path) == [0.0, 1.0, 2.0, 3.0, 4.0]
    # And flush() does the same for whoever needs the held writes durable now.
    later = store.submit(_measure(5), defer=True)
    await store.flush()
    assert later.done() and store.commits == 2


async def test_close_commits_everything_held(tmp_path: Path, clock: FixedClock) -> None:
    store = Store(tmp_path / "o.db", clock=clock, commit_window_s=3600.0)
    await store.open()
    futures = [store.submit(_measure(i), defer=True) for i in range(10)]
    await _held(store, 10)
    await store.close()  # the clock never moved: only close() can have committed them
    assert all(f.done() and f.result() == 1 for f in futures)
    assert _committed_values(store.path) == [float(i) for i in range(10)]


async def test_batch_max_ops_caps_what_one_commit_holds(tmp_path: Path, clock: FixedClock) -> None:
    store = Store(tmp_path / "o.db", clock=clock, commit_window_s=WINDOW_S, batch_max_ops=5)
    await store.open()
    try:
        futures = [store.submit(_measure(i), defer=True) for i in range(12)]
        await asyncio.wait_for(asyncio.gather(*futures[:10]), SETTLE_S)
        await _held(store, 2)
        assert store.commits == 2
        assert not futures[10].done() and not futures[11].done()
    finally:
        await store.close()
    assert store.commits == 3


async def test_writes_keep_the_order_asked_and_the_time_asked(
    store: Store, clock: FixedClock
) -> None:
    asked_at = clock.wall()
    first = store.submit(_measure(0), defer=True)
    clock.advance(2.0)
    await store.write(lambda tx: insert_event(tx, Event("alert.opened")))
    assert first.done()  # asked for before the urgent write: committed with it
    clock.advance(1.0)
    last = store.submit(_measure(2), defer=True)
    await _held(store, 1)  # asked for after it: waits for its own window
    clock.advance(WINDOW_S)
    store.wake()
    await asyncio.wait_for(last, SETTLE_S)
    rows = await store.query("SELECT value, ts FROM measurements ORDER BY id")
    # Stamped when asked for, not when committed (3 s and 8 s later).
    assert rows == [{"value": 0.0, "ts": asked_at}, {"value": 2.0, "ts": asked_at + 3.0}]
    (event_row,) = await store.query("SELECT ts FROM events")
    assert event_row["ts"] == asked_at + 2.0


async def test_a_failing_deferred_write_rolls_back_alone(store: Store, clock: FixedClock) -> None:
    def bad(tx: Tx) -> None:
        insert_measurements(tx, [Measurement(1, "test.value", -1.0)])
        raise ValueError("refused by the caller")

    good = [store.submit(_measure(i), defer=True) for i in range(3)]
    failing = store.submit(bad, defer=True)
    clock.advance(WINDOW_S)
    store.wake()
    with pytest.raises(ValueError, match="refused by the caller"):
        await asyncio.wait_for(failing, SETTLE_S)
    await asyncio.gather(*good)
    assert store.commits == 1
    assert _committed_values(store.path) == [0.0, 1.0, 2.0]


def test_bad_windows_are_refused_with_the_key_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"store\.commit_window_s"):
        Store(tmp_path / "o.db", commit_window_s=-1.0)
    with pytest.raises(ConfigError, match="commit_window_s"):
        parse_config("[store]\ncommit_window_s = -2\n")
    assert parse_config("").store.commit_window_s == 5.0
    assert parse_config("[store]\ncommit_window_s = 0\n").store.commit_window_s == 0.0


# ---- a crash: SIGKILL of a process running the real store


_CHILD = "tests.store_group_writer"
CHILD_WINDOW_S = 0.5
#: How late the writer thread may be, beyond the window, on a loaded 2-core machine.
CHILD_SLACK_S = 1.5


def _run_child(db: Path, start: int, run_s: float) -> tuple[list[str], float]:
    proc = subprocess.Popen(
        [sys.executable, "-m", _CHILD, str(db), str(start), str(CHILD_WINDOW_S)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    began = time.monotonic()
    try:
        while time.monotonic() - began < run_s:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.split("\n")[0])
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(15)
    lines.extend(proc.stdout.read().splitlines())  # printed before the kill: acknowledged too
    return lines, killed_at


def _parse(lines: list[str]) -> dict[str, Any]:
    asked: dict[int, float] = {}  # measurement i -> monotonic time asked for
    acked_events: list[int] = []  # alert-like writes whose commit the child saw
    order: list[tuple[str, int]] = []  # every write in the order asked
    for line in lines:
        kind, i, at = line.split()
        if kind == "m":
            asked[int(i)] = float(at)
            order.append(("m", int(i)))
        elif kind == "e":
            order.append(("e", int(i)))
        elif kind == "E":
            acked_events.append(int(i))
    return {"asked": asked, "acked": acked_events, "order": order}


def test_sigkill_loses_at_most_the_window_and_never_an_alert(tmp_path: Path) -> None:
    db = tmp_path / "outpost.db"
    start = 0
    for run in range(3):
        lines, killed_at = _run_child(db, start, 4.0 + run)
        seen = _parse(lines)
        assert len(seen["acked"]) >= 3, "the child committed too few alert writes to judge"
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            stored_m = {int(v) for (v,) in conn.execute("SELECT value FROM measurements")}
            stored_e = {int(m) for (m,) in conn.execute("SELECT message FROM events")}
        finally:
            conn.close()
        # Every alert write the child saw committed survived the kill.
        lost_alerts = set(seen["acked"]) - stored_e
        assert not lost_alerts, f"alert writes lost: {sorted(lost_alerts)[:5]}"
        # Measurements lost are only those asked for in the last window before the kill.
        lost = {i: at for i, at in seen["asked"].items() if i not in stored_m}
        old = {i: round(killed_at - at, 2) for i, at in lost.items()}
        old = {i: age for i, age in old.items() if age > CHILD_WINDOW_S + CHILD_SLACK_S}
        assert not old, f"measurements older than the window lost (age in s): {old}"
        # Order: a stored alert write means every measurement asked before it is stored too.
        pending: set[int] = set()
        for kind, i in seen["order"]:
            if kind == "m":
                pending.add(i)
            elif i in stored_e:
                missing = pending - stored_m
                assert not missing, f"alert {i} stored without measurements {sorted(missing)}"
        start += 100_000
    assert len(stored_m) > 100
