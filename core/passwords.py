"""Password hashes for the box's admin login and home's console users: scrypt (RFC 7914).

A stored hash reads ``scrypt$N$r$p$salt$key`` (salt and key base64url): the cost travels with
the hash, so a caller may raise its cost later and old hashes stay verifiable. Each caller
chooses N for its machine (a Raspberry Pi takes 2^14; home 2^15).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM_BYTES = 128 * 1024 * 1024
SALT_BYTES = 16
KEY_BYTES = 32
MAX_PASSWORD_CHARS = 1024  # scrypt of a megabyte would be a cheap denial of service


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int) -> str:
    """The storable scrypt hash of ``password`` (cost ``n``) with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=n,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=SCRYPT_MAXMEM_BYTES,
        dklen=KEY_BYTES,
    )
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; False for a wrong one or a damaged hash."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        kind, n, r, p, salt, key = stored.split("$")
        if kind != "scrypt":
            return False
        expected = _unb64(key)
        got = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=SCRYPT_MAXMEM_BYTES,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)
