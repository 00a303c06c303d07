"""The appliance's own network facts for the network page: addresses, gateway, DNS.

Read locally (``ip -json`` from iproute2 and /etc/resolv.conf); nothing is sent on the network.
The result is cached briefly because the page may be refreshed often and these rarely change.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.clock import Clock, system_clock

CACHE_S = 30.0
IP_TIMEOUT_S = 3.0
RESOLV_CONF = Path("/etc/resolv.conf")


async def _ip_json(*args: str) -> list[dict[str, Any]]:
    try:
        proc = await asyncio.create_subprocess_exec(
            "ip",
            "-json",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except FileNotFoundError:  # no iproute2: the page says "none" rather than failing
        return []
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), IP_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return []
    try:
        data = json.loads(out or b"[]")
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def parse_resolv_conf(text: str) -> tuple[list[str], str]:
    servers: list[str] = []
    search = ""
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            servers.append(words[1])
        elif len(words) >= 2 and words[0] in ("search", "domain"):
            search = " ".join(words[1:])
    return servers, search


@dataclass
class NetInfo:
    clock: Clock = field(default_factory=system_clock)
    _cached: dict[str, Any] | None = None
    _at: float = field(default=-CACHE_S)

    async def facts(self) -> dict[str, Any]:
        if self._cached is not None and self.clock.monotonic() - self._at < CACHE_S:
            return self._cached
        addrs = await _ip_json("addr", "show")
        routes = await _ip_json("route", "show", "default")
        addresses = []
        for link in addrs:
            if "LOOPBACK" in link.get("flags", []):
                continue
            for info in link.get("addr_info", []):
                addresses.append(
                    {
                        "ifname": link.get("ifname", ""),
                        "address": f"{info.get('local')}/{info.get('prefixlen')}",
                        "family": info.get("family", ""),
                        "mac": link.get("address", ""),
                    }
                )
        gateway = next((r.get("gateway") for r in routes if r.get("gateway")), None)
        try:
            servers, search = parse_resolv_conf(await asyncio.to_thread(RESOLV_CONF.read_text))
        except OSError:
            servers, search = [], ""
        self._cached = {
            "addresses": addresses,
            "gateway": gateway,
            "dns": servers,
            "search": search,
        }
        self._at = self.clock.monotonic()
        return self._cached


def subnets_with_counts(
    configured: Iterable[str], addresses: list[dict[str, Any]], device_ips: Iterable[str | None]
) -> list[dict[str, Any]]:
    """The monitored subnets (configured, else the appliance's own IPv4 ones) and device counts."""
    nets = [ipaddress.ip_network(s, strict=False) for s in configured]
    if not nets:
        nets = [
            ipaddress.ip_interface(a["address"]).network
            for a in addresses
            if a.get("family") == "inet"
        ]
    ips = []
    for ip in device_ips:
        try:
            ips.append(ipaddress.ip_address(ip or ""))
        except ValueError:
            continue
    return [{"subnet": str(n), "devices": sum(1 for ip in ips if ip in n)} for n in nets]
