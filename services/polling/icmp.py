"""ICMP echo (ping) from asyncio, without shelling out: loss, latency and jitter per address.

One socket serves every ping of the process. A raw socket (needs root or CAP_NET_RAW) is tried
first; without it, an unprivileged "ping socket" (SOCK_DGRAM/IPPROTO_ICMP, allowed for the
groups in ``net.ipv4.ping_group_range``). With a ping socket the kernel picks the echo
identifier, so replies are matched by (address, sequence) alone, which is just as exact for us:
the sequence numbers are ours and unique among the requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

from core.logs import get_log

log = get_log("polling")

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0
PAYLOAD = b"outpost-ping-0123456789abcdef"  # 29 bytes: small, and recognisable in a capture
SEQ_SPACE = 0x10000
RECV_BYTES = 2048


class IcmpUnavailable(Exception):
    """Neither a raw nor a ping socket could be opened; the message says what to grant."""


@dataclass(frozen=True)
class PingStats:
    address: str
    sent: int
    received: int
    rtts_ms: tuple[float, ...]
    error: str = ""  # e.g. "host unreachable" when the kernel refused to send

    @property
    def loss_pct(self) -> float:
        return 100.0 if self.sent == 0 else 100.0 * (self.sent - self.received) / self.sent

    @property
    def rtt_ms(self) -> float | None:
        return sum(self.rtts_ms) / len(self.rtts_ms) if self.rtts_ms else None

    @property
    def jitter_ms(self) -> float | None:
        """Mean absolute difference between consecutive round trips (RFC 3550's idea)."""
        if len(self.rtts_ms) < 2:
            return None
        diffs = [abs(b - a) for a, b in zip(self.rtts_ms, self.rtts_ms[1:], strict=False)]
        return sum(diffs) / len(diffs)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int) -> bytes:
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    csum = checksum(header + PAYLOAD)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, csum, ident, seq) + PAYLOAD


def _open_socket() -> tuple[socket.socket, bool]:
    """(socket, raw?) or IcmpUnavailable naming the capability or sysctl to grant."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        raw = True
    except PermissionError:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
            raw = False
        except PermissionError:
            gid = os.getgid()
            raise IcmpUnavailable(
                "cannot open an ICMP socket: run outpost with CAP_NET_RAW (systemd: "
                "AmbientCapabilities=CAP_NET_RAW) or allow unprivileged ping sockets with "
                f"sysctl net.ipv4.ping_group_range='{gid} {gid}'"
            ) from None
    sock.setblocking(False)
    return sock, raw


class Pinger:
    """Sends echo requests and matches replies; one instance per process is enough."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self.raw = False
        self._ident = random.randrange(1, 0xFFFF)
        self._seq = random.randrange(SEQ_SPACE)
        # seq -> (address, monotonic send time, future of the rtt in ms)
        self._pending: dict[int, tuple[str, float, asyncio.Future[float]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> None:
        if self._sock is not None:
            return
        self._sock, self.raw = _open_socket()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._on_readable)
        log.info("icmp.opened", mode="raw" if self.raw else "ping-socket")

    def close(self) -> None:
        if self._sock is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        for _, _, future in self._pending.values():
            if not future.done():
                future.cancel()
        self._pending.clear()

    def _on_readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data, addr = self._sock.recvfrom(RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # an ICMP error queued for an earlier send; the ping just times out
            now = time.monotonic()
            if self.raw:
                if len(data) < 20:
                    continue
                data = data[(data[0] & 0x0F) * 4 :]  # skip the IP header
            if len(data) < 8:
                continue
            kind, _, _, ident, seq = struct.unpack("!BBHHH", data[:8])
            if kind != ICMP_ECHO_REPLY or (self.raw and ident != self._ident):
                continue
            entry = self._pending.get(seq)
            if entry is None or entry[0] != addr[0]:
                continue
            _, sent_at, future = entry
            if not future.done():
                future.set_result((now - sent_at) * 1000.0)

    def _next_seq(self) -> int:
        for _ in range(SEQ_SPACE):
            self._seq = (self._seq + 1) % SEQ_SPACE
            if self._seq not in self._pending:
                return self._seq
        raise RuntimeError("every ICMP sequence number is in flight")

    def _send(self, address: str) -> tuple[int, asyncio.Future[float]] | str:
        assert self._sock is not None and self._loop is not None
        seq = self._next_seq()
        future: asyncio.Future[float] = self._loop.create_future()
        try:
            self._sock.sendto(echo_request(self._ident, seq), (address, 0))
        except OSError as exc:
            return exc.strerror or type(exc).__name__
        # Real time on purpose, here and at the reply: the round-trip time is a measurement.
        self._pending[seq] = (address, time.monotonic(), future)
        return seq, future

    async def ping_many(
        self, addresses: Iterable[str], count: int, spacing_s: float, timeout_s: float
    ) -> dict[str, PingStats]:
        """Ping every address ``count`` times, all addresses in parallel; never raises."""
        self.open()
        targets = list(dict.fromkeys(addresses))
        waits: dict[str, list[asyncio.Future[float]]] = {a: [] for a in targets}
        errors: dict[str, str] = {}
        seqs: list[int] = []
        try:
            for round_no in range(count):
                if round_no:
                    await asyncio.sleep(spacing_s)
                for address in targets:
                    sent = self._send(address)
                    if isinstance(sent, str):
                        errors[address] = sent
                        continue
                    seqs.append(sent[0])
                    waits[address].append(sent[1])
            every = [f for fs in waits.values() for f in fs]
            if every:
                await asyncio.wait(every, timeout=timeout_s)
        finally:
            for seq in seqs:
                entry = self._pending.pop(seq, None)
                if entry is not None and not entry[2].done():
                    entry[2].cancel()
        out: dict[str, PingStats] = {}
        for address in targets:
            rtts = tuple(f.result() for f in waits[address] if f.done() and not f.cancelled())
            out[address] = PingStats(address, count, len(rtts), rtts, errors.get(address, ""))
        return out

    async def __aenter__(self) -> Pinger:
        self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.close()
