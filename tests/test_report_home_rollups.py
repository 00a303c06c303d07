"""Home's report of a month whose reachability retention already rolled up to hours.

The monthly email goes out on the first business day after the month, when its first days are
31 to 35 days old, and the console shows any month home holds: both read reachability that
home/retention.py may have turned into hourly counts. The availability must not turn unknown
(nor up) there: it is rebuilt from the counts, exactly per hour. Runs on both back ends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.report.availability import availability, runs
from core.report.hours import business_hours, month_period
from home.db import HomeDB
from home.report.source import load_input_sync
from home.retention import DAY_S, RetentionPolicy, run_once_sync
from simsite.harness.signed_client import LightAppliance, new_identity

pytestmark = pytest.mark.usefixtures("home_backend")

POLL_S = 300.0
DEVICES = (1, 2)
# Planted: device 1 down 2 h on Friday 2 October 14:00-16:00 (rolled up below) and
# 40 min on Tuesday 20 October 10:00-10:40 (still raw); device 2 never down.
OUTAGES = {
    1: [
        (datetime(2026, 10, 2, 14, tzinfo=UTC).timestamp(), 2 * 3600.0),
        (datetime(2026, 10, 20, 10, tzinfo=UTC).timestamp(), 40 * 60.0),
    ]
}


def _down(device: int, ts: float) -> bool:
    return any(start <= ts < start + length for start, length in OUTAGES.get(device, []))


def _fill(db: HomeDB, box: LightAppliance, start_s: float, end_s: float) -> None:
    """One ``device.reachable`` record a device every POLL_S, each with its own time, through
    home's real ingest in batches of 2,000."""
    records: list[dict[str, Any]] = []

    def send() -> None:
        doc = {"v": 1, "appliance": box.identity.appliance_id, "stream": box.stream,
               "records": records}  # fmt: skip
        answer = db.ingest_sync(box.identity.appliance_id, f"n{box.next_seq}", doc)
        assert answer["accepted"] == len(records), answer
        records.clear()

    ts = start_s
    while ts < end_s:
        for device in DEVICES:
            value = 0.0 if _down(device, ts) else 1.0
            body = {"device_id": device, "metric": "device.reachable", "instance": "",
                    "unit": "", "value": value}  # fmt: skip
            records.append({"seq": box.next_seq, "lane": 1, "kind": "measurement", "ts": ts,
                            "synced": True, "body": body})  # fmt: skip
            box.next_seq += 1
        ts += POLL_S
        if len(records) >= 2000:
            send()
    if records:
        send()


def _device_availability(db: HomeDB, appliance: str) -> dict[int, tuple[float, float, float]]:
    period = month_period(2026, 10, "UTC")
    hours = business_hours("UTC", "08:00", "18:00", ["mon", "tue", "wed", "thu", "fri"], [])
    data = load_input_sync(db, appliance, period=period, hours=hours)
    business = hours.intervals(period.start_s, period.end_s)
    out = {}
    for device, points in data.reach.items():
        a = availability(runs(points, period.start_s, period.end_s), business)
        out[device] = (a.up_s, a.down_s, a.unknown_s)
    return out


def test_rolled_up_reachability_gives_the_same_availability(home_database: str) -> None:
    db = HomeDB(home_database)
    db.open_sync()
    try:
        box = LightAppliance(new_identity())
        appliance = box.identity.appliance_id
        db.register_sync(appliance, box.identity.public_text, "Dentist")
        period = month_period(2026, 10, "UTC")
        _fill(db, box, period.start_s, period.end_s)
        raw = _device_availability(db, appliance)
        # The planted truth, from the raw polls: 2 h 40 min down for device 1, none for 2.
        assert raw[1][1] == pytest.approx(2 * 3600 + 40 * 60, abs=POLL_S)
        assert raw[2][1] == 0.0

        # Retention on 16 November: everything before 17 October becomes hourly counts.
        now = datetime(2026, 11, 16, tzinfo=UTC).timestamp()
        done = run_once_sync(db, RetentionPolicy(rollup_after_days=30, retention_days=400), now)
        assert done["rolled_up"] > 0
        cutoff = now - 30 * DAY_S
        left = db.conn.execute(
            "SELECT COUNT(*) FROM records WHERE kind = 'measurement' AND ts < ?", (cutoff,)
        ).fetchone()[0]
        assert left == 0  # the first half of the month is hourly counts only

        rolled = _device_availability(db, appliance)
        for device in DEVICES:
            up, down, unknown = rolled[device]
            assert down == pytest.approx(raw[device][1], abs=POLL_S), device
            assert up == pytest.approx(raw[device][0], abs=POLL_S), device
            assert unknown == pytest.approx(raw[device][2], abs=2 * POLL_S), device
    finally:
        db.close_sync()
