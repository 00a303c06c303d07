"""Discovery without a network: hostile strings, ARP frames, subnet safety, classification,
the inventory's change events on a real store, and the SNMP rules against the recordings."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from pathlib import Path

import pytest

from core.clock import FixedClock
from core.config import ConfigError, parse_config
from core.settings.discovery import DiscoverySettings
from services.context import AppContext
from services.discovery import inventory
from services.discovery.arp import (
    ARP_REPLY,
    ETH_P_ARP,
    MIN_FRAME_BYTES,
    build_request,
    parse_frame,
)
from services.discovery.classify import Evidence, classify, evidence_from_mdns, gather
from services.discovery.interfaces import Interface, plan_sweeps
from services.discovery.kernel_arp import read_neighbours
from services.discovery.mdns import MdnsService
from services.discovery.migrations import DISCOVERY
from services.discovery.oui import lookup, normalize_mac
from services.discovery.sanitize import MAX_NAME_CHARS, clean_mapping, clean_name, clean_text
from services.discovery.service import DiscoveryService
from services.discovery.snmp_identity import read_identity
from services.store import Event, Store
from simsite.harness.paths import corpus_missing_reason
from tests.discovery_corpus import CORPUS, SnmprecReader, corpus_names, score, table

HOSTILE = [
    "<script>alert('x')</script>",
    "name\x00with\x07controls\x1b[2J\x7f\x9b",
    "line\nbreak\rforged=1",
    "\u202egnp.exe",  # right-to-left override
    "\ud800lone surrogate",
    "x" * 65536,
    "é" * 70000,
]
HOSTILE_BYTES = [b"\xff\xfe\xfd", b"\xc3\x28 invalid", b"ok\x00\x00\x00", bytes(range(256)) * 300]


def _safe(text: str, bound: int) -> None:
    assert len(text) <= bound
    text.encode("utf-8")  # valid text: no lone surrogates
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text), repr(text[:80])
    assert "\u202e" not in text


@pytest.mark.parametrize("value", [*HOSTILE, *HOSTILE_BYTES])
def test_clean_text_bounds_and_cleans_hostile_input(value: str | bytes) -> None:
    _safe(clean_text(value), 512)
    _safe(clean_name(value), MAX_NAME_CHARS)
    _safe(clean_text(value, 10), 10)


def test_clean_text_keeps_ordinary_text_and_marks_cuts() -> None:
    assert clean_text("  Brother  MFC-L2710DW\tseries ") == "Brother MFC-L2710DW series"
    assert clean_text("Büro-Drucker 2.OG") == "Büro-Drucker 2.OG"
    cut = clean_text("a" * 100, 10)
    assert cut == "a" * 9 + "…"
    assert clean_text(None) == "" and clean_text(b"") == ""
    # Markup stays text (the page escapes it); only what text cannot hold goes.
    assert clean_text("<b>x</b>") == "<b>x</b>"


def test_clean_mapping_bounds_txt_records() -> None:
    txt: dict[str | bytes, str | bytes | None] = {f"k{i}".encode(): b"v" * 1000 for i in range(500)}
    txt[b"TY"] = b"first"
    out = clean_mapping(txt, max_items=32)
    assert len(out) == 32
    assert all(len(v) <= 512 for v in out.values())
    assert clean_mapping({b"": b"x", b"A": b"1", b"a": b"2"}) == {"a": "1"}


def test_mac_vendor_and_randomised_macs() -> None:
    assert lookup("00:11:32:aa:bb:cc").vendor == "Synology Incorporated"
    assert lookup("00-C0-B7-00-00-01").vendor.startswith("AMERICAN POWER")
    randomised = lookup("da:a1:19:00:00:01")
    assert randomised.local and randomised.vendor == ""
    assert normalize_mac(b"\x00\x11\x32\xaa\xbb\xcc") == "00:11:32:aa:bb:cc"
    assert normalize_mac("0011.32aa.bbcc") == "00:11:32:aa:bb:cc"
    with pytest.raises(ValueError):
        normalize_mac("00:11:32:aa:bb")


def test_arp_request_frame_round_trips() -> None:
    mac = bytes.fromhex("0200c6120002")
    frame = build_request(mac, "198.18.0.2", "198.18.0.77")
    assert len(frame) == MIN_FRAME_BYTES
    assert frame[:6] == b"\xff" * 6 and struct.unpack("!H", frame[12:14])[0] == ETH_P_ARP
    packet = parse_frame(frame)
    assert packet is not None
    assert (packet.op, packet.sender_ip, packet.target_ip) == (1, "198.18.0.2", "198.18.0.77")
    assert packet.sender_mac == mac


def test_arp_parser_refuses_garbage() -> None:
    good = bytearray(build_request(b"\x02" * 6, "198.18.0.2", "198.18.0.9"))
    assert parse_frame(bytes(good[:30])) is None  # truncated
    other = bytearray(good)
    other[12:14] = b"\x08\x00"  # IPv4, not ARP
    assert parse_frame(bytes(other)) is None
    bad_op = bytearray(good)
    bad_op[20:22] = b"\x00\x09"
    assert parse_frame(bytes(bad_op)) is None
    reply = bytearray(good)
    reply[20:22] = struct.pack("!H", ARP_REPLY)
    assert parse_frame(bytes(reply)) is not None
    for size in range(0, 80, 7):
        parse_frame(bytes(size))  # never raises


def _iface() -> list[Interface]:
    import ipaddress

    return [Interface("eth0", "198.18.0.2", ipaddress.IPv4Network("198.18.0.0/24"))]


def test_plan_skips_own_address_and_exclusions() -> None:
    settings = DiscoverySettings(subnets=("198.18.0.0/24",), exclude=("198.18.0.128/25",))
    plans, problems = plan_sweeps(settings, _iface())
    assert problems == []
    [plan] = plans
    assert "198.18.0.2" not in plan.targets and "198.18.0.1" in plan.targets
    assert len(plan.targets) == 127 - 1  # .1 to .127, less our own .2
    assert all(int(t.rsplit(".", 1)[1]) < 128 for t in plan.targets)


def test_plan_refuses_foreign_and_large_subnets() -> None:
    settings = DiscoverySettings(subnets=("198.19.0.0/24",))
    plans, problems = plan_sweeps(settings, _iface())
    assert plans == [] and "no interface" in problems[0]
    with pytest.raises(ConfigError, match="larger than a /22"):
        parse_config('[discovery]\nsubnets = ["10.0.0.0/16"]\n')
    parse_config('[discovery]\nsubnets = ["10.0.0.0/16"]\nallow_large_subnets = true\n')


def test_defaults_never_scan_and_say_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The safety rule: no subnets and no auto_subnets -> one discovery.idle line, no sockets."""
    from core.logs import setup_logging

    config = parse_config(f'[store]\npath = "{tmp_path}/o.db"\n')
    assert config.discovery.subnets == () and config.discovery.auto_subnets is False
    ctx = AppContext(config=config, store=Store(tmp_path / "o.db"), clock=FixedClock())
    service = DiscoveryService(ctx)
    setup_logging("info")
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("outpost").addHandler(handler)
    try:
        asyncio.run(service.setup())
    finally:
        logging.getLogger("outpost").removeHandler(handler)
    assert lines.count("discovery.idle") == 1
    assert service.sockets == {} and service.mdns is None and service.fingerprinter is None
    assert ctx.status.snapshot()["discovery.state"] == "idle"


