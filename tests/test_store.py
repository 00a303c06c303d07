"""The local store: group commit, isolation of failing writes, disk full, migrations, crashes."""

from __future__ import annotations

import asyncio
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from core.clock import FixedClock
from services.store import (
    Event,
    Measurement,
    Migration,
    MigrationChain,
    Store,
    StoreClosed,
    StoreFull,
    insert_event,
    insert_measurements,
    sql,
)
from services.store.migrations import SchemaTooNew
from tests.conftest import REPO

SQLITE_SYNCHRONOUS_FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Store(tmp_path / "outpost.db", clock=FixedClock())
    await s.open()
    yield s
    await s.close()


async def test_wal_mode_and_full_sync(store: Store) -> None:
    rows = await store.query("PRAGMA journal_mode")
    assert rows == [{"journal_mode": "wal"}]
    # WAL is recorded in the file: the header's read and write versions (bytes 18, 19) are 2.
    header = await asyncio.to_thread(Path(store.path).read_bytes)
    assert header[18:20] == b"\x02\x02"
    # synchronous is a setting of each connection: ask the writer's own (writes run on it).
    level = await store.write(lambda tx: tx.conn.execute("PRAGMA synchronous").fetchone()[0])
    assert level == SQLITE_SYNCHRONOUS_FULL


# Commits one write at a time (each awaited: one transaction each), then closes.
_SEQUENTIAL_WRITER = """
import asyncio, sys
from services.store import Measurement, Store, insert_measurements

async def main() -> None:
    store = Store(sys.argv[1])
    await store.open()
    for i in range(int(sys.argv[2])):
        await store.write(
            lambda tx, i=i: insert_measurements(tx, [Measurement(None, "m", float(i))])
        )
    await store.close()

asyncio.run(main())
"""


def _syncs_of_a_writer(db: Path, commits: int, trace: Path) -> int:
    """fsync/fdatasync calls (strace) of a process that opens a store and commits ``commits``
    times, one write per commit."""
    subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", str(trace),
         sys.executable, "-c", _SEQUENTIAL_WRITER, str(db), str(commits)],
        cwd=REPO, check=True, timeout=120,
    )  # fmt: skip
    return sum(1 for line in trace.read_text().splitlines() if "sync(" in line)


def test_every_commit_is_synced_to_disk(tmp_path: Path) -> None:
    """What synchronous=FULL means, measured: each commit fsyncs the WAL before it returns
    (with NORMAL, WAL commits are not synced and a power cut can lose the last ones)."""
    if shutil.which("strace") is None:
        pytest.skip("Debian package 'strace' is not installed (make deps installs it)")
    commits = 50
    baseline = _syncs_of_a_writer(tmp_path / "a.db", 0, tmp_path / "a.trace")
    synced = _syncs_of_a_writer(tmp_path / "b.db", commits, tmp_path / "b.trace")
    assert synced - baseline >= commits, f"{synced - baseline} syncs for {commits} commits"


async def test_concurrent_writes_share_commits(store: Store) -> None:
    writes = [
        store.write(partial(insert_measurements, items=[Measurement(None, "m", float(i))]))
        for i in range(2000)
    ]
    assert sum(await asyncio.gather(*writes)) == 2000
    assert store.ops == 2000
    assert store.commits < 200, "writes waiting together must commit together"
    rows = await store.query("SELECT COUNT(*) AS n, SUM(value) AS total FROM measurements")
    assert rows == [{"n": 2000, "total": float(sum(range(2000)))}]


async def test_a_failing_write_rolls_back_alone(store: Store) -> None:
    def bad(tx):  # type: ignore[no-untyped-def]
        insert_event(tx, Event(kind="half-done"))
        raise ValueError("refused by the caller")

    good = [store.write(lambda tx: insert_event(tx, Event(kind="ok"))) for _ in range(5)]
    results = await asyncio.gather(store.write(bad), *good, return_exceptions=True)
    assert isinstance(results[0], ValueError)
    kinds = await store.query("SELECT kind, COUNT(*) AS n FROM events GROUP BY kind")
    assert kinds == [{"kind": "ok", "n": 5}]


async def test_measurements_carry_wall_mono_boot_and_sync_flag(tmp_path: Path) -> None:
    clock = FixedClock(wall=1_000_000.0, synced=False)
    store = Store(tmp_path / "o.db", clock=clock)
    await store.open()
    try:
        await store.write(lambda tx: insert_measurements(tx, [Measurement(7, "icmp.rtt_ms", 1.5)]))
        rows = await store.query(
            "SELECT m.ts, m.mono, b.boot_id, m.synced, s.device_id, s.metric FROM measurements m"
            " JOIN boots b ON b.id = m.boot JOIN series s ON s.id = m.series"
        )
    finally:
        await store.close()
    assert rows == [
        {
            "ts": 1_000_000.0,
            "mono": 100.0,
            "boot_id": "test-boot",
            "synced": 0,
            "device_id": 7,
            "metric": "icmp.rtt_ms",
        }
    ]


