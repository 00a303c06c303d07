"""The discovery field cases of ../shared/field-cases/CASES.md, each on its own small namespace
LAN with the real discovery service (needs root), plus one variant of ours per kind.

Each test builds the LAN the case describes, runs ``python -m services.discovery run`` in the
appliance's namespace and checks the right value the case gives, read from the store.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IS_ROOT, REPO

if not IS_ROOT:
    pytest.skip("needs root for network namespaces (simulated LANs)", allow_module_level=True)

import itertools

from simsite.agentcfg import AgentConfig, ServiceAd
from simsite.announce import printer_services
from simsite.model import MdnsService, SimDevice, SiteSpec
from simsite.ouis import mac_for
from simsite.site import Site
from tests.discovery_lan_site import (
    SWEEP_INTERVAL_S,
    discovery_config,
    ns_run,
    outpost,
)


def _mdns_types(attrs: dict[str, Any]) -> set[str]:
    return {s["type"] for s in attrs.get("mdns", [])}


# ---- 1. two subnets on one interface, hosts with arp_ignore=2 ----------------------------


def test_each_subnet_is_swept_from_the_appliances_own_address_in_it(tmp_path: Path) -> None:
    """198.18.80.2/24 and 198.18.81.2/24 on one interface; hosts of both subnets, some with
    arp_ignore=2 (they answer only a request whose sender is in their own subnet)."""
    hosts = {
        "a80": ("198.18.80.10", "198.18.80.10", True),
        "b80": ("198.18.80.11", "198.18.80.11", False),
        "a81": ("198.18.80.12", "198.18.81.10", True),  # moved to the second subnet below
        "b81": ("198.18.80.13", "198.18.81.11", True),
        "c81": ("198.18.80.14", "198.18.81.12", False),
    }
    devices = tuple(
        SimDevice(name=n, ip=ip, mac=mac_for("dell", n), vendor="Dell", role="workstation")
        for n, (ip, _, _) in hosts.items()
    )
    spec = SiteSpec(devices=devices, lan="198.18.80.0/24", gateway_ip="198.18.80.1",
                    appliance_ip="198.18.80.2")  # fmt: skip
    with Site(spec) as site:
        ns_run(site, site.app_ns, "ip addr add 198.18.81.2/24 dev eth0")
        for name, (first, final, strict) in hosts.items():
            ns = site.ns_of(name)
            if final != first:
                ns_run(site, ns, f"ip addr del {first}/24 dev eth0",
                       f"ip addr add {final}/24 dev eth0")  # fmt: skip
            if strict:
                ns_run(site, ns, "sysctl -qw net.ipv4.conf.all.arp_ignore=2",
                       "sysctl -qw net.ipv4.conf.eth0.arp_ignore=2")  # fmt: skip
        expected = {mac_for("dell", n): final for n, (_, final, _) in hosts.items()}
        expected[spec.gateway_mac] = spec.gateway_ip
        config = lambda db: discovery_config(  # noqa: E731
            db, ["198.18.80.0/24", "198.18.81.0/24"], mdns=False
        )
        with outpost(site, tmp_path, config) as app:
            have = app.wait(
                "every host of both subnets",
                lambda: (
                    found
                    if set(found := {m: r["ip"] for m, r in app.devices().items()}) >= set(expected)
                    else None
                ),
                30,
            )
            assert have == expected, "every host at its address, none missing, no phantom"
            text = app.text()
            assert "discovery.swept subnet=198.18.80.0/24" in text
            assert "discovery.swept subnet=198.18.81.0/24" in text


# ---- 2. the LAN address arrives after discovery started ----------------------------------


def test_mdns_follows_an_address_that_arrives_after_start(tmp_path: Path) -> None:
    """No address at start (slow DHCP, cable plugged in later); it arrives a second later and a
    printer then announces _ipp._tcp and _printer._tcp: the same inventory as if the address
    had been there at start."""
    spec = SiteSpec(devices=(), lan="198.18.82.0/24", gateway_ip="198.18.82.1",
                    appliance_ip="198.18.82.2")  # fmt: skip
    with Site(spec) as site:
        ns_run(site, site.app_ns, "ip addr flush dev eth0")
        config = lambda db: discovery_config(db, ["198.18.82.0/24"])  # noqa: E731
        with outpost(site, tmp_path, config) as app:
            app.wait("the service to start", lambda: "discovery.started" in app.text(), 20)
            assert "mdns=on" in app.text()
            time.sleep(1.0)
            ns_run(site, site.app_ns, "ip addr add 198.18.82.2/24 dev eth0",
                   "ip route add default via 198.18.82.1")  # fmt: skip
            ipp, _raw, lpd = printer_services(
                "brn3c2af4", "Brother", "HL-L2350DW series", color=False, lpd_queue="BINARY_P1"
            )
            printer = SimDevice(name="printer", ip="198.18.82.40", mac=mac_for("brother", "p82"),
                                vendor="Brother", role="printer", mdns=(ipp, lpd))  # fmt: skip
            site.add_device(printer)
            added = time.monotonic()

            def identified() -> dict[str, Any] | None:
                row = app.devices().get(printer.mac)
                if row is None or row["kind"] != "printer":
                    return None
                attrs = app.attrs(printer.mac)
                return (
                    attrs
                    if _mdns_types(attrs) >= {"_ipp._tcp.local.", "_printer._tcp.local."}
                    else None
                )

            attrs = app.wait("the printer's mDNS identity", identified, 40)
            print(f"\nprinter identified {time.monotonic() - added:.1f} s after it announced")
            row = app.devices()[printer.mac]
            # Named by its mDNS host name, as any printer found at start.
            assert row["ip"] == printer.ip and row["name"] == "brn3c2af4"
            assert attrs["model"] == "Brother HL-L2350DW series"


# ---- 3. services that are not the host ---------------------------------------------------


def _cast(name: str, model: str, host: str, port: int, uuid_hex: str) -> MdnsService:
    txt: dict[str, str | bytes] = {
        "id": uuid_hex, "md": model, "fn": name, "ca": "199172", "st": "0", "rs": "",
    }  # fmt: skip
    return MdnsService("_googlecast._tcp", f"{model.replace(' ', '-')}-{uuid_hex}", port, txt,
                       host=host)  # fmt: skip


def test_services_that_are_not_the_host_do_not_name_or_classify_it(tmp_path: Path) -> None:
    """The Cast speaker that leads a group announces the group too: it stays "Kitchen speaker"
    / "Google Nest Audio". Our variant: a PC sharing a printer (CUPS queue over _ipp._tcp)
    stays a computer, named by its host, without the printer's model."""
    speaker_id, group_id = "a1b2c3d4e5f60718293a4b5c6d7e8f90", "0f9e8d7c6b5a49382716f5e4d3c2b1a0"
    speaker = SimDevice(
        name="speaker", ip="198.18.83.30", mac="f4:f5:d8:3a:10:01", vendor="Google",
        role="media",
        mdns=(
            _cast("Kitchen speaker", "Google Nest Audio", speaker_id, 8009, speaker_id),
            _cast("All speakers", "Google Cast Group", group_id, 32187, group_id),
        ),
    )  # fmt: skip
    queue_txt: dict[str, str | bytes] = {
        "txtvers": "1", "qtotal": "1", "rp": "printers/HP_LaserJet_Pro_M404",
        "ty": "HP LaserJet Pro M404dn", "product": "(HP LaserJet Pro M404dn)",
        "note": "Reception", "printer-type": "0x809046", "printer-state": "3",
        "pdl": "application/octet-stream,application/pdf,image/urf",
    }  # fmt: skip
    pc = SimDevice(
        name="reception-pc", ip="198.18.83.31", mac=mac_for("dell", "reception"), vendor="Dell",
        role="workstation",
        mdns=(
            MdnsService("_workstation._tcp", "reception-pc [f8:bc:12:00:00:31]", 9,
                        host="reception-pc"),
            MdnsService("_ipp._tcp", "HP LaserJet Pro M404 @ reception-pc", 631, queue_txt,
                        host="reception-pc"),
            MdnsService("_printer._tcp", "HP LaserJet Pro M404 @ reception-pc", 515, queue_txt,
                        host="reception-pc"),
        ),
    )  # fmt: skip
    spec = SiteSpec(devices=(speaker, pc), lan="198.18.83.0/24", gateway_ip="198.18.83.1",
                    appliance_ip="198.18.83.2")  # fmt: skip
    with Site(spec) as site:
        config = lambda db: discovery_config(db, ["198.18.83.0/24"])  # noqa: E731
        with outpost(site, tmp_path, config) as app:

            def merged(mac: str, count: int) -> dict[str, Any] | None:
                attrs = app.attrs(mac)
                return attrs if len(attrs.get("mdns", [])) >= count else None

            attrs = app.wait("the speaker's two Cast services", lambda: merged(speaker.mac, 2))
            row = app.devices()[speaker.mac]
            assert (row["name"], attrs["model"]) == ("Kitchen speaker", "Google Nest Audio")
            assert row["kind"] == "media"
            group = next(s for s in attrs["mdns"] if s["txt"].get("fn") == "All speakers")
            assert "group" in group["hosted"]

            attrs = app.wait("the PC's three services", lambda: merged(pc.mac, 3))
            row = app.devices()[pc.mac]
            assert (row["name"], row["kind"]) == ("reception-pc", "workstation")
            assert "model" not in attrs, "the shared printer's model is not the PC's"
            assert not [e for e in attrs["evidence"] if e["kind"] == "printer"]
            assert sum("print queue" in s.get("hosted", "") for s in attrs["mdns"]) == 2