def test_proc_arp_parser(tmp_path: Path) -> None:
    path = tmp_path / "arp"
    path.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "198.18.0.1       0x1         0x2         00:08:a2:0c:12:01     *        eth0\n"
        "198.18.0.9       0x1         0x0         00:00:00:00:00:00     *        eth0\n"
        "garbage\n"
    )
    assert read_neighbours(path) == [("198.18.0.1", "00:08:a2:0c:12:01")]
    assert read_neighbours(path, interface="eth1") == []


def test_classification_weighs_all_evidence() -> None:
    printer = MdnsService("_ipp._tcp.local.", "Office", "prn.local.", 631, ("198.18.0.9",), {})
    evidence = gather(
        snmp=None, mdns=[printer], vendor="Brother industries, LTD.", local_mac=False,
        is_gateway=False,
    )  # fmt: skip
    assert classify(evidence)[0] == "printer"
    assert {e.source for e in evidence} == {"mdns", "oui"}
    assert classify([])[0] == "unknown"
    # A strong vote beats several weak ones for another kind only when it outweighs them.
    votes = [Evidence("oui", "workstation", 0.2, ""), Evidence("gateway", "router", 0.7, "")]
    assert classify(votes)[0] == "router"
    apple_tv = MdnsService(
        "_device-info._tcp.local.", "Living room", "atv.local.", 0, (), {"model": "AppleTV6,2"}
    )
    assert [e.kind for e in evidence_from_mdns([apple_tv])] == ["media"]


