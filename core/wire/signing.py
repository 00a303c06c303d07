"""Documents signed by the MSP's Ed25519 key: site configurations and remote commands.

An envelope is ``{"doc": <base64url of the exact JSON bytes>, "sig": <base64url>, "key": <key
id>}``. The signature covers the exact bytes, so nothing depends on re-serialising JSON the same
way on both ends. The appliance learns the MSP's public key when it is claimed (claim.py) and
accepts configuration and commands only under that key.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.wire.keys import b64, key_id, unb64

MAX_ENVELOPE_BYTES = 256 * 1024

# Envelope kinds: what a signed document is for, so one kind can never be replayed as another.
COMMAND_KIND = "outpost.command"
CONFIG_KIND = "outpost.site-config"
# Acknowledgements of the box's alerts made at home (who, when): shown on the box's page.
ACKS_KIND = "outpost.alert-acks"
# Remote commands home may send (provisioning/commands.py carries them out).
COMMAND_ACTIONS = ("identify", "rediscover", "poll", "diagnostics", "reboot", "update")


class Refused(Exception):
    """A signed document is not accepted; ``reason`` is reported home word for word."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def public_from_text(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(unb64(text.strip()))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise Refused(f"the MSP public key {text[:16]!r}... is not an Ed25519 key") from exc


def sign(key: Ed25519PrivateKey, doc: dict[str, Any]) -> dict[str, str]:
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return {"doc": b64(raw), "sig": b64(key.sign(raw)), "key": key_id(key.public_key())}


def open_envelope(envelope: Any, public: Ed25519PublicKey, kind: str) -> dict[str, Any]:
    """The document inside a correctly signed envelope of ``kind``; else :class:`Refused`."""
    if not isinstance(envelope, dict) or not all(
        isinstance(envelope.get(k), str) for k in ("doc", "sig")
    ):
        raise Refused(f"{kind}: not a signed envelope (needs 'doc' and 'sig')")
    if len(envelope["doc"]) > MAX_ENVELOPE_BYTES:
        raise Refused(f"{kind}: document larger than {MAX_ENVELOPE_BYTES} bytes")
    try:
        raw, sig = unb64(envelope["doc"]), unb64(envelope["sig"])
    except (ValueError, binascii.Error):
        raise Refused(f"{kind}: envelope is not base64") from None
    try:
        public.verify(sig, raw)
    except InvalidSignature:
        raise Refused(
            f"{kind}: bad signature (not signed by the MSP key this appliance was claimed with; "
            f"signed with key id {str(envelope.get('key', '?'))[:16]}, expected {key_id(public)})"
        ) from None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise Refused(f"{kind}: signed document is not JSON") from None
    if not isinstance(doc, dict):
        raise Refused(f"{kind}: signed document is not a JSON object")
    if doc.get("kind") != kind:
        raise Refused(f"signed document is not a {kind} (kind {doc.get('kind')!r})")
    return doc
