"""Appliance keys as both sides see them: ids, key text, request signatures (docs/uplink.md).

The appliance id is derived from the Ed25519 public key (``op-`` + 20 base32 characters of its
SHA-256), so home can check that an id and a key belong together. Every request to home is signed
over its method, path, appliance id, time, a random nonce and the SHA-256 of the exact body bytes
sent (after compression). The box signs with :class:`Identity`; home verifies with :func:`verify`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from core.clock import Clock, system_clock

# Request headers of a signed request (the wire protocol, docs/uplink.md).
H_APPLIANCE = "X-Outpost-Appliance"
H_TIME = "X-Outpost-Time"
H_NONCE = "X-Outpost-Nonce"
H_SIGNATURE = "X-Outpost-Signature"
H_CLOCK_SYNCED = "X-Outpost-Clock-Synced"


class IdentityError(Exception):
    """The key pair cannot be made or read; the message says what to do."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def appliance_id_for(public_raw: bytes) -> str:
    """The appliance id that belongs to a raw 32-byte Ed25519 public key."""
    digest = hashlib.sha256(public_raw).digest()
    return "op-" + base64.b32encode(digest).decode("ascii")[:20].lower()


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """Parse a public key as printed by ``Identity.public_text`` (base64url of 32 raw bytes)."""
    try:
        raw = unb64(text.strip())
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError) as exc:
        raise IdentityError(
            f"not an Ed25519 public key: {text[:60]!r}; copy the 'public_key' line printed by "
            "'python -m provisioning.identity --dir DIR'"
        ) from exc


def signed_text(
    *, method: str, path: str, appliance_id: str, when: str, nonce: str, body: bytes
) -> bytes:
    """The exact bytes a request signature covers."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join(
        ("outpost-v1", method.upper(), path, appliance_id, when, nonce, digest)
    ).encode("utf-8")


def verify(public: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    try:
        public.verify(unb64(signature_b64), message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class Identity:
    appliance_id: str
    private_key: Ed25519PrivateKey
    public_raw: bytes

    @property
    def public_text(self) -> str:
        return b64(self.public_raw)

    def sign_headers(
        self,
        method: str,
        path: str,
        body: bytes,
        *,
        clock_synced: bool = True,
        clock: Clock | None = None,
    ) -> dict[str, str]:
        """Headers that authenticate one request to home (stamped with ``clock``'s wall time)."""
        when = f"{(clock or system_clock()).wall():.3f}"
        nonce = secrets.token_urlsafe(16)
        message = signed_text(
            method=method,
            path=path,
            appliance_id=self.appliance_id,
            when=when,
            nonce=nonce,
            body=body,
        )
        # The sync flag is covered by the signature through the time header's meaning: home
        # only enforces the time window when it is set, so it is signed too.
        message += b"\n" + (b"1" if clock_synced else b"0")
        return {
            H_APPLIANCE: self.appliance_id,
            H_TIME: when,
            H_NONCE: nonce,
            H_CLOCK_SYNCED: "1" if clock_synced else "0",
            H_SIGNATURE: b64(self.private_key.sign(message)),
        }


def load_public_key(text: str) -> Ed25519PublicKey:
    """A public key written as base64 of its 32 raw bytes (release keys, the MSP's key).

    Raises ValueError naming the text's start when it is not one.
    """
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            f"{text[:20]!r}... is not an Ed25519 public key (base64 of 32 bytes): {exc}"
        ) from None


def public_key_text(public: Ed25519PublicKey) -> str:
    """The base64 of a public key's 32 raw bytes (the form :func:`load_public_key` reads)."""
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name of a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]