def test_names_and_model_from_mdns() -> None:
    cast = MdnsService(
        "_googlecast._tcp.local.", "Chromecast-abc123", "abc123.local.", 8009, (),
        {"fn": "Meeting room TV", "md": "Chromecast Ultra"},
    )  # fmt: skip
    ipp = MdnsService(
        "_ipp._tcp.local.", "Office", "brn3c2af4.local.", 631, (),
        {"ty": "Brother MFC-L2710DW series", "product": "(Brother MFC-L2710DW series)"},
    )  # fmt: skip
    name, names = inventory.best_name(None, [cast])
    assert name == "Meeting room TV" and names["mdns"] == "abc123"
    assert inventory.mdns_model([cast]) == "Chromecast Ultra"
    assert inventory.mdns_model([ipp]) == "Brother MFC-L2710DW series"
    assert inventory.best_name(None, [ipp])[0] == "brn3c2af4"


async def _open_store(path: Path, clock: FixedClock) -> Store:
    store = Store(path, chains=[DISCOVERY], clock=clock)
    await store.open()
    return store


async def test_inventory_events_join_change_leave_return_conflict(tmp_path: Path) -> None:
    clock = FixedClock()
    store = await _open_store(tmp_path / "o.db", clock)
    a, b = "30:05:5c:00:00:01", "30:05:5c:00:00:02"
    try:

        async def seen(items: list[inventory.Seen], active: bool = True) -> list[Event]:
            now = clock.now().wall
            result: list[Event] = await store.write(
                lambda tx: inventory.record_seen(tx, items, now, active=active, source="arp")
            )
            return result

        joined = await seen([inventory.Seen(a, ("198.18.0.40",))])
        assert [e.kind for e in joined] == ["device.joined"]
        device_a = joined[0].device_id
        assert await seen([inventory.Seen(a, ("198.18.0.40",))]) == []
        # Passive sightings only add addresses; an active sweep decides the IP.
        assert await seen([inventory.Seen(a, ("198.18.0.41",))], active=False) == []
        changed = await seen([inventory.Seen(a, ("198.18.0.44",))])
        assert [(e.kind, e.device_id) for e in changed] == [("device.ip_changed", device_a)]
        assert changed[0].data["old_ip"] == "198.18.0.40"
        assert changed[0].data["new_ip"] == "198.18.0.44"

        clock.advance(100)
        left = await store.write(lambda tx: inventory.expire(tx, clock.now().wall, 60))
        assert [(e.kind, e.device_id) for e in left] == [("device.left", device_a)]
        assert await store.write(lambda tx: inventory.expire(tx, clock.now().wall, 60)) == []
        back = await seen([inventory.Seen(a, ("198.18.0.44",))])
        assert [e.kind for e in back] == ["device.returned"]

        clock.advance(10)
        joined_b = await seen([inventory.Seen(b, ("198.18.0.44",))])
        conflict = frozenset({a, b})
        now = clock.now().wall
        events = await store.write(
            lambda tx: inventory.record_conflicts(tx, {"198.18.0.44": conflict}, now, complete=True)
        )
        assert [e.kind for e in events] == ["device.ip_conflict"]
        assert events[0].device_id == joined_b[0].device_id  # the newcomer
        assert events[0].data == {"ip": "198.18.0.44", "macs": sorted(conflict)}
        again = await store.write(
            lambda tx: inventory.record_conflicts(tx, {"198.18.0.44": conflict}, now, complete=True)
        )
        assert again == [], "one event per conflict, not one per sweep"
        await store.write(lambda tx: inventory.record_conflicts(tx, {}, now, complete=True))
        rows = await store.query("SELECT kind, data FROM events ORDER BY id")
        assert [r["kind"] for r in rows] == [
            "device.joined", "device.ip_changed", "device.left", "device.returned",
            "device.joined", "device.ip_conflict",
        ]  # fmt: skip
        assert json.loads(rows[-1]["data"])["ip"] == "198.18.0.44"
        assert await store.query("SELECT * FROM ip_conflicts") == []
    finally:
        await store.close()


