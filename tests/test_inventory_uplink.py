"""Each site's device inventory at home, from the box's ``device`` records (issues 14 and 15).

End to end (root): the real appliance (``python -m firmware run``) discovers a simulated office
(the demo's NAS, printer, UPS and reception PC behind a pfSense gateway) and sends its inventory
to the real home in the MSP's namespace, which commits every batch and then drops the connection
before answering 40 % of the time (so batches are resent): home's devices equal the box's, with
names and kinds; the first snapshot is complete; a device that changes address is updated at home
with an ``ip_changed`` change; every change is counted once.

In process (no root): a batch resent after its answer was lost changes nothing in home's
inventory tables; hostile names are stored as bounded text; home asks for a new snapshot after a
claim and after dropped device records. Both home back ends (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from core.settings.polling import ConfiguredDevice
from home import inventory
from home.db import HomeDB
from provisioning.identity import load_or_create
from services.discovery import inventory as box_inventory
from services.discovery.migrations import DISCOVERY
from services.polling.inventory import upsert_configured
from services.store import Store, Tx
from services.uplink import devices
from services.uplink.outbox import UPLINK_CHAIN, Expander, apply_ack, forward, read_pending
from simsite.demo import demo_site
from simsite.harness.home import Home, new_database
from simsite.harness.postgres import PostgresServer
from tests.conftest import REPO, needs_root

pytestmark = pytest.mark.usefixtures("home_backend")

T = TypeVar("T")
SWEEP_INTERVAL_S = 3.0
LEAVE_AFTER_S = 10.0
KEEP = ("nas", "printer", "ups", "reception-pc")
HOSTILE = "<script>alert('x')</script>\x1b[2J\u202e" + "A" * 3000


def _wait(what: str, probe: Callable[[], T | None], timeout_s: float = 90.0) -> T:
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})")


# ---- in process: exactly once, hostile text, when home asks for a snapshot ----


class Box:
    """A box's store with discovery's inventory and the uplink's outbox, sending by hand."""

    def __init__(self, store: Store, db: HomeDB, appliance: str, stream: str = "s1") -> None:
        self.store, self.db, self.appliance, self.stream = store, db, appliance, stream
        self.nonce = 0

    async def batch(self) -> list[dict[str, Any]]:
        rows = await self.store.read(lambda c: read_pending(c, 1000, 1 << 22))
        return await self.store.read(lambda c: Expander().records(c, rows))

    def ingest(self, records: list[dict[str, Any]], drops: Any = None) -> dict[str, Any]:
        self.nonce += 1
        doc = {"stream": self.stream, "records": records, "drops": drops or {}}
        return self.db.ingest_sync(self.appliance, f"{self.stream}-{self.nonce}", doc)

    async def ack(self, answer: dict[str, Any], records: list[dict[str, Any]]) -> None:
        sent: dict[int, int] = {}
        for rec in records:
            sent[rec["lane"]] = max(sent.get(rec["lane"], 0), rec["seq"])
        acked = {int(k): v for k, v in answer["acked"].items()}
        await self.store.write(lambda tx: apply_ack(tx, acked, sent))


def _tables(db: HomeDB, appliance: str) -> tuple[list[Any], list[Any], list[Any]]:
    return (
        [d.as_dict() for d in inventory.devices_sync(db, appliance)],
        [c.as_dict() for c in inventory.inventory_changes_sync(db, appliance, 0, 1e12)],
        [
            tuple(r)
            for r in db.conn.execute(
                "SELECT stream, snapshot, count, device_drops FROM inventory_snapshots"
                " WHERE appliance = ?",
                (appliance,),
            ).fetchall()
        ],
    )


