"""Free ports on loopback for the servers a test or benchmark starts.

A port found free can be taken by another process before the server binds it; on loopback
in a test run that race is rare, and the server's start then fails loudly (address in use).
"""

from __future__ import annotations

import socket


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` (asked of the kernel: bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nothing is bound to at ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_tcp_port_preferring(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` if it is free at ``host`` (a port a human may type), else any free one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, preferred))
        except OSError:
            return free_tcp_port(host)
        return int(sock.getsockname()[1])