async def test_identity_merge_keeps_evidence_and_hostile_names_safe(tmp_path: Path) -> None:
    clock = FixedClock()
    store = await _open_store(tmp_path / "o.db", clock)
    mac = "ac:cc:8e:00:00:07"
    try:
        now = clock.now().wall
        await store.write(
            lambda tx: inventory.record_seen(
                tx, [inventory.Seen(mac, ("198.18.0.60",))], now, active=True, source="arp"
            )
        )
        hostile = MdnsService(
            "_axis-video._tcp.local.", clean_name("<img src=x>\x1b[31m" + "A" * 5000),
            clean_name("cam\x00era.local."), 80, ("198.18.0.60",), clean_mapping({b"x": b"\xff"}),
        )  # fmt: skip
        row = await store.write(
            lambda tx: inventory.update_identity(
                tx, mac, snmp=None, credential="", mdns=[hostile], is_gateway=False, now=now
            )
        )
        assert row is not None and row.kind == "camera"
        sources = {e["source"] for e in row.attrs["evidence"]}
        assert sources == {"mdns", "oui"}
        _safe(row.name, MAX_NAME_CHARS)
        assert row.name == "camera"

        def merge_again(tx):  # type: ignore[no-untyped-def]
            before = tx.conn.total_changes
            inventory.update_identity(
                tx, mac, snmp=None, credential="", mdns=[hostile], is_gateway=False, now=now
            )
            return tx.conn.total_changes - before

        assert await store.write(merge_again) == 0, "nothing new: no write (flash wear)"
    finally:
        await store.close()


async def test_snmp_rules_against_recordings_offline() -> None:
    """Rule development aid: the same agreement the live test measures, read from the files
    directly (the live test proves it through real agents)."""
    missing = corpus_missing_reason(CORPUS)
    if missing:
        pytest.skip(f"nothing to compare: {missing}")
    names = corpus_names()
    results = {}
    for name in names:
        ident = await read_identity(SnmprecReader(CORPUS / f"{name}.snmprec"))
        results[name] = {"type": ident.kind, "hardware": ident.model, "serial": ident.serial,
                         "version": ident.version}  # fmt: skip
    scores = score(results)
    print("\n" + table(scores))
    # An agreement over nothing is no agreement: every recording's oracle is read, and each
    # field is compared on most of them (not every device reports a serial).
    expected = [n for n in names if (CORPUS / f"{n}.expected.json").is_file()]
    assert len(expected) >= 20, f"only {len(expected)} recordings with an oracle in {CORPUS}"
    for field, s in scores.items():
        assert s.compared >= len(expected) // 2, f"{field}: compared on {s.compared} only"
    assert scores["type"].ratio >= 0.9, scores["type"].misses
    for field in ("hardware", "serial", "version"):
        assert scores[field].ratio >= 0.8, scores[field].misses


