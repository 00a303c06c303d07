"""Discovery against the simulated site built from ../shared/snmp-corpus (needs root).

One corpus site per module (plus one hostile device), with the discovery service running in
the appliance's namespace (``python -m services.discovery run``: the store and discovery
alone). Tests read its SQLite store from outside; the namespace only separates the network.
The first tests check what the first sweeps found; the last ones change the site (a host
joins, changes IP, leaves, comes back, takes another host's address) and wait for the events.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from services.discovery.sanitize import MAX_NAME_CHARS, clean_name
from tests.conftest import IS_ROOT, REPO
from tests.discovery_corpus import CORPUS, oracle, score, table

if not IS_ROOT:
    pytest.skip("needs root for network namespaces (simulated site)", allow_module_level=True)

from simsite.corpus import corpus_site, device_name
from simsite.model import MdnsService, SimDevice
from simsite.ouis import mac_for
from simsite.site import Site

T = TypeVar("T")
SWEEP_INTERVAL_S = 3.0
LEAVE_AFTER_S = 8.0
#: A DNS label holds 63 bytes: the longest hostile instance name that can be on the wire.
HOSTILE_NAME = "<script>alert(1)</script>\x1b[2J\x00evil"


def _hostile_snmprec(path: Path) -> Path:
    """A recording whose strings are markup, control characters, invalid UTF-8, 60 KiB."""
    lines = [
        "1.3.6.1.2.1.1.1.0|4x|"
        + (b"<b>Evil</b>\x00\x1b[31m\xff\xfe\r\nInjected=1 " + b"\xc3\x28" * 10).hex(),
        "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.99999.1",
        "1.3.6.1.2.1.1.3.0|67|12345",
        # 60 KiB: the largest string a single UDP answer can still carry with its headers.
        "1.3.6.1.2.1.1.4.0|4|" + "A" * 60000,
        "1.3.6.1.2.1.1.5.0|4x|" + (b"name\nwith\x07bell\xe2\x80\xae").hex(),
        "1.3.6.1.2.1.1.6.0|4|<img src=x onerror=alert(1)>",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Running:
    site: Site
    db: Path
    log: Path
    proc: subprocess.Popen[bytes]
    started: float
    hostile: SimDevice

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        except sqlite3.OperationalError:
            return []  # the store is not created yet
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return []  # its tables are not created yet
        finally:
            conn.close()

    def devices(self) -> dict[str, sqlite3.Row]:
        return {r["mac"]: r for r in self.query("SELECT * FROM devices")}

    def events(self, kind: str) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM events WHERE kind = ? ORDER BY id", (kind,))
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    def wait(self, what: str, probe: Callable[[], T | None], timeout_s: float = 60.0) -> T:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"discovery exited: {self.log.read_text()[-3000:]}"
            result = probe()
            if result:
                return result
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; log: {self.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("discovery")
    hostile = SimDevice(
        name="hostile",
        ip="198.18.0.200",
        mac=mac_for("unknown", "hostile"),
        vendor="Unknown",
        role="iot",
        snmprec=_hostile_snmprec(tmp / "hostile.snmprec"),
        mdns=(
            MdnsService("_http._tcp", HOSTILE_NAME + "x" * 20, 80,
                        {"model": b"\xff\xfe<b>" + b"x" * 200, "\x1b": "bell\x07"}),
        ),
    )  # fmt: skip
    spec = corpus_site(CORPUS)
    spec = dataclasses.replace(spec, devices=(*spec.devices, hostile))
    db, log, config = tmp / "outpost.db", tmp / "discovery.log", tmp / "outpost.toml"
    config.write_text(
        f'[store]\npath = "{db}"\n\n[discovery]\nsubnets = ["198.18.0.0/24"]\n'
        f"sweep_interval_s = {SWEEP_INTERVAL_S}\nleave_after_s = {LEAVE_AFTER_S}\n"
    )
    with Site(spec) as site:
        started = time.monotonic()
        with log.open("wb") as out:
            proc = site.popen_in(
                site.app_ns,
                [sys.executable, "-m", "services.discovery", "run", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        try:
            yield Running(site, db, log, proc, started, hostile)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _expected_hosts(site: Site) -> dict[str, str]:
    hosts = {dev.mac: dev.ip for dev in site.devices}
    hosts[site.spec.gateway_mac] = site.spec.gateway_ip
    return hosts


def test_every_live_host_found_and_no_phantoms(running: Running) -> None:
    expected = _expected_hosts(running.site)

    def found() -> dict[str, str] | None:
        have = {mac: row["ip"] for mac, row in running.devices().items()}
        return have if set(have) >= set(expected) else None

    have = running.wait("every host in the inventory", found)
    print(f"\n{len(have)} hosts in {time.monotonic() - running.started:.1f} s")
    assert have == expected, "exactly the live hosts, at their addresses: no phantom"
    kinds = {mac: row["kind"] for mac, row in running.devices().items()}
    assert kinds[running.site.spec.gateway_mac] == "router"


def test_every_announced_mdns_service_found(running: Running) -> None:
    expected = {
        (dev.mac, svc.full_type, clean_name(svc.name))
        for dev in running.site.devices
        for svc in dev.mdns
    }
    assert len(expected) >= 10, "the corpus site announces printers, NAS, camera, server"

    def known() -> set[tuple[str, str, str]]:
        return {
            (mac, svc["type"], svc["name"])
            for mac, row in running.devices().items()
            for svc in json.loads(row["attrs"]).get("mdns", [])
        }

    try:
        have = running.wait("every mDNS service", lambda: known() if known() >= expected else None)
    except AssertionError:
        print("missing:", sorted(expected - known()), "\nextra:", sorted(known() - expected))
        raise
    print(f"\n{len(expected)} mDNS services known {time.monotonic() - running.started:.1f} s "
          "after discovery started")  # fmt: skip
    assert have == expected


def test_snmp_identity_read_for_every_snmp_device(running: Running) -> None:
    site = running.site
    snmp_macs = {dev.mac for dev in site.devices if dev.engine is not None}
    snmp_macs.add(site.spec.gateway_mac)

    def identified() -> dict[str, sqlite3.Row] | None:
        rows = running.query(
            "SELECT d.mac, s.credential, s.sys_descr, s.sys_object_id FROM device_snmp s"
            " JOIN devices d ON d.id = s.device_id"
        )
        have = {r["mac"]: r for r in rows}
        return have if set(have) >= snmp_macs else None

    have = running.wait("an SNMP identity for every agent", identified)
    assert set(have) == snmp_macs, "no identity for a host without an agent"
    for mac, row in have.items():
        assert row["credential"] == "public-v2c"
        assert row["sys_object_id"].startswith("1.3.6.1."), mac


def test_credentials_tried_in_order_v1_v2c_v3(running: Running, tmp_path: Path) -> None:
    """A wrong community first, then SNMPv3 (authPriv), then v1: each agent answers the first
    credential it accepts, and the one that did is reported by name."""
    from simsite.corpus import CORPUS_V3_USER, FILESERVER

    site = running.site
    user = CORPUS_V3_USER
    creds = tmp_path / "credentials.toml"
    creds.write_text(
        '[[credentials]]\nname = "wrong"\ncommunity = "not-this-one"\n\n'
        f'[[credentials]]\nname = "office-v3"\nversion = "3"\nuser = "{user.user}"\n'
        f'auth_protocol = "SHA"\nauth_key = "{user.auth_key}"\n'
        f'priv_protocol = "AES"\npriv_key = "{user.priv_key}"\n\n'
        '[[credentials]]\nname = "public-v1"\nversion = "1"\ncommunity = "public"\n'
    )
    fileserver = site.spec.device(FILESERVER).ip
    nas = next(d for d in site.devices if d.name == "dsm").ip
    silent = "198.18.0.199"  # nobody there: no credential answers
    proc = site.run_in(
        site.app_ns,
        [sys.executable, "-m", "services.discovery", "snmp", fileserver, nas, silent,
         "--credentials", str(creds), "--timeout", "0.5"],
        capture_output=True, text=True, cwd=REPO, check=True,
    )  # fmt: skip
    result = json.loads(proc.stdout)
    assert result[fileserver]["credential"] == "office-v3"
    assert result[fileserver]["platform"] == "linux" and result[fileserver]["sysDescr"]
    assert result[nas]["credential"] == "public-v1"
    assert result[nas]["platform"] == "dsm" and result[nas]["model"] == "RS2212RP+"
    assert result[silent] is None
    assert "not-this-one" not in proc.stdout + proc.stderr and user.priv_key not in proc.stderr


def test_identity_agrees_with_the_librenms_oracle(running: Running) -> None:
    site = running.site
    stems = {p.stem: p for p in CORPUS.glob("*.snmprec")}
    mac_of = {device_name(stem): None for stem in stems}
    macs = {dev.name: dev.mac for dev in site.devices}
    running.wait(
        "SNMP identities",
        lambda: len(running.query("SELECT * FROM device_snmp")) >= len(stems),
    )
    devices = running.devices()
    results: dict[str, dict[str, str]] = {}
    for stem in sorted(stems):
        if not (CORPUS / f"{stem}.expected.json").exists():
            continue
        mac = site.spec.gateway_mac if stem == "pfsense" else macs[device_name(stem)]
        row = devices[mac]
        snmp = json.loads(row["attrs"]).get("snmp", {})
        results[stem] = {
            "type": row["kind"],
            "hardware": snmp.get("model", ""),
            "serial": snmp.get("serial", ""),
            "version": snmp.get("version", ""),
        }
        assert str(oracle(stem)["sysObjectID"]).lstrip(".") == snmp.get("sysObjectID"), stem
    assert len(results) == len(mac_of) == 22
    scores = score(results)
    print("\n" + table(scores))
    for name, s in scores.items():
        for miss in s.misses:
            print(f"  {name} miss: {miss}")
    assert scores["type"].ratio >= 0.9
    for field in ("hardware", "serial", "version"):
        assert scores[field].ratio >= 0.8, field


def _all_text(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _all_text(v)
    elif isinstance(value, list):
        for v in value:
            yield from _all_text(v)


def test_hostile_strings_stored_safely(running: Running) -> None:
    mac = running.hostile.mac

    def identified() -> dict[str, Any] | None:
        row = running.devices().get(mac)
        if row is None:
            return None
        attrs: dict[str, Any] = json.loads(row["attrs"])
        return attrs if attrs.get("snmp") and attrs.get("mdns") else None

    attrs = running.wait("the hostile device's identity", identified)
    for text in _all_text(attrs):
        assert len(text) <= 512
        text.encode("utf-8")
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text), repr(text[:60])
        assert "\u202e" not in text
    snmp = attrs["snmp"]
    assert snmp["sysDescr"].startswith("<b>Evil</b>")  # markup is kept as text, escaped later
    # Bytes that are not UTF-8 are read as Windows-1252 (legacy code pages), not dropped.
    assert "ÿþ" in snmp["sysDescr"] and "\ufffd" not in snmp["sysDescr"]
    assert len(snmp["contact"]) <= MAX_NAME_CHARS and snmp["contact"].endswith("…")
    [svc] = attrs["mdns"]
    assert svc["name"].startswith("<script>alert(1)</script>[2J")
    name = running.devices()[mac]["name"]
    assert len(name) <= MAX_NAME_CHARS and "\n" not in name


def test_without_cap_net_raw_discovery_says_so_and_keeps_working(
    running: Running, tmp_path: Path
) -> None:
    """A second discovery, its CAP_NET_RAW dropped: a clear error, then the kernel sweeps."""
    site = running.site
    db, log, config = tmp_path / "noraw.db", tmp_path / "noraw.log", tmp_path / "noraw.toml"
    config.write_text(
        f'[store]\npath = "{db}"\n\n[discovery]\nsubnets = ["198.18.0.0/24"]\n'
        "sweep_interval_s = 30\nmdns = false\n"
    )
    drop = ["setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw", "--"]
    with log.open("wb") as out:
        proc = site.popen_in(
            site.app_ns,
            [*drop, sys.executable, "-m", "services.discovery", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    other = Running(site, db, log, proc, time.monotonic(), running.hostile)
    try:
        expected = _expected_hosts(site)

        def found() -> dict[str, str] | None:
            have = {mac: row["ip"] for mac, row in other.devices().items()}
            return have if set(have) >= set(expected) else None

        have = other.wait("the kernel-assisted sweep", found)
        assert have == expected
        other.wait("SNMP identities", lambda: len(other.query("SELECT * FROM device_snmp")) > 20)
        text = log.read_text()
        assert text.count("discovery.arp_not_permitted") == 1 and "CAP_NET_RAW" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_whole_appliance_polls_what_discovery_found(running: Running, tmp_path: Path) -> None:
    """`outpost run` with discovery and polling: the poller reads discovery's device_snmp."""
    site = running.site
    db, log, config = tmp_path / "app.db", tmp_path / "app.log", tmp_path / "app.toml"
    config.write_text(
        f'[store]\npath = "{db}"\n[web]\nenabled = false\n'
        '[discovery]\nsubnets = ["198.18.0.0/24"]\nsweep_interval_s = 30\n'
        "[polling]\ninterval_s = 5\n"
    )
    with log.open("wb") as out:
        proc = site.popen_in(
            site.app_ns,
            [sys.executable, "-m", "firmware", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    app = Running(site, db, log, proc, time.monotonic(), running.hostile)
    try:
        synology = next(d for d in site.devices if d.name == "dsm")
        device_id = app.wait(
            "the NAS in the inventory with its credential",
            lambda: next(
                (r["device_id"] for r in app.query(
                    "SELECT s.device_id FROM device_snmp s JOIN devices d ON d.id = s.device_id"
                    " WHERE d.mac = ?", (synology.mac,))),
                None,
            ),
        )  # fmt: skip
        polled = app.wait(
            "SNMP measurements of the discovered NAS",
            lambda: app.query(
                "SELECT DISTINCT metric FROM series WHERE device_id = ?", (device_id,)
            ),
        )
        print("\npolled metrics of the discovered NAS:", sorted(r["metric"] for r in polled))
        assert any(not r["metric"].startswith(("icmp.", "tcp.")) for r in polled), (
            "SNMP metrics, not only ping: the poller used discovery's credential"
        )
        kinds = {r["kind"] for r in app.query("SELECT kind FROM devices")}
        assert {"nas", "printer", "ups", "switch", "router", "server"} <= kinds
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def test_passive_arp_learns_a_host_between_sweeps(running: Running, tmp_path: Path) -> None:
    """One sweep at start, none after: a new host that talks is learnt from its own ARP."""
    site = running.site
    db, log, config = tmp_path / "passive.db", tmp_path / "passive.log", tmp_path / "p.toml"
    config.write_text(
        # auto_subnets: the appliance namespace's own eth0 subnet, nothing configured.
        f'[store]\npath = "{db}"\n\n[discovery]\nauto_subnets = true\n'
        "sweep_interval_s = 3600\nmdns = false\nsnmp = false\n"
    )
    with log.open("wb") as out:
        proc = site.popen_in(
            site.app_ns,
            [sys.executable, "-m", "services.discovery", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    passive = Running(site, db, log, proc, time.monotonic(), running.hostile)
    try:
        passive.wait("the first sweep", lambda: "discovery.swept" in log.read_text())
        assert "subnets=198.18.0.0/24" in log.read_text()
        chatty = SimDevice(
            name="chatty", ip="198.18.0.97", mac=mac_for("apple", "chatty"),
            vendor="Apple", role="workstation",
        )  # fmt: skip
        site.add_device(chatty)
        assert chatty.mac not in passive.devices()
        # It talks to the gateway: its broadcast "who has 198.18.0.1" is all we hear.
        site.run_in(
            site.ns_of("chatty"), ["ping", "-c", "1", "-W", "1", "198.18.0.1"], capture_output=True
        )
        row = passive.wait("the passive sighting", lambda: passive.devices().get(chatty.mac), 15)
        assert row["ip"] == chatty.ip and row["source"] == "arp"
        assert log.read_text().count("discovery.swept") == 1, "learnt without a sweep"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


#: The flush interval of the rediscover test: when a pending "Rediscover now" is taken.
REDISCOVER_FLUSH_S = 0.5


def _sweeps(log: Path) -> int:
    """Sweeps the service logged (``discovery.swept``, or ``discovery.swept_by_kernel``)."""
    return log.read_text(errors="replace").count("discovery.swept")


def test_rediscover_request_from_the_page_sweeps_now(running: Running, tmp_path: Path) -> None:
    """The status page's "Rediscover now" (core.messages.RediscoverRequested on the bus) starts
    a sweep at the next flush instead of waiting out the hour-long interval. The real service
    (its own cycle, flush and planning) in the appliance's namespace: a host that joined
    without a sound is found by the requested sweep, and one request makes one sweep."""
    site = running.site
    db, log, config = tmp_path / "r.db", tmp_path / "rediscover.log", tmp_path / "r.toml"
    config.write_text(
        f'[store]\npath = "{db}"\n\n[discovery]\nsubnets = ["198.18.0.0/24"]\n'
        "sweep_interval_s = 3600\nmdns = false\nsnmp = false\npassive_arp = false\n"
    )
    argv = [sys.executable, "-m", "simsite.harness.discovery_driver", str(config),
            "--flush-s", str(REDISCOVER_FLUSH_S)]  # fmt: skip
    with log.open("wb") as out:
        proc = site.popen_in(
            site.app_ns, argv, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
            cwd=REPO,
        )  # fmt: skip
    driven = Running(site, db, log, proc, time.monotonic(), running.hostile)
    quiet = SimDevice(
        name="quiet", ip="198.18.0.98", mac=mac_for("brother", "quiet"),
        vendor="Brother", role="printer",
    )  # fmt: skip
    try:
        driven.wait("the first sweep", lambda: _sweeps(log) == 1, 30)
        # It stays on the LAN afterwards (as "chatty" does): the module's long-running
        # discovery sees it join, and a leave would be an event the later tests do not expect.
        site.add_device(quiet)
        time.sleep(6 * REDISCOVER_FLUSH_S)
        assert _sweeps(log) == 1, "no request, no sweep: the interval is an hour"
        assert quiet.mac not in driven.devices(), "passive ARP is off: only a sweep finds it"
        assert proc.stdin is not None
        proc.stdin.write(b"rediscover\n")
        proc.stdin.flush()
        row = driven.wait("the requested sweep", lambda: driven.devices().get(quiet.mac), 15)
        assert row["ip"] == quiet.ip and row["source"] == "arp"
        assert "discovery.rediscover_requested" in log.read_text(errors="replace")
        # Long enough for a second (wrong) sweep to start and finish.
        time.sleep(10 * REDISCOVER_FLUSH_S)
        assert _sweeps(log) == 2, "one request, one sweep"
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # end of requests: the driver stops its services and exits
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_join_change_ip_leave_return(running: Running) -> None:
    site = running.site
    newcomer = SimDevice(
        name="newcomer", ip="198.18.0.90", mac=mac_for("brother", "newcomer"),
        vendor="Brother", role="printer",
    )  # fmt: skip
    site.add_device(newcomer)

    def event(kind: str, **data: Any) -> Callable[[], dict[str, Any] | None]:
        def probe() -> dict[str, Any] | None:
            for e in running.events(kind):
                if all(e["data"].get(k) == v for k, v in data.items()):
                    return e
            return None

        return probe

    joined = running.wait("device.joined", event("device.joined", mac=newcomer.mac))
    device_id = running.devices()[newcomer.mac]["id"]
    assert joined["device_id"] == device_id and joined["data"]["ip"] == "198.18.0.90"

    site.change_ip("newcomer", "198.18.0.91")
    changed = running.wait(
        "device.ip_changed",
        event("device.ip_changed", mac=newcomer.mac, old_ip="198.18.0.90", new_ip="198.18.0.91"),
    )
    assert changed["device_id"] == device_id
    assert running.devices()[newcomer.mac]["ip"] == "198.18.0.91"

    down_at = time.monotonic()
    site.device_down("newcomer")
    left = running.wait("device.left", event("device.left", mac=newcomer.mac), 40)
    assert left["device_id"] == device_id
    assert time.monotonic() - down_at >= LEAVE_AFTER_S - SWEEP_INTERVAL_S
    others_left = [e for e in running.events("device.left") if e["data"]["mac"] != newcomer.mac]
    assert others_left == [], "only the host that went away left"

    site.device_up("newcomer")
    back = running.wait("device.returned", event("device.returned", mac=newcomer.mac))
    assert back["device_id"] == device_id
    # The hosts of the first sweep are the baseline (one event for all), the rest joined.
    (baseline,) = running.events("discovery.baseline")
    joined_macs = [e["data"]["mac"] for e in running.events("device.joined")]
    assert newcomer.mac in joined_macs and newcomer.mac not in baseline["data"]["macs"]
    assert len(joined_macs) + baseline["data"]["count"] == len(_expected_hosts(site)), (
        "a host that changed IP or came back is the same device, not a new one"
    )


def test_ip_conflict_names_both_devices(running: Running) -> None:
    site = running.site
    victim = next(d for d in site.devices if d.name == "brother")
    intruder = SimDevice(
        name="intruder", ip="198.18.0.95", mac=mac_for("ricoh", "intruder"),
        vendor="Ricoh", role="printer",
    )  # fmt: skip
    site.add_device(intruder)
    running.wait("the intruder", lambda: intruder.mac in running.devices())
    # The intruder is configured with the Brother's static address as well.
    site.run_in(
        site.ns_of("intruder"),
        ["ip", "addr", "add", f"{victim.ip}/24", "dev", "eth0"],
        check=True,
    )
    conflict = running.wait(
        "device.ip_conflict",
        lambda: next(
            (e for e in running.events("device.ip_conflict") if e["data"]["ip"] == victim.ip),
            None,
        ),
    )
    assert conflict["data"]["macs"] == sorted({victim.mac, intruder.mac})
    assert conflict["device_id"] == running.devices()[intruder.mac]["id"], "the newcomer"
    assert conflict["severity"] == "warning"
    time.sleep(2 * SWEEP_INTERVAL_S)
    same = [e for e in running.events("device.ip_conflict") if e["data"]["ip"] == victim.ip]
    assert len(same) == 1, "one event per conflict, not one per sweep"


def test_an_interface_that_gets_its_address_later_is_swept(
    running: Running, tmp_path: Path
) -> None:
    """At boot the address comes from DHCP after outpost started: discovery re-plans."""
    site = running.site
    db, log, config = tmp_path / "late.db", tmp_path / "late.log", tmp_path / "late.toml"
    config.write_text(
        f'[store]\npath = "{db}"\n\n[discovery]\nsubnets = ["198.18.9.0/24"]\n'
        "sweep_interval_s = 3600\nmdns = false\nsnmp = false\n"
    )
    # A veth pair inside the appliance's namespace: an interface with no address yet.
    site.run_in(
        site.app_ns,
        ["ip", "link", "add", "late0", "type", "veth", "peer", "name", "late1"],
        check=True,
    )
    with log.open("wb") as out:
        proc = site.popen_in(
            site.app_ns,
            [sys.executable, "-m", "services.discovery", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    late = Running(site, db, log, proc, time.monotonic(), running.hostile)
    try:
        late.wait("the skipped subnet", lambda: "no interface" in log.read_text(), 15)
        assert "discovery.swept " not in log.read_text()
        for argv in (["ip", "addr", "add", "198.18.9.2/24", "dev", "late0"],
                     ["ip", "link", "set", "late1", "up"],
                     ["ip", "link", "set", "late0", "up"]):  # fmt: skip
            site.run_in(site.app_ns, argv, check=True)
        late.wait(
            "a sweep of the new subnet",
            lambda: "discovery.swept subnet=198.18.9.0/24" in log.read_text(),
            30,
        )
        assert log.read_text().count("discovery.subnet_skipped") == 1, "said once, not per try"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        site.run_in(site.app_ns, ["ip", "link", "del", "late0"])


_INJECT = r"""
import socket, struct, sys
def arp(op, sha, spa, tha, tpa, hlen=6, plen=4, htype=1, ptype=0x0800):
    return struct.pack("!HHBBH", htype, ptype, hlen, plen, op) + sha + socket.inet_aton(spa) \
        + tha + socket.inet_aton(tpa)
def frame(src, body, ethertype=0x0806):
    return b"\xff" * 6 + src + struct.pack("!H", ethertype) + body
me = bytes.fromhex(sys.argv[1].replace(":", ""))
good = bytes.fromhex(sys.argv[2].replace(":", ""))
multicast = bytes.fromhex("01005e000001")
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
frames = [
    frame(me, arp(2, multicast, "198.18.0.201", b"\0" * 6, "198.18.0.2")),  # multicast sender
    frame(me, arp(1, me, "198.18.0.202", b"\0" * 6, "198.18.0.2", hlen=8)),  # wrong hlen
    frame(me, arp(3, me, "198.18.0.203", b"\0" * 6, "198.18.0.2")),  # RARP op on ARP
    frame(me, arp(1, me, "0.0.0.0", b"\0" * 6, "198.18.0.204")),  # probe: no address yet
    frame(me, arp(1, me, "10.1.1.1", b"\0" * 6, "198.18.0.2")),  # outside the subnet
    frame(me, arp(1, b"\0" * 6, "198.18.0.205", b"\0" * 6, "198.18.0.2")),  # zero MAC
    frame(me, b"\x00\x01\x08")[:20],  # truncated
    frame(me, b"\xff" * 28, ethertype=0x0806),  # garbage body
] + [frame(me, bytes(range(i, i + 46))) for i in range(0, 200, 10)]
# The positive control: a gratuitous ARP of a host nobody swept yet.
frames.append(frame(good, arp(1, good, "198.18.0.98", b"\0" * 6, "198.18.0.98")))
for f in frames:
    s.send(f.ljust(60, b"\0"))
print(len(frames))
"""


def test_malformed_arp_frames_are_ignored_and_a_gratuitous_arp_is_learnt(
    running: Running,
) -> None:
    site = running.site
    good = mac_for("epson", "gratuitous")
    sent = site.run_in(
        site.ns_of("hostile"),
        [sys.executable, "-c", _INJECT, running.hostile.mac, good],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert int(sent.stdout) > 25
    row = running.wait("the gratuitous ARP's host", lambda: running.devices().get(good), 20)
    assert row["ip"] == "198.18.0.98"
    ips = {r["ip"] for r in running.devices().values()}
    assert not ips & {"198.18.0.201", "198.18.0.202", "198.18.0.203", "198.18.0.204",
                      "198.18.0.205", "10.1.1.1", "0.0.0.0"}  # fmt: skip
    macs = set(running.devices())
    assert "01:00:5e:00:00:01" not in macs and "00:00:00:00:00:00" not in macs
    assert running.proc.poll() is None
