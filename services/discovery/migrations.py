"""Discovery's own tables (chain "discovery"), beside the core ``devices`` table."""

from __future__ import annotations

from services.store.migrations import Migration, MigrationChain, sql

DISCOVERY = MigrationChain(
    "discovery",
    (
        Migration(
            1,
            "device_snmp",
            # Contract with the poller: how to talk SNMP to a device. credential is the
            # `name` of the SnmpCredential that answered.
            sql(
                """CREATE TABLE device_snmp (
                    device_id INTEGER PRIMARY KEY REFERENCES devices(id),
                    credential TEXT NOT NULL,
                    sys_object_id TEXT NOT NULL DEFAULT '',
                    sys_descr TEXT NOT NULL DEFAULT '',
                    updated REAL NOT NULL
                )"""
            ),
        ),
        Migration(
            2,
            "presence and ip conflicts",
            sql(
                # present: 1 while the device is seen, 0 once it left (device.left sent).
                """CREATE TABLE device_presence (
                    device_id INTEGER PRIMARY KEY REFERENCES devices(id),
                    present INTEGER NOT NULL,
                    changed REAL NOT NULL
                )""",
                # One row per IP currently answered by more than one MAC; macs: JSON list.
                """CREATE TABLE ip_conflicts (
                    ip TEXT PRIMARY KEY,
                    macs TEXT NOT NULL,
                    first_seen REAL NOT NULL,
                    last_seen REAL NOT NULL
                )""",
            ),
        ),
    ),
)