# ---- 4. vendors from the IEEE's small blocks ---------------------------------------------


def test_vendors_of_small_ieee_blocks_by_longest_prefix(tmp_path: Path) -> None:
    cases = {
        "4c:74:a7:e1:52:6f": ("KYOCERA CORPORATION", "printer"),  # MA-M
        "6c:5c:3d:21:07:9a": ("Vertiv Industrial Systems", "ups"),  # MA-M
        "00:50:c2:b0:4c:11": ("Ubiquiti Inc", "ap"),  # IAB
        "70:b3:d5:98:7a:30": ("AXIS CORPORATION", "camera"),  # MA-S
    }
    devices = tuple(
        SimDevice(name=f"d{i}", ip=f"198.18.84.{20 + i}", mac=mac, vendor="?", role="unknown")
        for i, mac in enumerate(cases)
    )
    spec = SiteSpec(devices=devices, lan="198.18.84.0/24", gateway_ip="198.18.84.1",
                    appliance_ip="198.18.84.2")  # fmt: skip
    with Site(spec) as site:
        config = lambda db: discovery_config(db, ["198.18.84.0/24"], mdns=False)  # noqa: E731
        with outpost(site, tmp_path, config) as app:
            rows = app.wait(
                "the four devices",
                lambda: found if set(found := app.devices()) >= set(cases) else None,
                30,
            )
            for mac, (vendor, kind) in cases.items():
                assert (rows[mac]["vendor"], rows[mac]["kind"]) == (vendor, kind), mac
            assert not [r for r in rows.values() if "Registration Authority" in r["vendor"]]


