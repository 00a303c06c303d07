"""Discovery benchmark: ARP sweep of the simulated corpus site's /24 against arp-scan (the
Debian package) on the same site in the same run, and mDNS time-to-complete.

    python -m bench.discovery          # needs root (network namespaces)

Both sweepers run in the appliance's namespace with their default pacing (ours: 500
requests/s, 0.5 s wait, 2 attempts; arp-scan: 256 kbit/s, 500 ms timeout, 2 tries). Each is
run ROUNDS times, alternating, and the median is reported. Our figure is the sweep itself as
the long-running service does it (process start-up excluded: the service sweeps from an
already running process); the process wall time including Python start-up is printed too.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time

from simsite.corpus import corpus_site
from simsite.harness.paths import CORPUS
from simsite.site import Site

SUBNET = "198.18.0.0/24"
ROUNDS = 3
MDNS_LISTEN_S = 6.0
_ARP_SCAN_LINE = re.compile(r"^(\d+\.\d+\.\d+\.\d+)\s+([0-9a-f:]{17})", re.MULTILINE)


def _arp_scan(site: Site) -> tuple[float, dict[str, str]]:
    started = time.monotonic()
    proc = site.run_in(
        site.app_ns,
        ["arp-scan", "-I", "eth0", "-q", "-x", SUBNET],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.monotonic() - started
    return wall, {ip: mac for ip, mac in _ARP_SCAN_LINE.findall(proc.stdout)}


def _ours(site: Site) -> tuple[float, float, dict[str, list[str]]]:
    started = time.monotonic()
    proc = site.run_in(
        site.app_ns,
        [sys.executable, "-m", "services.discovery", "sweep", SUBNET],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.monotonic() - started
    result = json.loads(proc.stdout)
    return float(result["duration_s"]), wall, result["hosts"]


def _mdns(site: Site) -> tuple[int, int, float]:
    announced = sum(len(dev.mdns) for dev in site.devices)
    proc = site.run_in(
        site.app_ns,
        [sys.executable, "-m", "services.discovery", "mdns", "--seconds", str(MDNS_LISTEN_S)],
        capture_output=True,
        text=True,
        check=True,
    )
    services = json.loads(proc.stdout)["services"]
    last = max((s["resolved_after_s"] for s in services), default=float("nan"))
    return announced, len(services), last


def run() -> list[str]:
    if os.geteuid() != 0:
        return ["discovery: skipped (needs root for network namespaces)"]
    spec = corpus_site(CORPUS)
    expected = {dev.ip for dev in spec.devices} | {spec.gateway_ip}
    lines: list[str] = []
    with Site(spec) as site:
        peer_walls: list[float] = []
        our_sweeps: list[float] = []
        our_walls: list[float] = []
        peer_found: set[str] = set()
        our_found: set[str] = set()
        for _ in range(ROUNDS):
            wall, hosts = _arp_scan(site)
            peer_walls.append(wall)
            peer_found = set(hosts)
            sweep, proc_wall, ours = _ours(site)
            our_sweeps.append(sweep)
            our_walls.append(proc_wall)
            our_found = set(ours)
        peer, mine, mine_proc = (
            statistics.median(peer_walls),
            statistics.median(our_sweeps),
            statistics.median(our_walls),
        )
        lines += [
            f"discovery.arp_sweep /24: outpost {mine:.2f} s ({len(our_found & expected)}"
            f"/{len(expected)} hosts, {len(our_found - expected)} phantom), "
            f"arp-scan {peer:.2f} s ({len(peer_found & expected)}/{len(expected)} hosts)",
            f"discovery.arp_sweep time ratio outpost/arp-scan: {mine / peer:.2f} "
            f"(with Python start-up: {mine_proc / peer:.2f}); median of {ROUNDS}",
            f"discovery.arp_sweep hosts outpost - arp-scan: {len(our_found) - len(peer_found):+d}",
        ]
        announced, found, last = _mdns(site)
        lines.append(
            f"discovery.mdns: {found}/{announced} announced services resolved, the last "
            f"{last:.2f} s after the browse started"
        )
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
