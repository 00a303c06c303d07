"""Reverse DNS and NetBIOS names (services/discovery/names.py) against small real UDP servers on
127.0.0.1: a DNS server answering PTR the way a router's dnsmasq does (a compressed name), a
NetBIOS responder answering node status the way Windows and Samba do (a workgroup group name,
then the computer name), and servers that answer nonsense or nothing.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import cast

import pytest

from services.discovery.names import (
    HostNames,
    host_names,
    nbstat_query,
    netbios_name,
    parse_nbstat_answer,
    parse_ptr_answer,
    ptr_query,
    reverse_dns,
)
from services.discovery.snmp_identity import SnmpIdentity

Reply = Callable[[bytes], bytes | None]


class Responder(asyncio.DatagramProtocol):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.transport: asyncio.DatagramTransport | None = None
        self.asked = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.asked += 1
        answer = self.reply(data)
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)


async def _serve(reply: Reply) -> tuple[asyncio.DatagramTransport, Responder, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: Responder(reply), local_addr=("127.0.0.1", 0)
    )
    return transport, protocol, transport.get_extra_info("sockname")[1]


def dns_reply(query: bytes) -> bytes:
    """dnsmasq-style answer: the question echoed, the PTR's name compressed onto itself."""
    qid = query[:2]
    question = query[12:]
    header = qid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
    target = b"\x02fw\x06office\x03lan\x00"
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 12, 1, 300, len(target)) + target
    return header + question + answer


def nbstat_reply(query: bytes) -> bytes:
    qid = query[:2]
    names = [
        (b"WORKGROUP", 0x00, 0x8400),  # group name: not the host
        (b"FILESRV01", 0x00, 0x0400),
        (b"FILESRV01", 0x20, 0x0400),
    ]
    body = (
        bytes([len(names)])
        + b"".join(
            n.ljust(15, b" ") + bytes([suffix]) + struct.pack("!H", flags)
            for n, suffix, flags in names
        )
        + b"\x00" * 46
    )  # statistics
    rr = query[12 : 12 + 34] + struct.pack("!HHIH", 0x21, 1, 0, len(body)) + body
    return qid + struct.pack("!HHHHH", 0x8400, 0, 1, 0, 0) + rr


@pytest.fixture
async def servers() -> AsyncIterator[tuple[int, int]]:
    dns, _, dns_port = await _serve(dns_reply)
    nb, _, nb_port = await _serve(nbstat_reply)
    try:
        yield dns_port, nb_port
    finally:
        dns.close()
        nb.close()


async def test_names_from_the_lans_dns_and_netbios(servers: tuple[int, int]) -> None:
    dns_port, nb_port = servers
    assert await reverse_dns("198.18.0.1", "127.0.0.1", port=dns_port) == "fw"
    assert await netbios_name("127.0.0.1", port=nb_port) == "FILESRV01"
    both = await host_names("127.0.0.1", "127.0.0.1", dns_port=dns_port, netbios_port=nb_port)
    assert both == HostNames(rdns="fw", netbios="FILESRV01")


async def test_silence_and_nonsense_are_no_name() -> None:
    silent, _, silent_port = await _serve(lambda q: None)
    garbage, _, garbage_port = await _serve(lambda q: b"\x00\x01garbage" + q[:1] * 3)
    wrong_id, _, wrong_port = await _serve(lambda q: b"\xff\xff" + dns_reply(q)[2:])
    try:
        started = time.monotonic()
        assert await reverse_dns("198.18.0.1", "127.0.0.1", 0.3, silent_port) == ""
        assert await netbios_name("127.0.0.1", 0.3, silent_port) == ""
        assert time.monotonic() - started < 1.5
        assert await reverse_dns("198.18.0.1", "127.0.0.1", 0.3, garbage_port) == ""
        assert await netbios_name("127.0.0.1", 0.3, garbage_port) == ""
        assert await reverse_dns("198.18.0.1", "127.0.0.1", 0.3, wrong_port) == ""
        assert await host_names("127.0.0.1", None, timeout_s=0.3, netbios_port=silent_port) == (
            HostNames()
        )
    finally:
        for t in (silent, garbage, wrong_id):
            t.close()


def test_parsers_survive_every_truncation() -> None:
    good = dns_reply(ptr_query("198.18.0.1", 7))
    assert parse_ptr_answer(good, 7) == "fw.office.lan"
    nb = nbstat_reply(nbstat_query(9))
    assert parse_nbstat_answer(nb, 9) == "FILESRV01"
    for cut in range(len(good)):
        assert parse_ptr_answer(good[:cut], 7) in ("", "fw.office.lan")
    for cut in range(len(nb)):
        assert isinstance(parse_nbstat_answer(nb[:cut], 9), str)
    # A compression pointer to itself must not recurse forever.
    loop = good[:12] + b"\xc0\x0c" + good[14:]
    assert parse_ptr_answer(loop, 7) == ""


def test_name_order_sysname_mdns_rdns_netbios_before_placeholder() -> None:
    from services.discovery.inventory import best_name

    no_sysname = SnmpIdentity(sys_name="<private>")
    assert best_name(no_sysname, [], {"rdns": "fw", "netbios": "FW01"})[0] == "fw"
    assert best_name(no_sysname, [], {"netbios": "FW01"})[0] == "FW01"
    assert best_name(SnmpIdentity(sys_name="core-fw"), [], {"rdns": "fw"})[0] == "core-fw"
    name, names = best_name(None, [], {"rdns": "fw"})
    assert name == "fw" and names["rdns"] == "fw"


# ---- one host answering for several addresses is not an IP conflict ----


def test_two_cards_answering_for_both_addresses_are_one_host() -> None:
    from services.discovery.multihomed import MultiHomed, split_conflicts

    dock, wifi = "00:11:22:00:00:01", "00:11:22:00:00:02"
    laptop = {"198.18.0.20": frozenset({dock, wifi}), "198.18.0.21": frozenset({dock, wifi})}
    conflicts, hosts = split_conflicts({**laptop, "198.18.0.30": frozenset({"aa:00:00:00:00:30"})})
    assert conflicts == {}
    assert hosts == [MultiHomed(frozenset({dock, wifi}), frozenset(laptop))]


def test_three_cards_are_one_host_too() -> None:
    from services.discovery.multihomed import split_conflicts

    nas = frozenset({"00:11:32:00:00:01", "00:11:32:00:00:02", "00:11:32:00:00:03"})
    conflicts, hosts = split_conflicts({f"198.18.0.{i}": nas for i in (40, 41, 42)})
    assert conflicts == {} and len(hosts) == 1


def test_a_real_conflict_is_still_reported() -> None:
    from services.discovery.multihomed import split_conflicts

    printer, intruder = "00:80:77:00:00:60", "02:00:00:00:00:99"
    answers = {
        "198.18.0.60": frozenset({printer, intruder}),  # the intruder took the address
        "198.18.0.61": frozenset({intruder}),  # and answers for its own too
    }
    conflicts, hosts = split_conflicts(answers)
    assert conflicts == {"198.18.0.60": frozenset({printer, intruder})} and hosts == []
    # Both devices fighting over two addresses, one of them answering a third of its own.
    a, b = "00:00:00:00:00:0a", "00:00:00:00:00:0b"
    both = frozenset({a, b})
    answers = {"198.18.0.70": both, "198.18.0.71": both, "198.18.0.72": frozenset({a})}
    assert set(split_conflicts(answers)[0]) == {"198.18.0.70", "198.18.0.71"}
