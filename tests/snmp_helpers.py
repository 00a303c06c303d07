"""Helpers of the SNMP tests: a scriptable bad agent on 127.0.0.1 and net-snmp's text format."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from types import TracebackType

from services.snmp import ber
from services.snmp.message import Message, decode_message, encode_message
from services.snmp.values import (
    Counter32,
    Counter64,
    EndOfMibView,
    Gauge32,
    Integer,
    IpAddress,
    NoSuchInstance,
    NoSuchObject,
    Null,
    ObjectIdentifier,
    OctetString,
    Opaque,
    SnmpValue,
    TimeTicks,
    Varbind,
    oid_to_str,
)

# handler(request) -> datagrams to send back (raw bytes), or a coroutine producing them.
Handler = Callable[[Message], Iterable[bytes]]


def response(request: Message, varbinds: Iterable[Varbind], **changes: int | bytes) -> bytes:
    """The Response to ``request`` with ``varbinds`` (fields overridable, e.g. request_id=5)."""
    fields: dict[str, object] = {
        "version": request.version,
        "community": request.community,
        "pdu_type": ber.RESPONSE,
        "request_id": request.request_id,
        "error_status": 0,
        "error_index": 0,
        "varbinds": tuple(varbinds),
    }
    fields.update(changes)
    return encode_message(Message(**fields))  # type: ignore[arg-type]


class FakeAgent(asyncio.DatagramProtocol):
    """A UDP agent on 127.0.0.1 that answers whatever ``handler`` says (or nothing).

    ``reply_from`` (a loopback address) sends the answers from a second socket bound there,
    as a spoofer or a multi-homed device answering from another interface would.
    ``delay_s`` holds every answer back.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        reply_from: str | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.handler = handler
        self.requests: list[Message] = []
        self.host = host
        self.reply_from = reply_from
        self.delay_s = delay_s
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._other: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> FakeAgent:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=(self.host, 0)
        )
        self.port = self._transport.get_extra_info("sockname")[1]
        if self.reply_from is not None:
            self._other, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=(self.reply_from, 0)
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for transport in (self._transport, self._other):
            if transport is not None:
                transport.close()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = decode_message(data)
        self.requests.append(request)
        answers = list(self.handler(request))
        sender = self._other if self.reply_from is not None else self._transport
        assert sender is not None
        if self.delay_s:
            loop = asyncio.get_running_loop()
            for answer in answers:
                loop.call_later(self.delay_s, sender.sendto, answer, addr)
        else:
            for answer in answers:
                sender.sendto(answer, addr)


# ---- net-snmp's output (-On -Oe -Ox --hexOutputLength=0) ----

NETSNMP_FORMAT = ["-On", "-Oe", "-Ox", "--hexOutputLength=0"]
_TIMETICKS = re.compile(r"Timeticks: \((\d+)\).*")


def netsnmp_line(vb: Varbind) -> str:
    """Our varbind as snmpget/snmpbulkwalk print it with NETSNMP_FORMAT."""
    return f".{oid_to_str(vb.oid)} = {_netsnmp_value(vb.value)}"


def _netsnmp_value(value: SnmpValue) -> str:
    if isinstance(value, Integer | Counter32 | Gauge32 | Counter64):
        names = {Integer: "INTEGER", Counter32: "Counter32", Gauge32: "Gauge32"}
        return f"{names.get(type(value), 'Counter64')}: {value.value}"
    if isinstance(value, OctetString):
        if not value.value:
            return '""'
        return "Hex-STRING: " + "".join(f"{b:02X} " for b in value.value)
    if isinstance(value, TimeTicks):
        return f"Timeticks: ({value.value})"
    if isinstance(value, ObjectIdentifier):
        return f"OID: .{oid_to_str(value.value)}"
    if isinstance(value, IpAddress):
        return f"IpAddress: {value.value}"
    if isinstance(value, Opaque):
        return "OPAQUE: " + value.value.hex()
    texts = {
        id(Null): "NULL",
        id(NoSuchObject): "No Such Object available on this agent at this OID",
        id(NoSuchInstance): "No Such Instance currently exists at this OID",
        id(
            EndOfMibView
        ): "No more variables left in this MIB View (It is past the end of the MIB tree)",
    }
    return texts[id(value)]


def normalise_netsnmp(lines: Iterable[str]) -> list[str]:
    """net-snmp output lines comparable with netsnmp_line(): timeticks reduced to the number,
    endOfMibView lines (snmpbulkwalk prints the ones of its last answer) and snmpwalk's
    closing "End of MIB" (SNMPv1) dropped."""
    out = []
    for raw in lines:
        line = raw.rstrip("\n")
        if not line or line == "End of MIB" or "No more variables left in this MIB View" in line:
            continue
        out.append(_TIMETICKS.sub(r"Timeticks: (\1)", line))
    return out
