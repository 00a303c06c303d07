"""HTTPS client to home: pinned CA, signed requests, every outcome classified (never raised)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from core.clock import Clock
from core.wire.keys import Identity
from core.wire.protocol import (
    Answer,
    ProtocolError,
    decode,
    encode,
    parse_answer,
    parse_retry_after,
)

Outcome = Literal["ok", "network", "server", "busy", "refused", "rejected", "garbage", "tls"]
MAX_ANSWER_BYTES = 1024 * 1024


class UplinkConfigError(Exception):
    """The uplink cannot start as configured (e.g. the CA file is missing)."""


def pinned_ssl_context(ca_file: str) -> ssl.SSLContext:
    """Trust only the MSP's CA: with a cafile, Python loads no system certificates."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except (FileNotFoundError, ssl.SSLError, OSError) as exc:
        raise UplinkConfigError(
            f"cannot load the MSP's CA certificate {ca_file} ({exc}); copy the MSP's ca.pem "
            "there or set uplink.ca_file"
        ) from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass(frozen=True)
class Exchange:
    """How one request to home went."""

    outcome: Outcome
    status: int = 0  # HTTP status, 0 when no answer arrived
    answer: Answer | None = None
    doc: dict[str, Any] | None = None  # the decoded answer body, when it was JSON
    retry_after_s: float | None = None
    error: str = ""


class HomeClient:
    """The appliance's one HTTPS client to home, shared by the uplink and provisioning.

    Built by the composition root (firmware/app.py) with a loader for the box's identity, so this
    package never makes keys itself. :meth:`open` loads the identity and the pinned CA and opens
    the one ``aiohttp`` session; it runs once however many services call it (the root first,
    then each user's setup), and a failure (key unreadable, CA file missing) raises to the caller
    and is tried again at the next call: the supervisor retries the users' setup with back-off,
    so a box that cannot read its key keeps running (storing records) instead of crash-looping.
    :meth:`close` belongs to the root alone: a user's restart must not close the others' session.
    """

    def __init__(
        self,
        base_url: str,
        load_identity: Callable[[], Identity],
        ca_file: str,
        timeout_s: float,
        clock: Clock,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.ca_file = ca_file
        self.clock = clock
        self._load_identity = load_identity
        self._identity: Identity | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._opening = asyncio.Lock()
        self.opens = 0  # identity loads that succeeded (1 in a healthy process; tests check it)

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            raise RuntimeError("HomeClient.open() first: the identity is not loaded yet")
        return self._identity

    @property
    def is_open(self) -> bool:
        return self._session is not None

    async def open(self) -> Identity:
        """The box's identity, with the session to home open. Raises IdentityError or OSError
        (the key cannot be read or made) or UplinkConfigError (the CA file cannot be loaded)."""
        async with self._opening:
            if self._identity is None:
                # Key files are read (or made, on first start) in a thread: the disk may be slow.
                self._identity = await asyncio.to_thread(self._load_identity)
                self.opens += 1
            if self._session is None:
                ssl_context = pinned_ssl_context(self.ca_file)
                # Connections kept alive: a batch every few seconds should not pay a TLS
                # handshake. Four: the uplink's batch and heartbeat and provisioning's sync may
                # all be in flight at once.
                connector = aiohttp.TCPConnector(ssl=ssl_context, limit=4, ttl_dns_cache=300)
                self._session = aiohttp.ClientSession(
                    connector=connector, timeout=self._timeout, auto_decompress=True
                )
            return self._identity

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, path: str, doc: dict[str, Any]) -> Exchange:
        assert self._session is not None, "HomeClient.open() first"
        body = encode(doc)
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            **self.identity.sign_headers(
                "POST", path, body, clock_synced=self.clock.clock_synced(), clock=self.clock
            ),
        }
        try:
            async with self._session.post(
                self.base_url + path, data=body, headers=headers
            ) as response:
                raw = await response.content.read(MAX_ANSWER_BYTES + 1)
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except aiohttp.ClientConnectorCertificateError as exc:
            return Exchange("tls", error=f"home's certificate is not from the pinned CA: {exc}")
        except aiohttp.ClientSSLError as exc:
            return Exchange("tls", error=f"TLS failed: {exc}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Exchange("network", error=f"{type(exc).__name__}: {exc}")
        answer_doc: dict[str, Any] | None = None
        try:
            answer_doc = decode(raw, "identity", limit=MAX_ANSWER_BYTES)
        except ProtocolError:
            answer_doc = None
        if status in (429, 503):
            return Exchange(
                "busy",
                status,
                doc=answer_doc,
                retry_after_s=parse_retry_after(retry_after, 0.0),
                error=f"HTTP {status}",
            )
        if status >= 500:
            return Exchange("server", status, doc=answer_doc, error=f"HTTP {status}")
        if status in (401, 403):
            reason = (answer_doc or {}).get("error", "")
            return Exchange("refused", status, doc=answer_doc, error=f"HTTP {status}: {reason}")
        if status >= 400:
            reason = (answer_doc or {}).get("error", "")
            return Exchange("rejected", status, doc=answer_doc, error=f"HTTP {status}: {reason}")
        if answer_doc is None:
            return Exchange("garbage", status, error="home's answer is not JSON")
        try:
            answer = parse_answer(answer_doc)
        except ProtocolError as exc:
            return Exchange("garbage", status, doc=answer_doc, error=str(exc))
        return Exchange("ok", status, answer=answer, doc=answer_doc)


async def sleep_or_wake(event: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; return True early when ``event`` is set (and clear it)."""
    try:
        await asyncio.wait_for(event.wait(), max(0.0, seconds))
    except TimeoutError:
        return False
    event.clear()
    return True
