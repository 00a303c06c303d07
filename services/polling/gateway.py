"""The site's gateway: the upstream every other device depends on (alert suppression).

The gateway is a role, not an address fixed at start: it is the configured ``gateway_ip``,
else the next hop of the appliance's IPv4 default route *now* (DHCP may give a new router, a
technician may re-cable). Whichever device answers that address is polled as the gateway
(discovery keeps a row for the address when routers share it by VRRP/CARP/HSRP, see
docs/discovery.md "How the gateway is found").
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

ROUTE_TABLE = Path("/proc/net/route")
RTF_GATEWAY = 0x2
#: The route table is read again at most this often (a file read; the route rarely changes).
REREAD_S: Final = 5.0


def default_gateway(route_table: Path = ROUTE_TABLE) -> str:
    """The IPv4 default gateway of this network namespace, or "" when there is none."""
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return ""
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[1] == "00000000" and int(fields[3], 16) & RTF_GATEWAY:
            return socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
    return ""


class GatewayRole:
    """The gateway's address as it is now: ``configured`` if set, else the default route's
    next hop, re-read at most every ``REREAD_S`` seconds (``""`` while there is none).
    ``follow_route=False``: exactly ``configured``, even "" (no gateway; tests)."""

    def __init__(
        self,
        configured: str = "",
        route_table: Path = ROUTE_TABLE,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        follow_route: bool = True,
    ) -> None:
        self.configured = configured
        self.follow_route = follow_route
        self.route_table = route_table
        self._monotonic = monotonic
        self._ip = ""
        self._read_at: float | None = None

    @property
    def ip(self) -> str:
        if self.configured or not self.follow_route:
            return self.configured
        now = self._monotonic()
        if self._read_at is None or now - self._read_at >= REREAD_S:
            self._ip = default_gateway(self.route_table)
            self._read_at = now
        return self._ip
