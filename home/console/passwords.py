"""Password hashing for console users: scrypt (RFC 7914) from the standard library.

A stored hash reads ``scrypt$N$r$p$salt$key`` (salt and key base64url): the cost travels with
the hash, so raising it later leaves old hashes verifiable. There is no default password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# N=2^15, r=8: 32 MiB and about 80 ms per hash on the 2-core build machine: a login costs
# little, an offline guess costs the same 80 ms.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM_BYTES = 128 * 1024 * 1024
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024  # scrypt of a megabyte would be a cheap denial of service


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """The storable scrypt hash of ``password`` with a fresh random salt."""
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


# Verified against when the user name is unknown, so a wrong name takes as long as a wrong
# password and the timing does not tell which names exist.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def password_problem(password: str) -> str | None:
    """Why ``password`` may not be used, or None."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"use at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"use at most {MAX_PASSWORD_CHARS} characters"
    return None
