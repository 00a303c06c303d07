"""The real appliance on a simulated site: a host taken down raises one major alert within two
poll intervals and resolves when it returns; a disk and a printer supply crossing their
thresholds raise the right severities; the gateway down suppresses its dependents."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simsite.model import SimDevice, SiteSpec, SnmpV3User
from simsite.site import GW_PORT, Site
from tests.conftest import CORPUS, needs_root

INTERVAL_S = 4.0
NAS_IP, PRINTER_IP, SERVER_IP, GATEWAY_IP = (
    "198.18.0.20",
    "198.18.0.30",
    "198.18.0.40",
    "198.18.0.1",
)

FILESERVER_IP = "198.18.0.50"
V3_USER = SnmpV3User("outpost", auth_key="outpost-auth-pass", priv_key="outpost-priv-pass")

CONFIG = f"""
[web]
enabled = false
[discovery]
enabled = false
[polling]
interval_s = {INTERVAL_S}
icmp_count = 2
icmp_spacing_ms = 100
icmp_timeout_s = 0.5
tcp_timeout_s = 0.5
snmp_timeout_s = 0.5
snmp_retries = 1
kind_tcp_ports = []
[[polling.devices]]
name = "gateway"
ip = "{GATEWAY_IP}"
kind = "router"
[[polling.devices]]
name = "nas"
ip = "{NAS_IP}"
kind = "nas"
snmp_credential = "public-v2c"
tcp_ports = [445]
[[polling.devices]]
name = "printer"
ip = "{PRINTER_IP}"
kind = "printer"
snmp_credential = "public-v2c"
[[polling.devices]]
name = "server"
ip = "{SERVER_IP}"
kind = "server"
[alerting]
gateway_ip = "{GATEWAY_IP}"
"""


def _spec() -> SiteSpec:
    return SiteSpec(
        devices=(
            SimDevice(
                "nas",
                NAS_IP,
                "00:11:32:00:00:20",
                "Synology",
                "nas",
                snmprec=CORPUS / "dsm.snmprec",
                tcp_ports=(445,),
            ),
            SimDevice(
                "printer",
                PRINTER_IP,
                "00:80:77:00:00:30",
                "Brother",
                "printer",
                snmprec=CORPUS / "brother.snmprec",
                tcp_ports=(9100,),
            ),
            SimDevice("server", SERVER_IP, "52:54:00:00:00:40", "Linux", "server"),
            SimDevice(
                "fileserver",
                FILESERVER_IP,
                "ac:1f:6b:00:00:50",
                "Supermicro",
                "server",
                snmp_engine="snmpd",
                v3_user=V3_USER,
            ),
        ),
    )


class Appliance:
    def __init__(self, site: Site, db: Path) -> None:
        self.site = site
        self.db = db

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not self.db.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return []  # tables not created yet
        finally:
            conn.close()

    def device_id(self, ip: str) -> int:
        rows = self.query("SELECT id FROM devices WHERE ip = ?", (ip,))
        assert rows, f"{ip} not in the inventory"
        return int(rows[0][0])

    def open_alerts(self) -> set[tuple[str, str]]:
        return {
            (k, s) for k, s in self.query("SELECT key, severity FROM alerts WHERE state = 'open'")
        }

    def wait(self, what: str, check: Callable[[], bool], timeout_s: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if check():
                return time.monotonic() - started
            time.sleep(0.2)
        raise AssertionError(f"{what}: not within {timeout_s:g} s; open: {self.open_alerts()}")


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    if not CORPUS.is_dir():
        pytest.skip("../shared/snmp-corpus is not present")
    tmp = tmp_path_factory.mktemp("site")
    db = tmp / "outpost.db"
    config = tmp / "outpost.toml"
    config.write_text(CONFIG + f'[store]\npath = "{db}"\n')
    with Site(_spec()) as site:
        log = open(tmp / "outpost.log", "wb")  # noqa: SIM115
        proc = site.popen_in(
            site.app_ns,
            [sys.executable, "-m", "firmware", "run", "--config", str(config)],
            stdout=log,
            stderr=log,
        )
        app = Appliance(site, db)
        try:
            app.wait(
                "every device polled and up",
                lambda: len(app.query("SELECT 1 FROM poll_state WHERE reachable = 1")) == 4,
                60,
            )
            yield app
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            print((tmp / "outpost.log").read_text()[-3000:])


SWEEP = """
import asyncio, json, time
from services.polling.icmp import Pinger

