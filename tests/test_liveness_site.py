"""Down means down, on a simulated site with the real appliance: hosts that ignore pings stay up
on ARP, a host whose only TCP answer is RST stays up, a host behind the gateway with ICMP
dropped stays up on SNMP; a laptop leaving is a 'left' event and no alert, a server leaving is
the major alert."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simsite import netns, services
from simsite.model import SimDevice, SiteSpec
from simsite.site import Site
from tests.conftest import CORPUS, needs_root
from tests.test_polling_site import Appliance

INTERVAL_S = 3.0
GATEWAY_IP = "198.18.0.1"
LAPTOP_IP, QUIET_SERVER_IP, RST_NAS_IP = "198.18.0.60", "198.18.0.61", "198.18.0.62"
REMOTE_IP = "198.19.0.2"  # the namespace beyond the gateway (WAN side): not on-link
RST_PORT = 445  # configured on the NAS, nothing listens: the host answers RST
TEN_POLLS = 10

CONFIG = f"""
[web]
enabled = false
[discovery]
# On, for its passive ARP and mDNS evidence on the bus (HostHeard): a host that left must
# still be called gone within the usual polls, not kept "up" by stale sightings.
enabled = true
subnets = ["198.18.0.0/24"]
sweep_interval_s = 600
snmp = false
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
name = "gateway"
ip = "{GATEWAY_IP}"
kind = "router"
[[polling.devices]]
name = "laptop"
ip = "{LAPTOP_IP}"
kind = "workstation"
[[polling.devices]]
name = "quiet-server"
ip = "{QUIET_SERVER_IP}"
kind = "server"
[[polling.devices]]
name = "rst-nas"
ip = "{RST_NAS_IP}"
kind = "nas"
tcp_ports = [{RST_PORT}]
[[polling.devices]]
name = "remote-server"
ip = "{REMOTE_IP}"
kind = "server"
snmp_credential = "public-v2c"
[alerting]
gateway_ip = "{GATEWAY_IP}"
down_after_missed = 2
"""


def _spec() -> SiteSpec:
    return SiteSpec(
        devices=(
            SimDevice("laptop", LAPTOP_IP, "3c:22:fb:00:00:60", "Apple", "pc", ignore_ping=True),
            SimDevice(
                "quiet-server", QUIET_SERVER_IP, "52:54:00:00:00:61", "Linux", "server",
                ignore_ping=True,
            ),
            SimDevice(
                "rst-nas", RST_NAS_IP, "00:11:32:00:00:62", "Synology", "nas", ignore_ping=True
            ),
        ),
    )  # fmt: skip


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    if not CORPUS.is_dir():
        pytest.skip("../shared/snmp-corpus is not present")
    tmp = tmp_path_factory.mktemp("liveness")
    db = tmp / "outpost.db"
    config = tmp / "outpost.toml"
    config.write_text(CONFIG + f'[store]\npath = "{db}"\n')
    with Site(_spec()) as site:
        # A server behind the router: ICMP dropped, SNMP answering (snmpsim in the WAN-side
        # namespace; the site kills it at stop).
        netns.sysctl(site.msp_ns, {"net.ipv4.icmp_echo_ignore_all": "1"})
        remote_dir = tmp / "remote"
        remote_dir.mkdir()
        cmd = services.snmpsim_command(
            remote_dir, CORPUS / "linux.snmprec", "public", REMOTE_IP, services.SNMP_PORT
        )
        agent_log = open(cmd.log, "wb")  # noqa: SIM115
        site.popen_in(site.msp_ns, cmd.argv, stdout=agent_log, stderr=agent_log)
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
                lambda: len(app.query("SELECT 1 FROM poll_state WHERE reachable = 1")) == 5,
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
            agent_log.close()
            print((tmp / "outpost.log").read_text()[-3000:])


def _state(app: Appliance, ip: str) -> tuple[int | None, int, float, str]:
    rows = app.query(
        "SELECT reachable, missed, last_poll_ts, answered_by FROM poll_state WHERE ip = ?", (ip,)
    )
    assert rows, f"{ip} never polled"
    reachable, missed, ts, answered_by = rows[0]
    return reachable, int(missed), float(ts), str(answered_by)


def _checks(app: Appliance, ip: str) -> dict[str, tuple[int, int]]:
    rows = app.query(
        "SELECT c.check_name, c.ok, c.answered FROM poll_checks c"
        " JOIN poll_state s ON s.device_id = c.device_id WHERE s.ip = ?",
        (ip,),
    )
    return {name: (int(ok), int(answered)) for name, ok, answered in rows}


def _events(app: Appliance, kind: str) -> list[tuple[int, str]]:
    return [(int(d), str(m)) for d, m in app.query(
        "SELECT device_id, message FROM events WHERE kind = ? ORDER BY id", (kind,)
    )]  # fmt: skip


@needs_root
def test_hosts_that_ignore_pings_stay_up_for_ten_polls(appliance: Appliance) -> None:
    watched = {LAPTOP_IP: "arp", QUIET_SERVER_IP: "arp", RST_NAS_IP: "tcp", REMOTE_IP: "snmp"}
    polls: dict[str, set[float]] = {ip: set() for ip in watched}
    started = time.monotonic()
    while min(len(p) for p in polls.values()) < TEN_POLLS:
        assert time.monotonic() - started < TEN_POLLS * INTERVAL_S * 1.5 + 10, polls
        for ip, method in watched.items():
            reachable, missed, ts, answered_by = _state(appliance, ip)
            assert reachable == 1 and missed == 0, (ip, reachable, missed, answered_by)
            assert method in answered_by.split(","), (ip, answered_by)
            polls[ip].add(ts)
        time.sleep(0.3)
    print({ip: len(p) for ip, p in polls.items()}, "polls, all up")
    for ip in watched:
        assert _checks(appliance, ip)["icmp"] == (0, 0), ip  # pings ignored all along
    assert _checks(appliance, LAPTOP_IP)["arp"] == (1, 1)
    # The NAS's port is closed: no service (ok 0), but the host answered (RST).
    assert _checks(appliance, RST_NAS_IP)[f"tcp:{RST_PORT}"] == (0, 1)
    remote = _checks(appliance, REMOTE_IP)
    assert remote["snmp"] == (1, 1) and "arp" not in remote  # behind the router: no ARP
    assert appliance.open_alerts() == set()
    assert _events(appliance, "presence.left") == []


@needs_root
def test_laptop_leaving_is_an_event_server_leaving_is_the_alert(appliance: Appliance) -> None:
    laptop, server = appliance.device_id(LAPTOP_IP), appliance.device_id(QUIET_SERVER_IP)
    site = appliance.site
    site.device_down("laptop")
    site.device_down("quiet-server")
    try:
        took_alert = appliance.wait(
            "server down alert",
            lambda: (f"device.down:{server}", "major") in appliance.open_alerts(),
            3 * INTERVAL_S + 5,
        )
        took_left = appliance.wait(
            "laptop left", lambda: bool(_events(appliance, "presence.left")), 3 * INTERVAL_S + 5
        )
        print(f"server alert after {took_alert:.1f} s, laptop 'left' after {took_left:.1f} s")
        # The usual polls: one miss, a confirmation a third of an interval later, the gateway
        # checked; both well within two intervals plus one poll's budget.
        assert took_alert <= 2 * INTERVAL_S + 2
        left = _events(appliance, "presence.left")
        assert [d for d, _ in left] == [laptop]
        assert "left (no ARP answer since" in left[0][1], left
        message = appliance.query(
            "SELECT message FROM alerts WHERE key = ? AND state = 'open'",
            (f"device.down:{server}",),
        )[0][0]
        print(message)
        assert "no ARP answer since" in message
        assert not any(k == f"device.down:{laptop}" for k, _ in appliance.open_alerts())
    finally:
        site.device_up("laptop")
        site.device_up("quiet-server")
    appliance.wait(
        "laptop returned", lambda: bool(_events(appliance, "presence.returned")), 3 * INTERVAL_S
    )
    returned = _events(appliance, "presence.returned")
    assert returned[0][0] == laptop and "returned after" in returned[0][1], returned
    appliance.wait(
        "server alert resolved",
        lambda: (f"device.down:{server}", "major") not in appliance.open_alerts(),
        3 * INTERVAL_S,
    )
    assert not appliance.query(
        "SELECT 1 FROM alerts WHERE key = ?", (f"device.down:{laptop}",)
    )  # never an alert for the laptop


UNPRIVILEGED_POLL = """
import asyncio, json, sys, time
from core.settings.polling import PollingSettings
from services.polling.arp_probe import ArpProber
from services.polling.icmp import IcmpUnavailable, Pinger
from services.polling.inventory import PollTarget
from services.polling.poller import DevicePoller

