"""Running home in production: a health check for the load balancer and Prometheus metrics.

``GET /healthz``: 200 when the database answers and its schema is at the version this release
migrates to; 503 with the reason otherwise (HAProxy's ``option httpchk`` takes the instance out
of rotation). ``GET /metrics``: Prometheus text format 0.0.4. Neither shows a secret: counts,
latencies, the back end's name and this instance's lease state only.

Metrics (``outpost_home_`` prefix):
  ingest_batches_total, ingest_records_total, ingest_duplicates_total (counters, this process)
  request_seconds{endpoint}: histogram of signed appliance request latency (ingest, heartbeat)
  db_queue: operations waiting for a database thread now
  notifications{state}: notifications in the outbox by state (whole database)
  leader{lease}: 1 while this instance holds the lease (home/leader.py)
  schema_version: the database's migration number
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from core.wire.protocol import HEARTBEAT_PATH, INGEST_PATH
from home.db import HomeDB
from home.leader import Lease
from home.migrations import MIGRATIONS
from home.signed import DB_KEY

HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
# Upper bounds of the latency buckets, seconds (the target is p95 < 0.5 s).
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
TIMED = {INGEST_PATH: "ingest", HEARTBEAT_PATH: "heartbeat"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Histogram:
    """A Prometheus histogram: cumulative counts per upper bound, sum and count."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS_S
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    total_s: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total_s += seconds
        self.n += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            out.append(f'{name}_bucket{{{labels},le="{le}"}} {running}')
        out.append(f"{name}_sum{{{labels}}} {self.total_s:.6f}")
        out.append(f"{name}_count{{{labels}}} {self.n}")
        return out


@dataclass
class Ops:
    """What /metrics reports beyond the database: latencies and the leases of this process."""

    latency: dict[str, Histogram] = field(
        default_factory=lambda: {name: Histogram() for name in TIMED.values()}
    )
    leases: list[Lease] = field(default_factory=list)


OPS_KEY = web.AppKey("ops", Ops)


def _schema_version(db: HomeDB) -> int:
    row = db.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _notification_states(db: HomeDB) -> dict[str, int]:
    rows = db.conn.execute("SELECT state, COUNT(*) FROM notifications GROUP BY state").fetchall()
    return {str(state): int(count) for state, count in rows}


async def health(request: web.Request) -> web.Response:
    db = request.app[DB_KEY]
    want = max(number for number, _ in MIGRATIONS)
    try:
        have = await db.call(_schema_version, db)
    except Exception as exc:  # noqa: BLE001 - any database fault means "unhealthy", with why
        return web.json_response({"ok": False, "error": f"database: {exc}"}, status=503)
    if have < want:
        return web.json_response(
            {"ok": False, "error": f"schema {have} is behind {want}: run outpost-home migrate"},
            status=503,
        )
    return web.json_response({"ok": True, "database": db.dialect, "schema": have})


async def metrics(request: web.Request) -> web.Response:
    db = request.app[DB_KEY]
    ops = request.app[OPS_KEY]
    p = "outpost_home_"
    lines = [
        f"# TYPE {p}ingest_batches_total counter",
        f"{p}ingest_batches_total {db.ingested_batches}",
        f"# TYPE {p}ingest_records_total counter",
        f"{p}ingest_records_total {db.ingested_records}",
        f"# TYPE {p}ingest_duplicates_total counter",
        f"{p}ingest_duplicates_total {db.ingested_duplicates}",
        f"# TYPE {p}db_queue gauge",
        f"{p}db_queue {db.queued}",
        f"# TYPE {p}request_seconds histogram",
    ]
    for endpoint, histogram in ops.latency.items():
        lines += histogram.lines(f"{p}request_seconds", f'endpoint="{endpoint}"')
    lines.append(f"# TYPE {p}leader gauge")
    lines += [f'{p}leader{{lease="{lease.name}"}} {int(lease.leading)}' for lease in ops.leases]
    try:
        version = await db.call(_schema_version, db)
        states = await db.call(_notification_states, db)
    except Exception as exc:  # noqa: BLE001 - the scrape still answers, saying the db failed
        lines += [f"# database unavailable: {type(exc).__name__}", f"{p}up 0"]
    else:
        lines += [f"# TYPE {p}schema_version gauge", f"{p}schema_version {version}"]
        lines.append(f"# TYPE {p}notifications gauge")
        lines += [f'{p}notifications{{state="{s}"}} {n}' for s, n in sorted(states.items())]
        lines.append(f"{p}up 1")
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8")


@web.middleware
async def timing(request: web.Request, handler: Handler) -> web.StreamResponse:
    endpoint = TIMED.get(request.path)
    if endpoint is None:
        return await handler(request)
    started = time.perf_counter()  # a duration (the latency histogram), not a time of day
    try:
        return await handler(request)
    finally:
        request.app[OPS_KEY].latency[endpoint].observe(time.perf_counter() - started)


def install(app: web.Application) -> Ops:
    """Add the health and metrics routes and the latency middleware to home's app."""
    ops = Ops()
    app[OPS_KEY] = ops
    app.middlewares.append(timing)
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_get(METRICS_PATH, metrics)
    return ops