async def test_events_are_stored_then_published_on_the_bus(tmp_path: Path) -> None:
    clock = FixedClock()
    config = parse_config(
        f'[store]\npath = "{tmp_path}/o.db"\n[discovery]\nsubnets = ["198.18.0.0/24"]\n'
    )
    store = await _open_store(tmp_path / "o.db", clock)
    ctx = AppContext(config=config, store=store, clock=clock)
    sub = ctx.bus.subscribe(Event)
    service = DiscoveryService(ctx)
    try:
        now = clock.now().wall
        seen = [inventory.Seen("00:11:32:00:00:01", ("198.18.0.30",))]
        await service._write(  # noqa: SLF001 - the service's one write path, without a sweep
            lambda tx: inventory.record_seen(tx, seen, now, active=True, source="arp")
        )
        event = await asyncio.wait_for(sub.get(), 1)
        assert event.kind == "device.joined" and event.data["mac"] == "00:11:32:00:00:01"
        stored = await store.query("SELECT id FROM events WHERE kind = 'device.joined'")
        assert len(stored) == 1, "published only after it was committed"
    finally:
        await store.close()


def test_auto_subnets_are_the_interfaces_own() -> None:
    import ipaddress

    interfaces = [
        *_iface(),
        Interface("wlan0", "198.18.4.2", ipaddress.IPv4Network("198.18.4.0/24")),
        Interface("eth1", "10.9.0.2", ipaddress.IPv4Network("10.9.0.0/16")),
    ]
    plans, problems = plan_sweeps(DiscoverySettings(auto_subnets=True), interfaces)
    assert [str(p.subnet) for p in plans] == ["198.18.0.0/24", "198.18.4.0/24"]
    assert problems == [
        "10.9.0.0/16: larger than a /22; not swept (set discovery.allow_large_subnets = true "
        "to sweep it)"
    ]


async def test_a_device_configured_by_ip_is_adopted_not_duplicated(tmp_path: Path) -> None:
    clock = FixedClock()
    store = await _open_store(tmp_path / "o.db", clock)
    try:
        now = clock.now().wall
        await store.write(
            lambda tx: tx.conn.execute(
                "INSERT INTO devices (ip, name, kind, source, first_seen, last_seen, attrs)"
                " VALUES ('198.18.0.30', 'Main NAS', 'nas', 'config', ?, ?, ?)",
                (now, now, json.dumps({"snmp_credential": "public-v2c"})),
            )
        )
        mac = "00:11:32:00:00:09"
        events = await store.write(
            lambda tx: inventory.record_seen(
                tx, [inventory.Seen(mac, ("198.18.0.30",))], now, active=True, source="arp"
            )
        )
        assert events == [], "a configured device is known: no device.joined"
        [row] = await store.query("SELECT mac, name, kind, vendor, attrs FROM devices")
        assert row["mac"] == mac and row["vendor"] == "Synology Incorporated"
        assert json.loads(row["attrs"])["snmp_credential"] == "public-v2c"
        printer = MdnsService("_ipp._tcp.local.", "x", "nas.local.", 631, (), {})
        merged = await store.write(
            lambda tx: inventory.update_identity(
                tx, mac, snmp=None, credential="", mdns=[printer], is_gateway=False, now=now
            )
        )
        assert merged is not None and (merged.name, merged.kind) == ("Main NAS", "nas")
    finally:
        await store.close()


async def test_a_spoofing_flood_cannot_grow_the_inventory(tmp_path: Path) -> None:
    clock = FixedClock()
    store = await _open_store(tmp_path / "o.db", clock)
    try:
        now = clock.now().wall
        flood = [
            inventory.Seen(f"02:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:00:01",
                           ("198.18.0.66",))
            for i in range(inventory.MAX_DEVICES + 500)
        ]  # fmt: skip
        events = await store.write(
            lambda tx: inventory.record_seen(tx, flood, now, active=False, source="arp")
        )
        assert len(events) == inventory.MAX_DEVICES
        [row] = await store.query("SELECT COUNT(*) AS n FROM devices")
        assert row["n"] == inventory.MAX_DEVICES
    finally:
        await store.close()
