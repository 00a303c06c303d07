"""MSP console benchmark: page latency of the real home process with a generated fleet.

Generated (per back end, into a fresh database, before home starts):

* SITES registered boxes (500), heartbeats through ``HomeDB.heartbeat_sync`` at varied ages
  (a tenth silent, some with a backlog of 1000 records or more);
* per site, through home's real ingest (``HomeDB.ingest_sync``, in-process, so home/inventory.py
  writes ``devices``, ``device_changes`` and ``inventory_snapshots`` as for a box): DEVICES (30)
  device records of a snapshot and its ``snapshot_end``, a few inventory changes over the DAYS,
  EVENTS (200) event and alert records spread over the DAYS (alert history: opened and
  resolved), and 0 to 6 alerts open now (about 1500 in the fleet) of mixed severity, each on one
  of the site's devices (``rule:DEVICE_ID``);
* home/notify's and the console's own rows for those alerts (``notify_threads`` with a
  notification each, a third of the open ones acknowledged; ``console_alert_state`` notes),
  written as plain rows (the in-process ingest runs without notify's hooks);
* measurements: DAYS (30) days at the box's default poll interval (INTERVAL_S, 60 s) of the
  SERIES (10) series of every one of the 30 devices (ICMP round trip and loss, two interfaces'
  in/out bit rates and errors, uptime: 432 000 records a site and day, the volume
  home/retention.py's docstring gives) for DETAIL_SITES (1) site: the one whose site and device
  pages are measured (12.96 million records); bulk SQL (SQLite: a recursive CTE; PostgreSQL:
  generate_series), rows exactly as ingest stores them (compact, sorted JSON bodies),
  time-ordered across those sites.
  The other sites have no measurements: all 500 at 30 days would be 6.5 billion rows (about
  1.7 TB; home rolls measurements up to hourly only after ``rollup_after_days`` = 30, so 30 days
  stay raw), which this machine can neither hold nor generate. The overview reads no
  measurement; the site and device pages read one site's rows by index, so what the other
  sites' rows would change is the indexes' depth (one more level) and the page cache: the
  generated database fits in memory here; a real one does not (docs/console.md).

Measured: p50/p95 over REQUESTS sequential requests each, over TLS with keep-alive and an API
token (read-only), after the first retention pass of home has finished: the sites overview
(HTML), a site's page (HTML, rotating over the detail sites), a device's page with its 24-hour
charts (rotating over their 30 devices), the sites JSON (all sites); against a static-file
peer: the overview's bytes saved to a file and served by aiohttp's static handler over TLS from
this process (no database, no template). The ratio column is p95 / the peer's p95; the CPU
column is home's CPU time per request (and the PostgreSQL server's), read from /proc: on a
machine shared with other work it moves much less than the times do.

Environment: OUTPOST_BENCH_CONSOLE_BACKENDS (``sqlite,postgresql``), OUTPOST_BENCH_CONSOLE_QUICK=1
(50 sites, 2 days, 1 detail site, 50 requests: two minutes), or each of
OUTPOST_BENCH_CONSOLE_SITES / _DAYS / _DETAIL_SITES / _REQUESTS.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.home_load import _cpu_s, _pg_pids
from core.clock import FixedClock
from home.console import accounts
from home.console.roles import Role
from home.db import HomeDB
from home.retention import ensure_partitions_sync
from simsite.harness import postgres
from simsite.harness.home import Home


def _env(name: str, default: str, quick: str) -> str:
    if os.environ.get("OUTPOST_BENCH_CONSOLE_QUICK") == "1":
        default = quick
    return os.environ.get(f"OUTPOST_BENCH_CONSOLE_{name}", default)


SITES = int(_env("SITES", "500", "50"))
DAYS = float(_env("DAYS", "30", "2"))
DETAIL_SITES = int(_env("DETAIL_SITES", "1", "1"))
REQUESTS = int(_env("REQUESTS", "200", "50"))
BACKENDS = tuple(
    b.strip() for b in _env("BACKENDS", "sqlite,postgresql", "sqlite,postgresql").split(",")
)
DEVICES = 30
EVENTS = 200
INTERVAL_S = 60.0
WARMUP = 5
SEED_CACHE_KIB = 1 << 20  # SQLite page cache of the generating connection (not home's)
RETENTION_WAIT_S = 900.0  # home's first retention pass scans the records at start
# (metric, instance, unit, scale of the value): what a polled switch or server reports.
SERIES = (
    ("icmp.rtt_ms", "", "ms", 5.0),
    ("icmp.loss_pct", "", "%", 1.0),
    ("if.in_bps", "1", "bit/s", 1e8),
    ("if.out_bps", "1", "bit/s", 1e8),
    ("if.in_errors_ps", "1", "1/s", 1.0),
    ("if.out_errors_ps", "1", "1/s", 1.0),
    ("if.in_bps", "2", "bit/s", 1e7),
    ("if.out_bps", "2", "bit/s", 1e7),
    ("if.oper_up", "1", "", 1.0),
    ("host.uptime_s", "", "s", 1e6),
)
SEVERITIES = ("critical", "major", "minor", "warning", "info")
RULES = ("icmp.down", "if.down", "ups.on_battery", "supply.low", "disk.failed", "if.errors")
KINDS = ("switch", "router", "server", "nas", "printer", "ups", "ap", "camera", "phone", "pc")
BOOT_ID = "0b5e2c1f-6f0e-4a53-9d1e-2a7c1bd0e001"
# A measurement's body as SQL text (d: the device, s: the series), exactly as ingest stores it.
BODY_SQL = """'{"boot_id":"BOOT","device_id":' || d.j || ',"instance":"' || s.instance
 || '","metric":"' || s.metric || '","mono":' || MONO || ',"unit":"' || s.unit
 || '","value":' || VALUE || '}'"""


@dataclass(frozen=True)
class Fleet:
    token: str
    detail: tuple[str, ...]  # appliances with measurements: their site and device pages
    measurements: int
    records: int
    seeded_s: float


def _aid(n: int) -> str:
    return f"op-bench{n:04d}"


def _device_body(n: int, d: int, start: float, snapshot: str) -> dict[str, Any]:
    kind = KINDS[d % len(KINDS)]
    return {
        "change": "snapshot",
        "device_id": d,
        "mac": f"02:00:{n // 256:02x}:{n % 256:02x}:00:{d:02x}",
        "ip": f"10.{n // 200}.{n % 200}.{d + 10}",
        "name": f"{kind}-{d:02d}",
        "kind": kind,
        "vendor": "Bench",
        "model": f"B{d % 7}",
        "source": "arp",
        "state": "present",
        "watched": d % 3 == 0,
        "first_seen": start,
        "last_seen": start + DAYS * 86400,
        "snapshot": snapshot,
    }


def _site_records(n: int, rng: random.Random, start: float, now: float) -> list[dict[str, Any]]:
    """The lane-0 records of one site, in seq order: its inventory snapshot, a few changes,
    EVENTS events and alert transitions over the DAYS, then the alerts open now."""
    out: list[tuple[str, float, dict[str, Any]]] = []
    snapshot = f"snap-{n}"
    for d in range(1, DEVICES + 1):
        out.append(("device", start, _device_body(n, d, start, snapshot)))
    out.append(("device", start, {"change": "snapshot_end", "snapshot": snapshot,
                                  "count": DEVICES, "device_drops": 0}))  # fmt: skip
    for c in range(3):
        d = rng.randint(1, DEVICES)
        body = _device_body(n, d, start, "") | {"change": "ip_changed", "changed": ["ip"],
                                                "old": {"ip": f"10.255.{c}.{d}"}}  # fmt: skip
        del body["snapshot"]
        out.append(("device", start + (c + 1) * 86400 * DAYS / 4, body))
    span = DAYS * 86400
    for e in range(EVENTS // 4):  # two events and one alert opened and resolved, EVENTS in all
        ts = start + span * (e + 0.5) / (EVENTS // 4)
        d = rng.randint(1, DEVICES)
        for what in ("answered again", "changed its name"):
            out.append(("event", ts, {"kind": "device.seen", "device_id": d, "severity": "info",
                                      "message": f"device {d} {what}"}))  # fmt: skip
        alert = {"key": f"icmp.down:{d}", "id": e, "rule": "icmp.down", "device_id": d,
                 "severity": "major", "data": {"kind": KINDS[d % len(KINDS)]}}  # fmt: skip
        out.append(
            (
                "alert",
                ts + 30,
                alert | {"state": "open", "ts": ts + 30, "message": f"device {d} does not answer"},
            )
        )
        out.append(
            (
                "alert",
                ts + 630,
                alert
                | {"state": "resolved", "ts": ts + 630, "message": f"device {d} answers again"},
            )
        )
    for a in range(rng.randint(0, 6)):
        d = rng.randint(1, DEVICES)
        rule = RULES[a % len(RULES)]
        ts = now - rng.uniform(60, 86400 * 3)
        out.append(("alert", ts, {"key": f"{rule}:{d}", "id": 10_000 + a, "rule": rule,
                                  "device_id": d, "severity": rng.choice(SEVERITIES),
                                  "state": "open", "message": f"{rule} on device {d}",
                                  "ts": ts, "data": {"kind": KINDS[d % len(KINDS)]}}))  # fmt: skip
    return [
        {"seq": i + 1, "lane": 0, "kind": kind, "ts": ts, "synced": True, "body": body}
        for i, (kind, ts, body) in enumerate(out)
    ]


def _seed_sites(db: HomeDB, clock: FixedClock, now: float, start: float) -> int:
    """Sites, inventories, events and alerts through home's own ingest; returns records."""
    rng = random.Random(14)
    records = 0
    for n in range(SITES):
        aid = _aid(n)
        clock.set_wall(start)
        db.register_sync(aid, "k", f"Client {n:04d}")
        clock.set_wall(now)
        batch = _site_records(n, rng, start, now)
        answer = db.ingest_sync(aid, f"seed-{n}", {"stream": "s1", "records": batch})
        assert answer["accepted"] == len(batch), answer
        records += len(batch)
        age = rng.choice([5.0, 20.0, 40.0]) if n % 10 else rng.uniform(600, 86400)
        backlog = rng.randint(1000, 5000) if n % 17 == 3 else rng.randint(0, 200)
        clock.set_wall(now - age)
        db.heartbeat_sync(aid, f"hb-{n}", {"version": "1.4.2", "queue": {"0": 0, "1": backlog},
                                           "uptime_s": 86400, "clock_synced": True,
                                           "state": "connected", "stream": "s1"})  # fmt: skip
    clock.set_wall(now)
    return records


