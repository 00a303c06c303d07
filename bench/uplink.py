"""Uplink benchmark: outbox accept rate, drain rate to home, disk bytes per measurement, backlog.

Figures, each against a peer measured in the same run:
  accept: measurements stored per second with the uplink's compact outbox, against the store
    with no outbox at all and against an outbox that copies the full JSON record (the naive way);
  disk: bytes the kernel wrote (/proc/self/io write_bytes: WAL, checkpoints, fsyncs) and live
    bytes kept per measurement, same three ways;
  drain: records per second from the appliance's outbox to the real home server over loopback
    (TLS, signatures, gzip, home's exactly-once commit), against home's own commit of the same
    batches called in-process (no network, no TLS);
  backlog: the time to drain 24 hours of the reference site, and the outage a 16 GB card covers.

Reference site: 40 devices x 25 series polled every 60 s (a small office: switch ports, printer
counters, UPS, NAS volumes, ping) = 1 440 000 measurements a day.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from core.clock import FixedClock
from home.db import HomeDB
from services.store import Measurement, Store, Tx, insert_measurements
from services.uplink.outbox import UPLINK_CHAIN, Expander, read_pending
from services.uplink.service import OutboxForwarder

DEVICES = 40
SERIES = 25
PER_DAY = DEVICES * SERIES * 24 * 60
CYCLES = 60  # poll cycles stored in the accept benchmark (an hour of the reference site)
DRAIN_RECORDS = 60_000
BACKLOG_MINUTES = 24 * 60
CARD_BUDGET_MB = 4096  # store.budget_mb default: what a 16 GB card gives the store


def _write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def _full_copy(tx: Tx, kind: str, body: dict[str, Any], lane: int) -> None:
    """The naive peer: the whole JSON record copied into the outbox."""
    tx.conn.execute(
        "INSERT INTO outbox (lane, kind, body, ts, synced) VALUES (?, ?, ?, ?, ?)",
        (lane, kind, json.dumps(body), tx.stamp.wall, int(tx.stamp.synced)),
    )


def _cycle(minute: int) -> list[list[Measurement]]:
    """One poll cycle: one write per device, as the poller does."""
    return [
        [Measurement(d, f"metric.{s}", float(minute + s), unit="x") for s in range(SERIES)]
        for d in range(1, DEVICES + 1)
    ]


async def _accept(path: Path, forward: Any) -> tuple[float, float, float]:
    """(measurements/s, disk bytes written per measurement, live bytes per measurement)."""
    clock = FixedClock()
    store = Store(path, chains=[UPLINK_CHAIN], clock=clock, forward=forward)
    await store.open()
    os.sync()
    before = _write_bytes()
    began = time.perf_counter()
    for minute in range(CYCLES):
        await asyncio.gather(
            *(store.write(partial(insert_measurements, items=items)) for items in _cycle(minute))
        )
        clock.advance(60.0)
    elapsed = time.perf_counter() - began
    await store.close()
    os.sync()
    written = _write_bytes() - before
    conn = sqlite3.connect(path)
    pages, free, size = (
        conn.execute(f"PRAGMA {p}").fetchone()[0]
        for p in ("page_count", "freelist_count", "page_size")
    )
    conn.close()
    n = CYCLES * DEVICES * SERIES
    return n / elapsed, written / n, (pages - free) * size / n


async def _until_drained(store: Store, poll_s: float) -> None:
    while True:
        if not (await store.query("SELECT COUNT(*) AS n FROM outbox"))[0]["n"]:
            return
        await asyncio.sleep(poll_s)


async def _fill(store: Store, clock: FixedClock, minutes: int) -> None:
    for minute in range(minutes):
        await asyncio.gather(
            *(store.write(partial(insert_measurements, items=items)) for items in _cycle(minute))
        )
        clock.advance(60.0)


async def _stored_then_drained(
    tmp: Path, minutes: int, batch_max_records: int, poll_s: float
) -> tuple[int, float]:
    """Store ``minutes`` of the reference site while the uplink is not running (home out of
    reach, as far as the box knows), then start the appliance against a real home on loopback
    TLS: (records home holds, seconds until the outbox was empty)."""
    from firmware.app import build
    from simsite.harness.appliance import appliance_config, identity_for
    from simsite.harness.home import Home

    home = Home(tmp / "home", tmp / "ca")
    home.prepare()
    config, _ = appliance_config(
        tmp, home, batch_max_records=batch_max_records, batch_max_age_s=0.0
    )
    home.register(identity_for(config))
    clock = FixedClock()
    ctx, _sup = build(config, clock)
    await ctx.store.open()
    await _fill(ctx.store, clock, minutes)
    await ctx.store.close()
    home.start()
    try:
        ctx, supervisor = build(config, clock)
        began = time.perf_counter()
        await supervisor.start()
        await _until_drained(ctx.store, poll_s)
        elapsed = time.perf_counter() - began
        await supervisor.stop()
        sent = home.rows("SELECT COUNT(*) FROM records")[0][0]
    finally:
        home.stop()
    return int(sent), elapsed


async def _drain_home(tmp: Path, records: int) -> tuple[float, float]:
    """(records/s to the real home over loopback, records/s of home's in-process commit)."""
    minutes = max(1, records // (DEVICES * SERIES))
    sent, elapsed = await _stored_then_drained(tmp, minutes, 2000, 0.05)
    # Peer: the same batches committed by home's own code, in-process.
    store = Store(tmp / "peer.db", chains=[UPLINK_CHAIN], forward=OutboxForwarder())
    await store.open()
    clock2 = FixedClock()
    store.clock = clock2
    await _fill(store, clock2, minutes)
    expander = Expander()
    batches = await store.read(lambda c: _all_batches(c, expander))
    await store.close()
    db = HomeDB(tmp / "peer-home.db")
    db.open_sync()
    db.register_sync("op-peer", "x", "peer")
    began = time.perf_counter()
    for i, batch in enumerate(batches):
        db.ingest_sync("op-peer", f"n{i}", {"stream": "peer", "records": batch})
    peer_elapsed = time.perf_counter() - began
    db.close_sync()
    n = sum(len(b) for b in batches)
    return sent / elapsed, n / peer_elapsed


def _all_batches(conn: sqlite3.Connection, expander: Expander) -> list[list[dict[str, Any]]]:
    rows = read_pending(conn, 10**9, 10**12)
    records = expander.records(conn, rows)
    return [records[i : i + 2000] for i in range(0, len(records), 2000)]


async def _backlog_day(tmp: Path) -> tuple[int, float]:
    """Store 24 h of the reference site while home is unreachable, then time the drain."""
    return await _stored_then_drained(tmp, BACKLOG_MINUTES, 5000, 0.2)


async def _run(tmp: Path) -> list[str]:
    lines = []
    compact = await _accept(tmp / "compact.db", OutboxForwarder())
    bare = await _accept(tmp / "bare.db", None)
    naive = await _accept(tmp / "naive.db", _full_copy)
    lines.append(
        f"accept: {compact[0]:,.0f} measurements/s into store+outbox; store alone "
        f"{bare[0]:,.0f}/s ({compact[0] / bare[0]:.2f}x); full-JSON outbox {naive[0]:,.0f}/s "
        f"({compact[0] / naive[0]:.2f}x)"
    )
    lines.append(
        f"disk written: {compact[1]:,.0f} B/measurement (store alone {bare[1]:,.0f}, full-JSON "
        f"outbox {naive[1]:,.0f}: compact writes {naive[1] / compact[1]:.2f}x less)"
    )
    lines.append(
        f"disk kept: {compact[2]:,.0f} B/measurement while unsent (store alone {bare[2]:,.0f}, "
        f"full-JSON outbox {naive[2]:,.0f})"
    )
    loop_rate, peer_rate = await _drain_home(tmp / "drain", DRAIN_RECORDS)
    lines.append(
        f"drain: {loop_rate:,.0f} records/s to home over loopback TLS; home's in-process commit "
        f"{peer_rate:,.0f}/s ({loop_rate / peer_rate:.2f}x)"
    )
    sent, seconds = await _backlog_day(tmp / "day")
    lines.append(
        f"24 h backlog of the reference site ({sent:,} records) drained in {seconds:.1f} s "
        f"({sent / seconds:,.0f} records/s)"
    )
    days = CARD_BUDGET_MB * 1024 * 1024 / (compact[2] * PER_DAY)
    lines.append(
        f"16 GB card (store.budget_mb={CARD_BUDGET_MB}): {days:.1f} days of outage at "
        f"{PER_DAY:,} measurements/day before thinning starts"
    )
    return lines


def run() -> list[str]:
    # On the data disk, not tmpfs: write_bytes only counts what reaches a block device.
    base = Path(os.environ.get("OUTPOST_BENCH_DIR", Path(__file__).resolve().parent.parent))
    with tempfile.TemporaryDirectory(prefix=".bench-uplink-", dir=base) as tmp:
        return asyncio.run(_run(Path(tmp)))


if __name__ == "__main__":
    for line in run():
        print(line)
