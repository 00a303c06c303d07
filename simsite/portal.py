"""Forwarding between the host's loopback and servers inside the simulated site's namespaces.

A Unix socket is a file, visible from every network namespace, so it bridges them without
adding any interface, address or route to the host: the host side listens on 127.0.0.1 and
forwards each connection to a Unix socket; when the server inside the namespace cannot listen
on a Unix socket itself, ``python -m simsite.portal --unix PATH --target HOST:PORT`` runs in
that namespace and forwards from the socket to the TCP server there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable

CHUNK_BYTES = 64 * 1024

Connector = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK_BYTES):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


def _handler(
    connect: Connector,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await connect()
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return handle


async def tcp_to_unix(host: str, port: int, unix_path: str) -> asyncio.Server:
    """Listen on host:port (loopback) and forward each connection to ``unix_path``."""
    return await asyncio.start_server(
        _handler(lambda: asyncio.open_unix_connection(unix_path)), host, port
    )


async def unix_to_tcp(unix_path: str, host: str, port: int) -> asyncio.Server:
    """Listen on ``unix_path`` and forward each connection to host:port."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(unix_path)
    return await asyncio.start_unix_server(
        _handler(lambda: asyncio.open_connection(host, port)), unix_path
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simsite.portal")
    parser.add_argument("--unix", required=True, help="Unix socket path to listen on")
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")

    async def serve() -> None:
        server = await unix_to_tcp(args.unix, host, int(port))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
