"""Home under a fleet's load: many light appliances speaking the real signed protocol.

Each simulated appliance (simsite.harness.signed_client: its own Ed25519 key, gzip JSON
batches, signed headers) polls ``DEVICES`` devices of ``SERIES`` series every ``INTERVAL_S``
and sends the cycle's measurements as one batch, plus one heartbeat a cycle, starting at a
random offset in the first cycle, the way boxes spread out over a minute. Home runs as real
``outpost-home run`` processes; with two instances HAProxy spreads the boxes over them.

Printed for SQLite, PostgreSQL with one instance, and PostgreSQL with two, side by side:
sustained ingest (records/s), p50/p95 batch latency, home's CPU (and the database server's)
per 1,000 records, and database bytes per appliance per day (growth over the run, scaled).

Environment: OUTPOST_BENCH_APPLIANCES (1000), OUTPOST_BENCH_HOME_S (seconds of load, 120).
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from home.db import HomeDB
from simsite.harness import haproxy, postgres
from simsite.harness.home import Home
from simsite.harness.signed_client import LightAppliance, new_identity

APPLIANCES = int(os.environ.get("OUTPOST_BENCH_APPLIANCES", "1000"))
DURATION_S = float(os.environ.get("OUTPOST_BENCH_HOME_S", "120"))
DEVICES = 30
SERIES = 10  # per device and cycle: ICMP rtt/loss, interface in/out/errors, uptime, ...
INTERVAL_S = 60.0
REQUEST_TIMEOUT_S = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    records: int = 0
    batches: int = 0
    failed: int = 0
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0  # from the start to the last answered batch (not the last sleep)
    last_answer: float = 0.0  # time.monotonic() of the last answered batch
    home_cpu_s: float = 0.0
    db_cpu_s: float = 0.0
    db_bytes: int = 0
    largest: list[tuple[str, int]] = field(default_factory=list)  # (relation, bytes) at the end

    def lines(self) -> list[str]:
        lat = sorted(self.latencies_s)
        p50 = statistics.median(lat) * 1000 if lat else float("nan")
        p95 = lat[math.ceil(0.95 * len(lat)) - 1] * 1000 if lat else float("nan")  # nearest rank
        rate = self.records / self.elapsed_s if self.elapsed_s else 0.0
        per_k = 1000.0 / self.records if self.records else float("nan")
        per_day = self.db_bytes / APPLIANCES / self.elapsed_s * 86400 if self.elapsed_s else 0.0
        db_cpu = f", db server {self.db_cpu_s * per_k * 1000:.1f} ms" if self.db_cpu_s else ""
        return [
            f"{self.name}: {rate:,.0f} records/s sustained ({self.batches} batches, "
            f"{self.failed} failed), batch latency p50 {p50:.1f} ms, p95 {p95:.1f} ms",
            f"{self.name}: CPU per 1,000 records: home {self.home_cpu_s * per_k * 1000:.1f} ms"
            f"{db_cpu}; database {per_day / 1e6:.1f} MB per appliance per day",
        ] + (
            [
                f"{self.name}: largest relations: "
                + ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in self.largest)
            ]
            if self.largest
            else []
        )


def _cpu_s(pids: list[int]) -> float:
    """utime + stime of these processes and their children that were reaped (seconds)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / CLK_TCK


