"""The core tables: inventory, measurements, events, alerts, the uplink outbox.

Flash wear matters on an SD card, so the hot table (measurements) is narrow: the text that
names a series (device, metric, instance, unit) is stored once in ``series``, the kernel boot id
once in ``boots``, and each measurement row is five numbers.
"""

from __future__ import annotations

from services.store import reach
from services.store.migrations import Migration, MigrationChain, sql

CORE = MigrationChain(
    "core",
    (
        Migration(
            1,
            "initial tables",
            sql(
                # Devices are keyed by MAC where known; the IP is an attribute that can change.
                """CREATE TABLE devices (
                    id INTEGER PRIMARY KEY,
                    mac TEXT UNIQUE,
                    ip TEXT,
                    name TEXT NOT NULL DEFAULT '',
                    kind TEXT NOT NULL DEFAULT 'unknown',
                    vendor TEXT NOT NULL DEFAULT '',
                    source TEXT NOT NULL DEFAULT '',
                    first_seen REAL NOT NULL,
                    last_seen REAL NOT NULL,
                    attrs TEXT NOT NULL DEFAULT '{}'
                )""",
                "CREATE INDEX devices_ip ON devices (ip)",
                "CREATE TABLE boots (id INTEGER PRIMARY KEY, boot_id TEXT NOT NULL UNIQUE)",
                """CREATE TABLE series (
                    id INTEGER PRIMARY KEY,
                    device_id INTEGER,
                    metric TEXT NOT NULL,
                    instance TEXT NOT NULL DEFAULT '',
                    unit TEXT NOT NULL DEFAULT '',
                    UNIQUE (device_id, metric, instance)
                )""",
                # ts: wall time (s); mono: seconds since boot; boot: boots.id; synced: 0/1.
                """CREATE TABLE measurements (
                    id INTEGER PRIMARY KEY,
                    series INTEGER NOT NULL,
                    ts REAL NOT NULL,
                    mono REAL NOT NULL,
                    boot INTEGER NOT NULL,
                    synced INTEGER NOT NULL,
                    value REAL
                )""",
                "CREATE INDEX measurements_series_ts ON measurements (series, ts)",
                """CREATE TABLE events (
                    id INTEGER PRIMARY KEY,
                    kind TEXT NOT NULL,
                    device_id INTEGER,
                    severity TEXT NOT NULL DEFAULT 'info',
                    message TEXT NOT NULL DEFAULT '',
                    data TEXT NOT NULL DEFAULT '{}',
                    ts REAL NOT NULL,
                    mono REAL NOT NULL,
                    boot INTEGER NOT NULL,
                    synced INTEGER NOT NULL
                )""",
                "CREATE INDEX events_ts ON events (ts)",
                # One row per alert occurrence; `key` names what it is about (rule, device,
                # instance) so at most one alert per key is open at a time.
                """CREATE TABLE alerts (
                    id INTEGER PRIMARY KEY,
                    key TEXT NOT NULL,
                    rule TEXT NOT NULL,
                    device_id INTEGER,
                    severity TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('open', 'resolved')),
                    message TEXT NOT NULL DEFAULT '',
                    data TEXT NOT NULL DEFAULT '{}',
                    opened_ts REAL NOT NULL,
                    resolved_ts REAL,
                    acked INTEGER NOT NULL DEFAULT 0
                )""",
                "CREATE UNIQUE INDEX alerts_open_key ON alerts (key) WHERE state = 'open'",
                # Everything bound for home, appended in the transaction that stores it.
                # seq is the appliance's sequence number; lane 0 = alerts/events, 1 = bulk.
                """CREATE TABLE outbox (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    lane INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    body TEXT NOT NULL,
                    ts REAL NOT NULL,
                    synced INTEGER NOT NULL
                )""",
                "CREATE INDEX outbox_lane_seq ON outbox (lane, seq)",
                "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            ),
        ),
        # The reachability summary the monthly report reads (services/store/reach.py); an
        # existing box's history is queued here and summarised later, in short steps.
        Migration(2, "reachability summary", reach.migrate),
    ),
)