# ---- 5. a printer moves to a new lease, a PC takes its old address -----------------------


def test_identity_follows_the_mac_not_the_old_address(tmp_path: Path) -> None:
    """The printer restarts on a new lease (.60 -> .61, no goodbye for .60) and announces
    again; a PC then takes .60. The printer keeps its name and kind at .61; the PC inherits
    nothing. Our variant on how an address moves: the PC gets .60 from the printer's very
    next sweep, while the printer's .60 A record is still cached (TTL 120 s)."""
    printer = SimDevice(
        name="printer", ip="198.18.85.60", mac=mac_for("hp", "p85"), vendor="HP", role="printer",
        mdns=printer_services("hp-m404", "HP", "LaserJet Pro M404dn", color=False,
                              lpd_queue="raw"),
    )  # fmt: skip
    spec = SiteSpec(devices=(printer,), lan="198.18.85.0/24", gateway_ip="198.18.85.1",
                    appliance_ip="198.18.85.2")  # fmt: skip
    with Site(spec) as site:
        config = lambda db: discovery_config(db, ["198.18.85.0/24"])  # noqa: E731
        with outpost(site, tmp_path, config) as app:

            def printer_at(ip: str) -> Any:
                row = app.devices().get(printer.mac)
                wanted = (ip, "printer", "hp-m404")
                if row is None or (row["ip"], row["kind"], row["name"]) != wanted:
                    return None
                return row

            app.wait("the printer at .60", lambda: printer_at("198.18.85.60"), 40)
            site.crash_agent("printer")  # power cut: no goodbye for .60
            site.change_ip("printer", "198.18.85.61")  # boots on a new lease, announces again
            app.wait("the printer at .61", lambda: printer_at("198.18.85.61"), 40)
            pc = SimDevice(name="pc", ip="198.18.85.60", mac=mac_for("dell", "pc85"),
                           vendor="Dell", role="workstation")  # fmt: skip
            site.add_device(pc)
            app.wait("the PC at .60", lambda: (app.devices().get(pc.mac) or {"ip": ""})["ip"]
                     == "198.18.85.60", 30)  # fmt: skip
            # Several merges with the PC at .60 while the printer's .60 A record is cached.
            time.sleep(3 * SWEEP_INTERVAL_S + 2)
            row, attrs = app.devices()[pc.mac], app.attrs(pc.mac)
            assert row["name"] == "" and row["kind"] != "printer", dict(row)
            assert "mdns" not in attrs and "model" not in attrs
            assert printer_at("198.18.85.61") is not None, "the printer kept its identity"


