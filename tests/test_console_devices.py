"""A device's readings on the console (home/console/devices.py), on both back ends: only that
device's series of the last day, found through migration 14's index on the body's device id,
and a box's text that PostgreSQL's jsonb would refuse does not stop the ingest."""

from __future__ import annotations

from typing import Any

import pytest

from core.clock import FixedClock
from home.console import devices
from home.db import HomeDB
from home.sql import Connection
from simsite.harness.signed_client import LightAppliance, new_identity

pytestmark = pytest.mark.usefixtures("home_backend")

NOW = 1_800_000_000.0
LOOKALIKES = (7, 17, 70)  # "device_id":7 is a prefix of 70 in the body's text


def _ingest(db: HomeDB, box: LightAppliance, records: list[tuple[int, str, dict[str, Any]]],
            ts: float) -> None:  # fmt: skip
    doc = box.batch(records, ts=ts)
    answer = db.ingest_sync(box.identity.appliance_id, f"n{box.next_seq}", doc)
    assert answer["accepted"] == len(records), answer


def _rtt(device: int, minute: int) -> tuple[int, str, dict[str, Any]]:
    body = {"device_id": device, "metric": "icmp.rtt_ms", "instance": "", "unit": "ms",
            "value": device + minute / 100, "mono": 100.0 + minute, "boot_id": "b"}  # fmt: skip
    return (1, "measurement", body)


def _index_used(conn: Connection, sql: str, params: tuple[Any, ...]) -> str:
    """The plan of ``sql``, as text (PostgreSQL: with sequential scans priced out, since the
    test's table is tiny; child partitions carry their own copy of the index)."""
    if conn.dialect == "sqlite":
        return " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    conn.execute("SET enable_seqscan = off")
    try:
        plan = " ".join(str(r[0]) for r in conn.execute("EXPLAIN " + sql, params))
    finally:
        conn.execute("RESET enable_seqscan")
    children = conn.execute(
        "SELECT CAST(h.inhrelid AS regclass) FROM pg_inherits h"
        " WHERE h.inhparent = CAST('records_measurement_device' AS regclass)"
    ).fetchall()
    for (child,) in children:
        plan = plan.replace(str(child), "records_measurement_device")
    return plan


def test_readings_are_the_devices_own_series_of_the_day(home_database: str) -> None:
    db = HomeDB(home_database, clock=FixedClock(NOW))
    db.open_sync()
    try:
        box = LightAppliance(new_identity())
        aid = box.identity.appliance_id
        db.register_sync(aid, box.identity.public_text, "Dentist")
        # A day and a minute ago: outside the chart's window.
        _ingest(db, box, [_rtt(7, -99_999)], NOW - devices.READINGS_WINDOW_S - 60)
        for minute in range(-30, 1):
            records = [_rtt(d, minute) for d in LOOKALIKES]
            # The box's own series (no device) and an interface whose name holds a NUL.
            records.append(
                (
                    1,
                    "measurement",
                    {
                        "device_id": None,
                        "metric": "uplink.backlog",
                        "instance": "",
                        "unit": "",
                        "value": 3.0,
                    },
                )
            )
            records.append((1, "measurement", {"device_id": 7, "metric": "if.in_bps",
                                               "instance": "eth\x000", "unit": "bit/s",
                                               "value": 1000.0 * (minute + 31)}))  # fmt: skip
            _ingest(db, box, records, NOW + minute * 60)

        got = devices.readings(db.conn, aid, 7, NOW)

        expected = [("icmp.rtt_ms", ""), ("if.in_bps", "eth\x000")]
        assert [(r.metric, r.instance) for r in got] == expected
        rtt, traffic = got
        assert (rtt.latest, rtt.low, rtt.high) == (7.0, 6.7, 7.0)  # not 17, 70, nor a day ago
        assert rtt.span_s == 1800.0 and rtt.at == NOW and rtt.unit == "ms"
        assert len(rtt.points.split()) == 31
        assert (traffic.latest, traffic.low, traffic.high) == (31000.0, 1000.0, 31000.0)
        assert [r.latest for r in devices.readings(db.conn, aid, 70, NOW)] == [70.0]
        assert devices.readings(db.conn, aid, 8, NOW) == []
        assert devices.readings(db.conn, "op-other", 7, NOW) == []

        key: int | str = 7 if db.dialect == "sqlite" else "7"
        sql = devices.readings_sql(db.dialect)
        plan = _index_used(db.conn, sql, (aid, key, NOW - 86400, 100))
        assert "records_measurement_device" in plan, plan
    finally:
        db.close_sync()