async def main(ip):
    icmp = ""
    try:
        Pinger().open()
    except IcmpUnavailable as exc:
        icmp = str(exc)
    arp = ArpProber()
    poller = DevicePoller(PollingSettings(snmp=False, tcp_timeout_s=0.5), None, None, {}, arp=arp)
    target = PollTarget(1, ip, "laptop", "workstation", "", "", ())
    state = poller.state_for(target, None)
    results = [await poller.poll(target, state, time.time()) for _ in range(3)]
    arp.close()
    print(json.dumps({"icmp": icmp, "arp": arp.problem,
                      "reachable": [r.reachable for r in results],
                      "answered_by": [list(r.answered_by) for r in results]}))

asyncio.run(main(sys.argv[1]))
"""


@needs_root
def test_without_icmp_or_arp_a_quiet_host_is_up_on_tcp(appliance: Appliance) -> None:
    """The appliance as an unprivileged user on the LAN (no CAP_NET_RAW; the namespace allows
    no ping sockets): ICMP and ARP are unavailable, each says how to fix it, and a host that
    ignores pings is still up, on its RST to the last-resort TCP probe."""
    site = appliance.site
    nobody = [
        "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
        # Only to reach an interpreter under /root on this build machine; no network power.
        "--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search",
        "--bounding-set=-all,+dac_read_search", "--",
    ]  # fmt: skip
    out = site.run_in(
        site.app_ns,
        [*nobody, sys.executable, "-c", UNPRIVILEGED_POLL, LAPTOP_IP],
        capture_output=True,
        check=True,
        cwd=Path(__file__).parents[1],
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    got = json.loads(out.stdout)
    print(got)
    assert "CAP_NET_RAW" in got["icmp"] and "CAP_NET_RAW" in got["arp"]
    assert got["reachable"] == [True, True, True]
    assert got["answered_by"] == [["tcp"]] * 3
