"""Password hashing for console users: scrypt (RFC 7914) from the standard library.

A stored hash reads ``scrypt$N$r$p$salt$key`` (salt and key base64url): the cost travels with
the hash, so raising it later leaves old hashes verifiable. There is no default password.
"""

from __future__ import annotations

import secrets

from core import passwords

# N=2^15, r=8: 32 MiB and about 80 ms per hash on the 2-core build machine: a login costs
# little, an offline guess costs the same 80 ms.
SCRYPT_N = 2**15
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = passwords.MAX_PASSWORD_CHARS


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """The storable scrypt hash of ``password`` (core/passwords.py) at home's cost."""
    return passwords.hash_password(password, n=n)


verify_password = passwords.verify_password


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