def _seed_notify(db: HomeDB, now: float) -> str:
    """notify_threads (+ one notification each) for every alert, console notes, the token."""
    conn = db.conn
    rng = random.Random(15)
    conn.execute("BEGIN IMMEDIATE")
    alerts = conn.execute(
        "SELECT a.appliance, p.site, a.key, a.state, a.severity, a.message, a.ts FROM alerts a"
        " JOIN appliances p ON p.id = a.appliance"
    ).fetchall()
    threads, notes, sent = [], [], []
    for i, (aid, site, key, state, severity, message, ts) in enumerate(alerts):
        ref = f"A{i:06d}"
        acked = state == "open" and i % 3 == 0
        threads.append((ref, aid, key, aid, site, severity, key.split(":")[0], message, state,
                        ts, None if state == "open" else ts + 600,
                        "ann" if acked else "", ts + 300 if acked else None))  # fmt: skip
        sent.append((f"N{i:06d}", ref, site, "email", "open", severity, ts, ts, ts, "sent",
                     ts + 2))  # fmt: skip
        if state == "open" and rng.random() < 0.2:
            notes.append((aid, key, ts, "bob", ts + 100, "on it", "bob", ts + 100))
    conn.executemany(
        "INSERT INTO notify_threads (ref, appliance, alert_key, box_id, site, severity, rule,"
        " message, state, opened_at, resolved_at, acked_by, acked_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        threads,
    )
    conn.executemany(
        "INSERT INTO notifications (id, ref, site, channel, event, severity, created_at, due_at,"
        " next_at, state, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        sent,
    )
    conn.executemany(
        "INSERT INTO console_alert_state (appliance, key, opened_ts, acked_by, acked_at, note,"
        " note_by, note_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        notes,
    )
    accounts.create_user(conn, "bench", Role.READ_ONLY, "bench password 123", now)
    _id, token = accounts.create_token(conn, "bench", "bench", Role.READ_ONLY, now)
    conn.execute("COMMIT")
    return token


