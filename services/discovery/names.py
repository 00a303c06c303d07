"""Names a host has besides sysName and mDNS: reverse DNS (PTR) and NetBIOS.

A gateway with no usable sysName and no mDNS (a pfSense on ADI Engineering hardware) used to
be listed as "(ADI Engineering, Inc. device)". Most LANs can name it anyway: the router's
DNS server answers PTR queries for its DHCP leases and its own address (RFC 1035, in-addr.arpa
names of RFC 1035 section 3.5), and Windows hosts and Samba servers answer a NetBIOS node
status request (RFC 1002 section 4.2.17/18, UDP 137) with their computer name.

Both are asked directly, over UDP, to addresses on the LAN only: PTR to the LAN's DNS server
(by default the default gateway), NetBIOS to the host itself. The machine's own resolver is
never used: it may forward a LAN address to a public resolver. One datagram each, one short
timeout, no retries; any malformed answer is "no name" (everything is sanitised).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import struct
from dataclasses import dataclass
from typing import Final

from services.discovery.sanitize import clean_name

DNS_PORT: Final = 53
NETBIOS_PORT: Final = 137
#: One answer from a LAN host or router takes milliseconds; a silent one costs this much.
TIMEOUT_S: Final = 0.5
#: Longest datagram read (a node status answer lists at most 255 names of 18 bytes).
MAX_DATAGRAM_BYTES: Final = 4096
_TYPE_PTR, _CLASS_IN = 12, 1
_TYPE_NBSTAT = 0x21
_NB_GROUP_FLAG = 0x8000  # name flags: a group name (a workgroup), not the host's own
_NB_WORKSTATION_SUFFIX = 0x00
_NB_SERVER_SUFFIX = 0x20


@dataclass(frozen=True)
class HostNames:
    """What the LAN calls one address ("" when it does not say)."""

    rdns: str = ""  # the PTR name's first label ("fw" of "fw.office.lan")
    netbios: str = ""  # the NetBIOS computer name ("FILESRV01")


class _OneAnswer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.answer.done():
            self.answer.set_result(data[:MAX_DATAGRAM_BYTES])

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def _exchange(host: str, port: int, payload: bytes, timeout_s: float) -> bytes | None:
    """Send one datagram, return the first answer from that address (None: silence/error)."""
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            _OneAnswer, remote_addr=(host, port), family=socket.AF_INET
        )
    except OSError:
        return None
    try:
        transport.sendto(payload)
        return await asyncio.wait_for(protocol.answer, timeout_s)
    except (TimeoutError, OSError):
        return None
    finally:
        transport.close()


# ---- reverse DNS (RFC 1035) ----


def ptr_query(ip: str, query_id: int) -> bytes:
    """A recursive PTR query for ``ip``'s in-addr.arpa name."""
    name = ipaddress.IPv4Address(ip).reverse_pointer
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return (
        struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)
        + qname
        + struct.pack("!HH", _TYPE_PTR, _CLASS_IN)
    )