async def test_reads_do_not_run_on_the_event_loop(store: Store) -> None:
    loop_thread = threading.get_ident()
    seen = await store.read(lambda conn: threading.get_ident())
    assert seen != loop_thread


async def test_disk_full_is_reported_and_loses_nothing_committed(store: Store) -> None:
    await store.write(lambda tx: insert_event(tx, Event(kind="before")))
    # Cap the file at its current size: the next growth hits SQLITE_FULL, as a full disk does.
    pages = (await store.query("PRAGMA page_count"))[0]["page_count"]
    await store.write(lambda tx: tx.conn.execute(f"PRAGMA max_page_count = {pages}"))
    big = "x" * 200_000
    with pytest.raises(StoreFull, match="is full; nothing in this batch was stored"):
        await store.write(lambda tx: insert_event(tx, Event(kind="huge", message=big)))
    kinds = [r["kind"] for r in await store.query("SELECT kind FROM events")]
    assert kinds == ["before"]
    # The store keeps working once there is room again.
    await store.write(lambda tx: tx.conn.execute("PRAGMA max_page_count = 1073741823"))
    await store.write(lambda tx: insert_event(tx, Event(kind="after")))
    assert len(await store.query("SELECT kind FROM events")) == 2


async def test_closed_store_refuses_writes(tmp_path: Path) -> None:
    s = Store(tmp_path / "o.db")
    await s.open()
    await s.close()
    with pytest.raises(StoreClosed):
        await s.write(lambda tx: None)


async def test_component_migrations_apply_once_in_order(tmp_path: Path) -> None:
    chain = MigrationChain(
        "extra",
        (
            Migration(1, "widgets", sql("CREATE TABLE widgets (id INTEGER PRIMARY KEY)")),
            Migration(2, "widget names", sql("ALTER TABLE widgets ADD COLUMN name TEXT")),
        ),
    )
    for _ in range(2):  # the second open finds nothing to do
        s = Store(tmp_path / "o.db", chains=[chain])
        await s.open()
        applied = await s.query(
            "SELECT component, version FROM schema_migrations ORDER BY component, version"
        )
        await s.close()
    assert applied == [
        {"component": "core", "version": 1},
        {"component": "core", "version": 2},
        {"component": "extra", "version": 1},
        {"component": "extra", "version": 2},
    ]
    # After a firmware rollback the older release runs on additive migrations it does not know.
    older = MigrationChain("extra", chain.migrations[:1])
    s = Store(tmp_path / "o.db", chains=[older])
    await s.open()
    await s.write(lambda tx: tx.conn.execute("INSERT INTO widgets (id) VALUES (1)"))
    await s.close()
    # But it refuses a schema that a newer release changed in a way it cannot run on.
    breaking = MigrationChain(
        "extra",
        (
            *chain.migrations,
            Migration(
                3, "widgets renamed", sql("ALTER TABLE widgets RENAME TO gadgets"), breaking=True
            ),
        ),
    )
    s = Store(tmp_path / "o.db", chains=[breaking])
    await s.open()
    await s.close()
    with pytest.raises(SchemaTooNew, match=r"migration 3 \(widgets renamed\) cannot be run on"):
        s = Store(tmp_path / "o.db", chains=[older])
        await s.open()


def test_migration_numbering_is_checked() -> None:
    with pytest.raises(ValueError, match=r"numbered 1\.\.n"):
        MigrationChain("bad", (Migration(2, "x", sql()),))


def test_sigkill_while_writing_loses_no_committed_row(tmp_path: Path) -> None:
    db = tmp_path / "outpost.db"
    acknowledged: list[int] = []
    rng = random.Random(20261122)
    start = 0
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.store_writer", str(db), str(start)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        want = rng.randint(100, 2000)
        got = 0
        while got < want and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acknowledged.append(int(line))
            got += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Lines printed before the kill are acknowledged too.
        acknowledged.extend(int(line) for line in proc.stdout.read().split())
        assert got >= want, "the writer stopped before it was killed"
        start = max(acknowledged) + 1000
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {int(r[0]) for r in conn.execute("SELECT message FROM events")}
        values = {int(r[0]) for r in conn.execute("SELECT value FROM measurements")}
    finally:
        conn.close()
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} committed events lost, e.g. {sorted(missing)[:5]}"
    assert set(acknowledged) <= values
