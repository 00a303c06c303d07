"""The sweep without raw sockets: let the kernel do the ARP, then read its neighbour table.

Without CAP_NET_RAW the appliance cannot send ARP itself. Any process can, however, send an
empty UDP datagram to each address (port 9, "discard"): to deliver it the kernel has to
resolve the address, so it sends the ARP request itself and records the answer in
/proc/net/arp. The datagram reaches only hosts that answered ARP, and they drop it.
Slower and less exact than a raw sweep (the kernel's retries and timers apply, conflicts are
invisible: the table keeps one MAC per address), so it is only the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from services.discovery.oui import normalize_mac

PROC_NET_ARP: Final = Path("/proc/net/arp")
ATF_COM: Final = 0x2  # entry complete: the MAC is known
DISCARD_PORT: Final = 9
#: The kernel sends up to 3 ARP probes one second apart (net.ipv4.neigh.*.mcast_solicit,
#: retrans_time_ms); waiting this long after the last datagram lets the slowest answer in.
KERNEL_RESOLVE_S: Final = 3.5


def read_neighbours(path: Path = PROC_NET_ARP, interface: str = "") -> list[tuple[str, str]]:
    """(ip, mac) of every complete entry of the kernel's ARP table (optionally one interface)."""
    try:
        lines = path.read_text().splitlines()[1:]
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or (interface and parts[5] != interface):
            continue
        with contextlib.suppress(ValueError):
            if int(parts[2], 16) & ATF_COM:
                out.append((parts[0], normalize_mac(parts[3])))
    return out


async def kernel_sweep(
    targets: Sequence[str], interface: str, *, rate_pps: float
) -> tuple[dict[str, frozenset[str]], float]:
    """Who answered, as the kernel's ARP table says after prodding every target."""
    started = time.monotonic()
    wanted = set(targets)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        with contextlib.suppress(OSError):
            # Pin the datagrams to the LAN interface; needs no privilege for an existing one.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        interval = 1.0 / rate_pps
        for index, ip in enumerate(targets):
            delay = started + index * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            with contextlib.suppress(OSError):  # EHOSTUNREACH from an earlier failed entry
                sock.sendto(b"", (ip, DISCARD_PORT))
        await asyncio.sleep(KERNEL_RESOLVE_S)
    finally:
        sock.close()
    answers = {
        ip: frozenset({mac}) for ip, mac in read_neighbours(interface=interface) if ip in wanted
    }
    return answers, time.monotonic() - started
