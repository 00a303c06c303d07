"""Flash wear of the larger office's writes: bytes written per measurement, by commit policy.

    python -m bench.store_wear            # ~1-2 min; on the repo's disk, not tmpfs

Workload: what 250 devices polled every 60 s hand the store (services/polling's
``store_result``: 25 measurements each, the device's state and checks, the outbox rows), one
poll every 0.24 s, for 3 minutes of virtual time (a FixedClock advanced by the driver, so the
run takes seconds and the store's commit window sees the same spacing as on a site). The
uplink's acknowledgement (outbox rows deleted) every 10 s and the budget keeper's
``wal_checkpoint(TRUNCATE)`` when the WAL passed 2 MiB (checked every 5 s) run as on the box.

Each policy runs twice: on a fresh store (what bench/large_site sees in its first minutes)
and on an aged one (6 hours of history: each series' newest index entries then sit on a leaf
page of their own, as after any day of running). Bytes are /proc/self/io write_bytes (WAL,
checkpoints, fsyncs; what wears the SD card) around the virtual minutes, scaled to a day.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from core.clock import FixedClock
from firmware.app import MIGRATION_CHAINS
from services.polling.profiles import Reading
from services.polling.results import CheckOutcome, PollResult
from services.polling.service import store_result
from services.store import Store, Tx
from services.uplink import outbox
from services.uplink.budget import WAL_TRUNCATE, checkpoint
from services.uplink.service import OutboxForwarder

DEVICES = 250
READINGS = 24  # + device.reachable: 25 measurements a poll (bench/large_site: 21-26)
INTERVAL_S = 60.0
GAP_S = INTERVAL_S / DEVICES  # one poll every 0.24 s
MINUTES = 3
ACK_EVERY_S = 10.0  # uplink.batch_max_age_s: an acknowledgement deletes the sent rows
CHECK_EVERY_S = 5.0  # uplink.storage_check_s: the budget keeper's WAL truncation
AGED_MINUTES = 360  # history of the aged store, per series


@dataclass(frozen=True)
class Policy:
    name: str
    window_s: float
    autocheckpoint_pages: int = 1000  # SQLite's default
    truncate_wal: bool = True  # the budget keeper's TRUNCATE checkpoint past WAL_TRUNCATE
    synchronous: str = "FULL"  # the store's; NORMAL: no fsync per commit in WAL mode


POLICIES = (
    Policy("one commit per poll (before)", 0.0),
    Policy("window 2 s", 2.0),
    Policy("window 5 s", 5.0),
    Policy("window 5 s, no WAL truncation", 5.0, truncate_wal=False),
    Policy("window 5 s, no truncation, autocheckpoint 4000 pages", 5.0, 4000, False),
    Policy("window 5 s, synchronous=NORMAL", 5.0, synchronous="NORMAL"),
)


def _write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def _result(device: int, wall: float, mono: float, cycle: int) -> PollResult:
    readings = tuple(
        Reading(f"bench.metric{k % 6}", float((cycle * 7 + k) % 100), f"if{k // 6}")
        for k in range(READINGS)
    )
    return PollResult(
        device_id=device,
        ip=f"198.18.{64 + device // 250}.{device % 250 + 1}",
        name=f"dev{device}",
        kind="switch",
        wall_s=wall,
        mono_s=mono,
        reachable=True,
        readings=readings,
        checks=(CheckOutcome("icmp", True), CheckOutcome("snmp", True)),
        duration_s=0.05,
        answered_by=("icmp", "snmp"),
    )


def _age(path: Path, clock: FixedClock) -> None:
    """Add AGED_MINUTES of history to every series, oldest first (as polls would have)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("BEGIN")
        series = [sid for (sid,) in conn.execute("SELECT id FROM series ORDER BY id")]
        (boot,) = conn.execute("SELECT id FROM boots LIMIT 1").fetchone()
        start = clock.wall() - AGED_MINUTES * 60.0
        for minute in range(AGED_MINUTES):
            ts = start + minute * 60.0
            conn.executemany(
                "INSERT INTO measurements (series, ts, mono, boot, synced, value)"
                " VALUES (?, ?, ?, ?, 1, ?)",
                [(sid, ts + sid * 0.001, 0.0, boot, float(minute)) for sid in series],
            )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _settle(store: Store) -> None:
    """Wait until the writer has taken in what was queued (it lags a little behind the loop)."""
    while store.queue_depth:
        time.sleep(0.0005)


