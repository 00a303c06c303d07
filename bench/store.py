"""Store benchmark: measurements stored per second and bytes written to disk per measurement.

Workload: a poll cycle's worth of measurements (50 per device result) written as separate
store.write() calls from many concurrent pollers, as the appliance does. Peer, in the same run:
the naive way, one sqlite3 transaction per device result into a wide table with the metric
name and boot id as text on every row (WAL, synchronous=FULL as well, so durability is equal).
Disk bytes are what the kernel says this process sent to the block layer (/proc/self/io
write_bytes): WAL, checkpoints and fsyncs included, which is what wears an SD card.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import time
from functools import partial
from pathlib import Path

from services.store import Measurement, Store, insert_measurements

DEVICES = 200
METRICS_PER_RESULT = 50
CYCLES = 10
TOTAL = DEVICES * METRICS_PER_RESULT * CYCLES


def _write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def _sync_disk() -> None:
    os.sync()


async def _outpost(path: Path) -> tuple[float, int]:
    store = Store(path)
    await store.open()
    _sync_disk()
    before = _write_bytes()
    began = time.perf_counter()
    for cycle in range(CYCLES):
        results = [
            [
                Measurement(d, f"metric.{k}", float(cycle * k), instance=f"if{k % 8}")
                for k in range(METRICS_PER_RESULT)
            ]
            for d in range(DEVICES)
        ]
        await asyncio.gather(*(store.write(partial(insert_measurements, items=r)) for r in results))
    elapsed = time.perf_counter() - began
    await store.close()
    _sync_disk()
    return elapsed, _write_bytes() - before


def _naive(path: Path) -> tuple[float, int]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE m (id INTEGER PRIMARY KEY, device INTEGER, metric TEXT, instance TEXT,"
        " unit TEXT, ts REAL, mono REAL, boot_id TEXT, synced INTEGER, value REAL)"
    )
    conn.execute("CREATE INDEX m_dev ON m (device, metric, ts)")
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    _sync_disk()
    before = _write_bytes()
    began = time.perf_counter()
    for cycle in range(CYCLES):
        for d in range(DEVICES):
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO m (device, metric, instance, unit, ts, mono, boot_id, synced, value)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (
                        d,
                        f"metric.{k}",
                        f"if{k % 8}",
                        "",
                        time.time(),
                        time.monotonic(),
                        boot,
                        1,
                        float(cycle * k),
                    )
                    for k in range(METRICS_PER_RESULT)
                ],
            )
            conn.execute("COMMIT")
    elapsed = time.perf_counter() - began
    conn.close()
    _sync_disk()
    return elapsed, _write_bytes() - before


def run() -> list[str]:
    # On the real disk (not tmpfs), so that bytes written are bytes the device would see.
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent.parent) as tmp:
        o_time, o_bytes = asyncio.run(_outpost(Path(tmp) / "outpost.db"))
        n_time, n_bytes = _naive(Path(tmp) / "naive.db")
    o_rate, n_rate = TOTAL / o_time, TOTAL / n_time
    o_bpm, n_bpm = o_bytes / TOTAL, n_bytes / TOTAL
    return [
        f"workload: {TOTAL} measurements, {DEVICES} devices x {METRICS_PER_RESULT} per result"
        f" x {CYCLES} cycles, WAL + synchronous=FULL on both",
        f"outpost store: {o_rate:,.0f} measurements/s, {o_bpm:.1f} bytes written/measurement",
        f"naive peer (txn per result, wide rows): {n_rate:,.0f} measurements/s,"
        f" {n_bpm:.1f} bytes written/measurement",
        f"ratio outpost/naive: speed {o_rate / n_rate:.2f}x, disk bytes {o_bpm / n_bpm:.2f}x",
    ]


if __name__ == "__main__":
    for line in run():
        print(line)
