"""MSP console benchmark: page latency of the real home process with a generated fleet.

Fleet: SITES registered boxes (heartbeats of varied age, a tenth silent), about three open
alerts per site of mixed severity, and per site EVENTS alert/event records plus MEASUREMENTS
measurement records in home's database (SQLite), so the timeline query runs over a records table
of SITES x (EVENTS + MEASUREMENTS) rows. Devices are not held by home yet (docs/console.md), so
the issue's "30 devices each, 30 days of data" is approximated by the records volume only.

Figures (p50/p95 over REQUESTS sequential requests each, over TLS with keep-alive, API token):
the sites overview (HTML), one site's page (HTML), the sites JSON; against a static-file peer:
the same overview HTML saved to a file and served by aiohttp's static handler over TLS from
this process (no database, no template).
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from home.console import accounts
from home.console.roles import Role
from home.db import HomeDB
from simsite.harness.home import Home

SITES = 500
EVENTS = 200
MEASUREMENTS = 2000
REQUESTS = 200
SEVERITIES = ("critical", "major", "minor", "warning", "info")


def _seed(db: HomeDB, now: float) -> str:
    rng = random.Random(14)
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    for n in range(SITES):
        aid = f"op-bench{n:04d}"
        age = rng.choice([5.0, 20.0, 40.0]) if n % 10 else rng.uniform(600, 86400)
        heartbeat = {"version": "1.4.2", "queue": {"0": 0, "1": rng.randint(0, 2000)},
                     "uptime_s": 86400, "clock_synced": True, "state": "connected"}  # fmt: skip
        conn.execute(
            "INSERT INTO appliances (id, public_key, site, state, registered_at, last_seen,"
            " heartbeat_at, heartbeat) VALUES (?, 'k', ?, 'registered', ?, ?, ?, ?)",
            (aid, f"Client {n:04d}", now - 86400 * 30, now - age, now - age, json.dumps(heartbeat)),
        )
        for a in range(rng.randint(0, 6)):
            conn.execute(
                "INSERT INTO alerts (appliance, key, state, severity, message, ts)"
                " VALUES (?, ?, 'open', ?, ?, ?)",
                (aid, f"rule.{a}:{a}", rng.choice(SEVERITIES), f"alert {a} at site {n}",
                 now - rng.uniform(60, 86400 * 3)),
            )  # fmt: skip
        rows = []
        for seq in range(1, EVENTS + MEASUREMENTS + 1):
            kind = ("alert", "event")[seq % 2] if seq <= EVENTS else "measurement"
            body = {"message": f"{kind} {seq}", "severity": "minor", "value": 1.0}
            rows.append((aid, "s1", seq, seq % 2, kind, now - (EVENTS + MEASUREMENTS - seq) * 60,
                         1, json.dumps(body), now))  # fmt: skip
        conn.executemany(
            "INSERT INTO records (appliance, stream, seq, lane, kind, ts, synced, body,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    accounts.create_user(conn, "bench", Role.READ_ONLY, "bench password 123", now)
    _id, token = accounts.create_token(conn, "bench", "bench", Role.READ_ONLY, now)
    conn.execute("COMMIT")
    return token


async def _times(http: aiohttp.ClientSession, url: str, tls: ssl.SSLContext) -> list[float]:
    out = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        async with http.get(url, ssl=tls) as answer:
            await answer.read()
            assert answer.status == 200, (url, answer.status)
        out.append((time.perf_counter() - started) * 1000.0)
    return out


def _p(values: list[float]) -> str:
    q = statistics.quantiles(values, n=100)
    return f"p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms"


async def _measure(home: Home, token: str, work: Path) -> list[str]:
    tls = ssl.create_default_context(cafile=str(home.ca_file))
    auth = {"Authorization": f"Bearer {token}"}
    lines = []
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(home.url + "/console", ssl=tls) as answer:
            page = await answer.read()
        overview = await _times(http, home.url + "/console", tls)
        site = await _times(http, home.url + "/console/sites/op-bench0007", tls)
        api = await _times(http, home.url + "/api/v1/console/sites", tls)
        static_dir = work / "static"
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
            peer = await _times(http, f"https://127.0.0.1:{port}/overview.html", tls)
        finally:
            await runner.cleanup()
    lines.append(f"fleet: {SITES} sites, {SITES * (EVENTS + MEASUREMENTS)} records, "
                 f"overview page {len(page) / 1024:.0f} KiB")  # fmt: skip
    lines.append(f"sites overview (HTML): {_p(overview)}")
    lines.append(f"site page (HTML): {_p(site)}")
    lines.append(f"sites JSON (API): {_p(api)}")
    lines.append(f"static-file peer (same overview bytes): {_p(peer)}")
    ratio = statistics.quantiles(overview, n=100)[94] / statistics.quantiles(peer, n=100)[94]
    lines.append(f"overview p95 / static p95: {ratio:.1f}x")
    return lines


def run() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        work = Path(tmp)
        home = Home(work / "home", work / "ca")
        home.prepare()
        db = HomeDB(home.location)
        db.open_sync()
        try:
            started = time.monotonic()
            token = _seed(db, time.time())
            seeded_s = time.monotonic() - started
        finally:
            db.close_sync()
        home.start()
        try:
            lines: list[Any] = asyncio.run(_measure(home, token, work))
        finally:
            home.stop()
        yield f"generated in {seeded_s:.1f} s"
        yield from lines


if __name__ == "__main__":
    for line in run():
        print(line)
