"""Bounded storage: thin, then drop bulk, alerts and events last; counts reported; full disk."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from core.clock import FixedClock
from firmware.app import build
from services.store import Event, Measurement, StoreError, insert_event, insert_measurements
from services.uplink.budget import MIB, BudgetKeeper, measure
from tests.conftest import needs_root
from tests.uplink_support import (
    Home,
    appliance_config,
    identity_for,
    running_appliance,
    wait_for,
)

SERIES = 5


async def _fill(ctx: object, clock: FixedClock, minutes: int) -> None:
    """One measurement per series every 10 s of virtual time, an event every 10 minutes."""
    store = ctx.store  # type: ignore[attr-defined]
    for minute in range(minutes):
        for _tick in range(6):
            items = [Measurement(None, f"load.{s}", float(minute)) for s in range(SERIES)]
            await store.write(partial(insert_measurements, items=items))
            clock.advance(10.0)
        if minute % 10 == 0:
            event = Event("test.mark", message=f"minute {minute}")
            await store.write(partial(insert_event, event=event))


async def test_over_budget_thins_then_drops_bulk_keeping_events(tmp_path: Path) -> None:
    home = Home(tmp_path / "home", tmp_path / "ca")
    home.prepare()  # not started: everything stays in the outbox
    config, _ = appliance_config(tmp_path, home, store={"budget_mb": 1})
    clock = FixedClock(synced=True)
    ctx, _sup = build(config, clock)
    await ctx.store.open()
    try:
        await _fill(ctx, clock, minutes=600)  # 10 hours, 18 000 measurements
        before = measure(ctx.store.path, 1 * MIB)
        assert before.live > 1 * MIB, "the test must start over budget"
        keeper = BudgetKeeper(ctx)
        assert await keeper.keep()
        after = measure(ctx.store.path, 1 * MIB)
        assert after.live <= 1 * MIB
        drops = {
            (r["reason"], r["kind"]): r["count"]
            for r in await ctx.store.query("SELECT * FROM uplink_drops")
        }
        assert drops.get(("thinned", "measurement"), 0) > 0
        events = await ctx.store.query("SELECT COUNT(*) AS n FROM outbox WHERE lane = 0")
        assert events == [{"n": 60}]  # alerts and events go last: none was touched
        # What is left of the bulk is in seq order, oldest rolled up, newest tenth untouched.
        rows = await ctx.store.query("SELECT seq, body FROM outbox WHERE lane = 1 ORDER BY seq")
        assert len(rows) < 18000
        assert rows[-1]["body"].count(",") == 3  # the newest rows are still raw
        assert any(r["body"].count(",") == 7 for r in rows)  # roll-ups exist
    finally:
        await ctx.store.close()


async def test_unsynced_clock_never_evicts_by_age(tmp_path: Path) -> None:
    home = Home(tmp_path / "home", tmp_path / "ca")
    home.prepare()
    config, _ = appliance_config(tmp_path, home, store={"max_age_days": 1})
    clock = FixedClock(synced=False)
    ctx, _sup = build(config, clock)
    await ctx.store.open()
    try:
        await _fill(ctx, clock, minutes=20)
        clock.advance(10 * 86400.0)  # the wall clock jumps (or is simply wrong)
        keeper = BudgetKeeper(ctx)
        assert not await keeper.keep()
        count = await ctx.store.query("SELECT COUNT(*) AS n FROM measurements")
        assert count == [{"n": 20 * 6 * SERIES}]
        clock.synced = True  # once synchronised, a (synced) stale row may go: none are synced
        assert not await keeper.keep()
    finally:
        await ctx.store.close()


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@needs_root
async def test_full_disk_keeps_running_trims_and_reports(tmp_path: Path) -> None:
    home = Home(tmp_path / "home", tmp_path / "ca")
    home.prepare()  # home is down while the disk fills, so the outbox fills it too
    # The store's budget (2 MiB) is filled well past, as fast as the store takes writes, on a
    # partition (16 MiB) small enough that the WAL of that flood fills it at moments.
    with tmpfs(tmp_path / "small", "16m") as small:
        config, _ = appliance_config(
            tmp_path,
            home,
            store={"path": str(small / "outpost.db"), "budget_mb": 2},
            storage_check_s=0.2,
            heartbeat_s=0.5,
        )
        identity = identity_for(config)
        home.register(identity)
        full_errors = 0
        stored = 0
        async with running_appliance(config) as (ctx, supervisor):
            deadline = time.monotonic() + 30.0
            i = 0
            # Write until well over the budget is stored (at >= 40 bytes a measurement).
            while time.monotonic() < deadline and stored * 40 < 3 * MIB:
                items = [Measurement(None, f"fill.{s}", float(i)) for s in range(100)]
                i += 1
                try:
                    await ctx.store.write(partial(insert_measurements, items=items))
                    stored += len(items)
                except StoreError:
                    full_errors += 1
                await asyncio.sleep(0.005)
                if i % 20 == 0:
                    await ctx.store.write(lambda tx: insert_event(tx, Event("fill.mark")))
            drops = await ctx.store.query(
                "SELECT reason, SUM(count) AS n FROM uplink_drops GROUP BY reason"
            )
            # Still healthy: once the flood ends, writes succeed again and every service runs.
            recovered_at = time.monotonic() + 10.0
            while True:
                try:
                    await ctx.store.write(
                        lambda tx: insert_measurements(tx, [Measurement(None, "after", 1.0)])
                    )
                    break
                except StoreError:
                    assert time.monotonic() < recovered_at, "the store did not recover"
                    await asyncio.sleep(0.2)
            states = {n: s.state for n, s in supervisor.states.items()}
            assert states["store"] == "running" and states["storage-budget"] == "running"
            # The counts travel home once home is back.
            home.start()
            try:
                await wait_for(
                    lambda: home.rows("SELECT drops FROM appliances")[0][0] not in ("{}", None),
                    what="drop counts at home",
                )
                reported = home.rows("SELECT drops FROM appliances")[0][0]
            finally:
                home.stop()
        reasons = {r["reason"]: r["n"] for r in drops}
        # At least 40 bytes a measurement (row and outbox row): well over the budget.
        assert stored * 40 >= 3 * MIB, "the test must write more than the budget holds"
        # The WAL of a flood of writes can still fill the partition for a moment (StoreFull);
        # the keeper releases its ballast, trims, and writes succeed again (checked above).
        assert reasons.get("thinned", 0) + reasons.get("budget", 0) > 0
        assert "thinned" in reported or "budget" in reported
        print(f"full disk: stored {stored}, StoreFull {full_errors} times, drops {reasons}")


async def test_synced_clock_evicts_by_age_and_counts_it(tmp_path: Path) -> None:
    home = Home(tmp_path / "home", tmp_path / "ca")
    home.prepare()
    config, _ = appliance_config(tmp_path, home, store={"max_age_days": 1})
    clock = FixedClock(synced=True)
    ctx, _sup = build(config, clock)
    await ctx.store.open()
    try:
        await _fill(ctx, clock, minutes=20)  # 600 measurements, 2 events, all stamped synced
        clock.advance(2 * 86400.0)
        await _fill(ctx, clock, minutes=1)  # fresh ones stay
        assert await BudgetKeeper(ctx).keep()
        left = await ctx.store.query("SELECT COUNT(*) AS n FROM measurements")
        drops = await ctx.store.query(
            "SELECT kind, count FROM uplink_drops WHERE reason = 'max_age' ORDER BY kind"
        )
    finally:
        await ctx.store.close()
    assert left == [{"n": 6 * SERIES}]
    assert drops == [{"kind": "event", "count": 2}, {"kind": "measurement", "count": 600}]
