"""The monthly report: one site's month (250 devices) built at home, and the box's /report.

Data: October 2026 of a 250-device site, one poll every 5 minutes (polling's default is 60 s:
5x the points; see docs/report.md), written straight into the tables the report reads: home's
``records`` (measurement, alert bodies in the ingest's stored form) and ``devices``, and the
box's ``series``/``measurements``/``alerts``. 2.2 M reachability points, 40 volume and 20
supply series, 60 alerts.

* home: in a fresh child process (its peak RSS is the figure), the time to read the rows
  (``home/report/source.py``), build the report, render HTML and the PDF; the peer is a bare
  scan of the same measurement rows (SELECT and json.loads of each body, nothing kept).
* box: the appliance's ``/report`` served by the real aiohttp app on loopback, requested
  sequentially; p50/p95 against the same server's ``/report.css`` (a static file). The polls
  are written straight into ``measurements`` (not through the writer), so the reachability
  summary the writer would have kept is built as on an upgraded box: the history queued and
  summarised by the backfill (services/store/reach.py), through the real writer, timed.

``BENCH_REPORT_PARTS=box python -m bench.report`` runs the box part alone (no home database,
no PDF); with ``BENCH_REPORT_SUMMARY=0`` as well, the history is queued but not summarised, so
``/report`` reads every poll (the path of a box whose backfill has not reached that month, and
what every build did before the summary), 5 requests.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEVICES = 250
INTERVAL_S = 300.0
APPLIANCE = "bench-box"
BOX_REQUESTS = 12
COLD_REQUESTS = 20
PARTS_ENV = "BENCH_REPORT_PARTS"  # "box": the box part alone; unset or "all": both
SUMMARY_ENV = "BENCH_REPORT_SUMMARY"  # "0" (box part alone): no summary, the raw polls read
RAW_REQUESTS = 5


def _month() -> tuple[float, float]:
    from simsite.harness.report_month import END_S, START_S

    return START_S, END_S


def _kinds(i: int) -> str:
    return ("server", "nas", "printer", "switch", "ap")[i % 5] if i < 60 else "workstation"


def _reach(device: int, t: float, start: float) -> float:
    # Each server is down an hour on a different afternoon; the rest is up.
    day = int((t - start) // 86400)
    hour = (t - start) % 86400 / 3600
    return 0.0 if _kinds(device) == "server" and day == device % 28 and 13 <= hour < 14 else 1.0


def seed_home(path: Path) -> None:
    from home.db import HomeDB

    start, end = _month()
    db = HomeDB(path)
    db.open_sync()
    db.register_sync(APPLIANCE, "bench-key", "Bench Site")
    conn = db.conn
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO devices (appliance, device_id, mac, ip, name, kind, vendor, model, source,"
        " state, watched, first_seen, last_seen, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, '', '', 'arp', 'present', 0, ?, ?, ?)",
        [(APPLIANCE, i, f"02:00:00:00:{i // 256:02x}:{i % 256:02x}", f"198.18.{i // 250}.{i % 250}",
          f"dev-{i}", _kinds(i), start - 86400, end, end) for i in range(1, DEVICES + 1)],
    )  # fmt: skip
    seq = 0
    batch: list[tuple[object, ...]] = []

    def add(kind: str, ts: float, body: dict[str, object]) -> None:
        nonlocal seq
        seq += 1
        text = json.dumps(body, separators=(",", ":"), sort_keys=True)
        batch.append((APPLIANCE, "bench", seq, 1, kind, ts, 1, text, ts))
        if len(batch) >= 20000:
            flush()

    def flush() -> None:
        conn.executemany(
            "INSERT INTO records (appliance, stream, seq, lane, kind, ts, synced, body,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
        batch.clear()

    t = start - 3600
    while t < end:
        for i in range(1, DEVICES + 1):
            add("measurement", t, {"device_id": i, "metric": "device.reachable", "instance": "",
                                   "unit": "0/1", "value": _reach(i, t, start)})  # fmt: skip
            if _kinds(i) in ("nas", "server"):
                used = 40 + (t - start) / 86400 * (i % 7) / 7
                body = {"device_id": i, "metric": "storage.used_pct", "instance": "/data"}
                add("measurement", t, {**body, "unit": "%", "value": used})
            if _kinds(i) == "printer":
                add("measurement", t, {"device_id": i, "metric": "supply.level_pct",
                                       "instance": "black toner", "unit": "%",
                                       "value": 90 - (t - start) / 86400 * 2.5})  # fmt: skip
        t += INTERVAL_S
    for n in range(60):
        opened = start + n * 11 * 3600.0
        body = {"id": n + 1, "key": f"volume:{n + 1}:/data", "rule": "volume.full",
                "device_id": n + 1, "severity": "minor", "message": "volume 81 % full"}  # fmt: skip
        add("alert", opened, {**body, "state": "open", "ts": opened})
        add("alert", opened + 1800, {**body, "state": "resolved", "ts": opened + 1800})
    flush()
    conn.execute("COMMIT")
    db.close_sync()


def seed_box(path: Path) -> None:
    """The same month in the appliance's store (series + measurements, the tables /report reads)."""
    from firmware.app import MIGRATION_CHAINS
    from services.store import Store

    async def migrate() -> None:
        store = Store(path, chains=MIGRATION_CHAINS)
        await store.open()
        await store.close()

    asyncio.run(migrate())
    start, end = _month()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO boots (id, boot_id) VALUES (1, 'bench')")
        conn.executemany(
            "INSERT INTO devices (id, mac, ip, name, kind, first_seen, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(i, f"02:00:00:00:{i // 256:02x}:{i % 256:02x}", f"198.18.{i // 250}.{i % 250}",
              f"dev-{i}", _kinds(i), start - 86400, end) for i in range(1, DEVICES + 1)],
        )  # fmt: skip
        series = []
        for i in range(1, DEVICES + 1):
            series.append((i, i, "device.reachable", "", "0/1"))
            if _kinds(i) in ("nas", "server"):
                series.append((1000 + i, i, "storage.used_pct", "/data", "%"))
        conn.executemany(
            "INSERT INTO series (id, device_id, metric, instance, unit) VALUES (?, ?, ?, ?, ?)",
            series,
        )
        rows: list[tuple[object, ...]] = []
        t = start - 3600
        while t < end:
            for i in range(1, DEVICES + 1):
                rows.append((i, t, t - start, 1, 1, _reach(i, t, start)))
                if _kinds(i) in ("nas", "server"):
                    rows.append((1000 + i, t, t - start, 1, 1,
                                 40 + (t - start) / 86400 * (i % 7) / 7))  # fmt: skip
            if len(rows) > 50000:
                conn.executemany(
                    "INSERT INTO measurements (series, ts, mono, boot, synced, value)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                rows.clear()
            t += INTERVAL_S
        conn.executemany(
            "INSERT INTO measurements (series, ts, mono, boot, synced, value)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


def summarise_box(path: Path, backfill: bool = True) -> tuple[float, int]:
    """The backfill an upgraded box runs (every reachability series queued, then summarised in
    short writes through the real writer); returns (seconds, raw polls read). ``backfill``
    False: queued only (the report then reads the raw polls)."""
    from services.store import Store, reach

    with sqlite3.connect(path) as conn:
        reach.queue_all(conn)
    if not backfill:
        return 0.0, 0

    async def run() -> tuple[float, int]:
        store = Store(path)
        await store.open()
        try:
            t = time.perf_counter()
            work = await reach.backfill(store, pause_s=0.0)
            return time.perf_counter() - t, work
        finally:
            await store.close()

    return asyncio.run(run())


def child_home(path: str) -> None:
    """Runs in its own process: prints the timings and peak RSS as JSON."""
    from core.report.build import build_report
    from core.report.hours import BusinessHours, month_period
    from home.db import HomeDB
    from home.report import render, source

    db = HomeDB(path)
    db.open_sync()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, end = _month()
    t0 = time.perf_counter()
    n = 0
    for (text,) in db.conn.execute(
        "SELECT body FROM records WHERE appliance = ? AND kind = 'measurement' AND ts >= ?"
        " AND ts < ?",
        (APPLIANCE, start - 3600, end),
    ):
        json.loads(text)
        n += 1
    t1 = time.perf_counter()
    data = source.load_input_sync(
        db, APPLIANCE, period=month_period(2026, 10, "Europe/Berlin"),
        hours=BusinessHours("Europe/Berlin"),
    )  # fmt: skip
    t2 = time.perf_counter()
    report = build_report(data)
    t3 = time.perf_counter()
    page = render.html(data, report)
    t4 = time.perf_counter()
    pdf = render.pdf(page)
    t5 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "records": n, "scan_s": t1 - t0, "load_s": t2 - t1, "build_s": t3 - t2,
        "html_s": t4 - t3, "pdf_s": t5 - t4, "pdf_kb": len(pdf) / 1024,
        "peak_mb": peak, "base_mb": base_rss, "problems": len(report.problems),
    }))  # fmt: skip
    db.close_sync()


