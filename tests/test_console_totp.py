"""The console's optional TOTP second factor: RFC 6238's own test vectors, then a login that
needs the code, refuses a wrong one and refuses the same code twice."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from home.console import totp
from simsite.harness.processes import HOME
from tests.console_support import PASSWORD, client, served

pytestmark = pytest.mark.usefixtures("home_backend")

# RFC 6238 appendix B, SHA-1: the ASCII secret "12345678901234567890", 8 digits.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("at", "expected"), RFC_VECTORS)
def test_rfc6238_vectors(at: int, expected: str) -> None:
    assert totp.code_at(RFC_SECRET, at, digits=8) == expected


def test_a_code_matches_its_step_and_neighbours_once() -> None:
    secret = totp.new_secret()
    now = 1_800_000_015.0
    code = totp.code_at(secret, now)
    step = int(now // totp.STEP_S)
    assert totp.matching_step(secret, code, now, 0) == step
    assert totp.matching_step(secret, code, now + 30, 0) == step  # a phone a step behind
    assert totp.matching_step(secret, code, now + 90, 0) is None  # too old
    assert totp.matching_step(secret, code, now, step) is None  # used
    assert totp.matching_step(secret, "12345", now, 0) is None
    assert totp.uri(secret, "ann").startswith("otpauth://totp/Outpost%20home%3Aann?secret=")


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``outpost-home ARGS`` off the event loop (the server under test runs on it)."""
    return await asyncio.to_thread(
        subprocess.run, [*HOME, *args], check=True, capture_output=True, text=True
    )


async def _login(c: object, name: str, code: str) -> int:
    status, page, _ = await c.get("/console/login")  # type: ignore[attr-defined]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    form = {"name": name, "password": PASSWORD, "code": code, "csrf": csrf.group(1)}
    status, _, _ = await c.post("/console/login", form)  # type: ignore[attr-defined]
    return int(status)


async def test_login_needs_the_code_once_it_is_on(tmp_path: Path, home_database: str) -> None:
    async with served(tmp_path, home_database) as s:
        where = ["--data-dir", str(tmp_path), "--database", home_database or str(s.db.path)]
        (tmp_path / "pw").write_text(PASSWORD + "\n")
        await _cli("create-user", "ann", "--role", "admin", "--password-file",
                   str(tmp_path / "pw"), *where)  # fmt: skip
        made = await _cli("totp", "ann", *where)
        secret = json.loads(made.stdout)["secret"]
        async with client(s.url) as c:
            assert await _login(c, "ann", "") == 401  # the password alone is not enough
            code = totp.code_at(secret, time.time())
            wrong = f"{(int(code) + 500_000) % 10**6:06d}"
            assert await _login(c, "ann", wrong) == 401
            assert await _login(c, "ann", code) == 303
        async with client(s.url) as c:
            assert await _login(c, "ann", code) == 401  # the same code again: refused
        await _cli("totp", "ann", "--off", *where)
        async with client(s.url) as c:
            assert await _login(c, "ann", "") == 303
        audit = await s.rows("SELECT action, detail, outcome FROM console_audit ORDER BY id")
        assert ("user.totp", "on", "ok") in audit and ("user.totp", "off", "ok") in audit
        assert not any(secret in str(row) for row in audit)
