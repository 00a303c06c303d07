"""Uplink end to end over loopback: real home server process, real TLS from a test CA."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import pytest

from core.vocabulary import Severity
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


def _measurements(n: int, start: int = 0) -> list[Measurement]:
    return [Measurement(None, "test.counter", float(start + i), unit="n") for i in range(n)]


async def test_records_arrive_once_in_order_alerts_first(tmp_path: Path) -> None:
    with running_home(tmp_path) as home:
        config, _ = appliance_config(tmp_path, home, batch_max_records=50)
        identity = identity_for(config)
        home.register(identity)
        async with running_appliance(config) as (ctx, _sup):
            # Queue bulk first, then an event: the event (priority lane) must still lead.
            for chunk in range(4):
                items = _measurements(100, chunk * 100)
                await ctx.store.write(partial(insert_measurements, items=items))
            await ctx.store.write(
                lambda tx: insert_event(
                    tx, Event("alert.opened", severity=Severity.MAJOR, message="x")
                )
            )
            await wait_for(
                lambda: len(home.records(identity.appliance_id)) == 401, what="401 records at home"
            )
            await wait_for(lambda: ctx.status.snapshot().get("uplink.backlog") == 0, what="drain")
            assert ctx.status.snapshot()["uplink.state"] == "connected"
        got = home.records(identity.appliance_id)
        values = [body["value"] for _s, lane, kind, body in got if kind == "measurement"]
        assert values == [float(i) for i in range(400)]  # every one, once, in order
        bulk_seqs = [seq for seq, lane, _k, _b in got if lane == 1]
        assert bulk_seqs == sorted(bulk_seqs) and len(set(bulk_seqs)) == 400
        event = next(body for _s, lane, kind, body in got if kind == "event")
        assert event["kind"] == "alert.opened" and event["severity"] == "major"
        m = next(body for _s, _l, kind, body in got if kind == "measurement")
        assert m["metric"] == "test.counter" and m["unit"] == "n" and m["boot_id"]
        # The event overtook the bulk that was still waiting when it was queued.
        first_bulk_after_event = next(i for i, r in enumerate(got) if r[2] == "event")
        assert first_bulk_after_event < 400
        assert home.rows("SELECT COUNT(*) FROM records")[0][0] == 401


async def test_restart_resumes_from_last_ack_not_now(tmp_path: Path) -> None:
    with running_home(tmp_path) as home:
        config, _ = appliance_config(tmp_path, home)
        identity = identity_for(config)
        home.register(identity)
        home.stop()  # home is down: the appliance buffers
        async with running_appliance(config) as (ctx, _sup):
            await ctx.store.write(lambda tx: insert_measurements(tx, _measurements(30)))
            await wait_for(
                lambda: ctx.status.snapshot().get("uplink.state") in ("buffering", "failing"),
                what="buffering state",
            )
        home.start()
        async with running_appliance(config) as (ctx, _sup):
            await wait_for(lambda: len(home.records(identity.appliance_id)) == 30, what="drain")
            await ctx.store.write(lambda tx: insert_measurements(tx, _measurements(5, 30)))
            await wait_for(lambda: len(home.records(identity.appliance_id)) == 35, what="more")
        values = [b["value"] for *_x, b in home.records(identity.appliance_id)]
        assert values == [float(i) for i in range(35)]


async def test_bad_record_is_quarantined_and_queue_moves_on(tmp_path: Path) -> None:
    with running_home(tmp_path) as home:
        config, _ = appliance_config(tmp_path, home)
        identity = identity_for(config)
        home.register(identity)
        async with running_appliance(config) as (ctx, _sup):
            items = [
                *_measurements(3),
                Measurement(None, "bad.value", math.nan),
                *_measurements(3, 3),
            ]
            await ctx.store.write(lambda tx: insert_measurements(tx, items))
            await wait_for(lambda: len(home.records(identity.appliance_id)) == 6, what="6 good")
            quarantined = await ctx.store.query("SELECT kind, reason FROM uplink_quarantine")
            drops = await ctx.store.query("SELECT reason, kind, count FROM uplink_drops")
        assert len(quarantined) == 1 and "finite" in quarantined[0]["reason"]
        assert drops == [{"reason": "quarantined", "kind": "measurement", "count": 1}]
        values = [b["value"] for *_x, b in home.records(identity.appliance_id)]
        assert values == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