async def _box_p95(
    path: Path, cold_requests: int = COLD_REQUESTS
) -> tuple[list[float], list[float], list[float], float]:
    import aiohttp

    from core.clock import FixedClock
    from core.config import parse_config
    from services.context import AppContext
    from services.store import Store
    from simsite.harness.report_month import CONFIG, local
    from simsite.harness.status_page import serve

    clock = FixedClock(wall=local(2026, 11, 2, 9))
    store = Store(path, clock=clock)
    await store.open()
    ctx = AppContext(config=parse_config(CONFIG), store=store, clock=clock, version="bench")
    from web import report_page

    cold_ms: list[float] = []
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report_ms: list[float] = []
    css_ms: list[float] = []

    async def get(http: aiohttp.ClientSession, url: str) -> float:
        t = time.perf_counter()
        async with http.get(url) as r:
            await r.read()
            assert r.status == 200, r.status
        return (time.perf_counter() - t) * 1000

    try:
        async with serve(ctx) as base, aiohttp.ClientSession() as http:
            for _ in range(cold_requests):  # built from the store each time
                report_page.clear_cache()
                cold_ms.append(await get(http, base + "/report"))
            for i in range(BOX_REQUESTS + 2):  # the closed month's page from the cache
                hot, css = await get(http, base + "/report"), await get(http, base + "/report.css")
                if i >= 2:
                    report_ms.append(hot)
                    css_ms.append(css)
    finally:
        await store.close()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return cold_ms, report_ms, css_ms, rss_after - rss_before


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 2 else values[0]


