"""Firmware versions in the site inventory at home (issue #15: "firmware the MSP flagged").

The box's device records carry the version discovery read over SNMP (``attrs.snmp.version``)
and the maker the device names itself (``attrs.snmp.vendor``); home keeps both, shows the
version on the console's device page and judges it by the MSP's ``[[report.firmware]]`` rules
in the monthly report. Real box store (discovery's writers, the uplink's outbox), home's real
ingest, application and report source, on SQLite and PostgreSQL:

* a version read reaches home; an upgrade is one ``updated`` record (``changed: ["version"]``)
  and one change at home, whose page shows the new version and the upgrade;
* hostile version text (5 kB, control characters, markup) is bounded on the box and at home
  and rendered as text;
* a rule with a minimum above the device's version puts the outlook line in home's report,
  gone after the upgrade; rules name the maker as the device does ("Brother"), not as its
  network card's registration does ("Brother industries, LTD.");
* an upgraded box store (uplink migration 4) sends no "updated" record for its devices, then
  one snapshot that brings home the versions; an upgraded home database (migration 15) asks
  every box for a snapshot.
"""

from __future__ import annotations

import html
import secrets
from pathlib import Path
from typing import Any

import pytest

from core.report.build import build_report
from core.report.firmware import parse_rules
from core.report.hours import BusinessHours, month_period
from core.report.inputs import DeviceFirmware, FirmwareRule
from core.report.model import Report
from home import inventory
from home.console.roles import Role
from home.db import HomeDB
from home.migrations import MIGRATIONS, migrate
from home.report import source
from home.sql import Target, connect
from services.discovery import inventory as box_inventory
from services.discovery.migrations import DISCOVERY
from services.discovery.snmp_identity import SnmpIdentity
from services.store import MigrationChain, Store, Tx
from services.uplink import devices
from services.uplink.outbox import UPLINK_CHAIN, Expander, apply_ack, forward, read_pending
from tests.console_support import client, seed_site, served

pytestmark = pytest.mark.usefixtures("home_backend")

PRINTER = box_inventory.Seen("00:1b:a9:aa:00:02", ("198.18.0.20",))  # Brother's OUI
NAS = box_inventory.Seen("00:11:32:aa:00:01", ("198.18.0.10",))  # Synology's OUI
UPS = box_inventory.Seen("00:c0:b7:aa:00:03", ("198.18.0.30",))  # APC's OUI
MODEL = "HL-L2350DW series"
RULES = parse_rules(
    [{"vendor": "Brother", "model": "HL-L2350*", "minimum": "1.60",
      "reason": "fixes a security flaw in the printer's web page"}]
)  # fmt: skip
OUTLOOK = "Front printer runs firmware 1.52, Harbour IT recommends 1.60 or later"
HOSTILE = "<script>alert('fw')</script>\x01\x07\x1b[31m\x7f\u202e" + "9" * 5000


def _identity(version: str, vendor: str = "Brother", model: str = MODEL) -> SnmpIdentity:
    return SnmpIdentity(
        sys_name="Front printer", sys_descr=f"{vendor} NC-8300w, Firmware Ver.{version}",
        vendor=vendor, model=model, version=version,
    )  # fmt: skip


def _identify(tx: Tx, seen: box_inventory.Seen, snmp: SnmpIdentity, now: float) -> None:
    """As discovery does after an SNMP read (services/discovery/service.py)."""
    box_inventory.update_identity(
        tx, seen.mac, snmp=snmp, credential="public", mdns=None, is_gateway=False, now=now
    )


