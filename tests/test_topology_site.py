"""Where each device plugs in, on a simulated site with the real appliance (root).

The site's managed switch is a generated recording (simsite.recordings.generate.
switch_recording) whose forwarding table lists the site's real MACs on chosen ports, with the
gateway announcing itself by LLDP on the uplink. The appliance discovers the LAN, reads the
switch's tables every 2 s and polls every 3 s. Shown here:

- every device is placed on its port: the gateway on g1 by LLDP, the PC on g5, the printer on
  g6 ("desk 12" in the configuration), the NAS on g7, a phone and a PC sharing g8;
- unplugging the printer's cable (its link cut, the switch's port down) raises a port alert
  naming the printer, and its down alert names the port and says the port lost link;
- the PC's port dropping to 100 Mbit/s is a warning naming the PC, resolved when back;
- the NAS moved to g9 is reported as moved (``device.moved``); a MAC nobody knows on g5
  where the PC was is "a device moved or swapped".
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simsite.model import SimDevice, SiteSpec
from simsite.ouis import mac_for
from simsite.recordings.generate import LldpNeighbour, SwitchPort, switch_recording
from simsite.site import Site
from tests.browser_support import browser, screenshot, watch
from tests.conftest import needs_root
from tests.web_support import unix_proxy

INTERVAL_S = 3.0
TOPOLOGY_S = 2.0
LAN = "198.18.0"
GATEWAY_IP, GATEWAY_MAC = f"{LAN}.1", "00:08:a2:0c:12:01"  # SiteSpec's default gateway MAC
APPLIANCE_MAC = "02:00:c6:12:00:02"
SWITCH = ("sw-floor1", f"{LAN}.3", mac_for("netgear", "topo-switch"))
HOSTS = {  # name -> (ip, mac, switch port, vlan)
    "reception-pc": (f"{LAN}.50", mac_for("dell", "topo-pc"), 5, 10),
    "printer": (f"{LAN}.30", mac_for("hp", "topo-printer"), 6, 10),
    "nas": (f"{LAN}.20", mac_for("synology", "topo-nas"), 7, 10),
    "phone": (f"{LAN}.60", mac_for("cisco", "topo-phone"), 8, 20),
    "desk-pc": (f"{LAN}.61", mac_for("dell", "topo-desk"), 8, 10),
}
UNKNOWN_MAC = "02:00:00:ab:cd:ef"

CONFIG = f"""
[discovery]
enabled = true
subnets = ["{LAN}.0/24"]
sweep_interval_s = 4
[polling]
interval_s = {INTERVAL_S}
icmp_count = 2
icmp_spacing_ms = 100
icmp_timeout_s = 0.5
arp_timeout_s = 0.5
tcp_timeout_s = 0.5
snmp_timeout_s = 0.5
snmp_retries = 1
kind_tcp_ports = []
[[polling.devices]]
name = "printer"
ip = "{HOSTS["printer"][0]}"
kind = "printer"
[[polling.devices]]
name = "nas"
ip = "{HOSTS["nas"][0]}"
kind = "nas"
[alerting]
gateway_ip = "{GATEWAY_IP}"
[topology]
interval_s = {TOPOLOGY_S}
[[topology.ports]]
switch = "sw-floor1"
port = "g6"
label = "desk 12"
"""


def recording(path: Path, moves: dict[str, int] | None = None, down: tuple[int, ...] = (),
              extra: dict[int, tuple[str, ...]] | None = None,
              slow: tuple[int, ...] = ()) -> Path:  # fmt: skip
    """The switch's recording with each host on its port (``moves``: host -> other port),
    ports in ``down`` without link (and without the MACs learned there), ``extra`` MACs,
    ports in ``slow`` at 100 Mbit/s."""
    where: dict[int, list[str]] = {p: [] for p in range(1, 11)}
    vlans = dict.fromkeys(range(1, 11), 10)
    where[1] = [GATEWAY_MAC]
    where[2] = [APPLIANCE_MAC]
    for name, (_, mac, home, vlan) in HOSTS.items():
        port = (moves or {}).get(name, home)
        where[port].append(mac)
        if name != "phone":  # the phone's voice VLAN is tagged; the PC behind it untagged
            vlans[port] = vlan
    for port, macs in (extra or {}).items():
        where[port] += macs
    ports = [
        SwitchPort(
            p,
            () if p in down else tuple(where[p]),
            vlans[p],
            up=p not in down and None,
            speed=100_000_000 if p in slow else 1_000_000_000,
            tagged={HOSTS["phone"][1]: HOSTS["phone"][3]},
        )
        for p in range(1, 11)
    ]
    gateway = LldpNeighbour(1, "gateway", GATEWAY_MAC, "igb1", "pfSense 2.7.2", 0x08, GATEWAY_IP)
    path.write_text(switch_recording(SWITCH[0], SWITCH[2], SWITCH[1], ports, [gateway]))
    return path


def _spec(first: Path) -> SiteSpec:
    devices = [SimDevice(SWITCH[0], SWITCH[1], SWITCH[2], "NETGEAR", "switch", snmprec=first)]
    for name, (ip, mac, _, _) in HOSTS.items():
        devices.append(SimDevice(name, ip, mac, name, "host"))
    return SiteSpec(devices=tuple(devices), gateway_mac=GATEWAY_MAC, appliance_mac=APPLIANCE_MAC)


class Appliance:
    def __init__(self, site: Site, db: Path, tmp: Path) -> None:
        self.site, self.db, self.tmp = site, db, tmp

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not self.db.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def device_id(self, ip: str) -> int:
        rows = self.query("SELECT id FROM devices WHERE ip = ? ORDER BY id", (ip,))
        assert rows, f"{ip} not in the inventory"
        return int(rows[0][0])

    def placements(self) -> dict[str, tuple[str, str, int | None, int]]:
        """device name (HOSTS, "gateway") -> (port, via, vlan, shared), by the device's MAC."""
        names = {mac: name for name, (_, mac, _, _) in HOSTS.items()}
        names[GATEWAY_MAC] = "gateway"
        rows = self.query(
            "SELECT d.mac, p.port_name, p.via, p.vlan, p.shared FROM topology_placements p"
            " JOIN devices d ON d.id = p.device_id"
        )
        return {names.get(r[0], r[0]): (r[1], r[2], r[3], r[4]) for r in rows}

    def open_alerts(self) -> dict[str, tuple[str, str]]:
        rows = self.query("SELECT key, severity, message FROM alerts WHERE state = 'open'")
        return {k: (s, m) for k, s, m in rows}

    def wait(self, what: str, check: Callable[[], bool], timeout_s: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if check():
                return time.monotonic() - started
            time.sleep(0.2)
        raise AssertionError(
            f"{what}: not within {timeout_s:g} s; placed {self.placements()}; "
            f"open {self.open_alerts()}"
        )


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    tmp = tmp_path_factory.mktemp("topology")
    db = tmp / "outpost.db"
    config = tmp / "outpost.toml"
    config.write_text(
        CONFIG + f'[store]\npath = "{db}"\n[web]\nunix_socket = "{tmp / "web.sock"}"\n'
        f'[provisioning]\nidentity_dir = "{tmp / "identity"}"\n'
    )
    with Site(_spec(recording(tmp / "switch.snmprec"))) as site:
        log = open(tmp / "outpost.log", "wb")  # noqa: SIM115 - closed in finally
        proc = site.popen_in(
            site.app_ns,
            [sys.executable, "-m", "firmware", "run", "--config", str(config)],
            stdout=log,
            stderr=log,
        )
        try:
            yield Appliance(site, db, tmp)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            print((tmp / "outpost.log").read_text()[-3000:])


EXPECTED = {
    "gateway": ("g1", "lldp", 10, 0),
    "reception-pc": ("g5", "fdb", 10, 0),
    "printer": ("g6", "fdb", 10, 0),
    "nas": ("g7", "fdb", 10, 0),
    "phone": ("g8", "fdb", 20, 1),
    "desk-pc": ("g8", "fdb", 10, 1),
}


@needs_root
def test_every_device_is_placed_on_its_port(appliance: Appliance) -> None:
    took = appliance.wait(
        "every device placed", lambda: EXPECTED.items() <= appliance.placements().items(),
        60,
    )  # fmt: skip
    print(f"every device placed {took:.1f} s after the appliance started")
    ports = appliance.query(
        "SELECT name, label, uplink, uplink_why, duplex, pvid FROM topology_ports"
        " WHERE name IN ('g1', 'g6')"
    )
    assert ("g6", "desk 12", 0, "", "full", 10) in ports
    assert any(r[0] == "g1" and r[2] == 1 and "LLDP neighbour gateway" in r[3] for r in ports)
    neighbours = appliance.query(
        "SELECT local_port, remote_name, remote_ip FROM topology_neighbours"
    )
    assert neighbours == [("g1", "gateway", GATEWAY_IP)]


@needs_root
async def test_the_appliances_pages_show_the_switch_ports_and_the_map(
    appliance: Appliance,
) -> None:
    appliance.wait(
        "every device placed", lambda: EXPECTED.items() <= appliance.placements().items(), 60
    )
    switch, printer = appliance.device_id(SWITCH[1]), appliance.device_id(HOSTS["printer"][0])
    async with unix_proxy(str(appliance.tmp / "web.sock")) as base, browser() as b:
        page = await b.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        seen = watch(page)
        await page.goto(f"{base}/devices/{printer}")
        text = await page.inner_text("#connected-to")
        assert text.startswith("sw-floor1 port g6 “desk 12” (1 Gb/s, full duplex, VLAN 10)")
        await page.goto(f"{base}/devices/{switch}")
        rows = page.locator("table.ports tbody tr")
        assert await rows.count() == 11  # g1-g10 and the VLAN interface
        g6, g8 = await rows.nth(5).inner_text(), await rows.nth(7).inner_text()
        assert "desk 12" in g6 and "printer" in g6
        assert "several devices" in g8
        assert "uplink: LLDP neighbour gateway" in await rows.nth(0).inner_text()
        await screenshot(page, "topology-site-switch")
        await page.goto(f"{base}/map")
        links = await page.eval_on_selector_all(
            "svg.sitemap a", "as => as.map(a => a.getAttribute('href'))"
        )
        assert f"/devices/{printer}" in links and f"/devices/{switch}" in links
        await screenshot(page, "topology-site-map-simulated")
        assert seen.errors == []


@needs_root
def test_unplugging_the_printer_names_its_port(appliance: Appliance) -> None:
    appliance.wait("printer placed", lambda: "printer" in appliance.placements(), 60)
    printer = appliance.device_id(HOSTS["printer"][0])
    switch = appliance.device_id(SWITCH[1])
    unplugged = recording(appliance.tmp / "unplugged.snmprec", down=(6,))
    started = time.monotonic()
    appliance.site.device_down("printer")
    appliance.site.set_snmprec(SWITCH[0], unplugged)  # the switch sees it: port down
    try:
        port_key, down_key = f"port.down:{switch}:g6", f"device.down:{printer}"
        appliance.wait(
            "port and device alerts",
            lambda: {port_key, down_key} <= set(appliance.open_alerts()),
            6 * INTERVAL_S,
        )
        print(f"both alerts {time.monotonic() - started:.1f} s after the cable was pulled")
        alerts = appliance.open_alerts()
        print(alerts[port_key], alerts[down_key], sep="\n")
        assert alerts[port_key] == (
            "minor",
            f"sw-floor1 port g6 (desk 12) has no link: printer ({HOSTS['printer'][0]}) was "
            "behind it",
        )
        severity, message = alerts[down_key]
        assert severity == "major"
        assert message.endswith(
            "it was on sw-floor1 port g6 (desk 12), which lost link (cable unplugged or the "
            "device is off)"
        )
    finally:
        appliance.site.device_up("printer")
        appliance.site.set_snmprec(SWITCH[0], recording(appliance.tmp / "back.snmprec"))
    appliance.wait(
        "alerts resolved",
        lambda: not {port_key, down_key} & set(appliance.open_alerts()),
        6 * INTERVAL_S,
    )


@needs_root
def test_a_port_that_drops_to_100_mbit_is_a_warning(appliance: Appliance) -> None:
    appliance.wait("pc placed", lambda: "reception-pc" in appliance.placements(), 60)
    key = f"port.speed:{appliance.device_id(SWITCH[1])}:g5"
    appliance.site.set_snmprec(SWITCH[0], recording(appliance.tmp / "slow.snmprec", slow=(5,)))
    try:
        took = appliance.wait(
            "speed warning", lambda: key in appliance.open_alerts(), 4 * TOPOLOGY_S + 5
        )
        severity, message = appliance.open_alerts()[key]
        print(f"{message} ({took:.1f} s after the switch said so)")
        assert severity == "warning"
        assert message.startswith("sw-floor1 port g5 runs at 100 Mbit/s, was 1 Gbit/s: ")
        assert HOSTS["reception-pc"][0] in message and message.endswith(
            "behind it (a damaged cable or connector?)"
        )
    finally:
        appliance.site.set_snmprec(SWITCH[0], recording(appliance.tmp / "fast.snmprec"))
    appliance.wait("speed back", lambda: key not in appliance.open_alerts(), 4 * TOPOLOGY_S + 5)


@needs_root
def test_a_device_moved_to_another_port_is_reported_as_moved(appliance: Appliance) -> None:
    appliance.wait("nas placed on g7", lambda: appliance.placements().get("nas", ("",))[0] == "g7",
                   60)  # fmt: skip
    nas = appliance.device_id(HOSTS["nas"][0])
    pc = appliance.device_id(HOSTS["reception-pc"][0])
    moved = recording(
        appliance.tmp / "moved.snmprec",
        moves={"nas": 9, "reception-pc": 4},
        extra={5: (UNKNOWN_MAC,)},
    )
    appliance.site.set_snmprec(SWITCH[0], moved)
    try:
        appliance.wait(
            "nas on g9", lambda: appliance.placements().get("nas", ("",))[0] == "g9",
            4 * TOPOLOGY_S + 5,
        )  # fmt: skip
        events = appliance.query(
            "SELECT kind, device_id, message FROM events WHERE kind IN"
            " ('device.moved', 'port.swapped') ORDER BY id"
        )
        for e in events:
            print(e)
        messages = {(k, d): m for k, d, m in events}
        assert messages[("device.moved", nas)] == (
            f"nas ({HOSTS['nas'][0]}) moved from sw-floor1 port g7 to sw-floor1 port g9"
        )
        assert ("device.moved", pc) in messages
        # The unknown MAC on g5, where the reception PC lived.
        swapped = messages[("port.swapped", pc)]
        assert swapped.startswith(f"sw-floor1 port g5: an unknown device ({UNKNOWN_MAC})")
        assert swapped.endswith("was (a device moved or swapped)")
    finally:
        appliance.site.set_snmprec(SWITCH[0], recording(appliance.tmp / "back2.snmprec"))
