"""Addresses that move, with the whole appliance (discovery, polling, alerting) on small
namespace LANs (needs root):

* the gateway address fails over between two routers (VRRP/keepalived without a virtual MAC,
  the case of ../shared/field-cases/CASES.md; our variant: a virtual MAC that moves with it,
  as VRRP with ``use_vmac``, CARP or HSRP do): the gateway is still polled as the gateway,
  neither router changed address, and a server failing after the failover gets its alert;
* an IP conflict ends (issue 11): the intruder's MAC stops owning the address within one
  sweep and is no longer polled as the real device.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IS_ROOT

if not IS_ROOT:
    pytest.skip("needs root for network namespaces (simulated LANs)", allow_module_level=True)

from simsite.model import SimDevice, SiteSpec
from simsite.ouis import mac_for
from simsite.site import Site
from tests.discovery_lan_site import SWEEP_INTERVAL_S, Outpost, appliance_config, garp, ns_run
from tests.discovery_lan_site import outpost as run_outpost

#: What polling needs to pick a new device up (services/polling/service.py), plus a poll.
INVENTORY_REFRESH_S = 15.0
VMAC = "00:00:5e:00:01:01"  # VRRP's virtual router MAC for VRID 1 (RFC 5798 section 7.3)


def _poll_state(app: Outpost, device_id: int) -> dict[str, Any] | None:
    rows = app.query("SELECT * FROM poll_state WHERE device_id = ?", (device_id,))
    return dict(rows[0]) if rows else None


def _open_alert(app: Outpost, key: str) -> dict[str, Any] | None:
    rows = app.query("SELECT * FROM alerts WHERE key = ? AND state = 'open'", (key,))
    return dict(rows[0]) if rows else None


def _holder_of(app: Outpost, ip: str) -> int | None:
    rows = app.query("SELECT id FROM devices WHERE ip = ?", (ip,))
    return int(rows[0]["id"]) if len(rows) == 1 else None


@pytest.mark.parametrize("protocol", ["vrrp-without-vmac", "vrrp-vmac"])
def test_the_gateway_is_a_role_that_survives_a_failover(tmp_path: Path, protocol: str) -> None:
    lan, gw_ip = "198.18.90.0/24", "198.18.90.1"
    router2 = SimDevice(name="router2", ip="198.18.90.3", mac=mac_for("netgate", "router2"),
                        vendor="Netgate", role="router")  # fmt: skip
    server = SimDevice(name="server", ip="198.18.90.20", mac=mac_for("supermicro", "srv90"),
                       vendor="Supermicro", role="server")  # fmt: skip
    spec = SiteSpec(devices=(router2, server), lan=lan, gateway_ip=gw_ip,
                    appliance_ip="198.18.90.5")  # fmt: skip
    with Site(spec) as site:
        router1, r2 = site.gw_ns, site.ns_of("router2")
        for ns in (router1, r2):
            # keepalived's advice: answer ARP only on the interface that holds the address
            # (else the lower device answers for the virtual MAC's address too).
            ns_run(site, ns, "sysctl -qw net.ipv4.conf.all.arp_ignore=1")
        if protocol == "vrrp-without-vmac":
            ns_run(site, router1, "ip addr add 198.18.90.2/24 dev lan0")  # its own address
        else:
            ns_run(site, router1, "ip addr del 198.18.90.1/24 dev lan0",
                   "ip addr add 198.18.90.2/24 dev lan0",
                   f"ip link add vrrp0 link lan0 address {VMAC} type macvlan mode bridge",
                   "ip addr add 198.18.90.1/24 dev vrrp0", "ip link set vrrp0 up")  # fmt: skip
        config = lambda db: appliance_config(  # noqa: E731
            db, [lan],
            '[[polling.devices]]\nip = "198.18.90.20"\nname = "fileserver"\nkind = "server"\n',
        )  # fmt: skip
        with run_outpost(site, tmp_path, config, whole=True) as app:
            routers = {spec.gateway_mac: "198.18.90.2", router2.mac: "198.18.90.3"}
            app.wait(
                "both routers at their own addresses",
                lambda: all(
                    (app.devices().get(m) or {"ip": ""})["ip"] == ip for m, ip in routers.items()
                ),
                30,
            )
            gateway_id = app.wait("one device holding the gateway address",
                                  lambda: _holder_of(app, gw_ip), 30)  # fmt: skip
            app.wait(
                "the gateway polled",
                lambda: (_poll_state(app, gateway_id) or {}).get("reachable") == 1,
                INVENTORY_REFRESH_S + 20,
            )
            server_id = int(app.devices()[server.mac]["id"])
            app.wait(
                "the server polled",
                lambda: (_poll_state(app, server_id) or {}).get("reachable") == 1,
                30,
            )

            # Failover: the first router loses the gateway address, the second takes it and
            # says so with a gratuitous ARP, as keepalived does.
            failed_over = time.time()
            if protocol == "vrrp-without-vmac":
                ns_run(site, router1, "ip addr del 198.18.90.1/24 dev lan0")
                ns_run(site, r2, "ip addr add 198.18.90.1/24 dev eth0")
                garp(site, r2, gw_ip)
            else:
                ns_run(site, router1, "ip link del vrrp0")
                ns_run(site, r2,
                       f"ip link add vrrp0 link eth0 address {VMAC} type macvlan mode bridge",
                       "ip addr add 198.18.90.1/24 dev vrrp0", "ip link set vrrp0 up")  # fmt: skip
                garp(site, r2, gw_ip, "vrrp0")
            if protocol == "vrrp-without-vmac":
                app.wait(
                    "the role answered by the second router",
                    lambda: json.loads(
                        app.query("SELECT attrs FROM devices WHERE id = ?", (gateway_id,))[0][0]
                    ).get("answered_by") == [router2.mac],
                    20,
                )  # fmt: skip
            app.wait(
                "the gateway polled after the failover, answered by the second router",
                lambda: (
                    (state := _poll_state(app, gateway_id)) is not None
                    and state["reachable"] == 1
                    and state["last_poll_ts"] > failed_over + 1
                ),
                30,
            )
            assert _holder_of(app, gw_ip) == gateway_id, "the same gateway, whoever answers"

            down_at = time.monotonic()
            site.device_down("server")
            alert = app.wait("the server's down alert",
                             lambda: _open_alert(app, f"device.down:{server_id}"), 60)  # fmt: skip
            print(f"\n{protocol}: server down alert {time.monotonic() - down_at:.1f} s after "
                  "it failed, after the gateway failover")  # fmt: skip
            assert alert["severity"] == "major"
            assert "alerting.dependency_unknown" not in app.text(), "decided by a gateway poll"
            for mac, ip in routers.items():
                assert app.devices()[mac]["ip"] == ip, "neither router changed address"
            assert app.events("device.ip_changed") == []
            assert app.events("device.ip_conflict") == []
            joined = {e["data"]["mac"] for e in app.events("device.joined")}
            # The first sweep is the baseline: those hosts are in its one event, not joined.
            joined |= {m for e in app.events("discovery.baseline") for m in e["data"]["macs"]}
            assert joined == {spec.gateway_mac, router2.mac} | (
                {VMAC} if protocol == "vrrp-vmac" else set()
            ), "the server was adopted (configured), nothing joined at the failover"


def test_after_a_conflict_ends_the_intruder_loses_the_address_within_one_sweep(
    tmp_path: Path,
) -> None:
    """A host takes the NAS's address (conflict), then leaves: within one sweep its MAC no
    longer owns the address, and from the poller's next inventory refresh only the NAS is
    polled there."""
    lan = "198.18.91.0/24"
    nas = SimDevice(name="nas", ip="198.18.91.30", mac=mac_for("synology", "nas91"),
                    vendor="Synology", role="nas")  # fmt: skip
    spec = SiteSpec(devices=(nas,), lan=lan, gateway_ip="198.18.91.1",
                    appliance_ip="198.18.91.2")  # fmt: skip
    with Site(spec) as site:
        config = lambda db: appliance_config(db, [lan])  # noqa: E731
        with run_outpost(site, tmp_path, config, whole=True) as app:
            nas_id = app.wait("the NAS", lambda: (app.devices().get(nas.mac) or {"id": 0})["id"])
            intruder = SimDevice(name="intruder", ip="198.18.91.31",
                                 mac=mac_for("ricoh", "intruder91"), vendor="Ricoh",
                                 role="printer")  # fmt: skip
            site.add_device(intruder)
            ns = site.ns_of("intruder")
            # Its own address goes first: deleting a primary address takes its secondaries.
            ns_run(site, ns, "ip addr del 198.18.91.31/24 dev eth0",
                   "ip addr add 198.18.91.30/24 dev eth0")  # fmt: skip
            app.wait(
                "the conflict",
                lambda: [e for e in app.events("device.ip_conflict") if e["data"]["ip"] == nas.ip],
            )
            intruder_id = int(app.devices()[intruder.mac]["id"])
            app.wait(
                "the intruder polled at the NAS's address",
                lambda: (_poll_state(app, intruder_id) or {}).get("ip") == nas.ip,
                INVENTORY_REFRESH_S + 20,
            )

            left = time.monotonic()
            site.remove_device("intruder")
            app.wait(
                "the intruder without the address",
                lambda: app.devices()[intruder.mac]["ip"] == "",
                2 * SWEEP_INTERVAL_S + 3,
            )
            took = time.monotonic() - left
            print(f"\nintruder lost the address {took:.1f} s after it left "
                  f"(sweeps every {SWEEP_INTERVAL_S} s, ~1.5 s each)")  # fmt: skip
            assert app.devices()[nas.mac]["ip"] == nas.ip
            assert app.query("SELECT * FROM ip_conflicts WHERE ip = ?", (nas.ip,)) == []

            # From the poller's next inventory refresh, only the NAS is polled at .30.
            time.sleep(INVENTORY_REFRESH_S + 2)
            before = (_poll_state(app, intruder_id) or {}).get("last_poll_ts")
            nas_before = (_poll_state(app, nas_id) or {})["last_poll_ts"]
            time.sleep(3 * 3 + 1)  # three poll intervals
            assert (_poll_state(app, intruder_id) or {}).get("last_poll_ts") == before
            assert (_poll_state(app, nas_id) or {})["last_poll_ts"] > nas_before
            opened = app.query("SELECT key FROM alerts WHERE device_id = ? AND key LIKE"
                               " 'device.down:%'", (intruder_id,))  # fmt: skip
            assert opened == [], "the intruder is not alerted as the NAS"


def test_the_gateway_is_whatever_the_default_route_points_at_now(tmp_path: Path) -> None:
    """Our variant of a gateway that moves: the default route changes to a second router at
    another address (a DHCP renewal naming a new router, a re-cabled site). From then on that
    router is polled as the gateway: its down alert is the gateway's (critical)."""
    lan = "198.18.92.0/24"
    router2 = SimDevice(name="router2", ip="198.18.92.254", mac=mac_for("draytek", "r92"),
                        vendor="DrayTek", role="router")  # fmt: skip
    spec = SiteSpec(devices=(router2,), lan=lan, gateway_ip="198.18.92.1",
                    appliance_ip="198.18.92.2")  # fmt: skip
    with Site(spec) as site:
        config = lambda db: appliance_config(db, [lan])  # noqa: E731
        with run_outpost(site, tmp_path, config, whole=True) as app:
            router2_id = app.wait(
                "the second router", lambda: (app.devices().get(router2.mac) or {"id": 0})["id"]
            )
            app.wait(
                "the second router polled",
                lambda: (_poll_state(app, router2_id) or {}).get("reachable") == 1,
                INVENTORY_REFRESH_S + 20,
            )
            ns_run(site, site.app_ns, "ip route replace default via 198.18.92.254")
            app.wait("alerting to follow the route",
                     lambda: "alerting.gateway_changed" in app.text(), 30)  # fmt: skip
            site.device_down("router2")
            alert = app.wait(
                "the new gateway's down alert",
                lambda: _open_alert(app, f"device.down:{router2_id}"),
                60,
            )
            assert alert["severity"] == "critical", "the gateway's alert, not a router's"
            assert "gateway" in alert["message"]
            assert app.devices()[router2.mac]["kind"] == "router"
