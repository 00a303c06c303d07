"""The site's gateway: the upstream every other device depends on (alert suppression)."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

ROUTE_TABLE = Path("/proc/net/route")
RTF_GATEWAY = 0x2


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
