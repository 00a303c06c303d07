"""ARP on a raw AF_PACKET socket: active sweeps of a subnet and passive listening.

One :class:`ArpSocket` per interface, owned by the discovery service; each sweep names its
own sender address, because one interface may carry several subnets and a host configured
with ``arp_ignore=2`` answers only a request whose sender address is in its own subnet. Its
reader callback runs on the event loop (``loop.add_reader``), so every ARP frame the host
sees turns into an :class:`ArpSighting` handed to the listener, between sweeps (passive) and
during them (the replies to our requests, marked ``active``).

A sweep sends one ARP request per address at a bounded rate and asks an address that stayed
silent again ``timeout_s`` after its own request (``attempts`` in all); the retries interleave
with the first pass, so a /24 takes about two sends' worth of time plus one timeout. The rate
keeps the appliance polite on a busy LAN: 500 requests/s is ~240 kbit/s, less than arp-scan's
default bandwidth.

Needs CAP_NET_RAW (root, or the capability on the service); without it ``open`` raises
:class:`ArpNotPermitted`, whose text names the capability.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from core.logs import get_log

log = get_log("discovery")

ETH_P_ARP: Final = 0x0806
ETH_P_IP: Final = 0x0800
ARPHRD_ETHER: Final = 1
ARP_REQUEST: Final = 1
ARP_REPLY: Final = 2
PACKET_OUTGOING: Final = 4  # sll_pkttype of frames this host sent
BROADCAST: Final = b"\xff" * 6
ETH_HEADER = struct.Struct("!6s6sH")
ARP_BODY = struct.Struct("!HHBBH6s4s6s4s")
#: Ethernet's minimum frame without FCS; shorter frames are padded by us, not the driver.
MIN_FRAME_BYTES: Final = 60
#: Frames read per reader callback, so one flood cannot starve the loop.
MAX_FRAMES_PER_WAKEUP: Final = 256
#: Send granularity: requests go out in small bursts every tick.
SEND_TICK_S: Final = 0.005


class ArpNotPermitted(PermissionError):
    """The process may not open raw sockets (needs CAP_NET_RAW)."""


@dataclass(frozen=True)
class ArpSighting:
    mac: str  # lower-case colon form
    ip: str
    at: float  # time.monotonic() when received
    active: bool  # a reply to one of our requests (during a sweep)


@dataclass(frozen=True)
class ArpPacket:
    op: int
    sender_mac: bytes
    sender_ip: str
    target_mac: bytes
    target_ip: str


@dataclass(frozen=True)
class SweepResult:
    """Who answered for which address during one sweep of one subnet."""

    subnet: str
    answers: dict[str, frozenset[str]]  # ip -> MACs that replied for it
    sent: int
    duration_s: float

    @property
    def hosts(self) -> int:
        return len(self.answers)


def build_request(src_mac: bytes, src_ip: str, target_ip: str) -> bytes:
    """A broadcast "who has target_ip? tell src_ip" frame, padded to the Ethernet minimum."""
    arp = ARP_BODY.pack(
        ARPHRD_ETHER,
        ETH_P_IP,
        6,
        4,
        ARP_REQUEST,
        src_mac,
        socket.inet_aton(src_ip),
        b"\x00" * 6,
        socket.inet_aton(target_ip),
    )
    frame = ETH_HEADER.pack(BROADCAST, src_mac, ETH_P_ARP) + arp
    return frame.ljust(MIN_FRAME_BYTES, b"\x00")


def parse_frame(frame: bytes) -> ArpPacket | None:
    """The ARP packet in an Ethernet frame, or None for anything else (never raises)."""
    if len(frame) < ETH_HEADER.size + ARP_BODY.size:
        return None
    _dst, _src, ethertype = ETH_HEADER.unpack_from(frame)
    if ethertype != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = ARP_BODY.unpack_from(frame, ETH_HEADER.size)
    if htype != ARPHRD_ETHER or ptype != ETH_P_IP or hlen != 6 or plen != 4:
        return None
    if op not in (ARP_REQUEST, ARP_REPLY):
        return None
    return ArpPacket(op, sha, socket.inet_ntoa(spa), tha, socket.inet_ntoa(tpa))


def _usable_sender(mac: bytes, ip: str) -> bool:
    # 0.0.0.0 is an ARP probe (RFC 5227): the sender has no address yet. Multicast, broadcast
    # and all-zero MACs are never a host's own address.
    return ip != "0.0.0.0" and not (mac[0] & 1) and mac != b"\x00" * 6


@dataclass
class _Pending:
    targets: set[str]
    answers: dict[str, set[str]] = field(default_factory=dict)
    all_answered: asyncio.Event = field(default_factory=asyncio.Event)


class ArpSocket:
    """A raw ARP socket on one interface; ``on_sighting`` gets every host seen."""

    def __init__(self, ifname: str, on_sighting: Callable[[ArpSighting], None]) -> None:
        self.ifname = ifname
        self.on_sighting = on_sighting
        self.mac = b""
        self._sock: socket.socket | None = None
        self._pending: _Pending | None = None
        self.frames_seen = 0

    def open(self) -> None:
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        except PermissionError as exc:
            raise ArpNotPermitted(
                "cannot open a raw ARP socket: the process needs the CAP_NET_RAW capability "
                "(run outpost as root, or grant it: AmbientCapabilities=CAP_NET_RAW in the "
                "systemd unit)"
            ) from exc
        try:
            sock.bind((self.ifname, ETH_P_ARP))
            sock.setblocking(False)
            self.mac = sock.getsockname()[4][:6]
        except OSError:
            sock.close()
            raise
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            # RuntimeError: the loop is already closed, nothing is reading any more.
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        now = time.monotonic()
        for _ in range(MAX_FRAMES_PER_WAKEUP):
            try:
                frame, address = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("arp.receive_failed", interface=self.ifname, error=str(exc))
                return
            if len(address) > 2 and address[2] == PACKET_OUTGOING:
                continue
            self.frames_seen += 1
            packet = parse_frame(frame)
            if packet is None or not _usable_sender(packet.sender_mac, packet.sender_ip):
                continue
            if packet.sender_mac == self.mac:
                continue
            mac = packet.sender_mac.hex(":")
            pending = self._pending
            active = False
            if (
                pending is not None
                and packet.op == ARP_REPLY
                and packet.sender_ip in pending.targets
            ):
                active = True
                pending.answers.setdefault(packet.sender_ip, set()).add(mac)
                if len(pending.answers) == len(pending.targets):
                    pending.all_answered.set()
            self.on_sighting(ArpSighting(mac, packet.sender_ip, now, active))

    async def _send(self, frame: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise OSError(f"ARP socket on {self.ifname} is closed")
        while True:
            try:
                sock.send(frame)
                return
            except BlockingIOError:
                await asyncio.sleep(SEND_TICK_S)  # the interface queue is full: let it drain

    async def sweep(
        self,
        subnet: str,
        targets: Iterable[str],
        *,
        src_ip: str,
        rate_pps: float,
        timeout_s: float,
        attempts: int,
    ) -> SweepResult:
        """Ask every target from ``src_ip`` (the appliance's own address in ``subnet``);
        return who answered. One sweep per socket at a time.

        Each silent address is asked again ``timeout_s`` after its own previous request, not
        after the whole pass: retries interleave with the first pass and the sweep ends one
        timeout after the last request, never later.
        """
        if self._pending is not None:
            raise RuntimeError(f"a sweep is already running on {self.ifname}")
        started = time.monotonic()
        ordered = sorted(set(targets), key=ipaddress.IPv4Address)
        pending = _Pending(set(ordered))
        self._pending = pending
        interval = 1.0 / rate_pps
        # (due time, sequence, ip, attempts left after this one)
        queue = [(started + i * interval, i, ip, attempts - 1) for i, ip in enumerate(ordered)]
        heapq.heapify(queue)
        sequence = len(queue)
        sent = 0
        next_slot = started
        last_sent = started
        try:
            while queue and not pending.all_answered.is_set():
                due, _, ip, left = heapq.heappop(queue)
                if ip in pending.answers:
                    continue
                at = max(due, next_slot)
                delay = at - time.monotonic()
                if delay > SEND_TICK_S:
                    await asyncio.sleep(delay)
                    if ip in pending.answers:
                        continue
                await self._send(build_request(self.mac, src_ip, ip))
                sent += 1
                last_sent = time.monotonic()
                next_slot = max(next_slot, at) + interval
                if left > 0:
                    heapq.heappush(queue, (last_sent + timeout_s, sequence, ip, left - 1))
                    sequence += 1
            remaining = last_sent + timeout_s - time.monotonic()
            if remaining > 0 and not pending.all_answered.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pending.all_answered.wait(), remaining)
        finally:
            self._pending = None
        answers = {ip: frozenset(macs) for ip, macs in pending.answers.items()}
        return SweepResult(subnet, answers, sent, time.monotonic() - started)