async def test_resend_changes_nothing_hostile_names_bounded_snapshot_asked(
    tmp_path: Path, home_database: str
) -> None:
    db = HomeDB(home_database)
    db.open_sync()
    store = Store(tmp_path / "box.db", chains=[UPLINK_CHAIN, DISCOVERY], forward=forward)
    await store.open()
    try:
        db.register_sync("op-test", "key", "Dental")
        box = Box(store, db, "op-test")
        seen = [
            box_inventory.Seen("00:11:32:aa:00:01", ("198.18.0.10",)),
            box_inventory.Seen("00:1b:a9:aa:00:02", ("198.18.0.20",)),
        ]

        def join(tx: Tx) -> int:
            box_inventory.record_seen(tx, seen, 100.0, active=True, source="arp")
            tx.conn.execute("UPDATE devices SET name = 'nas', kind = 'nas' WHERE id = 1")
            return devices.forward_changes(tx, ("nas",))

        assert await store.write(join) == 2
        first = await box.batch()
        answer = box.ingest(first)
        assert answer["inventory"] == "snapshot", "home has no snapshot of this stream yet"
        await box.ack(answer, first)
        snapshot = await store.write(lambda tx: devices.forward_snapshot(tx, ("nas",)))
        assert await store.read(devices.snapshot_pending)
        second = await box.batch()
        answer = box.ingest(second)
        assert "inventory" not in answer, answer
        assert answer["accepted"] == len(second) == 3  # two devices and the end
        before = _tables(db, "op-test")
        assert before[2] == [("s1", snapshot, 2, 0)]
        # The readers take the HomeDB or a connection (a caller's own transaction).
        assert inventory.devices_sync(db.conn, "op-test") == inventory.devices_sync(db, "op-test")
        assert [(d["device_id"], d["name"], d["kind"], d["watched"]) for d in before[0]] == [
            (1, "nas", "nas", True),
            (2, "", "printer", False),  # 00:1b:a9 is Brother: a printer by its vendor
        ]
        # The resend after a lost answer: every record a duplicate, nothing changes.
        again = box.ingest(second)
        assert again["duplicates"] == len(second) and again["accepted"] == 0
        assert _tables(db, "op-test") == before
        await box.ack(answer, second)
        assert not await store.read(devices.snapshot_pending)

        # A hostile name in the box's inventory (markup, escape codes, 3 kB): the box cuts
        # it, home stores it as text (the pages escape it).
        def rename(tx: Tx) -> int:
            tx.conn.execute("UPDATE devices SET name = ? WHERE id = 2", (HOSTILE,))
            return devices.forward_changes(tx)

        assert await store.write(rename) == 1
        third = await box.batch()
        answer = box.ingest(third)
        await box.ack(answer, third)
        pc = inventory.device_sync(db, "op-test", 2)
        assert pc is not None and len(pc.name) == inventory.MAX_TEXT_CHARS
        assert pc.name.startswith("<script>alert('x')</script>\x1b[2J\u202eAAA")
        (renamed,) = inventory.inventory_changes_sync(db, "op-test", 0, 1e12)[-1:]
        assert renamed.change == "updated" and renamed.changed == ("name",)
        # A compromised box sending its own record: bounded, wrong types dropped, kept.
        crafted = {
            **third[0],
            "seq": third[0]["seq"] + 1,
            "body": {"device_id": 99, "change": "joined", "name": "<i>\x00" + "x" * 4000,
                     "vendor": {"not": "text"}, "state": "<b>", "first_seen": "soon"},
        }  # fmt: skip
        assert box.ingest([crafted])["accepted"] == 1
        odd = inventory.device_sync(db, "op-test", 99)
        assert odd is not None and odd.name == ("<i>\ufffd" + "x" * 4000)[:256]
        assert (odd.vendor, odd.state, odd.first_seen) == ("", "present", None)
        assert inventory.device_sync(db, "op-test", 98) is None

        # Home asks again when the box reports dropped device records since the snapshot...
        assert box.ingest([], drops={"budget": {"device": 1}})["inventory"] == "snapshot"
        assert "inventory" not in box.ingest([])
        # ... and when the box was claimed (registered) again after it.
        await asyncio.sleep(0.01)  # the claim comes strictly after the snapshot
        db.register_sync("op-test", "key", "Another client")
        assert box.ingest([])["inventory"] == "snapshot"

        # The SD card replaced: a new store, a new stream, device ids from 1 again. Home asks
        # for a snapshot of the new stream and then forgets the old store's devices.
        new_store = Store(tmp_path / "new.db", chains=[UPLINK_CHAIN, DISCOVERY], forward=forward)
        await new_store.open()
        try:
            new_box = Box(new_store, db, "op-test", stream="s2")
            laptop = box_inventory.Seen("3c:22:fb:aa:00:07", ("198.18.0.77",))

            def find(tx: Tx) -> int:
                box_inventory.record_seen(tx, [laptop], 500.0, active=True, source="arp")
                return devices.forward_changes(tx)

            assert await new_store.write(find) == 1
            records = await new_box.batch()
            answer = new_box.ingest(records)
            assert answer["inventory"] == "snapshot"
            await new_box.ack(answer, records)
            assert len(inventory.devices_sync(db, "op-test")) == 3  # stale ones still there
            await new_store.write(devices.forward_snapshot)
            records = await new_box.batch()
            assert "inventory" not in new_box.ingest(records)
            (only,) = inventory.devices_sync(db, "op-test")
            assert (only.device_id, only.mac, only.ip) == (1, laptop.mac, "198.18.0.77")
        finally:
            await new_store.close()
    finally:
        await store.close()
        db.close_sync()


