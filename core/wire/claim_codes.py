"""Claim codes as both sides see them: the form a technician types, and the hash home keeps.

Home only ever receives the SHA-256 of a code (:func:`code_hash`), so its database cannot be used
to claim boxes. The box makes the codes (provisioning/claim.py).
"""

from __future__ import annotations

import hashlib

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # base32 without I, O, 0, 1: read off a label
CODE_CHARS = 16


def normalize(code: str) -> str:
    """What a technician typed, as the box printed it (case, spaces and dashes forgiven)."""
    raw = "".join(ch for ch in code.upper() if ch.isalnum())
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def code_hash(code: str) -> str:
    return hashlib.sha256(b"outpost-claim-v1:" + normalize(code).encode()).hexdigest()
