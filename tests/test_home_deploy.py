"""The files and steps of docs/home-deploy.md work: HAProxy's configuration, an instance's
configuration, and the database backup restored into a new database with every record."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from home.cli import _config as home_config
from home.db import HomeDB
from simsite.harness import haproxy, postgres
from simsite.harness.paths import REPO
from simsite.harness.signed_client import LightAppliance, new_identity

SYSTEM = REPO / "home" / "system"


def test_shipped_haproxy_configuration_is_valid() -> None:
    try:
        exe = haproxy.binary()
    except haproxy.HaproxyUnavailable as exc:
        pytest.skip(str(exc))
    done = subprocess.run(
        [exe, "-c", "-f", str(SYSTEM / "haproxy.cfg")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_shipped_instance_configuration_is_accepted() -> None:
    table = home_config(str(SYSTEM / "home-a.toml"))
    assert table["database"].startswith("postgresql://")
    assert table["listen"].endswith(":8444")  # the first server line of haproxy.cfg
    assert "127.0.0.1:8444" in (SYSTEM / "haproxy.cfg").read_text()


def test_backup_and_restore_keep_every_record(
    postgres_server: postgres.PostgresServer, tmp_path: Path
) -> None:
    source = postgres.fresh_database(postgres_server)
    db = HomeDB(source)
    db.open_sync()
    box = LightAppliance(new_identity())
    try:
        db.register_sync(box.identity.appliance_id, box.identity.public_text, "Dentist")
        doc = box.batch(
            [(1, "measurement", {"metric": "m", "value": float(i)}) for i in range(50)], ts=1.8e9
        )
        db.ingest_sync(box.identity.appliance_id, "n1", doc)
    finally:
        db.close_sync()
    binaries = postgres.bin_dir()
    dump = tmp_path / "home.dump"
    where = ["-h", "127.0.0.1", "-p", str(postgres_server.port), "-U", "outpost"]
    subprocess.run(
        [
            str(binaries / "pg_dump"),
            *where,
            "--format=custom",
            f"--file={dump}",
            source.rsplit("/", 1)[1],
        ],
        check=True,
    )
    target = postgres.fresh_database(postgres_server)
    subprocess.run(
        [
            str(binaries / "pg_restore"),
            *where,
            "--no-owner",
            f"--dbname={target.rsplit('/', 1)[1]}",
            str(dump),
        ],
        check=True,
    )
    restored = HomeDB(target)
    restored.open_sync()  # migrations find the schema current: nothing re-applied
    try:
        rows = restored.conn.execute(
            "SELECT seq FROM records WHERE appliance = ? ORDER BY id", (box.identity.appliance_id,)
        ).fetchall()
        assert [int(r[0]) for r in rows] == list(range(1, 51))
        # Ingest goes on where it stopped: the high-water mark came along (a resend is refused).
        again = restored.ingest_sync(box.identity.appliance_id, "n2", doc)
        assert again["duplicates"] == 50 and again["accepted"] == 0
        fresh = restored.ingest_sync(
            box.identity.appliance_id,
            "n3",
            box.batch([(1, "measurement", {"metric": "m", "value": 1.0})], ts=1.8e9),
        )
        assert fresh["accepted"] == 1  # the identity column continues after the restored rows
    finally:
        restored.close_sync()
