"""TCP port checks: does the service accept a connection, and how fast; did the host answer.

``open`` is about the service (SYN-ACK); ``answered`` is about the host: a refused connection
(RST) is the host's own TCP stack answering, so it proves the host is there even when nothing
listens. Silence (a timeout) or an ICMP "host unreachable" from a router proves nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class TcpResult:
    port: int
    open: bool
    connect_ms: float | None
    error: str = ""
    answered: bool = False  # SYN-ACK or RST from the host itself


async def check_port(host: str, port: int, timeout_s: float) -> TcpResult:
    """Connect and close at once (no payload): open, refused, or silent within ``timeout_s``.
    Never raises for the host's sake."""
    started = time.monotonic()  # real time on purpose: the connect time is a measurement
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return TcpResult(port, False, None, f"no answer within {timeout_s:g} s")
    except ConnectionRefusedError:
        return TcpResult(port, False, None, "connection refused", answered=True)
    except OSError as exc:
        return TcpResult(port, False, None, exc.strerror or type(exc).__name__)
    elapsed_ms = (time.monotonic() - started) * 1000.0
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return TcpResult(port, True, elapsed_ms, answered=True)
