"""Home's side of a signed appliance request: headers, signature, time window, nonce, answer.

Every appliance endpoint (ingest, heartbeat, hello, sync, diagnostics) goes through
:func:`signed_endpoint` or :func:`check_signature`; the scheme is in docs/uplink.md and the
signing side in core/wire/keys.py.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.logs import get_log
from core.wire.keys import (
    H_APPLIANCE,
    H_CLOCK_SYNCED,
    H_NONCE,
    H_SIGNATURE,
    H_TIME,
    IdentityError,
    public_key_from_text,
    signed_text,
    verify,
)
from core.wire.protocol import (
    ProtocolError,
    decode,
)
from home.db import HomeDB, Refused

log = get_log("home")

# A request signed by an appliance whose clock is synchronised must be this fresh.
TIME_WINDOW_S = 600.0
# Above this many operations waiting for the database, answers ask appliances to pause.
SLOW_DOWN_QUEUE = 32
SLOW_DOWN_S = 5.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DB_KEY = web.AppKey("db", HomeDB)


@dataclass(frozen=True)
class SignatureHeaders:
    appliance_id: str
    when: str
    nonce: str
    signature: str
    synced: bool


def signature_headers(request: web.Request, what: str = "request") -> SignatureHeaders:
    """The X-Outpost-* headers of a signed request, or Refused(401) when any is missing."""
    headers = SignatureHeaders(
        appliance_id=request.headers.get(H_APPLIANCE, ""),
        when=request.headers.get(H_TIME, ""),
        nonce=request.headers.get(H_NONCE, ""),
        signature=request.headers.get(H_SIGNATURE, ""),
        synced=request.headers.get(H_CLOCK_SYNCED, "1") == "1",
    )
    if not (headers.appliance_id and headers.when and headers.nonce and headers.signature):
        raise Refused(401, f"{what} is not signed; it needs the X-Outpost-* signature headers")
    if len(headers.nonce) > 64:
        raise Refused(401, f"{what} is not signed; it needs the X-Outpost-* signature headers")
    return headers


def check_signature(
    request: web.Request, headers: SignatureHeaders, body: bytes, public: Ed25519PublicKey
) -> None:
    """The one place home checks an appliance's signature and the request's time window."""
    message = signed_text(
        method=request.method,
        path=request.path,
        appliance_id=headers.appliance_id,
        when=headers.when,
        nonce=headers.nonce,
        body=body,
    )
    message += b"\n" + (b"1" if headers.synced else b"0")
    if not verify(public, headers.signature, message):
        raise Refused(401, "bad signature")
    try:
        sent_at = float(headers.when)
    except ValueError:
        raise Refused(401, "bad X-Outpost-Time") from None
    # A box whose clock is not synchronised says so (signed): its time cannot be checked.
    now = request.app[DB_KEY].clock.wall()
    late = headers.synced and abs(now - sent_at) > TIME_WINDOW_S
    if not math.isfinite(sent_at) or late:
        raise Refused(401, "request time is outside the accepted window; check the clock (NTP)")


async def _authenticate(request: web.Request) -> tuple[str, str, bytes]:
    """Check a registered appliance's signed request; return (appliance id, nonce, body)."""
    db = request.app[DB_KEY]
    headers = signature_headers(request)
    appliance_id = headers.appliance_id
    row = await db.call(db.appliance_sync, appliance_id)
    if row is None:
        raise Refused(403, f"unknown appliance {appliance_id}; register it with the MSP first")
    if row.state != "registered":
        raise Refused(403, f"appliance {appliance_id} is {row.state}")
    body = await request.read()
    try:
        public = public_key_from_text(row.public_key)
    except IdentityError:
        raise Refused(500, "the registered public key of this appliance is damaged") from None
    check_signature(request, headers, body, public)
    return appliance_id, headers.nonce, body


def _answer(doc: dict[str, Any], db: HomeDB, status: int = 200) -> web.Response:
    if db.queued > SLOW_DOWN_QUEUE and doc.get("ok"):
        doc["slow_down_s"] = SLOW_DOWN_S
    return web.json_response(doc, status=status)


# The work of a signed endpoint, run on the database thread: (db, appliance, nonce, doc) -> answer.
SignedWork = Callable[[HomeDB, str, str, dict[str, Any]], dict[str, Any]]


def signed_endpoint(
    work: SignedWork, *, slow_down: bool
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A POST endpoint for an appliance's signed request: authenticate (signature, time, nonce),
    decode the body, run ``work`` on the database thread, answer. With ``slow_down`` the answer
    asks the box to pause when home's database queue is deep (the bulk endpoints)."""

    async def handle(request: web.Request) -> web.Response:
        db = request.app[DB_KEY]
        try:
            appliance_id, nonce, body = await _authenticate(request)
            doc = decode(body, request.headers.get("Content-Encoding", ""))
            answer = await db.call(work, db, appliance_id, nonce, doc)
        except Refused as exc:
            log.warning("home.refused", path=request.path, status=exc.status, reason=str(exc))
            return web.json_response(exc.doc, status=exc.status)
        except ProtocolError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return _answer(answer, db) if slow_down else web.json_response(answer)

    return handle
