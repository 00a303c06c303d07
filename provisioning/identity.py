"""The appliance's identity: an Ed25519 key pair made at first start, and request signing.

The private key never leaves the box: it lives in ``provisioning.identity_dir`` as a PKCS#8 PEM
file readable only by the user running outpost (0600, directory 0700). The appliance id is
derived from the public key (``op-`` + 20 base32 characters of its SHA-256), so home can check
that an id and a key belong together, and re-imaging a box with the same key keeps its id.

Every request to home is signed over its method, path, appliance id, time, a random nonce and
the SHA-256 of the exact body bytes sent (after compression); see docs/uplink.md.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PRIVATE_KEY_FILE = "device.key"
PUBLIC_KEY_FILE = "device.pub"

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
        self, method: str, path: str, body: bytes, *, clock_synced: bool = True
    ) -> dict[str, str]:
        """Headers that authenticate one request to home."""
        when = f"{time.time():.3f}"
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


def _load(directory: Path) -> Identity:
    key_path = directory / PRIVATE_KEY_FILE
    mode = stat.S_IMODE(key_path.stat().st_mode)
    if mode & 0o077:
        # Tighten rather than refuse: the box must keep working, but say it happened.
        os.chmod(key_path, 0o600)
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise IdentityError(
            f"{key_path} is not a readable Ed25519 private key ({exc}); if it was damaged, move "
            "the identity directory aside: the appliance makes a new key and must be registered "
            "again with the MSP"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"{key_path} holds a {type(key).__name__}, not an Ed25519 key")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return Identity(appliance_id_for(raw), key, raw)


def load_or_create(directory: str | Path) -> Identity:
    """The appliance's identity, made on first call. Safe against a crash mid-creation."""
    directory = Path(directory)
    key_path = directory / PRIVATE_KEY_FILE
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if key_path.exists():
            return _load(directory)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Write to a temporary file of our own (mkstemp: 0600, unique), fsync, then link it to
        # the key's name: a power cut leaves either no key or a whole key, never a truncated one
        # (which would change the box's identity); and when two callers race at first start,
        # link() lets exactly one key win and both go on with that one.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{PRIVATE_KEY_FILE}.", dir=directory)
        try:
            try:
                os.write(fd, pem)
                os.fsync(fd)
            finally:
                os.close(fd)
            with contextlib.suppress(FileExistsError):
                os.link(tmp_name, key_path)
        finally:
            os.unlink(tmp_name)
        identity = _load(directory)
        public_tmp = directory / f".{PUBLIC_KEY_FILE}.{os.getpid()}.{id(identity)}"
        public_tmp.write_text(
            f"appliance_id = {identity.appliance_id}\npublic_key = {identity.public_text}\n"
        )
        os.replace(public_tmp, directory / PUBLIC_KEY_FILE)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return identity
    except PermissionError as exc:
        raise IdentityError(
            f"cannot use the identity directory {directory}: permission denied; it must be "
            "writable by the user running outpost"
        ) from exc


def main(argv: list[str] | None = None) -> int:
    """Print (making it if needed) the appliance id and public key, for registering at home."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m provisioning.identity")
    parser.add_argument("--dir", required=True, help="the identity directory")
    args = parser.parse_args(argv)
    identity = load_or_create(args.dir)
    print(f"appliance_id = {identity.appliance_id}")
    print(f"public_key = {identity.public_text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
