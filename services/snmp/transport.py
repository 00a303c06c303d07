"""One UDP socket per address family, shared by every v1/v2c request of the process.

Requests are matched to answers by request-id; an answer counts only when it also comes from
the address the request went to, carries the same community and version, and is a Response.
A request is sent again (same request-id, so a late answer to the first try still counts)
after each ``timeout_s`` until its retries are spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from core.logs import get_log
from services.snmp import ber
from services.snmp.errors import SnmpDecodeError, SnmpError, SnmpTimeout
from services.snmp.message import Message, decode_message, peek_header
from services.snmp.stats import SnmpStats

log = get_log("snmp")

# A burst of answers from many devices polled at once must not overflow the kernel's queue
# (the Linux default, ~200 KiB, holds ~150 full-size answers). The kernel caps it at rmem_max.
RECEIVE_BUFFER_BYTES: Final = 4 * 1024 * 1024
# request-id is an Integer32; keep it positive, as some agents mishandle negative ones.
MAX_REQUEST_ID: Final = 0x7FFFFFFF

Address = tuple[str, int]


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[Message]
    address: Address
    community: bytes
    version: int
    payload: bytes
    timeout_s: float
    tries_left: int
    timer: asyncio.TimerHandle | None = None
    decode_error: SnmpDecodeError | None = None


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable...) arrive here on some systems; the request's
        # timeout handles them, so they are only worth a debug line.
        log.debug("snmp.socket_error", error=type(exc).__name__)


class Dispatcher:
    """Owns the sockets and the table of requests waiting for an answer."""

    def __init__(self, stats: SnmpStats) -> None:
        self._stats = stats
        self._sockets: dict[int, asyncio.DatagramTransport] = {}
        self._opening = asyncio.Lock()
        self._pending: dict[int, _Pending] = {}
        # A random start makes request-ids of two processes (or two boots) unlikely to meet.
        self._next_id = random.randrange(1, MAX_REQUEST_ID)
        self._closed = False

    async def start(self) -> None:
        self._closed = False
        await self._socket(socket.AF_INET)

    async def close(self) -> None:
        self._closed = True
        for transport in self._sockets.values():
            transport.close()
        self._sockets.clear()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(SnmpError("SNMP client closed"))

    async def _socket(self, family: int) -> asyncio.DatagramTransport:
        transport = self._sockets.get(family)
        if transport is not None:
            return transport
        if self._closed:
            raise SnmpError("SNMP client closed")
        async with self._opening:
            if family not in self._sockets:
                loop = asyncio.get_running_loop()
                local = ("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0)
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self._on_datagram), local_addr=local, family=family
                )
                sock = transport.get_extra_info("socket")
                with contextlib.suppress(OSError):  # a smaller buffer only costs retries
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
                self._sockets[family] = transport
            return self._sockets[family]

    def _allocate_id(self) -> int:
        request_id = self._next_id
        while request_id in self._pending:
            request_id = request_id % MAX_REQUEST_ID + 1
        self._next_id = request_id % MAX_REQUEST_ID + 1
        return request_id

    async def request(
        self,
        address: Address,
        family: int,
        header: tuple[int, bytes],
        build: Callable[[int], bytes],
        timing: tuple[float, int],
    ) -> Message:
        """Send ``build(request_id)`` to ``address`` and return the matching Response.

        ``header`` is (version, community) the answer must repeat; ``timing`` is
        (timeout_s, retries). Raises SnmpTimeout, or SnmpDecodeError when the only answers
        were undecodable.
        """
        transport = await self._socket(family)
        loop = asyncio.get_running_loop()
        request_id = self._allocate_id()
        timeout_s, retries = timing
        pending = _Pending(
            future=loop.create_future(),
            address=address,
            community=header[1],
            version=header[0],
            payload=build(request_id),
            timeout_s=timeout_s,
            tries_left=retries,
        )
        self._pending[request_id] = pending
        self._stats.requests += 1
        try:
            transport.sendto(pending.payload, address)
            pending.timer = loop.call_later(timeout_s, self._on_timer, request_id, transport)
            return await pending.future
        finally:
            if pending.timer is not None:
                pending.timer.cancel()
            if self._pending.get(request_id) is pending:
                del self._pending[request_id]

    def _on_timer(self, request_id: int, transport: asyncio.DatagramTransport) -> None:
        pending = self._pending.get(request_id)
        if pending is None or pending.future.done():
            return
        if pending.tries_left > 0 and not transport.is_closing():
            pending.tries_left -= 1
            self._stats.retries += 1
            transport.sendto(pending.payload, pending.address)
            loop = asyncio.get_running_loop()
            pending.timer = loop.call_later(
                pending.timeout_s, self._on_timer, request_id, transport
            )
            return
        self._stats.timeouts += 1
        error = pending.decode_error
        if error is not None:
            reason = f"only undecodable answers from {pending.address[0]}: {error.reason}"
            pending.future.set_exception(SnmpDecodeError(reason, error.offset))
        else:
            pending.future.set_exception(SnmpTimeout(pending.address[0]))

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = decode_message(data)
        except SnmpDecodeError as exc:
            self._stats.decode_errors += 1
            self._on_undecodable(data, addr, exc)
            return
        pending = self._pending.get(message.request_id)
        if (
            pending is None
            or pending.future.done()
            or addr[0] != pending.address[0]
            or addr[1] != pending.address[1]
            or message.community != pending.community
            or message.version != pending.version
            or message.pdu_type != ber.RESPONSE
        ):
            self._stats.ignored += 1
            return
        pending.future.set_result(message)

    def _on_undecodable(self, data: bytes, addr: tuple[str, int], exc: SnmpDecodeError) -> None:
        head = peek_header(data)
        if head is not None:
            community, request_id = head
            pending = self._pending.get(request_id)
            if (
                pending is not None
                and not pending.future.done()
                and addr[0] == pending.address[0]
                and addr[1] == pending.address[1]
                and community == pending.community
            ):
                # The agent answered this request, badly: fail it now rather than at timeout.
                pending.future.set_exception(exc)
                return
        # Unattributable: the requests waiting on that address will say why if they time out.
        for pending in self._pending.values():
            if addr[0] == pending.address[0] and addr[1] == pending.address[1]:
                pending.decode_error = exc
        log.debug("snmp.undecodable", peer=addr[0], port=addr[1], reason=exc.reason)
