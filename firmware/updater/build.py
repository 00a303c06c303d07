"""Making a release bundle (on the MSP's or vendor's build machine, never on the box).

The payload is a tar.gz of ``wheels/*.whl``: the release's complete, locked set of wheels
(``pip wheel --wheel-dir DIR .`` on the target architecture), installed on the box with
``--no-index --no-deps`` so nothing is resolved or fetched there.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from firmware.updater.manifest import Manifest, sha256_file, write_bundle
from firmware.updater.versions import parse_version


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def build_payload(out: Path, files: dict[str, bytes | Path]) -> dict[str, str]:
    """Write a tar.gz of ``files`` (archive path -> content) and return their SHA-256."""
    hashes: dict[str, str] = {}
    with tarfile.open(out, "w:gz") as tar:
        for name, content in sorted(files.items()):
            data = content.read_bytes() if isinstance(content, Path) else content
            info = tarfile.TarInfo(name)
            # The release tool runs once on a build machine: its real time is the build time.
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
            hashes[name] = hashlib.sha256(data).hexdigest()
    return hashes


def build_bundle(
    out: Path,
    *,
    version: str,
    wheels: list[Path],
    key: Ed25519PrivateKey,
    downgrade_from: tuple[str, ...] = (),
    notes: str = "",
    extra_files: dict[str, bytes] | None = None,
) -> Manifest:
    parse_version(version)
    files: dict[str, bytes | Path] = {f"wheels/{w.name}": w for w in wheels}
    files.update(extra_files or {})
    with tempfile.TemporaryDirectory() as tmp:
        payload = Path(tmp) / "payload.tar.gz"
        hashes = build_payload(payload, files)
        manifest = Manifest(
            version=version,
            payload_sha256=sha256_file(payload),
            payload_size=payload.stat().st_size,
            files=hashes,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            notes=notes,
            downgrade_from=downgrade_from,
        )
        write_bundle(out, manifest, payload, key)
    return manifest