class Box:
    """A box's store with discovery's inventory and the uplink's outbox, sending by hand to
    home's real ingest."""

    def __init__(self, store: Store, db: HomeDB, appliance: str, stream: str = "s1") -> None:
        self.store, self.db, self.appliance, self.stream = store, db, appliance, stream

    async def pending(self) -> list[dict[str, Any]]:
        rows = await self.store.read(lambda c: read_pending(c, 1000, 1 << 22))
        return await self.store.read(lambda c: Expander().records(c, rows))

    async def send(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Send everything pending, acknowledge what home took; (records, home's answer)."""
        records = await self.pending()
        doc = {"stream": self.stream, "records": records, "drops": {}}
        nonce = secrets.token_hex(8)  # one a request (home refuses a replay)
        answer = await self.db.call(self.db.ingest_sync, self.appliance, nonce, doc)
        sent: dict[int, int] = {}
        for rec in records:
            sent[rec["lane"]] = max(sent.get(rec["lane"], 0), rec["seq"])
        acked = {int(k): v for k, v in answer["acked"].items()}
        await self.store.write(lambda tx: apply_ack(tx, acked, sent))
        return records, answer


async def _home_report(db: HomeDB, appliance: str, rules: tuple[FirmwareRule, ...]) -> Report:
    def load() -> Report:
        data = source.load_input_sync(
            db, appliance, period=month_period(2026, 11, "UTC"), hours=BusinessHours(),
            msp_name="Harbour IT", firmware_rules=rules,
        )  # fmt: skip
        assert list(data.firmware) == inventory.firmware_sync(db, appliance)
        return build_report(data)

    report: Report = await db.call(load)
    return report


def _firmware_lines(report: Report) -> list[str]:
    return [o.title for o in report.outlook if "firmware" in o.title]


async def test_version_reaches_home_upgrade_is_one_change_shown_and_judged(
    tmp_path: Path, home_database: str
) -> None:
    store = Store(tmp_path / "box.db", chains=[UPLINK_CHAIN, DISCOVERY], forward=forward)
    await store.open()
    try:
        async with served(tmp_path, home_database) as s:
            await s.user("ann", Role.ADMIN)
            await seed_site(s, "op-fw", "Dental", heartbeat_age_s=5)
            box = Box(store, s.db, "op-fw")

            def discover(tx: Tx) -> int:
                box_inventory.record_seen(tx, [PRINTER, NAS], 100.0, active=True, source="arp")
                _identify(tx, PRINTER, _identity("1.52"), 100.0)
                return devices.forward_changes(tx)

            assert await store.write(discover) == 2
            records, _ = await box.send()
            bodies = {r["body"]["mac"]: r["body"] for r in records if r["kind"] == "device"}
            assert (bodies[PRINTER.mac]["version"], bodies[PRINTER.mac]["snmp_vendor"]) == (
                "1.52",
                "Brother",
            )
            assert (bodies[NAS.mac]["version"], bodies[NAS.mac]["snmp_vendor"]) == ("", "")
            printer_id = int(bodies[PRINTER.mac]["device_id"])
            nas_id = int(bodies[NAS.mac]["device_id"])

            printer = inventory.device_sync(s.db, "op-fw", printer_id)
            assert printer is not None
            assert (printer.name, printer.version, printer.snmp_vendor, printer.model) == (
                "Front printer",
                "1.52",
                "Brother",
                MODEL,
            )
            assert printer.vendor == "Brother industries, LTD.", "the network card's maker"
            nas = inventory.device_sync(s.db, "op-fw", nas_id)
            assert nas is not None and nas.version == ""
            # Only devices with a version; the maker as the device names it.
            assert inventory.firmware_sync(s.db, "op-fw") == [
                DeviceFirmware(printer_id, "1.52", "Brother", MODEL)
            ]

            # The MSP's rule: 1.60 or later. Home's report says so; without rules it does not.
            report = await _home_report(s.db, "op-fw", RULES)
            assert _firmware_lines(report) == [OUTLOOK]
            (line,) = [o for o in report.outlook if o.title == OUTLOOK]
            assert line.detail == "fixes a security flaw in the printer's web page"
            assert _firmware_lines(await _home_report(s.db, "op-fw", ())) == []
            # A rule naming the network card's maker matches no device's own name.
            oui_rule = parse_rules([{"vendor": "Brother industries*", "minimum": "1.60"}])
            assert _firmware_lines(await _home_report(s.db, "op-fw", oui_rule)) == []

            # Nothing changed: nothing to send.
            assert await store.write(devices.forward_changes) == 0

            # The firmware upgraded to 1.60: one "updated" record naming the version only.
            def upgrade(tx: Tx) -> int:
                _identify(tx, PRINTER, _identity("1.60"), 200.0)
                return devices.forward_changes(tx)

            assert await store.write(upgrade) == 1
            records, _ = await box.send()
            (update,) = [r["body"] for r in records if r["kind"] == "device"]
            assert (update["change"], update["changed"], update["old"]) == (
                "updated",
                ["version"],
                {"version": "1.52"},
            )
            assert update["version"] == "1.60"
            assert await store.write(devices.forward_changes) == 0
            printer = inventory.device_sync(s.db, "op-fw", printer_id)
            assert printer is not None and printer.version == "1.60"
            changes = [
                c for c in inventory.inventory_changes_sync(s.db, "op-fw", 0, 1e12)
                if c.device_id == printer_id and c.change == "updated"
            ]  # fmt: skip
            assert [(c.changed, c.old_version, c.version) for c in changes] == [
                (("version",), "1.52", "1.60")
            ]
            assert _firmware_lines(await _home_report(s.db, "op-fw", RULES)) == []

            async with client(s.url) as c:
                assert await c.login("ann") == 303
                status, page, _ = await c.get(f"/console/sites/op-fw/devices/{printer_id}")
                assert status == 200
                assert '<td class="mono" id="device-firmware">1.60</td>' in page
                assert "firmware 1.52 → 1.60" in page
                status, page, _ = await c.get(f"/console/sites/op-fw/devices/{nas_id}")
                assert '<td class="mono" id="device-firmware">-</td>' in page

            # Hostile version text in the attrs (a compromised agent, a damaged store): the
            # box cuts it to 256 characters, home stores it as text, the page escapes it.
            def hostile(tx: Tx) -> int:
                tx.conn.execute(
                    "UPDATE devices SET attrs = json_set(attrs, '$.snmp.version', ?) WHERE id = ?",
                    (HOSTILE, printer_id),
                )
                return devices.forward_changes(tx)

            assert await store.write(hostile) == 1
            records, _ = await box.send()
            (update,) = [r["body"] for r in records if r["kind"] == "device"]
            assert update["version"] == HOSTILE[: devices.MAX_TEXT_CHARS]
            assert update["old"] == {"version": "1.60"}
            printer = inventory.device_sync(s.db, "op-fw", printer_id)
            assert printer is not None
            assert printer.version == HOSTILE[: inventory.MAX_TEXT_CHARS]
            assert len(printer.version) == 256
            async with client(s.url) as c:
                assert await c.login("ann") == 303
                status, page, _ = await c.get(f"/console/sites/op-fw/devices/{printer_id}")
                assert status == 200
                assert "<script>alert('fw')" not in page
                shown = html.escape(HOSTILE[:256], quote=True).replace("&#x27;", "&#39;")
                assert shown in page, "the version is on the page, escaped"
            # A crafted record straight to home (wrong type, NUL, 4 kB: ingest refuses longer
            # texts): bounded, kept.
            crafted = {
                **records[0], "seq": records[0]["seq"] + 1,
                "body": {**update, "version": "\x00" + "8" * 4000, "snmp_vendor": ["x"]},
            }  # fmt: skip
            answer = await s.db.call(
                s.db.ingest_sync, "op-fw", "crafted", {"stream": "s1", "records": [crafted]}
            )
            assert answer["accepted"] == 1
            printer = inventory.device_sync(s.db, "op-fw", printer_id)
            assert printer is not None
            assert printer.version == ("\ufffd" + "8" * 4000)[:256]
            assert printer.snmp_vendor == ""
    finally:
        await store.close()


def _old_body(row: tuple[Any, ...], snapshot: str) -> dict[str, Any]:
    """A snapshot record as firmware before uplink migration 4 sent it (no version)."""
    device_id, mac, ip, name, kind, vendor, model, first, last = row
    return {
        "device_id": device_id, "mac": mac, "ip": ip, "name": name, "kind": kind,
        "vendor": vendor, "model": model or "", "source": "arp", "state": "present",
        "watched": False, "first_seen": first, "last_seen": last, "change": "snapshot",
        "snapshot": snapshot,
    }  # fmt: skip


async def test_upgraded_box_sends_no_update_per_device_then_one_snapshot(
    tmp_path: Path, home_database: str
) -> None:
    path = tmp_path / "box.db"
    db = HomeDB(home_database)
    await db.open()
    try:
        await db.call(db.register_sync, "op-up", "key", "Dental")
        # A box of the release before: discovery knew three devices, two with a version...
        old = Store(path, chains=[DISCOVERY])
        await old.open()
        try:

            def discover(tx: Tx) -> None:
                box_inventory.record_seen(tx, [PRINTER, NAS, UPS], 100.0, active=True,
                                          source="arp")  # fmt: skip
                _identify(tx, PRINTER, _identity("1.52"), 100.0)
                _identify(tx, UPS, _identity("UPS 09.3 / AOS v7.0.4", "APC", "Smart-UPS 1500"),
                          100.0)  # fmt: skip

            await old.write(discover)
        finally:
            await old.close()
        # ... its uplink (migrations 1 to 3) sent home a snapshot without versions.
        uplink_v3 = MigrationChain("uplink", UPLINK_CHAIN.migrations[:3])
        old = Store(path, chains=[uplink_v3, DISCOVERY], forward=forward)
        await old.open()
        try:
            box = Box(old, db, "op-up")

            def old_snapshot(tx: Tx) -> int:
                rows = tx.conn.execute(
                    "SELECT id, mac, ip, name, kind, vendor, json_extract(attrs, '$.model'),"
                    " first_seen, last_seen FROM devices ORDER BY id"
                ).fetchall()
                for row in rows:
                    tx.forward(devices.KIND_DEVICE, _old_body(tuple(row), "old1"), 0)
                end = {"change": "snapshot_end", "snapshot": "old1", "count": len(rows)}
                tx.forward(devices.KIND_DEVICE, {**end, "device_drops": 0}, 0)
                return len(rows)

            assert await old.write(old_snapshot) == 3
            _, answer = await box.send()
            assert "inventory" not in answer, "home holds the old box's complete snapshot"
        finally:
            await old.close()
        assert {d.version for d in inventory.devices_sync(db, "op-up")} == {""}
        changes_before = inventory.inventory_changes_sync(db, "op-up", 0, 1e12)

        # The box upgraded: uplink migration 4 fills the new columns from the inventory.
        store = Store(path, chains=[UPLINK_CHAIN, DISCOVERY], forward=forward)
        await store.open()
        try:
            box = Box(store, db, "op-up")
            sent = await store.read(
                lambda c: c.execute(
                    "SELECT version, snmp_vendor FROM uplink_device_sent ORDER BY device_id"
                ).fetchall()
            )
            assert sorted(map(tuple, sent)) == [
                ("", ""), ("1.52", "Brother"), ("UPS 09.3 / AOS v7.0.4", "APC")
            ]  # fmt: skip
            # No "updated" record for every device because the column is new...
            assert await store.write(devices.forward_changes) == 0
            assert await box.pending() == []
            # ... but one snapshot is due, which the uplink service's check sends (changes
            # first, then the snapshot: services/uplink/service.py _device_changes_loop).
            assert await store.read(devices.snapshot_due)

            def check(tx: Tx) -> str:
                devices.forward_changes(tx)
                return devices.forward_due_snapshot(tx)

            snapshot = await store.write(check)
            assert snapshot
            assert await store.write(check) == "", "one snapshot per upgrade"
            assert not await store.read(devices.snapshot_due)
            records, answer = await box.send()
            assert [r["body"]["change"] for r in records] == ["snapshot"] * 3 + ["snapshot_end"]
            assert "inventory" not in answer
            versions = {d.mac: d.version for d in inventory.devices_sync(db, "op-up")}
            assert versions == {
                PRINTER.mac: "1.52", NAS.mac: "", UPS.mac: "UPS 09.3 / AOS v7.0.4"
            }  # fmt: skip
            assert inventory.inventory_changes_sync(db, "op-up", 0, 1e12) == changes_before
            firmware = inventory.firmware_sync(db, "op-up")
            assert [(f.version, f.vendor) for f in firmware] == [
                ("1.52", "Brother"), ("UPS 09.3 / AOS v7.0.4", "APC")
            ]  # fmt: skip
            # From now on a change of version is news, once.
            await store.write(lambda tx: _identify(tx, PRINTER, _identity("1.60"), 300.0))
            assert await store.write(devices.forward_changes) == 1
            records, _ = await box.send()
            assert [r["body"]["changed"] for r in records] == [["version"]]
        finally:
            await store.close()
    finally:
        await db.close()


def test_upgraded_home_database_asks_every_box_for_a_snapshot(home_database: str) -> None:
    conn = connect(Target.parse(home_database))  # a new database, nothing applied yet
    try:
        # The database as the release before migration 15 left it: a box's inventory and its
        # complete snapshot.
        assert migrate(conn, [m for m in MIGRATIONS if m[0] < 15]) < 15
        conn.execute(
            "INSERT INTO appliances (id, public_key, registered_at) VALUES ('op-a', 'k', 1.0)"
        )
        conn.execute(
            "INSERT INTO devices (appliance, device_id, mac, name, vendor, updated_at, snapshot)"
            " VALUES ('op-a', 1, '00:1b:a9:aa:00:02', 'printer', 'Brother', 2.0, 'snap')"
        )
        conn.execute(
            "INSERT INTO inventory_snapshots (appliance, stream, snapshot, count, device_drops,"
            " received_at) VALUES ('op-a', 's1', 'snap', 1, 0, 3.0)"
        )
        assert not inventory.snapshot_wanted(conn, "op-a", "s1", {})
        assert migrate(conn) == MIGRATIONS[-1][0]
        (device,) = inventory.devices_sync(conn, "op-a")
        assert (device.name, device.version, device.snmp_vendor) == ("printer", "", "")
        assert inventory.firmware_sync(conn, "op-a") == []
        assert inventory.snapshot_wanted(conn, "op-a", "s1", {}), "home asks for the versions"
        rows = conn.execute("SELECT version, old_version FROM device_changes").fetchall()
        assert rows == []
    finally:
        conn.close()