async def main():
    async with Pinger() as p:
        t = time.monotonic()
        got = await p.ping_many([f"198.18.0.{i}" for i in range(1, 255)], 1, 0.0, 0.5)
        print(json.dumps({"wall_s": time.monotonic() - t,
                          "answered": sorted(a for a, s in got.items() if s.received)}))

asyncio.run(main())
"""


@needs_root
def test_ping_sweep_of_254_addresses_within_a_second(appliance: Appliance) -> None:
    site = appliance.site
    out = site.run_in(
        site.app_ns,
        [sys.executable, "-c", SWEEP],
        capture_output=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    got = json.loads(out.stdout)
    print(f"sweep: {got['wall_s']:.2f} s, answered {got['answered']}")
    assert got["wall_s"] <= 1.0
    assert set(got["answered"]) == {
        GATEWAY_IP,
        "198.18.0.2",
        NAS_IP,
        PRINTER_IP,
        SERVER_IP,
        FILESERVER_IP,
    }


V3_POLL = """
import asyncio, json, sys, time
from core.schema import Secret
from services.polling.inventory import PollTarget
from services.polling.poller import DevicePoller
from core.settings.polling import PollingSettings
from services.snmp import SnmpClient, SnmpCredential

async def main(priv_key):
    cred = SnmpCredential(name="v3", version="3", user="outpost", auth_protocol="SHA",
                          auth_key=Secret("outpost-auth-pass"), priv_protocol="AES",
                          priv_key=Secret(priv_key))
    # SNMP alone decides here: no TCP last-resort probe (the host would answer it with RST).
    settings = PollingSettings(icmp=False, snmp_timeout_s=1.0, snmp_retries=0, probe_tcp_ports=())
    async with SnmpClient() as client:
        poller = DevicePoller(settings, None, client, {"v3": cred})
        target = PollTarget(1, sys.argv[1], "fileserver", "server", "v3", "", ())
        result = await poller.poll(target, poller.state_for(target, None), time.time())
    print(json.dumps({"reachable": result.reachable,
                      "metrics": sorted({r.metric for r in result.readings}),
                      "error": [c.error for c in result.checks if c.check == "snmp"][0]}))