def _read_name(data: bytes, offset: int, depth: int = 0) -> tuple[str, int]:
    """A (possibly compressed) domain name at ``offset``; (name, offset after it)."""
    labels: list[str] = []
    while True:
        if offset >= len(data) or depth > 16:
            raise ValueError("name runs past the message")
        length = data[offset]
        if length == 0:
            return ".".join(labels), offset + 1
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise ValueError("truncated pointer")
            pointer = ((length & 0x3F) << 8) | data[offset + 1]
            rest, _ = _read_name(data, pointer, depth + 1)
            return ".".join([*labels, rest] if rest else labels), offset + 2
        labels.append(data[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length


def parse_ptr_answer(data: bytes, query_id: int) -> str:
    """The first PTR name of a DNS answer to ``query_id`` ("" for anything else)."""
    try:
        qid, flags, qd, an, _ns, _ar = struct.unpack_from("!HHHHHH", data)
        if qid != query_id or not flags & 0x8000 or flags & 0x000F or an == 0:
            return ""
        offset = 12
        for _ in range(qd):
            _, offset = _read_name(data, offset)
            offset += 4
        for _ in range(an):
            _, offset = _read_name(data, offset)
            rtype, _rclass, _ttl, rdlength = struct.unpack_from("!HHIH", data, offset)
            offset += 10
            if rtype == _TYPE_PTR:
                name, _ = _read_name(data, offset)
                return name
            offset += rdlength
    except (struct.error, ValueError):
        return ""
    return ""


async def reverse_dns(
    ip: str, server: str, timeout_s: float = TIMEOUT_S, port: int = DNS_PORT
) -> str:
    """``ip``'s PTR name as ``server`` (the LAN's DNS) knows it: its first label, "" if none."""
    query_id = random.randrange(1 << 16)
    answer = await _exchange(server, port, ptr_query(ip, query_id), timeout_s)
    name = parse_ptr_answer(answer, query_id) if answer else ""
    return clean_name(name.split(".", 1)[0]) if name else ""


# ---- NetBIOS node status (RFC 1002) ----


def _encode_netbios(name: bytes) -> bytes:
    """First-level encoding: each half-byte as a letter 'A'+n (RFC 1001 14.1), 32 bytes."""
    padded = name.ljust(16, b"\x00")[:16]
    encoded = bytes(b for c in padded for b in (ord("A") + (c >> 4), ord("A") + (c & 0xF)))
    return bytes([32]) + encoded + b"\x00"


def nbstat_query(query_id: int) -> bytes:
    """A node status request for "*" (any host answers for its own names)."""
    return (
        struct.pack("!HHHHHH", query_id, 0x0000, 1, 0, 0, 0)
        + _encode_netbios(b"*")
        + struct.pack("!HH", _TYPE_NBSTAT, _CLASS_IN)
    )


def parse_nbstat_answer(data: bytes, query_id: int) -> str:
    """The host's computer name from a node status answer: the first unique (not group)
    name with the workstation suffix, else the server suffix ("" when none)."""
    try:
        qid, flags, _qd, an, _ns, _ar = struct.unpack_from("!HHHHHH", data)
        if qid != query_id or not flags & 0x8000 or an == 0:
            return ""
        _, offset = _read_name(data, 12)
        rtype, _rclass, _ttl, _rdlength = struct.unpack_from("!HHIH", data, offset)
        if rtype != _TYPE_NBSTAT:
            return ""
        offset += 10
        count = data[offset]
        offset += 1
        names: list[tuple[int, str]] = []
        for _ in range(count):
            raw = data[offset : offset + 15]
            suffix = data[offset + 15]
            (flags_name,) = struct.unpack_from("!H", data, offset + 16)
            offset += 18
            if not flags_name & _NB_GROUP_FLAG:
                names.append((suffix, raw.decode("ascii", "replace").strip(" \x00")))
    except (struct.error, ValueError, IndexError):
        return ""
    for wanted in (_NB_WORKSTATION_SUFFIX, _NB_SERVER_SUFFIX):
        for suffix, name in names:
            if suffix == wanted and name:
                return clean_name(name)
    return ""


async def netbios_name(ip: str, timeout_s: float = TIMEOUT_S, port: int = NETBIOS_PORT) -> str:
    """The NetBIOS computer name ``ip`` answers a node status request with ("" if none)."""
    query_id = random.randrange(1 << 16)
    answer = await _exchange(ip, port, nbstat_query(query_id), timeout_s)
    return parse_nbstat_answer(answer, query_id) if answer else ""


async def host_names(
    ip: str,
    dns_server: str | None,
    *,
    timeout_s: float = TIMEOUT_S,
    dns_port: int = DNS_PORT,
    netbios_port: int = NETBIOS_PORT,
) -> HostNames:
    """Both names of one address, asked at once (``dns_server`` None: no PTR query)."""
    rdns_task = reverse_dns(ip, dns_server, timeout_s, dns_port) if dns_server else _nothing()
    rdns, netbios = await asyncio.gather(rdns_task, netbios_name(ip, timeout_s, netbios_port))
    return HostNames(rdns=rdns, netbios=netbios)


async def _nothing() -> str:
    return ""