def _box_lines(
    cold_ms: list[float], report_ms: list[float], css_ms: list[float], rss_mb: float
) -> list[str]:
    return [
        f"box /report ({DEVICES} devices, month of 5-min polls) built from the store: p50 "
        f"{statistics.median(cold_ms) / 1000:.2f} s, p95 {_p95(cold_ms) / 1000:.2f} s, range "
        f"{min(cold_ms) / 1000:.2f}-{max(cold_ms) / 1000:.2f} s over {len(cold_ms)} requests "
        f"(peak RSS of the process grew {rss_mb:.0f} MB while serving them); the closed month "
        f"from the cache: p50 {statistics.median(report_ms):.1f} ms, p95 "
        f"{_p95(report_ms):.1f} ms, against /report.css (a static file, same server) p95 "
        f"{_p95(css_ms):.1f} ms ({_p95(report_ms) / max(_p95(css_ms), 0.01):.1f}x)",
    ]


def run_box() -> list[str]:
    """The box part alone (``BENCH_REPORT_PARTS=box``)."""
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="bench-report-", dir=base) as tmp:
        box_db = Path(tmp) / "outpost.db"
        t = time.perf_counter()
        seed_box(box_db)
        seeded_s = time.perf_counter() - t
        summarised = os.environ.get(SUMMARY_ENV, "1") != "0"
        summary_s, polls = summarise_box(box_db, summarised)
        cold = COLD_REQUESTS if summarised else RAW_REQUESTS
        cold_ms, report_ms, css_ms, rss_mb = asyncio.run(_box_p95(box_db, cold))
    how = (
        f"its reachability summarised by the backfill of an upgraded box in {summary_s:.1f} s "
        f"({polls:,} polls)"
        if summarised
        else "no reachability summary (queued, not built): every poll read"
    )
    return [
        f"report (box): seeded a {DEVICES}-device month in {seeded_s:.0f} s; {how}",
        *_box_lines(cold_ms, report_ms, css_ms, rss_mb),
    ]


def run() -> list[str]:
    if os.environ.get(PARTS_ENV, "all") == "box":
        return run_box()
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="bench-report-", dir=base) as tmp:
        home_db = Path(tmp) / "home.db"
        box_db = Path(tmp) / "outpost.db"
        t = time.perf_counter()
        seed_home(home_db)
        seed_box(box_db)
        seeded_s = time.perf_counter() - t
        summary_s, polls = summarise_box(box_db)
        child = subprocess.run(
            [sys.executable, "-m", "bench.report", "--child-home", str(home_db)],
            check=True, capture_output=True, text=True, cwd=Path(__file__).parent.parent,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
        )  # fmt: skip
        h = json.loads(child.stdout.strip().splitlines()[-1])
        cold_ms, report_ms, css_ms, rss_mb = asyncio.run(_box_p95(box_db))
    total = h["load_s"] + h["build_s"] + h["html_s"] + h["pdf_s"]
    return [
        f"report: seeded a {DEVICES}-device month ({h['records']:,} measurement records at home, "
        f"one poll every {INTERVAL_S:.0f} s) in {seeded_s:.0f} s",
        f"report at home: read {h['load_s']:.2f} s + build {h['build_s']:.2f} s + HTML "
        f"{h['html_s']:.2f} s + PDF {h['pdf_s']:.2f} s = {total:.1f} s "
        f"({h['load_s'] / h['scan_s']:.2f}x a bare scan of the same rows, {h['scan_s']:.2f} s); "
        f"peak RSS {h['peak_mb']:.0f} MB ({h['peak_mb'] - h['base_mb']:.0f} MB above the "
        f"process at start); PDF {h['pdf_kb']:.0f} KiB",
        f"box: the reachability summary built by the backfill of an upgraded box in "
        f"{summary_s:.1f} s ({polls:,} polls)",
        *_box_lines(cold_ms, report_ms, css_ms, rss_mb),
    ]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child-home":
        child_home(sys.argv[2])
    else:
        for line in run():
            print(line)