# ---- 6. a responder that does not list its service types ---------------------------------


def test_a_responder_that_lists_no_types_is_found_by_direct_browsing(tmp_path: Path) -> None:
    """An embedded print server answers questions for _ipp._tcp and _pdl-datastream._tcp but
    not the service-type enumeration: found, named by its mDNS host name, a printer."""
    server = SimDevice(name="printsrv", ip="198.18.86.50", mac="00:80:92:3c:2a:f4",
                       vendor="Silex", role="printer")  # fmt: skip
    spec = SiteSpec(devices=(server,), lan="198.18.86.0/24", gateway_ip="198.18.86.1",
                    appliance_ip="198.18.86.2")  # fmt: skip
    with Site(spec) as site:
        ready = site.workdir / "terse.ready"
        cfg = site.workdir / "terse.json"
        txt = (b"txtvers=1", b"ty=Generic PCL Printer", b"rp=lp1", b"pdl=application/vnd.hp-PCL")
        services = tuple(
            ServiceAd(f"{t}.local.", "Print Server PS-3C2AF4", port, txt, "ps-3c2af4.local.")
            for t, port in (("_ipp._tcp", 631), ("_pdl-datastream._tcp", 9100))
        )
        AgentConfig(server.ip, (), services, str(ready)).dump(cfg)
        site.popen_in(site.ns_of("printsrv"), [sys.executable, "-m", "simsite.terse_mdns",
                                                str(cfg)])  # fmt: skip
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert time.monotonic() < deadline, "the terse responder did not start"
            time.sleep(0.1)

        # The control: a browse of the service-type enumeration alone hears nothing of it;
        # the one-shot command, browsing the known types too, does.
        def browse(*flags: str) -> str:
            argv = [sys.executable, "-m", "services.discovery", "mdns", "--seconds", "3", *flags]
            done = site.run_in(site.app_ns, argv, capture_output=True, text=True, check=True,
                               cwd=REPO)  # fmt: skip
            return str(done.stdout)

        assert "PS-3C2AF4" not in browse("--enumeration-only")
        assert "PS-3C2AF4" in browse()
        config = lambda db: discovery_config(db, ["198.18.86.0/24"])  # noqa: E731
        with outpost(site, tmp_path, config) as app:

            def identified() -> Any:
                row = app.devices().get(server.mac)
                return row if row is not None and row["kind"] == "printer" else None

            row = app.wait("the print server, a printer", identified, 40)
            assert row["name"] == "ps-3c2af4"
            types = _mdns_types(app.attrs(server.mac))
            assert types == {"_ipp._tcp.local.", "_pdl-datastream._tcp.local."}


# ---- randomised MACs -----------------------------------------------------------------------