async def test_configured_device_is_added_and_watched_when_monitored(
    tmp_path: Path, home_database: str
) -> None:
    db = HomeDB(home_database)
    db.open_sync()
    store = Store(tmp_path / "box.db", chains=[UPLINK_CHAIN, DISCOVERY], forward=forward)
    await store.open()
    try:
        db.register_sync("op-cfg", "key", "Dental")
        box = Box(store, db, "op-cfg")
        configured = (
            ConfiguredDevice(name="Front desk PC", ip="198.18.0.60", kind="workstation",
                             monitored=True),
        )  # fmt: skip

        def configure(tx: Tx) -> int:  # as the polling service does at setup
            upsert_configured(tx, configured)
            return devices.forward_changes(tx, ("server",))

        assert await store.write(configure) == 1
        box.ingest(await box.batch())
        (pc,) = inventory.devices_sync(db, "op-cfg")
        assert (pc.name, pc.kind, pc.ip, pc.mac, pc.source) == (
            "Front desk PC",
            "workstation",
            "198.18.0.60",
            "",
            "config",
        )
        assert pc.watched, "monitored = true: its going away raises 'device down'"
        (added,) = inventory.inventory_changes_sync(db, "op-cfg", 0, 1e12)
        assert added.change == "added", "a technician's device did not join the LAN"
    finally:
        await store.close()
        db.close_sync()


# ---- end to end on the simulated site (root) ----


def _box_devices(db: Path) -> dict[int, tuple[str, str, str, str, str, str]]:
    """id -> (mac, ip, name, kind, vendor, firmware version) as the box holds them."""
    if not db.exists():
        return {}  # the box has not started yet
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {
            int(i): (mac or "", ip or "", name, kind, vendor, version or "")
            for i, mac, ip, name, kind, vendor, version in conn.execute(
                "SELECT id, mac, ip, name, kind, vendor, json_extract(attrs, '$.snmp.version')"
                " FROM devices"
            )
        }
    except sqlite3.OperationalError:
        return {}  # not created yet
    finally:
        conn.close()


