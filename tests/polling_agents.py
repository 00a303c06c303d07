"""Small SNMP agents for the polling tests, on 127.0.0.1: a well-behaved table agent whose
values a test can change between polls, and misbehaving modes (silent, garbage, truncated,
backward walks) to prove the poller stays bounded."""

from __future__ import annotations

import asyncio
import bisect
from types import TracebackType
from typing import Literal

from services.snmp import ber
from services.snmp.errors import SnmpDecodeError
from services.snmp.message import Message, decode_message, encode_message
from services.snmp.values import OID, EndOfMibView, Integer, NoSuchObject, SnmpValue, Varbind

Mode = Literal["ok", "silent", "garbage", "truncated", "backwards", "nosuchobject"]


class TableAgent(asyncio.DatagramProtocol):
    def __init__(
        self,
        values: dict[OID, SnmpValue],
        mode: Mode = "ok",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.values = values
        self.host = host
        self.bind_port = port
        self.mode: Mode = mode
        self.port = 0
        self.requests = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> TableAgent:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=(self.host, self.bind_port)
        )
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._transport is not None:
            self._transport.close()

    def _next(self, oid: OID) -> Varbind:
        keys = sorted(self.values)
        i = bisect.bisect_right(keys, oid)
        if i >= len(keys):
            return Varbind(oid, EndOfMibView)
        return Varbind(keys[i], self.values[keys[i]])

    def answer(self, req: Message) -> list[Varbind]:
        if req.pdu_type == ber.GET_REQUEST:
            return [Varbind(vb.oid, self.values.get(vb.oid, NoSuchObject)) for vb in req.varbinds]
        if req.pdu_type == ber.GET_NEXT_REQUEST:
            return [self._next(vb.oid) for vb in req.varbinds]
        # GetBulk (no non-repeaters from our client): rows of successors, interleaved.
        reps = max(1, req.error_index)
        cursors = [vb.oid for vb in req.varbinds]
        out: list[Varbind] = []
        for _ in range(reps):
            for j, oid in enumerate(cursors):
                vb = self._next(oid)
                out.append(vb)
                cursors[j] = vb.oid
        return out

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self._transport is not None
        self.requests += 1
        try:
            req = decode_message(data)
        except SnmpDecodeError:
            return
        if self.mode == "silent":
            return
        if self.mode == "garbage":
            self._transport.sendto(b"\x30\x82\xff\xff garbage \x00\x01", addr)
            return
        varbinds = self.answer(req)
        if self.mode == "nosuchobject":
            varbinds = [Varbind(vb.oid, NoSuchObject) for vb in req.varbinds]
        if self.mode == "backwards" and req.pdu_type != ber.GET_REQUEST:
            # The first answer goes 5 rows into the column, the next one back to row 3:
            # a walk that trusted the agent would loop forever.
            varbinds = [
                Varbind((*vb.oid[:-1], 3) if vb.oid[-1] == 5 else (*vb.oid, 5), Integer(1))
                for vb in req.varbinds
            ]
        reply = encode_message(
            Message(req.version, req.community, ber.RESPONSE, req.request_id, 0, 0, tuple(varbinds))
        )
        if self.mode == "truncated":
            reply = reply[: len(reply) // 2]
        self._transport.sendto(reply, addr)
