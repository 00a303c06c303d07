"""Signed, expiring, single-purpose acknowledgement links.

A link is ``{public_url}/notify/ack?t=TOKEN`` with
``TOKEN = base64url(JSON {"p": "ack", "r": ref, "c": channel, "x": expires_epoch_s})
+ "." + base64url(HMAC-SHA256(home_secret, first_part))``. The purpose ``p`` makes a token
minted for acknowledgement useless for anything else; ``x`` bounds its life; the HMAC key is
home's own secret (``notify.secret`` in the data directory, 32 random bytes, mode 600), so only
home can mint one. Opening the link (GET) shows a page with a button; only the POST of that
button acknowledges, because mail scanners (Outlook Safe Links, Mimecast) open every link in a
mail, which must not acknowledge anything on the technician's behalf.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PURPOSE = "ack"
SECRET_FILE = "notify.secret"
ACK_PATH = "/notify/ack"


class AckError(Exception):
    """A link that is forged, damaged, expired or for another purpose."""


@dataclass(frozen=True)
class AckClaim:
    ref: str
    channel: str
    expires_s: float


def load_or_create_secret(data_dir: Path) -> bytes:
    """Home's acknowledgement key: made once (32 random bytes, mode 600), then read."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < 16:
        raise ValueError(f"{path} is damaged; delete it to make a new one (old links stop working)")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(secret: bytes, ref: str, channel: str, expires_s: float) -> str:
    claim = json.dumps({"p": PURPOSE, "r": ref, "c": channel, "x": int(expires_s)},
                       separators=(",", ":"), sort_keys=True)  # fmt: skip
    head = _b64(claim.encode())
    mac = hmac.new(secret, head.encode(), hashlib.sha256).digest()
    return f"{head}.{_b64(mac)}"


def verify(secret: bytes, token: str, now_s: float) -> AckClaim:
    """The claim of a valid token; AckError (saying why) for anything else."""
    head, dot, mac = token.partition(".")
    if not dot or len(token) > 1024:
        raise AckError("this acknowledgement link is damaged")
    expected = hmac.new(secret, head.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(mac)
        doc: Any = json.loads(_unb64(head))
    except (ValueError, UnicodeDecodeError):
        raise AckError("this acknowledgement link is damaged") from None
    if not hmac.compare_digest(given, expected):
        raise AckError("this acknowledgement link is not valid")
    if not isinstance(doc, dict) or doc.get("p") != PURPOSE:
        raise AckError("this link is not an acknowledgement link")
    expires = doc.get("x")
    if not isinstance(expires, int) or now_s > expires:
        raise AckError("this acknowledgement link has expired; acknowledge from the CLI")
    return AckClaim(str(doc.get("r", "")), str(doc.get("c", "")), float(expires))
