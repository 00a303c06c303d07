"""A light appliance for home's tests and load benchmarks: signed requests, no box behind them.

It speaks the real wire protocol (core/wire/protocol.py: gzip JSON, Ed25519-signed headers from
core/wire/keys.py) with its own key, so home cannot tell it from a box; it keeps the per-stream
sequence numbers a box's outbox would, so batches can be resent and must be recognised.
"""

from __future__ import annotations

import itertools
import ssl
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from core.wire.keys import Identity, appliance_id_for
from core.wire.protocol import HEARTBEAT_PATH, INGEST_PATH, encode


def new_identity() -> Identity:
    """A fresh appliance key pair in memory (nothing on disk)."""
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return Identity(appliance_id_for(raw), key, raw)


@dataclass
class LightAppliance:
    """One simulated box: an identity, a stream and its next sequence number."""

    identity: Identity
    stream: str = "s1"
    next_seq: int = 1
    serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def batch(self, records: list[tuple[int, str, dict[str, Any]]], ts: float) -> dict[str, Any]:
        """A batch of (lane, kind, body) records with the next sequence numbers."""
        out = []
        for lane, kind, body in records:
            out.append(
                {
                    "seq": self.next_seq,
                    "lane": lane,
                    "kind": kind,
                    "ts": ts,
                    "synced": True,
                    "body": body,
                }
            )
            self.next_seq += 1
        return {
            "v": 1,
            "appliance": self.identity.appliance_id,
            "stream": self.stream,
            "records": out,
        }

    async def post(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        doc: dict[str, Any],
        tls: ssl.SSLContext,
        path: str = INGEST_PATH,
    ) -> tuple[int, dict[str, Any]]:
        """POST ``doc`` signed; (HTTP status, JSON answer)."""
        body = encode(doc)
        headers = {"Content-Encoding": "gzip", **self.identity.sign_headers("POST", path, body)}
        async with session.post(base_url + path, data=body, headers=headers, ssl=tls) as answer:
            return answer.status, await answer.json(content_type=None)

    async def heartbeat(
        self, session: aiohttp.ClientSession, base_url: str, tls: ssl.SSLContext
    ) -> tuple[int, dict[str, Any]]:
        doc = {
            "v": 1,
            "appliance": self.identity.appliance_id,
            "stream": self.stream,
            "version": "load-sim",
            "queue": {},
        }
        return await self.post(session, base_url, doc, tls, HEARTBEAT_PATH)
