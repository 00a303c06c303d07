"""One small process per simulated device: its TCP listeners and its mDNS responder.

Run as ``python -m simsite.agent CONFIG.json`` inside the device's namespace (the site
does that). Writes the config's ready file once every listener is bound and every service
is registered; on SIGTERM it sends mDNS goodbyes and exits.

The listeners answer just enough to look alive to a port scan or a banner grab: an SSH or
FTP greeting, a minimal HTTP reply, otherwise silence until the peer hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from zeroconf import BadTypeInNameException, IPVersion
from zeroconf._utils.name import service_type_name  # the validator register_service uses
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from .agentcfg import AgentConfig, ServiceAd

ConnectionHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
#: A silent peer is dropped after this long, so a stuck scanner cannot pile up sockets.
IDLE_TIMEOUT_S = 30.0
#: How long to wait for an HTTP request head before replying anyway.
HTTP_HEAD_TIMEOUT_S = 5.0
#: Upper bound on the mDNS goodbye at shutdown (the site's TERM grace is a bit longer).
GOODBYE_TIMEOUT_S = 1.5
HTTP_PORTS = frozenset({80, 631, 5000, 8000, 8080})
GREETINGS = {
    21: b"220 FTP server ready.\r\n",
    22: b"SSH-2.0-OpenSSH_9.2p1\r\n",
}


def _http_reply(vendor: str) -> bytes:
    body = f"<html><head><title>{vendor}</title></head><body></body></html>".encode()
    head = (
        "HTTP/1.1 200 OK\r\n"
        f"Server: {vendor or 'embedded'}\r\n"
        "Content-Type: text/html\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def _handler(played_port: int, vendor: str) -> ConnectionHandler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if played_port in GREETINGS:
                writer.write(GREETINGS[played_port])
                await writer.drain()
            if played_port in HTTP_PORTS:
                with contextlib.suppress(asyncio.TimeoutError, asyncio.IncompleteReadError):
                    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HTTP_HEAD_TIMEOUT_S)
                writer.write(_http_reply(vendor))
                await writer.drain()
                return
            while await asyncio.wait_for(reader.read(4096), IDLE_TIMEOUT_S):
                pass
        except (TimeoutError, OSError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    return handle


def txt_rdata(entries: tuple[bytes, ...]) -> bytes:
    """TXT RDATA: length-prefixed strings; an empty TXT is one empty string (RFC 6763 6.1)."""
    if not entries:
        return b"\x00"
    return b"".join(bytes([len(entry)]) + entry for entry in entries)


def _service_info(ad: ServiceAd, ip: str) -> AsyncServiceInfo:
    # Built under a placeholder instance name because the constructor rejects names with
    # control characters or over 63 bytes, which hostile-device tests need to send.
    info = AsyncServiceInfo(
        ad.type_,
        f"placeholder.{ad.type_}",
        port=ad.port,
        properties=txt_rdata(ad.txt),
        server=ad.host,
        addresses=[socket.inet_aton(ip)],
    )
    info.name = f"{ad.instance}.{ad.type_}"
    return info


def _is_wellformed(info: AsyncServiceInfo) -> bool:
    try:
        service_type_name(info.name, strict=False)
    except BadTypeInNameException:
        return False
    return True


async def _register(azc: AsyncZeroconf, info: AsyncServiceInfo) -> None:
    if _is_wellformed(info):
        # cooperating_responders skips the ~2 s name-conflict probe: names on a simulated
        # site are unique by construction. strict=False admits non-standard types.
        await azc.async_register_service(info, cooperating_responders=True, strict=False)
    else:
        # zeroconf refuses to register such a name; put it straight into the registry, from
        # which the responder answers queries (no unsolicited announcement for these).
        azc.zeroconf.registry.async_add(info)


async def serve(cfg: AgentConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    servers = [
        await asyncio.start_server(_handler(played, cfg.vendor), cfg.ip, port, reuse_address=True)
        for port, played in cfg.listeners
    ]
    azc: AsyncZeroconf | None = None
    if cfg.services:
        azc = AsyncZeroconf(interfaces=[cfg.ip], ip_version=IPVersion.V4Only)
        for ad in cfg.services:
            await _register(azc, _service_info(ad, cfg.ip))
    await asyncio.to_thread(Path(cfg.ready_file).write_text, "ready\n")

    await stop.wait()
    for server in servers:
        server.close()
    if azc is not None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(azc.async_unregister_all_services(), GOODBYE_TIMEOUT_S)
        await azc.async_close()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m simsite.agent CONFIG.json", file=sys.stderr)
        return 2
    asyncio.run(serve(AgentConfig.load(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
