"""ARP as liveness evidence for on-link hosts: one ARP request per poll, any ARP frame back.

Discovery sweeps the subnet every few minutes, which is too rare to tell within two polls that
a host left. So each poll asks an on-link target once by ARP (a broadcast "who has", repeated
once half-way through ``timeout_s``) and counts any ARP frame the host sends meanwhile (its
reply, or a request of its own) as an answer. A host that ignores pings still answers ARP:
without ARP it could not talk on the LAN at all. A host behind a router is never asked (its
ARP would be the router's): :meth:`ArpProber.interface_for` says which targets are on-link,
from this namespace's routing table (``/proc/net/route``, routes without RTF_GATEWAY).

Needs CAP_NET_RAW (an AF_PACKET socket); without it :class:`ArpUnavailable` says so once and
polling goes on with the other methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from core.logs import get_log
from services.discovery.arp import (
    ARP_REPLY,
    ARP_REQUEST,
    ETH_P_ARP,
    PACKET_OUTGOING,
    build_request,
    parse_frame,
)

log = get_log("polling")

ROUTE_TABLE: Final = Path("/proc/net/route")
RTF_UP: Final = 0x1
RTF_GATEWAY: Final = 0x2
FRAMES_PER_WAKEUP: Final = 256


class ArpUnavailable(OSError):
    """No AF_PACKET socket (no CAP_NET_RAW): ARP evidence is not collected."""


@dataclass(frozen=True)
class Route:
    network: int  # host byte order
    mask: int
    interface: str
    gateway: bool


def read_routes(path: Path = ROUTE_TABLE) -> list[Route]:
    """The IPv4 main routing table of this namespace (empty when unreadable)."""
    try:
        lines = path.read_text().splitlines()[1:]
    except OSError:
        return []
    out = []
    for line in lines:
        f = line.split()
        if len(f) < 8:
            continue
        with contextlib.suppress(ValueError):
            flags = int(f[3], 16)
            if not flags & RTF_UP:
                continue
            # /proc/net/route prints addresses as little-endian hex of the network-order bytes.
            dest = struct.unpack("!I", struct.pack("<I", int(f[1], 16)))[0]
            mask = struct.unpack("!I", struct.pack("<I", int(f[7], 16)))[0]
            out.append(Route(dest, mask, f[0], bool(flags & RTF_GATEWAY)))
    return out


def onlink_interface(ip: str, routes: list[Route]) -> str:
    """The interface ``ip`` is directly reachable on, or "" when it is behind a router (or
    not routed at all: loopback addresses live in the local table, not here)."""
    try:
        addr = struct.unpack("!I", socket.inet_aton(ip))[0]
    except OSError:
        return ""
    best: Route | None = None
    for r in routes:
        if addr & r.mask == r.network and (best is None or r.mask > best.mask):
            best = r
    return best.interface if best is not None and not best.gateway else ""


def source_address(ip: str) -> str:
    """The address this host would send from towards ``ip`` (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((ip, 9))
        return str(s.getsockname()[0])


class ArpProber:
    """One AF_PACKET socket per LAN interface, shared by every concurrent poll."""

    def __init__(self, route_table: Path = ROUTE_TABLE) -> None:
        self.route_table = route_table
        self._sockets: dict[str, tuple[socket.socket, bytes]] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self.problem = ""  # why ARP is unavailable, once known

    def interface_for(self, ip: str) -> str:
        return onlink_interface(ip, read_routes(self.route_table))

    def _open(self, interface: str) -> tuple[socket.socket, bytes]:
        found = self._sockets.get(interface)
        if found is not None:
            return found
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        except PermissionError as exc:
            self.problem = (
                "cannot open an ARP socket: run outpost with CAP_NET_RAW (systemd: "
                "AmbientCapabilities=CAP_NET_RAW); hosts that ignore pings are then judged "
                "by TCP and SNMP only"
            )
            raise ArpUnavailable(self.problem) from exc
        try:
            sock.bind((interface, ETH_P_ARP))
            sock.setblocking(False)
            mac = bytes(sock.getsockname()[4][:6])
        except OSError:
            sock.close()
            raise
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, sock)
        self._sockets[interface] = (sock, mac)
        return sock, mac

    def _readable(self, sock: socket.socket) -> None:
        for _ in range(FRAMES_PER_WAKEUP):
            try:
                frame, address = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(address) > 2 and address[2] == PACKET_OUTGOING:
                continue
            packet = parse_frame(frame)
            if packet is None or packet.op not in (ARP_REQUEST, ARP_REPLY):
                continue
            for future in self._waiters.pop(packet.sender_ip, []):
                if not future.done():
                    future.set_result(None)

    async def probe(self, ip: str, timeout_s: float) -> bool | None:
        """True: the host sent ARP within ``timeout_s``; False: silent; None: not asked
        (behind a router, or no ARP socket)."""
        interface = self.interface_for(ip)
        if not interface or self.problem:
            return None
        try:
            sock, mac = self._open(interface)
            src = source_address(ip)
        except ArpUnavailable:
            return None
        except OSError as exc:
            log.warning("arp.probe_failed", device=ip, interface=interface, error=str(exc))
            return None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(ip, []).append(future)
        frame = build_request(mac, src, ip)
        try:
            for _ in range(2):  # once, then again half-way
                with contextlib.suppress(BlockingIOError):
                    sock.send(frame)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), timeout_s / 2)
                if future.done():
                    return True
            return False
        except OSError as exc:
            log.warning("arp.probe_failed", device=ip, error=str(exc))
            return None
        finally:
            waiters = self._waiters.get(ip, [])
            if future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._waiters[ip]
            if not future.done():
                future.cancel()

    def close(self) -> None:
        loop = None
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
        for sock, _ in self._sockets.values():
            if loop is not None:
                with contextlib.suppress(Exception):
                    loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()
        for futures in self._waiters.values():
            for f in futures:
                if not f.done():
                    f.cancel()
        self._waiters.clear()
