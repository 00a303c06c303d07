"""Faults at home: 500s, 503 + Retry-After, timeouts, resets after commit, garbage answers.

The home server is the real program with its test-only fault injection turned on; whatever it
does, home must end with every record exactly once, in order per lane.
"""

from __future__ import annotations

import asyncio
import itertools
from functools import partial
from pathlib import Path

import pytest

from services.store import Event, Measurement, insert_event, insert_measurements
from tests.uplink_support import (
    appliance_config,
    identity_for,
    running_appliance,
    running_home,
    wait_for,
)

# The same tests against both home database back ends (SQLite and PostgreSQL).
pytestmark = pytest.mark.usefixtures("home_backend")


FAULTS = "seed=7,error500=0.1,unavailable=0.05,slow=0.1,slow_s=1.5,reset=0.15,garbage=0.1"
BATCHES = 40
PER_BATCH = 25


async def test_no_loss_no_duplicates_under_home_faults(tmp_path: Path) -> None:
    with running_home(tmp_path, faults=FAULTS) as home:
        config, _ = appliance_config(
            tmp_path, home, batch_max_records=60, request_timeout_s=0.7, batch_max_age_s=0.05
        )
        identity = identity_for(config)
        home.register(identity)
        async with running_appliance(config) as (ctx, _sup):
            for b in range(BATCHES):
                items = [
                    Measurement(None, "fault.seq", float(b * PER_BATCH + i))
                    for i in range(PER_BATCH)
                ]
                await ctx.store.write(partial(insert_measurements, items=items))
                if b % 4 == 0:
                    event = Event("test.event", message=f"e{b}", data={"b": b})
                    await ctx.store.write(partial(insert_event, event=event))
                await asyncio.sleep(0.02)
            total = BATCHES * PER_BATCH + BATCHES // 4
            await wait_for(
                lambda: home.rows("SELECT COUNT(*) FROM records")[0][0] >= total,
                timeout_s=90,
                what=f"{total} records at home",
            )
            await wait_for(lambda: ctx.status.snapshot().get("uplink.backlog") == 0, what="drain")
            local = await ctx.store.query("SELECT COUNT(*) AS n FROM measurements")
        got = home.records(identity.appliance_id)
        values = [b["value"] for _s, _l, kind, b in got if kind == "measurement"]
        assert values == [float(i) for i in range(BATCHES * PER_BATCH)]
        assert local == [{"n": len(values)}]  # home's count agrees with the appliance's own
        events = [b["data"]["b"] for _s, _l, kind, b in got if kind == "event"]
        assert events == list(range(0, BATCHES, 4))
        for lane in (0, 1):
            seqs = [seq for seq, lane_, _k, _b in got if lane_ == lane]
            assert seqs == sorted(set(seqs))
        # The hard case happened: home committed batches whose answers never arrived, and
        # recognised them when they came again.
        duplicates = home.rows("SELECT duplicates FROM appliances")[0][0]
        assert duplicates > 0


async def test_slow_down_answer_pauses_sending(tmp_path: Path) -> None:
    with running_home(tmp_path, faults="slowdown=1.0,slow_s=0.6") as home:
        config, _ = appliance_config(
            tmp_path, home, batch_max_records=10, batch_max_age_s=0.0, heartbeat_s=60.0
        )
        identity = identity_for(config)
        home.register(identity)
        async with running_appliance(config) as (ctx, _sup):
            items = [Measurement(None, "slow", float(i)) for i in range(40)]
            await ctx.store.write(lambda tx: insert_measurements(tx, items))
            await wait_for(lambda: len(home.records(identity.appliance_id)) == 40, what="40")
    arrivals = sorted(
        {round(t, 3) for (t,) in home.rows("SELECT received_at FROM records ORDER BY id")}
    )
    assert len(arrivals) == 4  # four batches of ten
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.55, gaps  # each answer asked for 0.6 s and got it
