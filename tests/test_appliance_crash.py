"""SIGKILL the real appliance while it writes; after restart the store is intact and complete."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.conftest import OUTPOST, REPO

KILLS = int(os.environ.get("OUTPOST_CRASH_KILLS", "6"))


def _config(tmp: Path) -> Path:
    config = tmp / "outpost.toml"
    # Poll loopback only (our own host, never the network): fast cycles make a steady stream
    # of committed writes for the kill to land in.
    config.write_text(
        f"""
[store]
path = "{tmp / "data" / "outpost.db"}"
[web]
enabled = false
[discovery]
enabled = false
[polling]
interval_s = 0.2
jitter_frac = 0.0
icmp_count = 1
icmp_timeout_s = 0.2
[[polling.devices]]
name = "loopback one"
ip = "127.0.0.1"
kind = "server"
tcp_ports = [9]
[[polling.devices]]
name = "loopback two"
ip = "127.0.0.2"
kind = "server"
"""
    )
    return config


def _committed(db: Path) -> tuple[int, int]:
    """Rows a reader sees: committed by definition (WAL readers never see uncommitted data)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        # The file exists a moment before the first start's migrations commit the tables.
        table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'measurements'"
        if conn.execute(table).fetchone() is None:
            return 0, 0
        (m,) = conn.execute("SELECT MAX(id) FROM measurements").fetchone()
        (n,) = conn.execute("SELECT COUNT(*) FROM measurements").fetchone()
    finally:
        conn.close()
    return int(m or 0), int(n)


def test_sigkill_during_writes_keeps_every_committed_row(tmp_path: Path) -> None:
    config = _config(tmp_path)
    db = tmp_path / "data" / "outpost.db"
    rng = random.Random(7)
    seen_max_id = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [*OUTPOST, "run", "--config", str(config)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if db.exists():
                    max_id, _ = _committed(db)
                    if max_id > seen_max_id:
                        break
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.8))
            max_id, count = _committed(db)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert max_id > seen_max_id, "the appliance stored nothing new in 30 s"
        # After the kill, everything the reader saw before it must still be there.
        after_max, after_count = _committed(db)
        assert after_max >= max_id and after_count >= count
        seen_max_id = after_max
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()
    # And the appliance starts normally on the database it was killed over.
    result = subprocess.run(
        [*OUTPOST, "status", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert '"measurements":' in result.stdout
