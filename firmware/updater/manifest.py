"""The release bundle: a signed manifest followed by the payload it describes.

Bundle file layout (one file, so one resumable download)::

    MAGIC (8 bytes) | envelope length (4 bytes, big-endian) | envelope (JSON) | payload (tar.gz)

The envelope is ``{"manifest": <base64 of the manifest bytes>, "signature": <base64>,
"key_id": <hex>}``; the Ed25519 signature covers the exact manifest bytes, so no canonical-JSON
step can be fooled. The manifest names the version, the payload's size and SHA-256 and the
SHA-256 of every file inside the payload. Nothing is unpacked until the signature, the version
policy and the payload hash have all been checked (see :func:`open_bundle`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.wire.keys import key_id
from firmware.updater.versions import BadVersion, parse_version

MAGIC = b"OPBNDL01"
HEADER_BYTES = len(MAGIC) + 4
MAX_ENVELOPE_BYTES = 256 * 1024  # a manifest lists a few dozen wheels; anything larger is hostile
FORMAT = 1
PRODUCT = "outpost"
HASH_CHUNK_BYTES = 1024 * 1024


class BundleRefused(Exception):
    """The bundle must not be installed; ``reason`` is reported home as is."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Manifest:
    version: str
    payload_sha256: str
    payload_size: int
    files: dict[str, str]  # path inside the payload -> sha256 hex
    created: str = ""
    notes: str = ""
    # An explicit, signed rollback: the running versions this (older) release may replace.
    downgrade_from: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "product": PRODUCT,
            "version": self.version,
            "created": self.created,
            "notes": self.notes,
            "payload": {"sha256": self.payload_sha256, "size": self.payload_size},
            "files": dict(sorted(self.files.items())),
            "downgrade_from": list(self.downgrade_from),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        try:
            doc = json.loads(raw)
            if doc.get("format") != FORMAT:
                raise BundleRefused(f"manifest format {doc.get('format')!r} is not {FORMAT}")
            if doc.get("product") != PRODUCT:
                raise BundleRefused(f"bundle is for product {doc.get('product')!r}, not outpost")
            version = doc["version"]
            parse_version(version)
            payload = doc["payload"]
            files = {str(k): str(v) for k, v in doc["files"].items()}
            downgrade_from = tuple(str(v) for v in doc.get("downgrade_from", []))
            for v in downgrade_from:
                parse_version(v)
            manifest = cls(
                version=version,
                payload_sha256=str(payload["sha256"]),
                payload_size=int(payload["size"]),
                files=files,
                created=str(doc.get("created", "")),
                notes=str(doc.get("notes", "")),
                downgrade_from=downgrade_from,
            )
        except BundleRefused:
            raise
        except BadVersion as exc:
            raise BundleRefused(f"manifest: {exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BundleRefused(f"manifest is malformed: {type(exc).__name__}: {exc}") from None
        for path in files:
            if path.startswith("/") or ".." in Path(path).parts or not path:
                raise BundleRefused(f"manifest lists an unsafe path {path!r}")
        return manifest


def write_bundle(path: Path, manifest: Manifest, payload: Path, key: Ed25519PrivateKey) -> None:
    raw = manifest.to_bytes()
    envelope = json.dumps(
        {
            "manifest": base64.b64encode(raw).decode(),
            "signature": base64.b64encode(key.sign(raw)).decode(),
            "key_id": key_id(key.public_key()),
        }
    ).encode()
    with path.open("wb") as out, payload.open("rb") as src:
        out.write(MAGIC + struct.pack(">I", len(envelope)) + envelope)
        while chunk := src.read(HASH_CHUNK_BYTES):
            out.write(chunk)


@dataclass(frozen=True)
class OpenedBundle:
    manifest: Manifest
    payload_offset: int
    key_id: str


def read_signed_manifest(path: Path, trusted: Iterable[Ed25519PublicKey]) -> OpenedBundle:
    """Read the envelope and verify its signature; nothing after the envelope is touched."""
    with path.open("rb") as f:
        header = f.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES or header[: len(MAGIC)] != MAGIC:
            raise BundleRefused("not an Outpost release bundle (bad magic)")
        (length,) = struct.unpack(">I", header[len(MAGIC) :])
        if length > MAX_ENVELOPE_BYTES:
            raise BundleRefused(f"bundle envelope of {length} bytes is too large")
        body = f.read(length)
    if len(body) != length:
        raise BundleRefused("bundle is truncated inside its envelope")
    try:
        envelope = json.loads(body)
        raw = base64.b64decode(envelope["manifest"], validate=True)
        signature = base64.b64decode(envelope["signature"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise BundleRefused("bundle envelope is malformed") from None
    for public in trusted:
        try:
            public.verify(signature, raw)
        except InvalidSignature:
            continue
        return OpenedBundle(Manifest.from_bytes(raw), HEADER_BYTES + length, key_id(public))
    raise BundleRefused(
        "bad signature: the manifest is not signed by any trusted release key "
        f"(signed with key id {str(envelope.get('key_id', '?'))[:16]})"
    )


def check_payload(path: Path, opened: OpenedBundle) -> None:
    """Refuse unless the payload has exactly the manifest's size and SHA-256."""
    size = path.stat().st_size - opened.payload_offset
    if size != opened.manifest.payload_size:
        raise BundleRefused(
            f"payload is {size} bytes, the manifest says {opened.manifest.payload_size}"
        )
    digest = hashlib.sha256()
    with path.open("rb") as f:
        f.seek(opened.payload_offset)
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    if digest.hexdigest() != opened.manifest.payload_sha256:
        raise BundleRefused(
            f"wrong hash: payload sha256 {digest.hexdigest()[:16]}... does not match the "
            f"manifest's {opened.manifest.payload_sha256[:16]}..."
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