def test_a_phone_rotating_its_private_mac_stays_one_device(tmp_path: Path) -> None:
    """A phone rotates its private (locally administered) MAC three times, taking a new lease
    each time, with the same mDNS host name: one device, one device.joined, three
    device.mac_rotated."""
    macs = ["0a:5e:00:00:87:01", "0a:5e:00:00:87:02", "0a:5e:00:00:87:03", "0a:5e:00:00:87:04"]
    services = (
        MdnsService("_companion-link._tcp", "Anna's iPhone", 49152,
                    {"rpBA": "4C:11:22:33:44:55", "rpVr": "510.1"}, host="annas-iphone"),
        MdnsService("_apple-mobdev2._tcp", "4e:11:22:33:44:55@fe80::1c", 32498,
                    host="annas-iphone"),
    )  # fmt: skip
    phone = SimDevice(name="phone", ip="198.18.87.70", mac=macs[0], vendor="Apple", role="phone",
                      mdns=services)  # fmt: skip
    spec = SiteSpec(devices=(phone,), lan="198.18.87.0/24", gateway_ip="198.18.87.1",
                    appliance_ip="198.18.87.2")  # fmt: skip
    with Site(spec) as site:
        config = lambda db: discovery_config(db, ["198.18.87.0/24"])  # noqa: E731

        def phone_row(app: Any, mac: str, ip: str = "") -> Any:
            row = app.devices().get(mac)
            if row is None or (ip and row["ip"] != ip):
                return None
            attrs = app.attrs(mac)
            return row if attrs.get("names", {}).get("mdns") == "annas-iphone" else None

        with outpost(site, tmp_path, config) as app:
            first = app.wait("the phone, named", lambda: phone_row(app, macs[0]), 60)
            ns = site.ns_of("phone")
            for turn, mac in enumerate(macs[1:], start=1):
                rotated = time.monotonic()
                ns_run(site, ns, f"ip link set eth0 address {mac}")
                site.change_ip("phone", f"198.18.87.{70 + turn}")  # new MAC, new lease
                # (The new MAC may be heard at the old address first, before the new lease:
                # linked there already, then moved.)
                lease = f"198.18.87.{70 + turn}"
                row = app.wait(f"rotation {turn} linked", partial(phone_row, app, mac, lease), 60)
                print(f"\nrotation {turn}: linked {time.monotonic() - rotated:.1f} s after it")
                assert row["id"] == first["id"]
            phone_macs = set(macs)
            # Introduced once: in the fresh box's first sweep (the baseline) or joined later.
            introduced = [e["data"]["mac"] for e in app.events("device.joined")]
            introduced += [m for e in app.events("discovery.baseline") for m in e["data"]["macs"]]
            assert [m for m in introduced if m in phone_macs] == [macs[0]], "never joined again"
            rotations = [(e["data"]["old_mac"], e["data"]["mac"])
                         for e in app.events("device.mac_rotated")]  # fmt: skip
            assert rotations == list(itertools.pairwise(macs))
            assert [m for m in app.devices() if m in phone_macs] == [macs[-1]], "one device"
            assert app.attrs(macs[-1])["previous_macs"] == macs[:-1]


def test_two_devices_that_swap_leases_keep_their_identities(tmp_path: Path) -> None:
    """Our variant of an address that moves: after a power cut a printer and a PC come back
    with each other's leases and announce at once, before the next sweep; for a moment the
    inventory still shows each address with its previous holder. Each keeps its own
    identity (the new holder of each address is asked by ARP, not taken from the
    inventory)."""
    printer = SimDevice(
        name="printer", ip="198.18.88.60", mac=mac_for("hp", "p88"), vendor="HP", role="printer",
        mdns=printer_services("hp-m404", "HP", "LaserJet Pro M404dn", color=False,
                              lpd_queue="raw"),
    )  # fmt: skip
    pc = SimDevice(
        name="pc", ip="198.18.88.61", mac=mac_for("dell", "pc88"), vendor="Dell",
        role="workstation",
        mdns=(MdnsService("_workstation._tcp", "reception-pc [f8:bc:12:00:00:61]", 9,
                          host="reception-pc"),),
    )  # fmt: skip
    spec = SiteSpec(devices=(printer, pc), lan="198.18.88.0/24", gateway_ip="198.18.88.1",
                    appliance_ip="198.18.88.2")  # fmt: skip
    with Site(spec) as site:
        config = lambda db: discovery_config(db, ["198.18.88.0/24"])  # noqa: E731
        with outpost(site, tmp_path, config) as app:

            def at(mac: str, ip: str, name: str, kind: str) -> bool:
                row = app.devices().get(mac)
                return row is not None and (row["ip"], row["name"], row["kind"]) == (
                    ip, name, kind,
                )  # fmt: skip

            app.wait("both identified", lambda: at(printer.mac, "198.18.88.60", "hp-m404",
                     "printer") and at(pc.mac, "198.18.88.61", "reception-pc",
                     "workstation"), 40)  # fmt: skip
            for name in ("printer", "pc"):
                site.crash_agent(name)
            site.change_ip("printer", "198.18.88.62")  # out of the way first (no duplicates)
            site.change_ip("pc", "198.18.88.60")
            site.crash_agent("printer")
            site.change_ip("printer", "198.18.88.61")
            app.wait("both at their new leases", lambda: at(printer.mac, "198.18.88.61",
                     "hp-m404", "printer") and at(pc.mac, "198.18.88.60", "reception-pc",
                     "workstation"), 40)  # fmt: skip
            time.sleep(3 * SWEEP_INTERVAL_S + 2)  # several merges more
            assert at(printer.mac, "198.18.88.61", "hp-m404", "printer")
            assert at(pc.mac, "198.18.88.60", "reception-pc", "workstation")
            assert _mdns_types(app.attrs(pc.mac)) == {"_workstation._tcp.local."}
            assert "_workstation._tcp.local." not in _mdns_types(app.attrs(printer.mac))
