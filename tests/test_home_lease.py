"""One home instance at a time runs the single jobs (notifications, timers), on both back ends.

Real processes share one database; the leader is killed with SIGKILL (no release, no goodbye)
and another takes the job over within the lease plus one retry.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from home.db import HomeDB
from home.leader import holder_sync, release_sync, take_sync
from simsite.harness.paths import REPO

pytestmark = pytest.mark.usefixtures("home_backend")

LEASE_S = 1.5
RENEW_S = 0.3
RETRY_S = 0.2

# A home-like process: holds the "notify" lease and, while it does, appends "<pid> <time>" to
# a file every 50 ms (the job).
INSTANCE = """
import asyncio, os, sys, time
from home.db import HomeDB
from home.leader import Lease

async def main():
    db = HomeDB(sys.argv[1])
    await db.open()
    out = open(sys.argv[2], "a", buffering=1)

    async def job():
        while True:
            out.write(f"{os.getpid()} {time.time():.3f}\\n")
            await asyncio.sleep(0.05)

    lease = Lease(db, "notify", time.time, lease_s=float(sys.argv[3]),
                  renew_s=float(sys.argv[4]), retry_s=float(sys.argv[5]))
    await lease.run(job)

asyncio.run(main())
"""


def _start(database: str, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            INSTANCE,
            database,
            str(out),
            str(LEASE_S),
            str(RENEW_S),
            str(RETRY_S),
        ],
        cwd=REPO,
        start_new_session=True,
    )


def _beats(out: Path) -> list[tuple[int, float]]:
    if not out.exists():
        return []
    rows = []
    for line in out.read_text().splitlines():
        pid, at = line.split()
        rows.append((int(pid), float(at)))
    return rows


def test_lease_is_exclusive_expires_and_is_released(home_database: str) -> None:
    db = HomeDB(home_database)
    db.open_sync()
    try:
        clock = time.time
        assert take_sync(db.conn, "notify", "a", clock, LEASE_S)
        assert not take_sync(db.conn, "notify", "b", clock, LEASE_S)  # held by a
        assert take_sync(db.conn, "notify", "a", clock, LEASE_S)  # a renews
        assert holder_sync(db.conn, "notify", clock) == "a"
        assert take_sync(db.conn, "reports", "b", clock, LEASE_S)  # another job, another lease
        time.sleep(LEASE_S + 0.2)
        assert holder_sync(db.conn, "notify", clock) == ""  # expired
        assert take_sync(db.conn, "notify", "b", clock, LEASE_S)  # b takes the expired lease
        release_sync(db.conn, "notify", "a")  # a stale holder's release changes nothing
        assert holder_sync(db.conn, "notify", clock) == "b"
        release_sync(db.conn, "notify", "b")
        assert holder_sync(db.conn, "notify", clock) == ""
    finally:
        db.close_sync()


def test_killed_leader_is_replaced_within_the_lease(home_database: str, tmp_path: Path) -> None:
    HomeDB(home_database).open_sync()  # migrate before two processes race to
    out = tmp_path / "beats"
    first = _start(home_database, out)
    second = _start(home_database, out)
    try:
        deadline = time.monotonic() + 20
        while len({pid for pid, _ in _beats(out)}) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        leaders = {pid for pid, _ in _beats(out)}
        assert len(leaders) == 1, f"two instances ran the job at once: {leaders}"
        leader = leaders.pop()
        killed_at = time.time()
        os.killpg(leader, signal.SIGKILL)
        deadline = time.monotonic() + LEASE_S + 10
        while time.monotonic() < deadline:
            after = [(pid, at) for pid, at in _beats(out) if at > killed_at]
            if any(pid != leader for pid, _ in after):
                break
            time.sleep(0.05)
        beats = _beats(out)
        taken = min(at for pid, at in beats if pid != leader)
        gap = taken - killed_at
        assert gap <= LEASE_S + RETRY_S + 1.0, f"job stopped for {gap:.2f} s"
        # Never two at once: the old leader's last beat comes before the new one's first.
        last_old = max(at for pid, at in beats if pid == leader)
        assert last_old < taken
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
