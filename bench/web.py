"""Status page and API latency with 250 devices in the store, and the appliance's memory.

The real appliance process (``python -m firmware run``; discovery, polling and the uplink off
because the bench runs on loopback, not on a simulated site) serves a store seeded through
the Store API with 250 devices and 7 days of latency and traffic history. Each page and API
endpoint is requested sequentially; p50/p95 are compared with a static file from the same
server (the peer: what aiohttp itself costs). RSS of the appliance is read from /proc while
serving, and compared with a bare interpreter that only imports aiohttp.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from firmware.app import MIGRATION_CHAINS
from services.store import Store
from simsite.harness.ports import free_tcp_port
from simsite.harness.processes import start_appliance, stop
from simsite.harness.status_page import seed_site

DEVICES = 250
HISTORY_DAYS = 7.0
STEP_S = 300.0  # one latency sample per 5 min (polling's default is 60 s; charts bucket anyway)
REQUESTS = 200  # per endpoint


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _seed(db: Path) -> int:
    store = Store(db, chains=MIGRATION_CHAINS)
    await store.open()
    try:
        ids = await seed_site(store, time.time(), DEVICES, HISTORY_DAYS, STEP_S)
        rows = await store.query("SELECT COUNT(*) AS n FROM measurements")
        return int(rows[0]["n"]) if ids else 0
    finally:
        await store.close()


def _pcts(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


async def _measure(base: str, paths: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Round-robin over the endpoints, so background load on the machine hits all alike."""
    samples: dict[str, list[float]] = {label: [] for label in paths}
    async with aiohttp.ClientSession() as http:
        for _ in range(REQUESTS):
            for label, path in paths.items():
                started = time.perf_counter()
                async with http.get(base + path) as r:
                    await r.read()
                    assert r.status == 200, (path, r.status)
                samples[label].append(time.perf_counter() - started)
    return {label: _pcts(values) for label, values in samples.items()}


async def _wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            if proc.poll() is not None:
                raise RuntimeError("the appliance exited; run it by hand to see why")
            try:
                async with http.get(base + "/api/v1/status") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the appliance did not answer within 20 s")


def run() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "outpost.db"
        rows = asyncio.run(_seed(db))
        port = free_tcp_port()
        config = Path(tmp) / "outpost.toml"
        config.write_text(
            f'[site]\nname = "Bench site"\n[store]\npath = "{db}"\n'
            f'[web]\nlisten = "127.0.0.1"\nport = {port}\n'
            "[discovery]\nenabled = false\n[polling]\nenabled = false\n"
            f'[provisioning]\nidentity_dir = "{Path(tmp) / "identity"}"\n'
        )
        proc = start_appliance(config)
        peer = subprocess.Popen(
            [sys.executable, "-c", "import aiohttp.web, time; time.sleep(60)"],
            stdout=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            asyncio.run(_wait_up(base, proc))
            idle_rss = _rss_mb(proc.pid)
            paths = {
                "static file (peer)": "/static/app.css",
                "overview page": "/",
                "device list page": "/devices",
                "device list, search": "/devices?q=nas&sort=-ip",
                "device detail page": "/devices/5",
                "latency chart 7d (SVG)": "/devices/5/chart/latency.svg?range=7d",
                "traffic chart 24h (SVG)": "/devices/1/chart/traffic.svg?range=24h",
                "alerts page": "/alerts",
                "api status": "/api/v1/status",
                "api devices": "/api/v1/devices",
                "api device": "/api/v1/devices/5",
                "metrics": "/metrics",
            }
            figures = asyncio.run(_measure(base, paths))
            serving_rss = _rss_mb(proc.pid)
            peer_rss = _rss_mb(peer.pid)
        finally:
            peer.kill()
            peer.wait()
            stop(proc, grace_s=15.0)
    _, peer_p95 = figures["static file (peer)"]
    lines = [
        f"store: {DEVICES} devices, {rows:,} measurements ({HISTORY_DAYS:g} d of history),"
        f" {REQUESTS} sequential requests per endpoint, {os.cpu_count()} CPUs,"
        f" load average {os.getloadavg()[0]:.1f} during the run",
    ]
    worst = max(p95 for label, (_, p95) in figures.items() if label != "static file (peer)")
    for label, (p50, p95) in figures.items():
        lines.append(
            f"{label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({p95 / peer_p95:.1f}x the static file)"
        )
    lines.append(f"worst p95 of pages and API: {worst:.1f} ms (target < 100 ms)")
    lines.append(
        f"appliance RSS: {idle_rss:.1f} MB idle, {serving_rss:.1f} MB after serving"
        f" (target < 80 MB); bare python+aiohttp peer {peer_rss:.1f} MB"
        f" ({serving_rss / peer_rss:.2f}x)"
    )
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
