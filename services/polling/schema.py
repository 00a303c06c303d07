"""The polling component's own tables: each device's current state and its checks' outcomes.

The status page reads these to say *why* a device is red ("tcp:445: connection refused",
"snmp: no answer from 198.18.0.20"), which the measurements alone cannot tell.
"""

from __future__ import annotations

from services.store.migrations import Migration, MigrationChain, sql

POLLING = MigrationChain(
    "polling",
    (
        Migration(
            1,
            "poll state and checks",
            sql(
                # reachable: 1 up, 0 down, NULL unknown; missed: consecutive unreachable polls.
                """CREATE TABLE poll_state (
                    device_id INTEGER PRIMARY KEY,
                    ip TEXT NOT NULL,
                    reachable INTEGER,
                    missed INTEGER NOT NULL DEFAULT 0,
                    last_poll_ts REAL NOT NULL,
                    last_ok_ts REAL,
                    duration_ms REAL NOT NULL DEFAULT 0
                )""",
                """CREATE TABLE poll_checks (
                    device_id INTEGER NOT NULL,
                    check_name TEXT NOT NULL,
                    ok INTEGER NOT NULL,
                    ts REAL NOT NULL,
                    error TEXT NOT NULL DEFAULT '',
                    PRIMARY KEY (device_id, check_name)
                )""",
            ),
        ),
        Migration(
            2,
            "liveness evidence",
            sql(
                # Methods (arp, icmp, tcp, snmp, mdns) that answered in the last poll; those
                # that worked before and stayed silent; when anything last answered.
                "ALTER TABLE poll_state ADD COLUMN answered_by TEXT NOT NULL DEFAULT ''",
                "ALTER TABLE poll_state ADD COLUMN silent TEXT NOT NULL DEFAULT ''",
                "ALTER TABLE poll_state ADD COLUMN last_answer_ts REAL",
                # A refused TCP connection: not ok (no service) but answered (the host is there).
                "ALTER TABLE poll_checks ADD COLUMN answered INTEGER",
            ),
        ),
        Migration(
            3,
            "methods that worked",
            sql(
                # Methods that have answered for the device at least once: "down" and "no ...
                # answer since" are about these, across restarts too.
                "ALTER TABLE poll_state ADD COLUMN worked TEXT NOT NULL DEFAULT ''",
            ),
        ),
    ),
)