def _series_values(dialect: str) -> str:
    rows = ", ".join(
        f"({k}, '{metric}', '{instance}', '{unit}', {scale!r})"
        for k, (metric, instance, unit, scale) in enumerate(SERIES)
    )
    return f"(VALUES {rows})"


def _measurement_sql(dialect: str, sites: list[tuple[str, int]]) -> str:
    """INSERT ... SELECT of one chunk of minutes (parameters: first minute, minutes, start,
    received delay) for ``sites`` (appliance, first seq), ordered by time, then site, device,
    series: as the boxes' batches arrive."""
    apps = ", ".join(f"({i}, '{aid}', {seq})" for i, (aid, seq) in enumerate(sites))
    per_minute = DEVICES * len(SERIES)
    mono = f"(t.i * {INTERVAL_S!r})"

    def body(value: str) -> str:  # the JSON ingest stores: compact, keys sorted
        return BODY_SQL.replace("BOOT", BOOT_ID).replace("MONO", mono).replace("VALUE", value)

    columns = "appliance, stream, seq, lane, kind, ts, synced, body, received_at"
    if dialect == "sqlite":
        value = "round((abs(random()) % 1000000) / 1000000.0 * s.scale, 3)"
        return (
            "WITH RECURSIVE t(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM t WHERE i + 1 < ? + ?),"
            f" d(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM d WHERE j < {DEVICES}),"
            f" a(x, appliance, seq0) AS (VALUES {apps}),"
            f" s(k, metric, instance, unit, scale) AS {_series_values(dialect)}"
            f" INSERT INTO records ({columns})"
            f" SELECT a.appliance, 's1', a.seq0 + t.i * {per_minute} + (d.j - 1) * {len(SERIES)}"
            f" + s.k, 1, 'measurement', ? + t.i * {INTERVAL_S!r} + d.j * 0.01, 1, "
            + body(value)
            + f", ? + t.i * {INTERVAL_S!r} + 5.0"
            " FROM t CROSS JOIN a CROSS JOIN d CROSS JOIN s"
        )
    value = "round(CAST(random() * s.scale AS numeric), 3)"
    return (
        f"INSERT INTO records ({columns})"
        f" SELECT a.appliance, 's1', a.seq0 + t.i * {per_minute} + (d.j - 1) * {len(SERIES)}"
        f" + s.k, 1, 'measurement', ? + t.i * {INTERVAL_S!r} + d.j * 0.01, 1, "
        + body(value)
        + f", ? + t.i * {INTERVAL_S!r} + 5.0"
        " FROM generate_series(CAST(? AS BIGINT), CAST(? AS BIGINT) + CAST(? AS BIGINT) - 1) t(i)"
        f" CROSS JOIN (VALUES {apps}) a(x, appliance, seq0)"
        f" CROSS JOIN generate_series(1, {DEVICES}) d(j)"
        f" CROSS JOIN {_series_values(dialect)} s(k, metric, instance, unit, scale)"
        " ORDER BY t.i, a.x, d.j, s.k"
    )


