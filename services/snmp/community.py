"""SNMPv1/v2c requests over the shared sockets, with our own codec (the fast path)."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Sequence

from services.snmp import ber
from services.snmp.errors import SnmpError, SnmpErrorStatus, error_status_name
from services.snmp.message import VERSION_1, VERSION_2C, encode_request
from services.snmp.stats import SnmpStats
from services.snmp.target import Target
from services.snmp.transport import Address, Dispatcher
from services.snmp.values import OID, Varbind


@functools.lru_cache(maxsize=4096)
def _literal(host: str) -> tuple[str, int] | None:
    """(normalised address, family) of an IP literal, None for a host name."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return str(ip), socket.AF_INET6 if ip.version == 6 else socket.AF_INET


async def resolve(host: str, port: int) -> tuple[Address, int]:
    """((address, port), family) to send to; answers must come from exactly that address."""
    literal = _literal(host)
    if literal is not None:
        return (literal[0], port), literal[1]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise SnmpError(f"cannot resolve {host!r}: {exc}") from None
    family, _, _, _, sockaddr = infos[0]
    return (str(sockaddr[0]), int(sockaddr[1])), int(family)


class CommunityBackend:
    def __init__(self, dispatcher: Dispatcher, stats: SnmpStats) -> None:
        self._dispatcher = dispatcher
        self._stats = stats

    async def send(
        self, target: Target, pdu_type: int, oids: Sequence[OID], max_repetitions: int = 0
    ) -> tuple[Varbind, ...]:
        credential = target.credential
        version = VERSION_1 if credential.version == "1" else VERSION_2C
        if version == VERSION_1 and pdu_type == ber.GET_BULK_REQUEST:
            raise ValueError("SNMPv1 has no GetBulk")
        community = credential.community.reveal().encode()
        address, family = await resolve(target.host, target.port)

        def build(request_id: int) -> bytes:
            return encode_request(
                version, community, pdu_type, request_id, oids, max_repetitions=max_repetitions
            )

        message = await self._dispatcher.request(
            address, family, (version, community), build, (target.timeout_s, target.retries)
        )
        self._stats.varbinds += len(message.varbinds)
        if message.error_status:
            index = message.error_index
            oid = tuple(oids[index - 1]) if 1 <= index <= len(oids) else None
            raise SnmpErrorStatus(error_status_name(message.error_status), index, oid)
        return message.varbinds
