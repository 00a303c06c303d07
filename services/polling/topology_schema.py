"""The topology's own tables (chain "topology"): what the switches say of their ports, their
neighbours, and where each device plugs in. Read by the status page and by alerting."""

from __future__ import annotations

from services.store.migrations import Migration, MigrationChain, sql

TOPOLOGY = MigrationChain(
    "topology",
    (
        Migration(
            1,
            "switch ports, neighbours, placements",
            sql(
                # One row per interface of each switch read, replaced at every read.
                # speed_bps bit/s; oper_up/admin_up 1/0/NULL; in/out_errors: ifIn/OutErrors
                # counters as read; uplink 1 with uplink_why; macs: JSON list of learned MACs;
                # label: the technician's [[topology.ports]] label, else ''.
                """CREATE TABLE topology_ports (
                    switch_id INTEGER NOT NULL,
                    if_index INTEGER NOT NULL,
                    name TEXT NOT NULL,
                    descr TEXT NOT NULL DEFAULT '',
                    alias TEXT NOT NULL DEFAULT '',
                    label TEXT NOT NULL DEFAULT '',
                    speed_bps REAL,
                    duplex TEXT NOT NULL DEFAULT '',
                    admin_up INTEGER,
                    oper_up INTEGER,
                    pvid INTEGER,
                    in_errors INTEGER,
                    out_errors INTEGER,
                    uplink INTEGER NOT NULL DEFAULT 0,
                    uplink_why TEXT NOT NULL DEFAULT '',
                    macs TEXT NOT NULL DEFAULT '[]',
                    ts REAL NOT NULL,
                    PRIMARY KEY (switch_id, if_index)
                )""",
                """CREATE TABLE topology_neighbours (
                    switch_id INTEGER NOT NULL,
                    if_index INTEGER,
                    protocol TEXT NOT NULL,
                    local_port TEXT NOT NULL,
                    remote_name TEXT NOT NULL,
                    remote_port TEXT NOT NULL,
                    remote_chassis TEXT NOT NULL,
                    remote_descr TEXT NOT NULL,
                    remote_ip TEXT NOT NULL,
                    remote_device_id INTEGER,
                    ts REAL NOT NULL
                )""",
                # Where each device was last seen plugged in; kept when it goes away (the
                # alerts of an unplugged device still say where it was). since_ts: when it
                # was first seen on this port; seen_ts: the last read that saw it there.
                """CREATE TABLE topology_placements (
                    device_id INTEGER PRIMARY KEY,
                    switch_id INTEGER NOT NULL,
                    if_index INTEGER NOT NULL,
                    port_name TEXT NOT NULL,
                    vlan INTEGER,
                    via TEXT NOT NULL,
                    shared INTEGER NOT NULL DEFAULT 0,
                    since_ts REAL NOT NULL,
                    seen_ts REAL NOT NULL
                )""",
            ),
        ),
    ),
)
