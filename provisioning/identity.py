"""The appliance's identity: an Ed25519 key pair made at first start, and request signing.

The private key never leaves the box: it lives in ``provisioning.identity_dir`` as a PKCS#8 PEM
file readable only by the user running outpost (0600, directory 0700). The appliance id is
derived from the public key (``op-`` + 20 base32 characters of its SHA-256), so home can check
that an id and a key belong together, and re-imaging a box with the same key keeps its id.

Ids, key text and request signing are shared with home and live in :mod:`core.wire.keys`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.wire.keys import Identity, IdentityError, appliance_id_for

PRIVATE_KEY_FILE = "device.key"
PUBLIC_KEY_FILE = "device.pub"


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
