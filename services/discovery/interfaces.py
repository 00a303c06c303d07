"""The appliance's own IPv4 interfaces, and which subnets discovery may sweep.

Read with iproute2's JSON output (``ip -j``), which every Raspberry Pi OS image has; it gives
every address of every interface, where ioctl(SIOCGIFADDR) gives only the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import Any, Final

from core.settings.discovery import MAX_PREFIX_WITHOUT_CONSENT, DiscoverySettings

IP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Interface:
    name: str
    ip: str  # the appliance's address on this subnet
    network: ipaddress.IPv4Network


@dataclass(frozen=True)
class SweepPlan:
    """One subnet to sweep: where to send from and which addresses to ask."""

    subnet: ipaddress.IPv4Network
    interface: Interface
    targets: tuple[str, ...]


class InterfaceError(Exception):
    """The interfaces could not be read (iproute2 missing or failing)."""


async def _ip_json(*args: str) -> list[dict[str, Any]]:
    try:
        proc = await asyncio.create_subprocess_exec(
            "ip", "-j", *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise InterfaceError("the 'ip' command (iproute2) is not installed") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), IP_TIMEOUT_S)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise InterfaceError(
            f"'ip -j {' '.join(args)}' did not answer in {IP_TIMEOUT_S} s"
        ) from exc
    if proc.returncode != 0:
        raise InterfaceError(f"'ip -j {' '.join(args)}' failed: {err.decode(errors='replace')}")
    data = json.loads(out or b"[]")
    return data if isinstance(data, list) else []


async def ipv4_interfaces() -> list[Interface]:
    """Every IPv4 address on an up, non-loopback interface."""
    result: list[Interface] = []
    for link in await _ip_json("-4", "addr", "show", "up"):
        name = str(link.get("ifname", ""))
        if not name or "LOOPBACK" in link.get("flags", []):
            continue
        for addr in link.get("addr_info", []):
            if addr.get("family") != "inet" or addr.get("scope") == "host":
                continue
            iface = ipaddress.IPv4Interface(f"{addr['local']}/{addr['prefixlen']}")
            result.append(Interface(name, str(iface.ip), iface.network))
    return result


async def default_gateways() -> set[str]:
    """Next hops of the IPv4 default routes (the site's router)."""
    routes = await _ip_json("-4", "route", "show", "default")
    return {str(r["gateway"]) for r in routes if r.get("gateway")}


def plan_sweeps(
    settings: DiscoverySettings, interfaces: list[Interface]
) -> tuple[list[SweepPlan], list[str]]:
    """The sweeps the settings ask for, and one problem line per subnet that cannot be swept.

    Empty ``subnets`` means the interfaces' own subnets only with ``auto_subnets``; the caller
    handles "nothing configured" (discovery.idle) before calling this.
    """
    problems: list[str] = []
    if settings.subnets:
        wanted = [ipaddress.ip_network(s, strict=False) for s in settings.subnets]
    else:
        wanted = list(dict.fromkeys(i.network for i in interfaces))
    excluded = [ipaddress.ip_network(s, strict=False) for s in settings.exclude]
    own = {i.ip for i in interfaces}
    plans: list[SweepPlan] = []
    for net in wanted:
        if net.version != 4:
            problems.append(f"{net}: ARP is IPv4 only; IPv6 neighbours are not swept")
            continue
        if net.prefixlen < MAX_PREFIX_WITHOUT_CONSENT and not settings.allow_large_subnets:
            problems.append(
                f"{net}: larger than a /{MAX_PREFIX_WITHOUT_CONSENT}; not swept (set "
                "discovery.allow_large_subnets = true to sweep it)"
            )
            continue
        iface = next((i for i in interfaces if net.subnet_of(i.network)), None)
        if iface is None:
            iface = next((i for i in interfaces if i.network.subnet_of(net)), None)
        if iface is None:
            problems.append(
                f"{net}: no interface of the appliance is on this subnet; ARP does not cross "
                "routers, so it is not swept"
            )
            continue
        hosts = net.hosts() if net.prefixlen < 31 else iter(net)
        targets = tuple(
            str(ip)
            for ip in hosts
            if ip in iface.network and str(ip) not in own and not any(ip in ex for ex in excluded)
        )
        plans.append(SweepPlan(net, iface, targets))
    return plans, problems


#: rtnetlink multicast groups (linux/rtnetlink.h): links, IPv4 addresses, IPv4 routes.
RTMGRP_LINK: Final = 0x1
RTMGRP_IPV4_IFADDR: Final = 0x10
RTMGRP_IPV4_ROUTE: Final = 0x40
#: Datagrams read per wake-up; a flapping link must not starve the loop.
MAX_NETLINK_READS: Final = 64


class AddressWatcher:
    """Sets ``changed`` whenever a link, an IPv4 address or an IPv4 route of this network
    namespace changes (rtnetlink notifications, no polling). The consumer clears it and
    re-plans (``ipv4_interfaces``, ``plan_sweeps``); the notification says only *that*
    something changed, the tables say what.

    Without netlink (not Linux, or refused) ``open`` returns False and the caller keeps its
    periodic re-planning only.
    """

    def __init__(self) -> None:
        self.changed = asyncio.Event()
        self._sock: socket.socket | None = None

    def open(self) -> bool:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE))
            sock.setblocking(False)
        except (OSError, AttributeError):
            return False
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        return True

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(MAX_NETLINK_READS):
            try:
                sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # ENOBUFS: notifications were lost; re-planning reads it all anyway
                break
        self.changed.set()
