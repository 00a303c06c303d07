"""Tests of simsite, the simulated office LAN.

The namespace tests build one small site (an snmpsim printer, a net-snmp file server with
an SNMPv3 user, an mDNS announcer with hostile names, a bare PC) and look at it from the
appliance's namespace, as the appliance would. They need root; the loopback and catalogue
tests do not.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import netaddr
import pytest

from simsite import (
    LoopbackSite,
    MdnsService,
    SimDevice,
    Site,
    SiteError,
    SiteSpec,
    SnmpV3User,
    netns,
    owner,
    procs,
)
from simsite.corpus import CORPUS_V3_USER, FILESERVER, corpus_site, device_name
from simsite.demo import RECORDINGS, demo_site
from simsite.ouis import VENDOR_OUIS

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "snmp-corpus"
PRINTER_REC = RECORDINGS / "printer-hp-m454dw.snmprec"
UPS_REC = RECORDINGS / "ups-apc-smt1500.snmprec"
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
CMD_TIMEOUT_S = 20
V3 = SnmpV3User("probe", auth_key="probe-auth-key", priv_key="probe-priv-key")
#: Markup, an ANSI escape and a bell: what a hostile or broken device may announce.
HOSTILE_NAME = "<script>alert(1)</script>\x1b[31m\x07"
LONG_TXT: dict[str, str | bytes] = {f"k{i:02d}": "x" * 200 for i in range(10)}
LONG_TXT["raw"] = b"\xff\xfe\x00<b>"


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")


def _recorded(path: Path, oid: str) -> str:
    for line in path.read_text().splitlines():
        rec_oid, _tag, value = line.split("|", 2)
        if rec_oid == oid:
            return value
    raise KeyError(oid)


def _spec() -> SiteSpec:
    return SiteSpec(
        devices=(
            SimDevice(
                "printer",
                "198.18.0.20",
                "a0:d3:c1:12:34:56",
                "HP",
                "printer",
                snmprec=PRINTER_REC,
                tcp_ports=(9100, 631),
                mdns=(
                    MdnsService(
                        "_ipp._tcp",
                        "HP Color LaserJet",
                        631,
                        {"ty": "HP Color LaserJet Pro M454dw", "rp": "ipp/print"},
                    ),
                ),
            ),
            SimDevice(
                "fileserver",
                "198.18.0.11",
                "0c:c4:7a:00:00:11",
                "Supermicro",
                "server",
                snmp_engine="snmpd",
                v3_user=V3,
            ),
            SimDevice(
                "kiosk",
                "198.18.0.40",
                "70:3e:ac:00:00:40",
                "Apple",
                "workstation",
                mdns=(MdnsService("_http._tcp", HOSTILE_NAME, 80, LONG_TXT, host="kiosk-<b>"),),
            ),
            SimDevice("spare-pc", "198.18.0.50", "f8:bc:12:00:00:50", "Dell", "workstation"),
        ),
        gateway_snmprec=RECORDINGS / "gateway-pfsense.snmprec",
    )


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    _require_root()
    with Site(_spec()) as running:
        yield running


def _app(site: Site, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return site.run_in(site.app_ns, argv, capture_output=True, text=True, timeout=CMD_TIMEOUT_S)


def _pings(site: Site, ip: str) -> bool:
    return _app(site, ["ping", "-c", "1", "-W", "1", ip]).returncode == 0


def _snmpget_v2c(site: Site, ip: str, oid: str) -> str:
    out = _app(site, ["snmpget", "-v2c", "-c", "public", "-t", "1", "-r", "1", "-Oqv", ip, oid])
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().strip('"')


def _assert_gone(prefix: str, pids: list[int]) -> None:
    assert not [ns for ns in netns.names() if ns.startswith(prefix)]
    assert not [pid for pid in pids if procs.is_alive(pid)]
    assert not (owner.run_dir() / f"{prefix}.json").exists()


# ------------------------------------------------------------------ namespace site


def test_devices_answer_ping_and_arp_with_their_mac(site: Site) -> None:
    for dev in site.devices:
        assert _pings(site, dev.ip), dev.name
        neigh = _app(site, ["ip", "neigh", "show", dev.ip]).stdout
        assert f"lladdr {dev.mac}" in neigh, (dev.name, neigh)


def test_snmp_v2c_sysdescr_matches_recording(site: Site) -> None:
    assert _snmpget_v2c(site, "198.18.0.20", SYS_DESCR) == _recorded(PRINTER_REC, SYS_DESCR)
    gateway_rec = RECORDINGS / "gateway-pfsense.snmprec"
    assert _snmpget_v2c(site, "198.18.0.1", SYS_DESCR) == _recorded(gateway_rec, SYS_DESCR)


def test_snmp_v3_authpriv_against_snmpd(site: Site) -> None:
    base = [
        "snmpget",
        "-v3",
        "-l",
        "authPriv",
        "-u",
        V3.user,
        "-a",
        "SHA",
        "-A",
        V3.auth_key,
        "-x",
        "AES",
        "-t",
        "1",
        "-r",
        "0",
        "-Oqv",
    ]
    good = _app(site, [*base, "-X", V3.priv_key, "198.18.0.11", SYS_NAME])
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip().strip('"') == "fileserver"
    bad = _app(site, [*base, "-X", "wrong-priv-key", "198.18.0.11", SYS_NAME])
    assert bad.returncode != 0


def test_mdns_browse_from_appliance_finds_services(site: Site) -> None:
    out = _app(
        site, [sys.executable, "-m", "simsite.browse", "--seconds", "2", "_ipp._tcp", "_http._tcp"]
    )
    assert out.returncode == 0, out.stderr
    found = {svc["name"]: svc for svc in json.loads(out.stdout)}
    ipp = found["HP Color LaserJet._ipp._tcp.local."]
    assert ipp["addresses"] == ["198.18.0.20"]
    assert ipp["port"] == 631
    assert ipp["txt"]["ty"] == "HP Color LaserJet Pro M454dw"
    hostile = found[f"{HOSTILE_NAME}._http._tcp.local."]
    assert hostile["server"] == "kiosk-<b>.local."
    assert hostile["txt"]["k09"] == "x" * 200
    assert hostile["txt"]["raw"] == b"\xff\xfe\x00<b>".decode("latin-1")


def test_tcp_listeners_accept(site: Site) -> None:
    code = "import socket; socket.create_connection(('198.18.0.20', 9100), timeout=3).close()"
    assert _app(site, [sys.executable, "-c", code]).returncode == 0
    closed = "import socket; socket.create_connection(('198.18.0.20', 22), timeout=3)"
    assert _app(site, [sys.executable, "-c", closed]).returncode != 0


def test_device_down_and_up(site: Site) -> None:
    site.device_down("spare-pc")
    try:
        assert not _pings(site, "198.18.0.50")
    finally:
        site.device_up("spare-pc")
    assert _pings(site, "198.18.0.50")


def test_cut_and_restore_internet(site: Site) -> None:
    msp = site.spec.msp_ip
    assert _pings(site, msp)
    site.cut_internet()
    try:
        assert not _pings(site, msp)
        assert _pings(site, site.spec.gateway_ip)  # the LAN itself still works
    finally:
        site.restore_internet()
    assert _pings(site, msp)


def test_set_snmprec_swaps_recording(site: Site, tmp_path: Path) -> None:
    edited = tmp_path / "printer-edited.snmprec"
    original = PRINTER_REC.read_text()
    old = _recorded(PRINTER_REC, SYS_DESCR)
    edited.write_text(original.replace(old, "Edited printer"))
    site.set_snmprec("printer", edited)
    try:
        assert _snmpget_v2c(site, "198.18.0.20", SYS_DESCR) == "Edited printer"
    finally:
        site.set_snmprec("printer", PRINTER_REC)


def test_add_change_ip_and_remove_device(site: Site) -> None:
    ups = SimDevice("ups", "198.18.0.60", "00:c0:b7:00:00:60", "APC", "ups", snmprec=UPS_REC)
    site.add_device(ups)
    assert _snmpget_v2c(site, "198.18.0.60", SYS_DESCR) == _recorded(UPS_REC, SYS_DESCR)
    site.change_ip("ups", "198.18.0.61")
    assert _snmpget_v2c(site, "198.18.0.61", SYS_DESCR) == _recorded(UPS_REC, SYS_DESCR)
    assert not _pings(site, "198.18.0.60")
    ns = site.ns_of("ups")
    site.remove_device("ups")
    assert not netns.exists(ns)
    assert not _pings(site, "198.18.0.61")
    with pytest.raises(ValueError, match="not in the LAN"):
        site.add_device(dataclasses.replace(ups, ip="198.18.1.5"))


def test_popen_in_is_killed_at_stop() -> None:
    _require_root()
    spec = SiteSpec(
        devices=(SimDevice("pc", "198.18.0.50", "f8:bc:12:00:00:51", "Dell", "workstation"),)
    )
    with Site(spec) as small:
        sleeper = small.popen_in(small.app_ns, ["sleep", "600"])
        # Something started by hand inside a namespace, outside our process tracking.
        stray = subprocess.Popen(
            netns.exec_argv(small.ns_of("pc"), ["sleep", "600"]), start_new_session=True
        )
        prefix, pids = small.prefix, small.pids()
    assert sleeper.returncode is not None
    assert stray.wait(timeout=5) is not None
    _assert_gone(prefix, [*pids, stray.pid])


def test_teardown_after_exception_in_with_block() -> None:
    _require_root()
    spec = SiteSpec(
        devices=(
            SimDevice(
                "printer",
                "198.18.0.20",
                "a0:d3:c1:00:00:20",
                "HP",
                "printer",
                snmprec=PRINTER_REC,
                tcp_ports=(9100,),
            ),
        )
    )
    small = Site(spec)
    with pytest.raises(RuntimeError, match="boom"), small:
        pids = small.pids()
        assert len(pids) == 2  # snmpsim + agent
        raise RuntimeError("boom")
    _assert_gone(small.prefix, pids)


def test_start_failure_names_the_device_and_cleans_up(tmp_path: Path) -> None:
    _require_root()
    broken = tmp_path / "broken.snmprec"
    broken.write_text("")  # nothing to answer with: the agent never passes the probe
    spec = SiteSpec(
        devices=(
            SimDevice("mute", "198.18.0.9", "a0:d3:c1:00:00:09", "HP", "printer", snmprec=broken),
        )
    )
    site = Site(spec, start_timeout_s=3)
    with pytest.raises(SiteError, match="mute"):
        site.start()
    _assert_gone(site.prefix, [])
    site.stop()  # idempotent


def test_stale_namespaces_of_dead_owner_are_swept() -> None:
    _require_root()
    record = owner.reserve_prefix()
    ns = f"{record.prefix}-ghost"
    netns.add(ns)
    record.pid, record.start_time = 0, 0  # an owner that no longer exists
    record.save()
    removed = owner.sweep_stale()
    assert ns in removed
    assert not netns.exists(ns)
    assert not record.path.exists()


# -------------------------------------------------------------------- loopback site


def test_loopback_site_serves_snmp_and_tcp() -> None:
    spec = SiteSpec(
        devices=(
            SimDevice(
                "printer",
                "198.18.0.20",
                "a0:d3:c1:00:00:21",
                "HP",
                "printer",
                snmprec=PRINTER_REC,
                tcp_ports=(9100,),
            ),
        )
    )
    with LoopbackSite(spec) as lo:
        ip, port = lo.ip_of("printer"), lo.snmp_port("printer")
        assert ip.startswith("127.18.") and ip.endswith(".20")
        out = lo.run_in(
            None,
            ["snmpget", "-v2c", "-c", "public", "-Oqv", f"udp:{ip}:{port}", SYS_DESCR],
            capture_output=True,
            text=True,
            timeout=CMD_TIMEOUT_S,
        )
        assert out.stdout.strip().strip('"') == _recorded(PRINTER_REC, SYS_DESCR)
        socket.create_connection((ip, lo.tcp_port("printer", 9100)), timeout=3).close()
        with pytest.raises(NotImplementedError, match="namespaces"):
            lo.device_down("printer")
        with pytest.raises(NotImplementedError):
            lo.cut_internet()
        pids = lo.pids()
    assert pids and not [p for p in pids if procs.is_alive(p)]


# ------------------------------------------------------------ catalogues and model


def test_vendor_ouis_resolve_to_their_vendor() -> None:
    expected = {
        "apc": "AMERICAN POWER",
        "netgate": "ADI ENGINEERING",
        "hp": "HEWLETT",
        "hpe": "HEWLETT",
        "aruba": "ARUBA",
        "supermicro": "SUPER MICRO",
        "konica": "KONICA",
        "epson": "EPSON",
        "tplink": "TP-LINK",
    }
    for key, oui in VENDOR_OUIS.items():
        org = netaddr.EUI(oui + ":00:00:01").oui.registration().org.upper()
        assert expected.get(key, key.upper()) in org, (key, org)


def test_addresses_outside_the_benchmark_range_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        SimDevice("x", "192.168.1.10", "a0:d3:c1:00:00:01", "HP", "printer")
    with pytest.raises(ValueError, match="outside"):
        SiteSpec(devices=(), lan="10.0.0.0/24", gateway_ip="10.0.0.1", appliance_ip="10.0.0.2")
    with pytest.raises(ValueError, match="TXT entry"):
        MdnsService("_http._tcp", "x", 80, {"k": "v" * 300})


def test_demo_site_is_self_contained_and_sorted() -> None:
    spec = demo_site()
    recordings = [d.snmprec for d in spec.devices if d.snmprec] + [spec.gateway_snmprec]
    for rec in recordings:
        assert rec is not None and rec.is_relative_to(REPO / "simsite" / "recordings")
        oids = [
            tuple(map(int, line.split("|")[0].split("."))) for line in rec.read_text().splitlines()
        ]
        assert oids == sorted(oids), rec
    assert any(d.engine == "snmpd" and d.v3_user for d in spec.devices)


def test_corpus_site_covers_every_recording() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    spec = corpus_site(CORPUS)
    stems = {p.stem for p in CORPUS.glob("*.snmprec")}
    assert spec.gateway_snmprec is not None and spec.gateway_snmprec.stem == "pfsense"
    names = {d.name for d in spec.devices}
    assert names == {device_name(s) for s in stems - {"pfsense"}} | {FILESERVER}
    roles = {d.name: d.role for d in spec.devices}
    assert roles["dsm"] == "nas" and roles["brother"] == "printer" and roles["cyberpower"] == "ups"
    assert spec.device(FILESERVER).v3_user == CORPUS_V3_USER
    for dev in spec.devices:
        if dev.vendor != "Unknown":
            assert netaddr.EUI(dev.mac).oui.registration().org, dev.name


def test_corpus_site_starts() -> None:
    """The whole corpus (~22 agents) comes up; ~10 s on two cores."""
    _require_root()
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    started = time.monotonic()
    with Site(corpus_site(CORPUS)) as big:
        assert time.monotonic() - started < 60
        dsm = big.device("dsm")
        assert _snmpget_v2c(big, dsm.ip, SYS_DESCR) == _recorded(CORPUS / "dsm.snmprec", SYS_DESCR)
