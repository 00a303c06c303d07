"""The status page's test and bench fixtures: a store seeded like a small office (through the
Store API, plus history written straight into its tables), the web app on loopback, and an
appliance context with every component's tables, as the real appliance has them."""

from __future__ import annotations

import contextlib
import json
import math
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from core.clock import Clock
from core.config import Config
from core.vocabulary import DEVICE_KINDS, Severity
from firmware.app import MIGRATION_CHAINS
from services.context import AppContext
from services.store import Store
from services.store.records import Event, Measurement, insert_event, insert_measurements
from simsite.harness.ports import free_tcp_port
from simsite.portal import tcp_to_unix
from web.app import create_app

KINDS = list(DEVICE_KINDS)


def make_config(**web_overrides: Any) -> Config:
    config = Config()
    config = replace(config, site=replace(config.site, name="Harbour Dental, Leith"))
    if web_overrides:
        config = replace(config, web=replace(config.web, **web_overrides))
    return config


def insert_device(
    tx: Any,
    *,
    ip: str,
    name: str,
    kind: str,
    mac: str,
    vendor: str = "",
    now: float,
    attrs: dict[str, Any] | None = None,
) -> int:
    cursor = tx.conn.execute(
        "INSERT INTO devices (mac, ip, name, kind, vendor, source, first_seen, last_seen, attrs)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        (mac, ip, name, kind, vendor, "arp", now - 86400 * 3, now, json.dumps(attrs or {})),
    )
    return int(cursor.lastrowid)


def _traffic_in(ts: float) -> float:
    return 2e6 * (1.2 + math.sin(ts / 7200.0))


def _traffic_out(ts: float) -> float:
    return 0.4e6 * (1.5 + math.cos(ts / 5000.0))


def backfill(
    tx: Any,
    device_id: int,
    metric: str,
    instance: str,
    unit: str,
    *,
    now: float,
    days: float,
    step_s: float,
    fn: Any,
) -> None:
    """History written straight into series/measurements with past time stamps."""
    tx.conn.execute(
        "INSERT OR IGNORE INTO series (device_id, metric, instance, unit) VALUES (?,?,?,?)",
        (device_id, metric, instance, unit),
    )
    series = tx.conn.execute(
        "SELECT id FROM series WHERE device_id=? AND metric=? AND instance=?",
        (device_id, metric, instance),
    ).fetchone()[0]
    n = int(days * 86400 / step_s)
    rows = []
    for i in range(n):
        ts = now - (n - i) * step_s
        rows.append((series, ts, ts - now + 1e6, tx.boot, 1, fn(ts)))
    tx.conn.executemany(
        "INSERT INTO measurements (series, ts, mono, boot, synced, value) VALUES (?,?,?,?,?,?)",
        rows,
    )


