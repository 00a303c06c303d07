"""Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): the console's optional second
factor, the codes of any authenticator app (HMAC-SHA1, 30 s steps, 6 digits).

A code is accepted for the current step or one step either side (a phone clock a little off, a
code typed as it turns over) and only once: the step it matched is stored, and a code of that
step or an earlier one is refused afterwards (a code seen over a shoulder cannot be replayed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote

STEP_S = 30
DIGITS = 6
WINDOW_STEPS = 1
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation


def new_secret() -> str:
    """A random secret in base32 (what authenticator apps take), without padding."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def _key(secret_b32: str) -> bytes:
    text = secret_b32.strip().replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def hotp(key: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 HOTP value of ``counter`` (dynamic truncation of HMAC-SHA1)."""
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def code_at(secret_b32: str, now_s: float, digits: int = DIGITS) -> str:
    """The code an authenticator shows at ``now_s`` (epoch seconds)."""
    return hotp(_key(secret_b32), int(now_s // STEP_S), digits)


def matching_step(secret_b32: str, code: str, now_s: float, last_step: int) -> int | None:
    """The time step ``code`` belongs to (within WINDOW_STEPS of now and after ``last_step``),
    or None when it is wrong, too old or already used."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    key = _key(secret_b32)
    now_step = int(now_s // STEP_S)
    for step in range(now_step - WINDOW_STEPS, now_step + WINDOW_STEPS + 1):
        if step > last_step and hmac.compare_digest(hotp(key, step), code):
            return step
    return None


def uri(secret_b32: str, user: str, issuer: str = "Outpost home") -> str:
    """The otpauth:// URI authenticator apps import (as text or a QR code made from it)."""
    label = quote(f"{issuer}:{user}")
    return f"otpauth://totp/{label}?secret={secret_b32}&issuer={quote(issuer)}&digits={DIGITS}"