def _seed_measurements(db: HomeDB, detail: list[str], start: float) -> int:
    """DAYS of measurements of every device of the ``detail`` sites, a day per transaction."""
    conn = db.conn
    sites = []
    for aid in detail:
        row = conn.execute("SELECT MAX(seq) FROM records WHERE appliance = ?", (aid,)).fetchone()
        sites.append((aid, int(row[0]) + 1))
    sql = _measurement_sql(db.dialect, sites)
    minutes = int(DAYS * 86400 / INTERVAL_S)
    chunk = int(86400 / INTERVAL_S)
    done = 0
    for first in range(0, minutes, chunk):
        count = min(chunk, minutes - first)
        if db.dialect == "sqlite":
            params: tuple[Any, ...] = (first, first, count, start, start)
        else:
            params = (start, start, first, first, count)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(sql, params)
        conn.execute("COMMIT")
        done += count * DEVICES * len(SERIES) * len(sites)
    per_site = minutes * DEVICES * len(SERIES)
    conn.execute("BEGIN IMMEDIATE")
    for aid, seq0 in sites:
        conn.execute(
            "INSERT INTO streams (appliance, stream, lane, hwm) VALUES (?, 's1', 1, ?)"
            " ON CONFLICT (appliance, stream, lane) DO UPDATE SET hwm = excluded.hwm",
            (aid, seq0 + per_site - 1),
        )
        conn.execute("UPDATE appliances SET records = records + ? WHERE id = ?", (per_site, aid))
    conn.execute("COMMIT")
    if db.dialect == "postgresql":
        conn.execute("ANALYZE records")  # autovacuum would, soon after such a load
    return done


