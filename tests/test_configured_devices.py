"""A device the technician names in the config keeps that name and kind against discovery."""

from __future__ import annotations

from pathlib import Path

from core.clock import FixedClock
from core.config import parse_config
from services.discovery import inventory
from services.discovery.mdns import MdnsService
from services.discovery.migrations import DISCOVERY
from services.polling.inventory import upsert_configured
from services.store import Store


async def test_configured_name_and_kind_survive_discovery(tmp_path: Path) -> None:
    clock = FixedClock()
    store = Store(tmp_path / "o.db", chains=[DISCOVERY], clock=clock)
    await store.open()
    try:
        now = clock.now().wall
        # Discovery finds the host first (ARP) ...
        seen = [inventory.Seen("00:11:32:00:00:07", ("198.18.0.30",))]
        await store.write(
            lambda tx: inventory.record_seen(tx, seen, now, active=True, source="arp")
        )
        # ... then the technician names it in the config.
        config = parse_config(
            '[[polling.devices]]\nname = "Accounts NAS"\nip = "198.18.0.30"\nkind = "nas"\n'
        )
        await store.write(lambda tx: upsert_configured(tx, config.polling.devices))
        (row,) = await store.query("SELECT name, kind, source FROM devices")
        assert row == {"name": "Accounts NAS", "kind": "nas", "source": "config"}
        # Discovery's next merge of what it knows about that MAC keeps the technician's words.
        # (mDNS says it is a Mac mini: left alone, discovery would call it a workstation.)
        mdns = [
            MdnsService(
                type="_device-info._tcp.local.",
                name="mini",
                host="mini.local.",
                port=0,
                addresses=("198.18.0.30",),
                txt={"model": "Macmini9,1"},
            )
        ]
        await store.write(
            lambda tx: inventory.update_identity(
                tx,
                "00:11:32:00:00:07",
                snmp=None,
                credential="",
                mdns=mdns,
                is_gateway=False,
                now=now,
            )
        )
        (row,) = await store.query("SELECT name, kind, source FROM devices")
        assert row == {"name": "Accounts NAS", "kind": "nas", "source": "config"}
    finally:
        await store.close()
