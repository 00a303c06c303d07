"""Home's "what is coming" from records on both back ends, before and after retention rolled
the month's first half up to hours: a switch port's errors growing (averaged a day by the
database, raw records and hourly roll-ups together) and a UPS asking for a new battery."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.report.build import build_report
from core.report.hours import business_hours, month_period
from core.report.inputs import ReportInput
from home.db import HomeDB
from home.report.source import load_input_sync
from home.retention import DAY_S, RetentionPolicy, run_once_sync
from simsite.harness.signed_client import LightAppliance, new_identity

pytestmark = pytest.mark.usefixtures("home_backend")

POLL_S = 600.0
SWITCH, UPS = 2, 6
PERIOD = month_period(2026, 10, "UTC")
ASKED_S = datetime(2026, 10, 12, 14, tzinfo=UTC).timestamp()


def _rate(ts: float) -> float:
    """Inbound errors a second on "Gi0/12": from none to 0.02 over the month."""
    return round(0.02 * (ts - PERIOD.start_s) / (PERIOD.end_s - PERIOD.start_s), 6)


def _fill(db: HomeDB, box: LightAppliance) -> None:
    records: list[dict[str, Any]] = []

    def add(ts: float, device: int, metric: str, instance: str, value: float) -> None:
        body = {"device_id": device, "metric": metric, "instance": instance, "unit": "",
                "value": value}  # fmt: skip
        records.append({"seq": box.next_seq, "lane": 1, "kind": "measurement", "ts": ts,
                        "synced": True, "body": body})  # fmt: skip
        box.next_seq += 1

    def send() -> None:
        doc = {"v": 1, "appliance": box.identity.appliance_id, "stream": box.stream,
               "records": records}  # fmt: skip
        answer = db.ingest_sync(box.identity.appliance_id, f"n{box.next_seq}", doc)
        assert answer["accepted"] == len(records), answer
        records.clear()

    ts = PERIOD.start_s - 2 * DAY_S
    for device, name, kind in ((SWITCH, "Office switch", "switch"), (UPS, "Rack UPS", "ups")):
        body = {"change": "baseline", "device_id": device, "mac": f"02:00:00:00:00:0{device}",
                "ip": f"198.18.0.{device}", "name": name, "kind": kind, "state": "present",
                "first_seen": ts, "last_seen": ts}  # fmt: skip
        records.append({"seq": box.next_seq, "lane": 1, "kind": "device", "ts": ts,
                        "synced": True, "body": body})  # fmt: skip
        box.next_seq += 1
    while ts < PERIOD.end_s:
        add(ts, SWITCH, "if.in_errors_ps", "Gi0/12", _rate(ts))
        add(ts, SWITCH, "if.out_errors_ps", "Gi0/12", 0.0)
        add(ts, SWITCH, "if.in_errors_ps", "Gi0/1", 0.01)  # steady: no trend
        add(ts, UPS, "ups.battery_replace", "", 1.0 if ts >= ASKED_S else 0.0)
        ts += POLL_S
        if len(records) >= 2000:
            send()
    if records:
        send()


def _input(db: HomeDB, appliance: str) -> ReportInput:
    hours = business_hours("UTC", "08:00", "18:00", ["mon", "tue", "wed", "thu", "fri"], [])
    return load_input_sync(db, appliance, period=PERIOD, hours=hours)


def test_growing_errors_and_a_battery_from_raw_and_rolled_up_records(home_database: str) -> None:
    db = HomeDB(home_database)
    db.open_sync()
    try:
        box = LightAppliance(new_identity())
        appliance = box.identity.appliance_id
        db.register_sync(appliance, box.identity.public_text, "Dentist")
        _fill(db, box)
        raw = _input(db, appliance)
        daily = raw.port_in_errors[(SWITCH, "Gi0/12")]
        assert len(daily) == 30  # one point a day of the 30 before the end
        # The last day's mean rate: the planted line's value in its middle.
        assert daily[-1][1] == pytest.approx(_rate(PERIOD.end_s - DAY_S / 2), rel=0.01)
        titles = [o.title for o in build_report(raw).outlook]
        assert titles == [
            "Rack UPS asked for a new battery on 12 October",
            'Office switch: the connection on port "Gi0/12" shows more and more transmission '
            "errors",
        ], titles  # the steady port Gi0/1 is not there

        # Retention on 16 November: everything before 17 October becomes hourly roll-ups.
        now = datetime(2026, 11, 16, tzinfo=UTC).timestamp()
        done = run_once_sync(db, RetentionPolicy(rollup_after_days=30, retention_days=400), now)
        assert done["rolled_up"] > 0
        rolled = _input(db, appliance)
        again = rolled.port_in_errors[(SWITCH, "Gi0/12")]
        assert [ts for ts, _ in again] == [ts for ts, _ in daily]
        for (_, before), (_, after) in zip(daily, again, strict=True):
            assert after == pytest.approx(before, rel=1e-9, abs=1e-12)
        assert [o.title for o in build_report(rolled).outlook] == titles
        assert [o.detail for o in build_report(rolled).outlook] == [
            o.detail for o in build_report(raw).outlook
        ]
    finally:
        db.close_sync()