def _wal_bytes(path: str) -> int:
    wal = Path(path + "-wal")
    return wal.stat().st_size if wal.exists() else 0


async def _drive(
    store: Store, clock: FixedClock, minutes: int, deferred: bool, truncate: bool = True
) -> int:
    """Poll every device every INTERVAL_S of virtual time; return measurements handed over."""
    polls = int(minutes * INTERVAL_S / GAP_S)
    next_ack, next_check = ACK_EVERY_S, CHECK_EVERY_S
    elapsed = 0.0
    for n in range(polls):
        clock.advance(GAP_S)
        elapsed += GAP_S
        result = _result(n % DEVICES, clock.wall(), clock.monotonic(), n // DEVICES)
        write = partial(store_result, result=result, missed=0, worked=("icmp",))
        if deferred:
            store.submit(write, defer=True)
            store.wake()
            _settle(store)
        else:
            await store.write(write)
        if elapsed >= next_ack:
            next_ack += ACK_EVERY_S

            def ack(tx: Tx) -> None:
                (top,) = tx.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()
                outbox.apply_ack(tx, {1: top, 0: top}, {1: top, 0: top})

            await store.write(ack)
        if truncate and elapsed >= next_check:
            next_check += CHECK_EVERY_S
            if _wal_bytes(store.path) > WAL_TRUNCATE:
                await asyncio.to_thread(checkpoint, store.path)
    await store.flush()
    return polls * (READINGS + 1)


async def _one(path: Path, policy: Policy, aged: bool) -> tuple[float, float, int]:
    """(bytes per day, bytes per measurement, commits per minute) of one policy."""
    clock = FixedClock(wall=1_800_000_000.0)
    store = Store(
        path,
        chains=MIGRATION_CHAINS,
        clock=clock,
        forward=OutboxForwarder(),
        commit_window_s=policy.window_s,
    )
    await store.open()
    try:
        if policy.synchronous != "FULL":
            # A connection setting that cannot change inside a transaction: set on the
            # writer's connection while it is idle (nothing has been written yet).
            conn = store._conn  # noqa: SLF001 - a variant the store does not offer
            assert conn is not None
            conn.execute(f"PRAGMA synchronous = {policy.synchronous}")
        await store.write(
            lambda tx: tx.conn.execute(f"PRAGMA wal_autocheckpoint = {policy.autocheckpoint_pages}")
        )
        await _drive(store, clock, 1, deferred=False)  # series, devices, state rows exist
        if aged:
            await store.flush()
            await asyncio.to_thread(_age, path, clock)
        os.sync()
        before, commits = _write_bytes(), store.commits
        measured = await _drive(
            store, clock, MINUTES, deferred=policy.window_s > 0, truncate=policy.truncate_wal
        )
        os.sync()
        written, commits = _write_bytes() - before, store.commits - commits
    finally:
        await store.close()
    return written * 1440 / MINUTES, written / measured, round(commits / MINUTES)


def run() -> list[str]:
    lines = [
        f"workload: {DEVICES} devices x {READINGS + 1} measurements every {INTERVAL_S:g} s "
        f"(one poll every {GAP_S:.2f} s), {MINUTES} virtual minutes; ack every "
        f"{ACK_EVERY_S:g} s, WAL truncated past {WAL_TRUNCATE // 1024 // 1024} MiB"
    ]
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent.parent) as tmp:
        for aged in (False, True):
            for i, policy in enumerate(POLICIES):
                began = time.monotonic()
                day, per_m, commits = asyncio.run(
                    _one(Path(tmp) / f"{int(aged)}-{i}.db", policy, aged)
                )
                lines.append(
                    f"{'aged' if aged else 'fresh'} store, {policy.name}: {day / 1e9:.1f} GB/day,"
                    f" {per_m:,.0f} B per measurement, {commits} commits/min"
                    f" ({time.monotonic() - began:.0f} s)"
                )
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