async def seed_site(
    store: Store, now: float, devices: int = 14, history_days: float = 7.0, step_s: float = 600.0
) -> dict[str, int]:
    """A small office: named devices of every kind, history, alerts and events."""
    rng = random.Random(7)
    names = {
        "router": "gw-leith",
        "switch": "sw-core",
        "ap": "ap-reception",
        "nas": "nas-files",
        "printer": "hp-laserjet-reception",
        "ups": "ups-rack",
        "server": "srv-pms",
        "workstation": "ws-surgery-1",
        "phone": "phone-desk-2",
        "camera": "cam-door",
        "media": "tv-waiting-room",
        "iot": "thermostat",
        "unknown": "",
    }
    ids: dict[str, int] = {}

    def write(tx: Any) -> None:
        for i in range(devices):
            kind = KINDS[i % len(KINDS)]
            base = names[kind] or ""
            name = base if i < len(KINDS) else f"{base or 'host'}-{i}"
            attrs: dict[str, Any] = {
                "evidence": [
                    {
                        "source": "oui",
                        "kind": kind,
                        "weight": 0.3,
                        "why": "MAC prefix 00:11:32 is Synology",
                    },
                    {
                        "source": "snmp",
                        "kind": kind,
                        "weight": 0.9,
                        "why": f"sysObjectID matches {kind}",
                    },
                ],
                "services": [{"type": "_http._tcp", "name": name or "web", "port": 80}],
                "model": f"Model {i}",
            }
            did = insert_device(
                tx,
                ip=f"198.18.0.{10 + i}",
                name=name,
                kind=kind,
                mac=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}",
                vendor="Acme",
                now=now,
                attrs=attrs,
            )
            ids[name or f"dev{i}"] = did
            if i < 40 or history_days:
                backfill(
                    tx,
                    did,
                    "icmp.rtt_ms",
                    "",
                    "ms",
                    now=now,
                    days=history_days,
                    step_s=step_s,
                    fn=lambda ts, i=i: 1.0 + i % 5 + rng.random(),
                )
            if kind in ("router", "switch", "nas", "server"):
                for inst in ("eth0", "eth1"):
                    for metric in ("if.in_bps", "if.out_bps"):
                        backfill(
                            tx,
                            did,
                            metric,
                            inst,
                            "bps",
                            now=now,
                            days=history_days,
                            step_s=step_s * 3,
                            fn=_traffic_in if metric == "if.in_bps" else _traffic_out,
                        )
            if kind == "nas":
                insert_measurements(
                    tx, [Measurement(did, "storage.used_pct", 71.5, "volume1", "%")]
                )
            if kind == "printer":
                insert_measurements(
                    tx, [Measurement(did, "supply.level_pct", 12.0, "Black Toner", "%")]
                )
            if kind == "ups":
                insert_measurements(tx, [Measurement(did, "ups.charge_pct", 100.0, "", "%")])
        tx.conn.execute(
            "INSERT INTO alerts (key, rule, device_id, severity, state, message, opened_ts)"
            " VALUES (?,?,?,?,?,?,?)",
            (
                "supply.low:printer",
                "supply.low",
                ids.get("hp-laserjet-reception"),
                "minor",
                "open",
                "Black toner at 12%",
                now - 3600,
            ),
        )
        tx.conn.execute(
            "INSERT INTO alerts (key, rule, device_id, severity, state, message, opened_ts,"
            " resolved_ts) VALUES (?,?,?,?,?,?,?,?)",
            (
                "device.down:cam",
                "device.down",
                ids.get("cam-door"),
                "major",
                "resolved",
                "cam-door did not answer",
                now - 7200,
                now - 6000,
            ),
        )
        insert_event(
            tx, Event("device.joined", ids.get("sw-core"), Severity.INFO, "sw-core joined")
        )

    await store.write(write)
    return ids


async def mark_down(store: Store, device_id: int, name: str) -> None:
    """What polling and alerting write when a device stops answering."""

    def write(tx: Any) -> None:
        insert_measurements(tx, [Measurement(device_id, "icmp.rtt_ms", None, "", "ms")])
        tx.conn.execute(
            "INSERT INTO alerts (key, rule, device_id, severity, state, message, opened_ts)"
            " VALUES (?,?,?,?,?,?,?)",
            (
                f"device.down:{device_id}",
                "device.down",
                device_id,
                "major",
                "open",
                f"{name} does not answer ping",
                tx.stamp.wall,
            ),
        )
        insert_event(tx, Event("device.down", device_id, Severity.MAJOR, f"{name} went down"))

    await store.write(write)


@contextlib.asynccontextmanager
async def serve(ctx: AppContext, port: int | None = None) -> AsyncIterator[str]:
    """The status page on 127.0.0.1 (a free port); yields its base URL."""
    port = port or free_tcp_port()
    runner = web.AppRunner(create_app(ctx), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def appliance(
    tmp: Path, config: Config | None = None, clock: Clock | None = None
) -> AsyncIterator[AppContext]:
    config = config or make_config()
    config = replace(config, store=replace(config.store, path=str(tmp / "outpost.db")))
    clock = clock or Clock()
    # Every component's tables, as in the real appliance (discovery's, polling's ...).
    store = Store(config.store.path, clock=clock, chains=MIGRATION_CHAINS)
    await store.open()
    ctx = AppContext(config=config, store=store, clock=clock, version="0.1.0-test")
    try:
        yield ctx
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def unix_proxy(socket_path: str) -> AsyncIterator[str]:
    """127.0.0.1:PORT -> the appliance's Unix socket (web.unix_socket), as `make run` does.

    The appliance runs inside the simulated site's namespace; a Unix socket is a file, so the
    browser on this side's loopback reaches it without touching any real interface.
    """
    server = await tcp_to_unix("127.0.0.1", 0, socket_path)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()