def seed(location: str) -> Fleet:
    """Generate the fleet (module docstring) into home's database at ``location``."""
    began = time.monotonic()
    now = time.time()
    # Starts a little later than DAYS ago: nothing is old enough for home's roll-up during
    # the run (rollup_after_days = 30), as on a home whose retention job keeps up.
    start = now - DAYS * 86400 + 3600
    clock = FixedClock(now)
    db = HomeDB(location, clock=clock)
    db.open_sync()
    try:
        if db.dialect == "sqlite":  # this connection's page cache only: the load goes faster
            db.conn.execute(f"PRAGMA cache_size = -{SEED_CACHE_KIB}")
        ensure_partitions_sync(db.conn, start)  # PostgreSQL: the months the data spans
        records = _seed_sites(db, clock, now, start)
        token = _seed_notify(db, now)
        detail = [_aid((7 + i * max(1, SITES // max(1, DETAIL_SITES))) % SITES)
                  for i in range(DETAIL_SITES)]  # fmt: skip
        measurements = _seed_measurements(db, detail, start) if detail else 0
    finally:
        db.close_sync()
    return Fleet(token, tuple(detail), measurements, records + measurements,
                 time.monotonic() - began)  # fmt: skip


async def _times(
    http: aiohttp.ClientSession, urls: list[str], tls: ssl.SSLContext, cpu: Callable[[], float]
) -> tuple[list[float], int, float]:
    """Milliseconds of REQUESTS sequential GETs cycling over ``urls`` (after WARMUP), bytes of
    the last answer, and the server's CPU milliseconds per request (``cpu()``: seconds used so
    far by the serving processes), which other work on the machine inflates less than time."""
    out = []
    size = 0
    cpu_before = 0.0
    for i in range(WARMUP + REQUESTS):
        if i == WARMUP:
            cpu_before = cpu()
        url = urls[i % len(urls)]
        started = time.perf_counter()
        async with http.get(url, ssl=tls) as answer:
            body = await answer.read()
            assert answer.status == 200, (url, answer.status, body[:300])
        if i >= WARMUP:
            out.append((time.perf_counter() - started) * 1000.0)
        size = len(body)
    return out, size, (cpu() - cpu_before) * 1000.0 / REQUESTS


def _no_cpu() -> float:
    return math.nan


def _q(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


@dataclass(frozen=True)
class Row:
    backend: str
    page: str
    p50: float
    p95: float
    ratio: float  # p95 / the static peer's p95
    kib: float
    cpu_ms: float  # CPU of home (and PostgreSQL) per request


async def _measure(
    backend: str, home: Home, fleet: Fleet, work: Path, pg_root: Path | None
) -> list[Row]:
    tls = ssl.create_default_context(cafile=str(home.ca_file))
    auth = {"Authorization": f"Bearer {fleet.token}"}
    base = home.url
    detail = fleet.detail or (_aid(7),)
    sites = [f"{base}/console/sites/{a}" for a in detail]
    device_urls = [f"{base}/console/sites/{a}/devices/{d}"
                   for d in range(1, DEVICES + 1) for a in detail]  # fmt: skip
    assert home.proc is not None
    serving = [home.proc.pid]

    def cpu() -> float:
        return _cpu_s(serving + (_pg_pids(pg_root) if pg_root else []))

    timed: dict[str, tuple[list[float], int, float]] = {}
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(base + "/console", ssl=tls) as answer:
            page = await answer.read()
        timed["sites overview (HTML)"] = await _times(http, [base + "/console"], tls, cpu)
        timed["site page (HTML)"] = await _times(http, sites, tls, cpu)
        timed["device page + charts"] = await _times(http, device_urls, tls, cpu)
        timed["sites JSON (API)"] = await _times(http, [base + "/api/v1/console/sites"], tls, cpu)
        static_dir = work / f"static-{backend}"
        static_dir.mkdir()
        (static_dir / "overview.html").write_bytes(page)
        app = web.Application()
        app.router.add_static("/", static_dir)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(home.data_dir / "server.pem", home.data_dir / "server.key")
        port = home.port + 1 if home.port < 65000 else home.port - 1
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_tls).start()
        try:
            peer = f"https://127.0.0.1:{port}/overview.html"
            # Its server shares this process with the client: no CPU figure of its own.
            timed["static peer (overview bytes)"] = await _times(http, [peer], tls, _no_cpu)
        finally:
            await runner.cleanup()
    static_p95 = _q(timed["static peer (overview bytes)"][0], 95)
    return [
        Row(backend, name, _q(ms, 50), _q(ms, 95), _q(ms, 95) / static_p95, size / 1024, cpu_ms)
        for name, (ms, size, cpu_ms) in timed.items()
    ]


def _wait_for_retention(home: Home) -> float:
    """Seconds until home's first retention pass (partitions, roll-ups, expiry) is logged: it
    holds SQLite's one database thread while it scans the records."""
    began = time.monotonic()
    while time.monotonic() - began < RETENTION_WAIT_S:
        if home.log_path.exists() and "home.retention" in home.log_path.read_text(errors="replace"):
            return time.monotonic() - began
        time.sleep(0.5)
    raise RuntimeError(f"home logged no retention pass within {RETENTION_WAIT_S:.0f} s")


def _db_bytes(home: Home) -> int:
    if home.database:
        return int(home.rows("SELECT pg_database_size(current_database())")[0][0])
    return sum(p.stat().st_size for p in home.data_dir.glob("home.db*"))


def _one(
    backend: str, work: Path, database: str, pg_root: Path | None
) -> tuple[list[str], list[Row]]:
    home = Home(work / f"home-{backend}", work / f"ca-{backend}", database=database)
    home.prepare()
    fleet = seed(home.location)
    size = _db_bytes(home)
    home.start()
    try:
        waited = _wait_for_retention(home)
        rows = asyncio.run(_measure(backend, home, fleet, work, pg_root))
    finally:
        home.stop()
    lines = [
        f"{backend}: {SITES} sites x {DEVICES} devices, {fleet.records:,} records "
        f"({fleet.measurements:,} measurements: {DAYS:g} days at {INTERVAL_S:.0f} s x "
        f"{len(SERIES)} series x {DEVICES} devices of {len(fleet.detail)} site(s)), "
        f"database {size / 2**30:.1f} GiB, generated in {fleet.seeded_s:.0f} s, "
        f"first retention pass {waited:.0f} s"
    ]
    return lines, rows


def table(rows: list[Row]) -> list[str]:
    """The compact summary: one line per back end and page (CPU: home's, and PostgreSQL's, per
    request; none for the static peer, whose server shares this process with the client)."""
    out = [f"{'backend':<11}{'page':<31}{'p50 ms':>8}{'p95 ms':>8}{'p95/static':>11}"
           f"{'CPU ms':>8}{'KiB':>6}"]  # fmt: skip
    for r in rows:
        cpu = "-" if math.isnan(r.cpu_ms) else f"{r.cpu_ms:.1f}"
        out.append(f"{r.backend:<11}{r.page:<31}{r.p50:>8.1f}{r.p95:>8.1f}{r.ratio:>10.1f}x"
                   f"{cpu:>8}{r.kib:>6.0f}")  # fmt: skip
    return out


def run() -> Iterator[str]:
    unknown = set(BACKENDS) - {"sqlite", "postgresql"}
    if unknown:
        raise ValueError(
            f"OUTPOST_BENCH_CONSOLE_BACKENDS names {sorted(unknown)}: use sqlite, postgresql"
        )
    yield (f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
           f"{REQUESTS} requests per page")  # fmt: skip
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        for backend in BACKENDS:
            database, pg_root = "", None
            if backend == "postgresql":
                pg = stack.enter_context(postgres.running())
                database, pg_root = postgres.fresh_database(pg), pg.root
            lines, got = _one(backend, work, database, pg_root)
            yield from lines
            yield from table(got)  # as soon as it is known; all back ends again at the end
            rows += got
    yield f"load average {os.getloadavg()[0]:.1f} at the end"
    yield from table(rows)


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