asyncio.run(main(sys.argv[2]))
"""


@needs_root
def test_snmpv3_poll_of_a_net_snmp_agent(appliance: Appliance) -> None:
    site = appliance.site

    def poll(priv_key: str) -> dict[str, Any]:
        out = site.run_in(
            site.app_ns,
            [sys.executable, "-c", V3_POLL, FILESERVER_IP, priv_key],
            capture_output=True,
            check=True,
            cwd=Path(__file__).parents[1],
        )
        return dict(json.loads(out.stdout))

    good = poll("outpost-priv-pass")
    assert good["reachable"] is True and good["error"] == "", good
    assert {"system.uptime_s", "if.in_bps", "storage.used_pct", "cpu.load_pct"} & set(
        good["metrics"]
    ) >= {"system.uptime_s", "storage.used_pct"}
    wrong = poll("not-the-priv-key")
    print(f"v3 with a wrong privacy key: {wrong['error']}")
    assert wrong["reachable"] is False and wrong["error"]


@needs_root
def test_host_down_raises_one_major_alert_and_resolves(appliance: Appliance) -> None:
    nas = appliance.device_id(NAS_IP)
    key = f"device.down:{nas}"
    appliance.site.device_down("nas")
    try:
        took = appliance.wait(
            "nas down alert", lambda: (key, "major") in appliance.open_alerts(), 2 * INTERVAL_S + 3
        )
        print(f"down alert after {took:.1f} s (interval {INTERVAL_S:g} s)")
        assert took <= 2 * INTERVAL_S + 1
        why = appliance.query(
            "SELECT check_name, error FROM poll_checks WHERE device_id = ? AND ok = 0", (nas,)
        )
        assert {c for c, _ in why} >= {"icmp", "tcp:445", "snmp"}
    finally:
        appliance.site.device_up("nas")
    appliance.wait(
        "nas alert resolved",
        lambda: (key, "major") not in appliance.open_alerts(),
        INTERVAL_S * 2 + 2,
    )
    rows = appliance.query("SELECT state FROM alerts WHERE key = ?", (key,))
    assert rows == [("resolved",)]  # one alert, opened once and resolved once
    kinds = appliance.query("SELECT kind FROM events WHERE json_extract(data, '$.key') = ?", (key,))
    assert sorted(k for (k,) in kinds) == ["alert.opened", "alert.resolved"]


def _edited(src: Path, dst: Path, changes: dict[str, str]) -> Path:
    lines = []
    for line in src.read_text().splitlines():
        oid = line.split("|", 1)[0]
        lines.append(changes.get(oid, line))
    dst.write_text("\n".join(lines) + "\n")
    return dst


@needs_root
def test_disk_and_supply_thresholds(appliance: Appliance, tmp_path: Path) -> None:
    nas, printer = appliance.device_id(NAS_IP), appliance.device_id(PRINTER_IP)
    # /volume1 (hrStorage 51): size 1437056540 units of 64 KiB; 97 % used -> major.
    used = str(int(1437056540 * 0.97))
    appliance.site.set_snmprec(
        "nas",
        _edited(
            CORPUS / "dsm.snmprec",
            tmp_path / "dsm.snmprec",
            {"1.3.6.1.2.1.25.2.3.1.6.51": f"1.3.6.1.2.1.25.2.3.1.6.51|2|{used}"},
        ),
    )
    # Drum unit at 5 % of 12000 -> minor; the toner (was -3, "some left") now 0 -> major.
    appliance.site.set_snmprec(
        "printer",
        _edited(
            CORPUS / "brother.snmprec",
            tmp_path / "brother.snmprec",
            {
                "1.3.6.1.2.1.43.11.1.1.9.1.2": "1.3.6.1.2.1.43.11.1.1.9.1.2|2|600",
                "1.3.6.1.2.1.43.11.1.1.9.1.1": "1.3.6.1.2.1.43.11.1.1.9.1.1|2|0",
            },
        ),
    )
    expected = {
        (f"volume:{nas}:/volume1", "major"),
        (f"supply.low:{printer}:Drum Unit", "minor"),
        (f"supply.empty:{printer}:Black Toner Cartridge", "major"),
    }
    appliance.wait("threshold alerts", lambda: expected <= appliance.open_alerts(), 3 * INTERVAL_S)
    # Back to the original recordings: every one of them resolves.
    appliance.site.set_snmprec("nas", CORPUS / "dsm.snmprec")
    appliance.site.set_snmprec("printer", CORPUS / "brother.snmprec")
    appliance.wait(
        "threshold alerts resolved",
        lambda: not (expected & appliance.open_alerts()),
        3 * INTERVAL_S,
    )


@needs_root
def test_gateway_down_suppresses_dependents(appliance: Appliance) -> None:
    gateway, server = appliance.device_id(GATEWAY_IP), appliance.device_id(SERVER_IP)
    site = appliance.site
    site.run_in(site.sw_ns, ["ip", "link", "set", GW_PORT, "down"], check=True)
    site.device_down("server")
    try:
        appliance.wait(
            "gateway alert",
            lambda: (f"device.down:{gateway}", "critical") in appliance.open_alerts(),
            2 * INTERVAL_S + 3,
        )
        time.sleep(2 * INTERVAL_S)  # the server has missed enough polls by now
        missed = appliance.query("SELECT missed FROM poll_state WHERE device_id = ?", (server,))
        assert missed and missed[0][0] >= 2
        assert not any(k == f"device.down:{server}" for k, _ in appliance.open_alerts())
    finally:
        site.device_up("server")  # first, so the gateway's return finds it answering
        site.run_in(site.sw_ns, ["ip", "link", "set", GW_PORT, "up"], check=True)
    appliance.wait(
        "gateway resolved",
        lambda: not any(k == f"device.down:{gateway}" for k, _ in appliance.open_alerts()),
        3 * INTERVAL_S,
    )
    assert not appliance.query("SELECT 1 FROM alerts WHERE key = ?", (f"device.down:{server}",))
