"""Data that grows at home: monthly partitions, hourly roll-ups, retention; on both back ends."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest

from home.db import HomeDB
from home.migrations import MIGRATIONS, migrate
from home.retention import (
    DAY_S,
    RetentionPolicy,
    ensure_partitions_sync,
    expire_sync,
    run_once_sync,
)
from simsite.harness.signed_client import LightAppliance, new_identity

pytestmark = pytest.mark.usefixtures("home_backend")

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC).timestamp()


def _ingest(
    db: HomeDB, box: LightAppliance, records: list[tuple[int, str, dict[str, Any]]], ts: float
) -> dict[str, Any]:
    doc = box.batch(records, ts=ts)
    return db.ingest_sync(box.identity.appliance_id, f"n{box.next_seq}", doc)


def test_old_records_survive_partitioning_and_duplicates_are_still_refused(
    home_database: str,
) -> None:
    db = HomeDB(home_database)
    db.open_sync()
    try:
        # Recreate the state of a release before migration 7 on a fresh database: the test
        # database has every migration, so check the outcome of migration 7 instead.
        box = LightAppliance(new_identity())
        db.register_sync(box.identity.appliance_id, box.identity.public_text, "Dentist")
        answer = _ingest(db, box, [(1, "measurement", {"metric": "m", "value": 1.0})], NOW)
        assert answer["accepted"] == 1
        conn = db.conn
        if db.dialect == "postgresql":
            kind = conn.execute(
                "SELECT partstrat FROM pg_partitioned_table t JOIN pg_class c"
                " ON c.oid = t.partrelid WHERE c.relname = 'records'"
            ).fetchone()
            assert kind is not None and kind[0] == "r"  # range partitioned
        row = conn.execute("SELECT appliance, stream, seq, ts FROM records").fetchone()
        with pytest.raises(sqlite3.IntegrityError):  # home.sql.IntegrityError on PostgreSQL
            conn.execute(
                "INSERT INTO records (appliance, stream, seq, lane, kind, ts, synced, body,"
                " received_at) VALUES (?, ?, ?, 1, 'measurement', ?, 1, '{}', 0)",
                tuple(row),
            )
    finally:
        db.close_sync()


def test_migration_keeps_what_an_older_release_stored(home_database: str) -> None:
    if not home_database.startswith("postgresql://"):
        pytest.skip("the conversion to partitions is PostgreSQL's; SQLite's table is unchanged")
    from home.sql import Target, connect

    conn = connect(Target.parse(home_database))  # a new database, nothing applied yet
    try:
        # The database as the release before migration 7 left it, with records in it.
        assert migrate(conn, [m for m in MIGRATIONS if m[0] < 7]) == 6
        for seq in (1, 2, 3):
            conn.execute(
                "INSERT INTO records (appliance, stream, seq, lane, kind, ts, synced, body,"
                " received_at) VALUES ('op-a', 's', ?, 1, 'measurement', ?, 1, '{}', 0)",
                (seq, NOW + seq),
            )
        assert migrate(conn) == max(n for n, _ in MIGRATIONS)
        rows = conn.execute("SELECT id, seq FROM records ORDER BY id").fetchall()
        assert [int(s) for _, s in rows] == [1, 2, 3]
        conn.execute(
            "INSERT INTO records (appliance, stream, seq, lane, kind, ts, synced, body,"
            " received_at) VALUES ('op-a', 's', 4, 1, 'measurement', ?, 1, '{}', 0)",
            (NOW + 4,),
        )
        last = conn.execute("SELECT MAX(id) FROM records").fetchone()[0]
        assert last > max(int(i) for i, _ in rows)  # ids go on after the copied rows
        made = ensure_partitions_sync(conn, NOW)
        assert made[0] == "records_2026_11" and len(made) == 3
        in_month = conn.execute("SELECT COUNT(*) FROM records_2026_11").fetchone()[0]
        assert in_month == 4  # moved out of the default partition
    finally:
        conn.close()


def test_rollup_keeps_count_extremes_and_sum_and_leaves_alerts(home_database: str) -> None:
    db = HomeDB(home_database)
    db.open_sync()
    try:
        box = LightAppliance(new_identity())
        db.register_sync(box.identity.appliance_id, box.identity.public_text, "Dentist")
        old_hour = NOW - 40 * DAY_S  # older than rollup_after_days=30
        old_hour -= old_hour % 3600
        for minute, value in enumerate((10.0, 30.0, 20.0, None)):
            body = {"device_id": 7, "metric": "disk.used_pct", "instance": "/", "value": value}
            _ingest(db, box, [(1, "measurement", body)], old_hour + minute * 60)
        _ingest(
            db,
            box,
            [(0, "alert", {"key": "k", "state": "open", "severity": "major"})],
            old_hour + 5,
        )
        _ingest(
            db,
            box,
            [
                (
                    1,
                    "measurement",
                    {"device_id": 7, "metric": "disk.used_pct", "instance": "/", "value": 50.0},
                )
            ],
            NOW - 3600,
        )
        done = run_once_sync(db, RetentionPolicy(rollup_after_days=30, retention_days=400), NOW)
        assert done["rolled_up"] >= 4
        conn = db.conn
        rollup = conn.execute(
            "SELECT device_id, metric, instance, hour, n, vmin, vmax, vsum FROM rollups_hourly"
        ).fetchall()
        assert [tuple(r) for r in rollup] == [
            (7, "disk.used_pct", "/", old_hour, 3, 10.0, 30.0, 60.0)
        ]
        kinds = conn.execute("SELECT kind, COUNT(*) FROM records GROUP BY kind ORDER BY kind")
        assert [tuple(r) for r in kinds.fetchall()] == [("alert", 1), ("measurement", 1)]
        again = run_once_sync(db, RetentionPolicy(rollup_after_days=30, retention_days=400), NOW)
        assert again["rolled_up"] == 0  # nothing left to do: idempotent
    finally:
        db.close_sync()


def test_expiry_drops_everything_older_than_retention(home_database: str) -> None:
    db = HomeDB(home_database)
    db.open_sync()
    try:
        box = LightAppliance(new_identity())
        db.register_sync(box.identity.appliance_id, box.identity.public_text, "Dentist")
        ancient = NOW - 500 * DAY_S
        conn = db.conn
        ensure_partitions_sync(conn, ancient)  # its month gets a partition (PostgreSQL)
        _ingest(db, box, [(0, "event", {"kind": "x"})], ancient)
        _ingest(db, box, [(0, "event", {"kind": "y"})], NOW)
        removed = expire_sync(conn, NOW - 400 * DAY_S)
        assert removed >= 1
        left = conn.execute("SELECT ts FROM records").fetchall()
        assert [float(r[0]) for r in left] == [NOW]
        if db.dialect == "postgresql":
            names = {
                r[0]
                for r in conn.execute(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                ).fetchall()
            }
            assert not any(n.startswith("records_2025_07") for n in names)  # month dropped
    finally:
        db.close_sync()


def test_policy_refuses_a_rollup_age_beyond_retention() -> None:
    with pytest.raises(ValueError, match="rollup_after_days"):
        RetentionPolicy(rollup_after_days=500, retention_days=400)