def _box_stream(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute("SELECT value FROM kv WHERE key = 'uplink.stream'").fetchone()
        return str(row[0]) if row else ""
    finally:
        conn.close()


def _home_devices(home: Home, appliance: str) -> dict[int, tuple[str, str, str, str, str, str]]:
    return {
        int(i): (mac, ip, name, kind, vendor, version)
        for i, mac, ip, name, kind, vendor, version in home.rows(
            "SELECT device_id, mac, ip, name, kind, vendor, version FROM devices"
            " WHERE appliance = ?",
            (appliance,),
        )
    }


def _config(tmp: Path, home: Home) -> Path:
    text = f"""
[web]
enabled = false
[polling]
enabled = false
[discovery]
subnets = ["198.18.0.0/24"]
sweep_interval_s = {SWEEP_INTERVAL_S}
leave_after_s = {LEAVE_AFTER_S}
[store]
path = "{tmp / "outpost.db"}"
[provisioning]
identity_dir = "{tmp / "identity"}"
[uplink]
url = "{home.url}"
ca_file = "{home.ca_file}"
batch_max_age_s = 0.2
backoff_first_s = 0.05
backoff_cap_s = 0.5
request_timeout_s = 3.0
heartbeat_s = 2.0
self_measure_s = 0.0
"""
    path = tmp / "outpost.toml"
    path.write_text(text)
    return path


@contextlib.contextmanager
def _running_box(site: Any, config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        box = site.popen_in(
            site.app_ns,
            [sys.executable, "-m", "firmware", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    try:
        yield box
    finally:
        box.send_signal(signal.SIGTERM)
        try:
            box.wait(15)
        except subprocess.TimeoutExpired:
            box.kill()
            box.wait(5)


def _database_for_namespace(request: pytest.FixtureRequest, home_backend: str) -> str:
    """Home's database as seen from the MSP's namespace: "" (SQLite) or a PostgreSQL URL over
    the server's Unix socket (a file: reachable from any network namespace, unlike the
    server's loopback port)."""
    url = new_database()
    if home_backend != "postgresql":
        return url
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = url.rsplit("/", 1)[1]
    return f"postgresql://outpost@/{name}?host={server.root / 'sock'}&port={server.port}"


@needs_root
def test_site_inventory_reaches_home_and_follows_changes(
    tmp_path: Path, request: pytest.FixtureRequest, home_backend: str
) -> None:
    from simsite.site import Site

    spec = demo_site()
    spec = dataclasses.replace(spec, devices=tuple(d for d in spec.devices if d.name in KEEP))
    database = _database_for_namespace(request, home_backend)
    with Site(spec) as site, contextlib.ExitStack() as stack:
        home = Home(
            tmp_path / "home", tmp_path / "ca", host=spec.msp_ip, netns=site.msp_ns, site=site,
            faults="reset=0.4,seed=7", database=database,
        )  # fmt: skip
        home.prepare()
        home.start()
        stack.callback(home.stop)
        identity = load_or_create(tmp_path / "identity")
        appliance = identity.appliance_id
        home.register(identity, "Dental")
        store = tmp_path / "outpost.db"
        started = time.monotonic()
        box = stack.enter_context(
            _running_box(site, _config(tmp_path, home), tmp_path / "outpost.log")
        )

        def same() -> dict[int, tuple[str, str, str, str, str, str]] | None:
            assert box.poll() is None, (tmp_path / "outpost.log").read_text()[-3000:]
            mine = _box_devices(store)
            named = [d for d in mine.values() if d[3] in ("nas", "printer") and d[2]]
            if len(mine) < len(KEEP) + 1 or len(named) < 2:
                return None  # discovery is still at work
            return mine if _home_devices(home, appliance) == mine else None

        mine = _wait("home's devices to equal the box's, named", same, 120)
        print(f"\ninventory at home: {len(mine)} devices in {time.monotonic() - started:.1f} s")
        by_mac = {d[0]: (i, d) for i, d in mine.items()}
        for name in ("nas", "printer"):
            _id, (_mac, ip, dev_name, kind, vendor, version) = by_mac[site.spec.device(name).mac]
            print(
                f"{name}: at home as {dev_name!r}, kind {kind}, vendor {vendor!r}, {ip},"
                f" firmware {version!r}"
            )
            assert kind == name and dev_name and ip == site.ip_of(name)
        # The firmware versions discovery read over SNMP are at home too (``same`` compares them).
        assert any(d[5] for d in mine.values()), "no device's firmware version was read"
        assert by_mac[spec.gateway_mac][1][3] == "router"

        # The first snapshot is complete: it named every device the box had when it was made.
        stream = _box_stream(store)
        snapshots = home.rows(
            "SELECT snapshot, count FROM inventory_snapshots WHERE appliance = ? AND stream = ?",
            (appliance, stream),
        )
        assert len(snapshots) == 1, snapshots
        snapshot, count = snapshots[0]
        records = [b for _s, _l, kind, b in home.records(appliance) if kind == "device"]
        named = [b for b in records if b.get("snapshot") == snapshot and b["change"] == "snapshot"]
        (end,) = [b for b in records if b["change"] == "snapshot_end"]
        end_at = next(
            ts for _s, _l, kind, ts, body in _records_ts(home, appliance)
            if kind == "device" and body.get("change") == "snapshot_end"
        )  # fmt: skip
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
        try:
            existed = {
                int(i) for (i,) in conn.execute("SELECT id FROM devices WHERE first_seen <= ?",
                                                (end_at,))
            }  # fmt: skip
        finally:
            conn.close()
        assert end["count"] == count == len(named) >= 1
        assert {b["device_id"] for b in named} == existed

        # A device that changes address is updated at home, with the change recorded.
        pc = site.spec.device("reception-pc")
        pc_id = by_mac[pc.mac][0]
        site.change_ip("reception-pc", "198.18.0.51")
        _wait(
            "the new address at home",
            lambda: _home_devices(home, appliance).get(pc_id, ("",) * 6)[1] == "198.18.0.51",
            60,
        )
        changes = inventory_changes(home, appliance)
        moved = [c for c in changes if c[1] == pc_id and c[2] == "ip_changed"]
        assert [(c[3], c[4]) for c in moved] == [("198.18.0.50", "198.18.0.51")]

        # Exactly once although home dropped connections after committing (resends).
        duplicates = home.rows("SELECT duplicates FROM appliances WHERE id = ?", (appliance,))
        print(f"records home had already and skipped: {duplicates[0][0]}")
        assert duplicates[0][0] > 0, "the fault injection never made the box resend"
        records = [b for _s, _l, kind, b in home.records(appliance) if kind == "device"]
        expected = sum(1 for b in records if b["change"] in inventory.CHANGES) + sum(
            1
            for b in records
            if b["change"] in ("left", "returned") and "ip" in b.get("changed", [])
            and b.get("old", {}).get("ip") and b["ip"]
        )  # fmt: skip
        assert len(changes) == expected
        joins = [c[1] for c in changes if c[2] in ("joined", "baseline")]
        assert len(joins) == len(set(joins)), "a device joined twice at home"
        _wait("box and home agree after the change", same, 60)

        # Left and back: the state at home follows, and both are changes for the report.
        ups_id = by_mac[site.spec.device("ups").mac][0]
        site.device_down("ups")
        _wait("the UPS left, at home", lambda: _state(home, appliance, ups_id) == "left", 60)
        site.device_up("ups")
        _wait("the UPS back, at home", lambda: _state(home, appliance, ups_id) == "present", 60)
        ups_changes = [c[2] for c in inventory_changes(home, appliance) if c[1] == ups_id]
        assert ups_changes[-2:] == ["left", "returned"], ups_changes
        left = [c[1] for c in inventory_changes(home, appliance) if c[2] == "left"]
        assert left == [ups_id], "only the UPS went away"
        watched = dict(
            home.rows("SELECT device_id, watched FROM devices WHERE appliance = ?", (appliance,))
        )
        assert watched[ups_id] and not watched[pc_id], "a UPS is watched for down, a PC is not"


def _state(home: Home, appliance: str, device_id: int) -> str:
    rows = home.rows(
        "SELECT state FROM devices WHERE appliance = ? AND device_id = ?", (appliance, device_id)
    )
    return str(rows[0][0]) if rows else ""


def _records_ts(home: Home, appliance: str) -> list[tuple[int, int, str, float, dict[str, Any]]]:
    return [
        (seq, lane, kind, float(ts), json.loads(body))
        for seq, lane, kind, ts, body in home.rows(
            "SELECT seq, lane, kind, ts, body FROM records WHERE appliance = ? ORDER BY id",
            (appliance,),
        )
    ]


def inventory_changes(home: Home, appliance: str) -> list[tuple[Any, ...]]:
    """(at, device_id, change, old_ip, ip) oldest first."""
    return [
        tuple(r)
        for r in home.rows(
            "SELECT at, device_id, change, old_ip, ip FROM device_changes WHERE appliance = ?"
            " ORDER BY at, id",
            (appliance,),
        )
    ]