def _pg_pids(root: Path) -> list[int]:
    """Every PostgreSQL process of the server whose data directory is under ``root``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
            if b"postgres" in cmd:
                cwd = os.readlink(proc / "cwd")
                if str(root) in cwd:
                    pids.append(int(proc.name))
        except OSError:
            continue
    return pids


async def _appliance(
    box: LightAppliance, url: str, tls: ssl.SSLContext, result: Result, deadline: float
) -> None:
    rng = random.Random(box.identity.appliance_id)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.sleep(rng.uniform(0, INTERVAL_S))
        while time.monotonic() < deadline:
            cycle = time.monotonic()
            doc = box.batch(
                [
                    (
                        1,
                        "measurement",
                        {
                            "device_id": d,
                            "metric": f"m{s}",
                            "instance": "",
                            "unit": "",
                            "value": rng.random() * 100,
                        },
                    )
                    for d in range(DEVICES)
                    for s in range(SERIES)
                ],
                ts=time.time(),
            )
            began = time.perf_counter()
            try:
                status, answer = await box.post(session, url, doc, tls)
                await box.heartbeat(session, url, tls)
            except (aiohttp.ClientError, TimeoutError):
                status, answer = 0, {}
            if status == 200 and answer.get("accepted") == len(doc["records"]):
                result.latencies_s.append(time.perf_counter() - began)
                result.batches += 1
                result.records += len(doc["records"])
                result.last_answer = max(result.last_answer, time.monotonic())
            else:
                result.failed += 1
            await asyncio.sleep(max(0.0, INTERVAL_S - (time.monotonic() - cycle)))


def _largest(home: Home) -> list[tuple[str, int]]:
    """PostgreSQL's five largest tables and indexes (partitions each their own): where the
    bytes per appliance go."""
    rows = home.rows(
        "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')"
        " ORDER BY 2 DESC LIMIT 5"
    )
    return [(str(name), int(size)) for name, size in rows]


def _db_bytes(home: Home) -> int:
    if home.database:
        row = home.rows("SELECT pg_database_size(current_database())")
        return int(row[0][0])
    return sum(p.stat().st_size for p in home.data_dir.glob("home.db*"))


async def _load(name: str, homes: list[Home], url: str, db_root: Path | None = None) -> Result:
    boxes = [LightAppliance(new_identity()) for _ in range(APPLIANCES)]
    db = HomeDB(homes[0].location)
    db.open_sync()
    try:
        for box in boxes:
            db.register_sync(box.identity.appliance_id, box.identity.public_text, "Load site")
    finally:
        db.close_sync()
    for home in homes:
        home.start()
    result = Result(name)
    tls = ssl.create_default_context(cafile=str(homes[0].ca_file))
    home_pids = [h.proc.pid for h in homes if h.proc is not None]
    bytes_before = _db_bytes(homes[0])
    # The database's processes are read after home started: its connections' backends exist only
    # then (read before, they were missed and the server's CPU read a twentieth of the truth).
    db_pids = _pg_pids(db_root) if db_root is not None else []
    cpu_before = _cpu_s(home_pids), _cpu_s(db_pids)
    began = time.monotonic()
    deadline = began + DURATION_S
    await asyncio.gather(*(_appliance(b, url, tls, result, deadline) for b in boxes))
    # Each box sleeps out its last cycle after the deadline: the rate is over the time batches
    # were answered, not that idle tail (which once made 5,000 offered records/s read 3,300).
    result.elapsed_s = (result.last_answer or time.monotonic()) - began
    result.home_cpu_s = _cpu_s(home_pids) - cpu_before[0]
    if db_root is not None:  # backends started during the run count whole
        result.db_cpu_s = _cpu_s(_pg_pids(db_root)) - cpu_before[1]
    result.db_bytes = _db_bytes(homes[0]) - bytes_before
    if homes[0].database:
        result.largest = _largest(homes[0])
    for home in homes:
        home.stop()
    return result


@contextmanager
def _homes(tmp: Path, database: str, count: int) -> Iterator[list[Home]]:
    first = Home(tmp / "home1", tmp / "ca", database=database)
    first.prepare()
    homes = [first] + [first.replica(tmp / f"home{i}") for i in range(2, count + 1)]
    try:
        yield homes
    finally:
        for home in homes:
            home.stop()


def run() -> list[str]:
    lines = [
        f"{APPLIANCES} appliances x {DEVICES} devices x {SERIES} series every {INTERVAL_S:.0f} s "
        f"(offered {APPLIANCES * DEVICES * SERIES / INTERVAL_S:,.0f} records/s), "
        f"{DURATION_S:.0f} s of load each"
    ]
    with tempfile.TemporaryDirectory(prefix="outpost-bench-home-") as tmp, ExitStack() as stack:
        base = Path(tmp)
        with _homes(base / "sqlite", "", 1) as homes:
            lines += asyncio.run(_load("SQLite, 1 instance", homes, homes[0].url)).lines()
        pg = stack.enter_context(postgres.running())
        for count in (1, 2):
            database = postgres.fresh_database(pg)
            with _homes(base / f"pg{count}", database, count) as homes:
                if count == 1:
                    url = homes[0].url
                    result = asyncio.run(_load("PostgreSQL, 1 instance", homes, url, pg.root))
                else:
                    with haproxy.running([h.port for h in homes]) as balancer:
                        result = asyncio.run(
                            _load(
                                f"PostgreSQL, {count} instances + HAProxy",
                                homes,
                                balancer.url,
                                pg.root,
                            )
                        )
                lines += result.lines()
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
