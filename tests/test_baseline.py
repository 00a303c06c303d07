"""A fresh box's first sweep is a baseline, and info is never an open alert (issue 11).

On a real store: the devices of a fresh box's first sweep join without a ``device.joined`` each
(one ``discovery.baseline`` event "baseline: N devices found"); a device found after it is one
info event and no alert; an older store that knows devices takes no baseline; the status page's
counts, headline and API totals leave info alerts out, and the overview lists a new device once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.config import parse_config
from core.vocabulary import Severity
from firmware.app import MIGRATION_CHAINS
from services.alerting.service import AlertingService
from services.context import AppContext
from services.discovery import inventory
from services.store import Store, Tx
from services.store.records import Event
from services.uplink.service import OutboxForwarder
from web import data, pages

NOW = 1_800_000_000.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "b.db", chains=MIGRATION_CHAINS, forward=OutboxForwarder())
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def _seen(n: int, first: int = 1) -> list[inventory.Seen]:
    return [
        inventory.Seen(f"00:11:32:00:00:{i:02x}", (f"198.18.0.{i + 10}",))
        for i in range(first, first + n)
    ]


def _events(store: Store, kind: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(store.path)
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT * FROM events WHERE kind = ? ORDER BY id", (kind,)).fetchall()
    conn.close()
    return rows


async def _sweep(store: Store, seen: list[inventory.Seen], now: float) -> list[Event]:
    """What DiscoveryService.cycle does with a sweep: baseline decided once per store, closed
    by the first sweep that found anyone."""

    def write(tx: Tx) -> list[Event]:
        baseline = inventory.open_baseline(tx)
        events = inventory.record_seen(tx, seen, now, active=True, source="arp", baseline=baseline)
        if baseline and seen:
            events += inventory.close_baseline(tx, now)
        return events

    return await store.write(write)


async def test_first_sweep_is_a_baseline_then_new_devices_are_events(store: Store) -> None:
    events = await _sweep(store, _seen(12), NOW)
    assert [e.kind for e in events] == ["discovery.baseline"]
    assert events[0].message == "baseline: 12 devices found"
    assert events[0].severity == Severity.INFO
    assert _events(store, "device.joined") == []
    assert len(_events(store, "discovery.baseline")) == 1
    # The next sweep: the same twelve and one newcomer -> one device.joined, no baseline again.
    events = await _sweep(store, _seen(13), NOW + 60)
    assert [e.kind for e in events] == ["device.joined"]
    assert "198.18.0.23" in events[0].message
    assert len(_events(store, "discovery.baseline")) == 1


async def test_an_empty_first_sweep_keeps_the_baseline_open(store: Store) -> None:
    """No address yet (nobody answered): the baseline is the first sweep that finds anyone."""
    assert await _sweep(store, [], NOW) == []
    events = await _sweep(store, _seen(3), NOW + 10)
    assert [e.kind for e in events] == ["discovery.baseline"]
    assert events[0].message == "baseline: 3 devices found"


async def test_a_store_that_knows_devices_takes_no_baseline(store: Store) -> None:
    """An older box (devices known, no baseline recorded): a new MAC is news at once."""
    await store.write(
        lambda tx: inventory.record_seen(tx, _seen(2), NOW, active=True, source="arp")
    )
    events = await _sweep(store, _seen(3), NOW + 60)
    assert [e.kind for e in events] == ["device.joined"]
    assert _events(store, "discovery.baseline") == []


async def test_a_new_device_is_no_open_alert_and_is_listed_once(store: Store) -> None:
    ctx = AppContext(config=parse_config(""), store=store, clock=store.clock)
    alerting = AlertingService(ctx)
    await alerting.setup()
    try:
        await _sweep(store, _seen(5), NOW)
        (joined,) = [e for e in await _sweep(store, _seen(6), NOW + 60) if e.kind]
        await alerting.handle_event(joined)
        conn = sqlite3.connect(store.path)
        try:
            assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 0
            ov = data.overview(conn, NOW + 61)
        finally:
            conn.close()
        assert ctx.status.snapshot()["alerts.open"] == {
            "critical": 0, "major": 0, "minor": 0, "warning": 0,
        }  # fmt: skip
    finally:
        await alerting.teardown()
    listed = [e for e in ov["recent_events"] if e["device_id"] == joined.device_id]
    assert [e["kind"] for e in listed] == ["device.joined"], "the new device is listed once"
    assert [e["kind"] for e in ov["recent_events"]][-1] == "discovery.baseline"


async def test_info_alerts_never_count_as_open(store: Store) -> None:
    """An info alert left open (by an older version, or by home's view of it) counts nowhere:
    not in the overview's counts, nor the headline, nor the API's flat total."""

    def write(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO alerts (key, rule, device_id, severity, state, message, data,"
            " opened_ts) VALUES ('device.new:1', 'device.new', 1, 'info', 'open', 'new', '{}', 1)"
        )

    await store.write(lambda tx: write(tx.conn))
    conn = sqlite3.connect(store.path)
    try:
        ov = data.overview(conn, NOW)
    finally:
        conn.close()
    assert "info" not in ov["alerts_open"] and sum(ov["alerts_open"].values()) == 0
    assert ov["alerts_unacked"] == 0
    level, headline = pages.site_health({**ov, "devices": {**ov["devices"], "total": 3}}, {})
    assert (level, headline) == ("ok", "Network healthy: all monitored devices are answering")
    # A minor alert next to it is counted, alone.
    await store.write(
        lambda tx: tx.conn.execute(
            "INSERT INTO alerts (key, rule, device_id, severity, state, message, data,"
            " opened_ts) VALUES ('x', 'supply.low', 1, 'minor', 'open', 'toner', '{}', 1)"
        )
    )
    conn = sqlite3.connect(store.path)
    try:
        ov = data.overview(conn, NOW)
    finally:
        conn.close()
    assert sum(ov["alerts_open"].values()) == 1
    assert pages.site_health(ov, {})[1] == "Attention: 1 open alert"
