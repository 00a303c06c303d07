"""A terse embedded mDNS responder: answers for its own services, never lists its types.

Many embedded responders (print servers, old cameras, IoT modules) answer a question for
their own service type (``_ipp._tcp.local.`` PTR), instance (SRV, TXT) and host name (A), but
not the DNS-SD service-type enumeration (``_services._dns-sd._udp.local.``, RFC 6763
section 9), and send no unsolicited announcements. python-zeroconf's responder always answers
the enumeration, so this one is written from its record classes.

Run as ``python -m simsite.terse_mdns CONFIG.json`` in the device's namespace (the same
config as ``simsite.agent``; listeners are ignored). Writes the ready file once it listens.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import struct
import sys
from pathlib import Path
from typing import cast

from zeroconf import DNSAddress, DNSIncoming, DNSOutgoing, DNSPointer, DNSRecord, DNSService
from zeroconf import DNSText as ZDNSText
from zeroconf.const import (
    _CLASS_IN,
    _DNS_HOST_TTL,
    _DNS_OTHER_TTL,
    _FLAGS_AA,
    _FLAGS_QR_RESPONSE,
    _MDNS_ADDR,
    _MDNS_PORT,
    _TYPE_A,
    _TYPE_ANY,
    _TYPE_PTR,
    _TYPE_SRV,
    _TYPE_TXT,
)

from .agent import txt_rdata
from .agentcfg import AgentConfig

#: The question this responder never answers.
ENUMERATION = "_services._dns-sd._udp.local."


def _records(cfg: AgentConfig) -> list[DNSRecord]:
    address = socket.inet_aton(cfg.ip)
    out: list[DNSRecord] = []
    hosts: set[str] = set()
    for ad in cfg.services:
        instance = f"{ad.instance}.{ad.type_}"
        out.append(DNSPointer(ad.type_, _TYPE_PTR, _CLASS_IN, _DNS_OTHER_TTL, instance))
        out.append(
            DNSService(instance, _TYPE_SRV, _CLASS_IN, _DNS_HOST_TTL, 0, 0, ad.port, ad.host)
        )
        out.append(ZDNSText(instance, _TYPE_TXT, _CLASS_IN, _DNS_OTHER_TTL, txt_rdata(ad.txt)))
        hosts.add(ad.host)
    for host in sorted(hosts):
        out.append(DNSAddress(host, _TYPE_A, _CLASS_IN, _DNS_HOST_TTL, address))
    return out


def answer(question_name: str, question_type: int, records: list[DNSRecord]) -> list[DNSRecord]:
    """The records that answer one question, plus the ones a resolver needs with them."""
    name = question_name.lower()
    if name == ENUMERATION:
        return []
    direct = [r for r in records if r.name.lower() == name and question_type in (r.type, _TYPE_ANY)]
    extra: list[DNSRecord] = []
    for record in direct:
        if isinstance(record, DNSPointer):
            target = record.alias.lower()
            extra += [r for r in records if r.name.lower() == target]
        if isinstance(record, DNSService):
            extra += [r for r in records if r.name.lower() == record.server.lower()]
    for record in list(extra):
        if isinstance(record, DNSService):
            extra += [r for r in records if r.name.lower() == record.server.lower()]
    return list(dict.fromkeys([*direct, *extra]))


class Responder(asyncio.DatagramProtocol):
    def __init__(self, cfg: AgentConfig) -> None:
        self.records = _records(cfg)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = DNSIncoming(data)
        except Exception:  # noqa: BLE001 - a malformed packet on the LAN: ignore it
            return
        if not message.is_query():
            return
        found: list[DNSRecord] = []
        for question in message.questions:
            found += answer(question.name, question.type, self.records)
        if not found or self.transport is None:
            return
        out = DNSOutgoing(_FLAGS_QR_RESPONSE | _FLAGS_AA)
        for record in dict.fromkeys(found):
            out.add_answer_at_time(record, 0)
        for packet in out.packets():
            self.transport.sendto(packet, (_MDNS_ADDR, _MDNS_PORT))
            if addr[1] != _MDNS_PORT:  # a legacy one-shot query: answer it directly too
                self.transport.sendto(packet, addr)


def _socket(ip: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("", _MDNS_PORT))
    membership = socket.inet_aton(_MDNS_ADDR) + socket.inet_aton(ip)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, struct.pack("B", 255))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    return sock


async def serve(cfg: AgentConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    transport, _ = await loop.create_datagram_endpoint(lambda: Responder(cfg), sock=_socket(cfg.ip))
    await asyncio.to_thread(Path(cfg.ready_file).write_text, "ready\n")
    try:
        await stop.wait()
    finally:
        transport.close()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m simsite.terse_mdns CONFIG.json", file=sys.stderr)
        return 2
    asyncio.run(serve(AgentConfig.load(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
