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
The peer, on an aged store too, keeps a poll's values in one row keyed by (device, ts): what
a layout that does not touch one index page per series and commit would write.
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


def _peer_one_row_per_poll(path: Path) -> tuple[float, float]:
    """The peer: a poll's values in one row of a table keyed by (device, ts), the same outbox
    rows and state upsert, on a store aged like the others, a commit every 5 s and an
    acknowledgement every 10 s. (bytes per day, bytes per measurement)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(
            "CREATE TABLE polls (device INTEGER NOT NULL, ts REAL NOT NULL, mono REAL NOT NULL,"
            " boot INTEGER NOT NULL, vals TEXT NOT NULL, PRIMARY KEY (device, ts)) WITHOUT ROWID"
        )
        conn.execute(
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, lane INTEGER NOT NULL,"
            " kind TEXT NOT NULL, body TEXT NOT NULL, ts REAL NOT NULL, synced INTEGER NOT NULL)"
        )
        conn.execute("CREATE INDEX outbox_lane_seq ON outbox (lane, seq)")
        conn.execute(
            "CREATE TABLE poll_state (device_id INTEGER PRIMARY KEY, reachable INTEGER,"
            " last_poll_ts REAL)"
        )
        values = "[" + ",".join(f"{float(k)}" for k in range(READINGS + 1)) + "]"
        start = 1_800_000_000.0 - AGED_MINUTES * 60.0
        conn.execute("BEGIN")
        for minute in range(AGED_MINUTES):
            conn.executemany(
                "INSERT INTO polls VALUES (?, ?, 0, 1, ?)",
                [(d, start + minute * 60.0 + d * GAP_S, values) for d in range(DEVICES)],
            )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        os.sync()
        before = _write_bytes()
        held: list[tuple[int, float]] = []

        def commit() -> None:
            conn.execute("BEGIN IMMEDIATE")
            for device, ts in held:
                conn.execute("INSERT INTO polls VALUES (?, ?, 0, 1, ?)", (device, ts, values))
                conn.executemany(
                    "INSERT INTO outbox (lane, kind, body, ts, synced)"
                    " VALUES (1, 'measurement', ?, ?, 1)",
                    [(f"[{device * 32 + k},{float(k)},0.0,1]", ts) for k in range(READINGS + 1)],
                )
                conn.execute(
                    "INSERT INTO poll_state VALUES (?, 1, ?) ON CONFLICT (device_id)"
                    " DO UPDATE SET last_poll_ts = excluded.last_poll_ts",
                    (device, ts),
                )
            conn.execute("COMMIT")
            held.clear()

        polls = int(MINUTES * INTERVAL_S / GAP_S)
        wall, elapsed, due, next_ack = 1_800_000_000.0, 0.0, None, ACK_EVERY_S
        for n in range(polls):
            wall += GAP_S
            elapsed += GAP_S
            held.append((n % DEVICES, wall))
            due = elapsed + 5.0 if due is None else due
            if elapsed >= due or elapsed >= next_ack:
                commit()
                due = None
            if elapsed >= next_ack:
                next_ack += ACK_EVERY_S
                conn.execute("DELETE FROM outbox")
        if held:
            commit()
        os.sync()
        written = _write_bytes() - before
    finally:
        conn.close()
    return written * 1440 / MINUTES, written / (polls * (READINGS + 1))


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
        day, per_m = _peer_one_row_per_poll(Path(tmp) / "peer.db")
        lines.append(
            f"peer, aged store: a poll's values in one row keyed by (device, ts), window 5 s:"
            f" {day / 1e9:.1f} GB/day, {per_m:,.0f} B per measurement"
        )
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
