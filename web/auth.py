"""The admin login: scrypt password hashes, sessions, CSRF tokens and the login rate limit.

Status pages are public on the LAN and read-only; every state change needs the admin session.
There is no default password: it comes from provisioning (``web.admin_password_hash``) or is set
once by the first visitor on the LAN at ``/setup`` and stored (hashed) in the ``kv`` table.

Sessions live in memory only: a reboot logs the admin out, which is the safe default for a box
in a cupboard. Cookies are HttpOnly and SameSite=Strict; the CSRF token is per session (and per
browser before login, as a double-submit cookie) and checked on every POST.

Run ``python -m web.auth hash`` to print a hash for provisioning.
"""

from __future__ import annotations

import getpass
import hmac
import ipaddress
import secrets
import sys
from collections import deque
from dataclasses import dataclass, field

from core import passwords
from core.clock import Clock, system_clock

# scrypt cost: N=2^14, r=8 uses 16 MiB and ~60 ms on a Raspberry Pi 4; slow enough to make
# offline guessing expensive, fast enough for a login.
SCRYPT_N = 2**14
MIN_PASSWORD_CHARS = 10
KV_ADMIN_HASH = "web.admin_password_hash"
LOGIN_WINDOW_S = 60.0
MAX_SESSIONS = 16  # oldest session is dropped beyond this


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """``scrypt$N$r$p$salt$key`` (core/passwords.py): safe to store in the config or the
    database."""
    return passwords.hash_password(password, n=n)


verify_password = passwords.verify_password


def password_problem(password: str, confirm: str) -> str | None:
    if password != confirm:
        return "The two passwords differ; type the same password twice."
    if len(password) < MIN_PASSWORD_CHARS:
        return f"Use at least {MIN_PASSWORD_CHARS} characters."
    return None


def is_lan_client(remote: str | None) -> bool:
    """Private, loopback or link-local source (or the local Unix socket, remote empty)."""
    if not remote:
        return True
    try:
        addr = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return addr.is_private or addr.is_loopback or addr.is_link_local


@dataclass
class Session:
    csrf: str
    expires: float  # deadline on the clock's monotonic time (s), pushed forward on use
    client: str


@dataclass
class Sessions:
    ttl_s: float
    clock: Clock = field(default_factory=system_clock)
    _by_token: dict[str, Session] = field(default_factory=dict)

    def create(self, client: str) -> tuple[str, Session]:
        self._expire()
        while len(self._by_token) >= MAX_SESSIONS:
            self._by_token.pop(next(iter(self._by_token)))
        token = secrets.token_urlsafe(32)
        session = Session(secrets.token_urlsafe(32), self.clock.monotonic() + self.ttl_s, client)
        self._by_token[token] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._by_token.get(token)
        if session is None:
            return None
        now = self.clock.monotonic()
        if session.expires < now:
            del self._by_token[token]
            return None
        session.expires = now + self.ttl_s
        return session

    def drop(self, token: str | None) -> None:
        if token:
            self._by_token.pop(token, None)

    def clear(self) -> None:
        self._by_token.clear()

    def _expire(self) -> None:
        now = self.clock.monotonic()
        for token in [t for t, s in self._by_token.items() if s.expires < now]:
            del self._by_token[token]


@dataclass
class LoginLimiter:
    """At most ``per_min`` failed logins per client address in any 60 s window."""

    per_min: int
    clock: Clock = field(default_factory=system_clock)
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after_s(self, client: str) -> float:
        """0 when the client may try now, else seconds until it may."""
        window = self._window(client)
        if len(window) < self.per_min:
            return 0.0
        return max(0.0, window[0] + LOGIN_WINDOW_S - self.clock.monotonic())

    def failed(self, client: str) -> None:
        self._window(client).append(self.clock.monotonic())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _window(self, client: str) -> deque[float]:
        window = self._failures.setdefault(client, deque())
        horizon = self.clock.monotonic() - LOGIN_WINDOW_S
        while window and window[0] < horizon:
            window.popleft()
        return window


def csrf_equal(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def main(argv: list[str]) -> int:
    if argv[:1] != ["hash"]:
        print("usage: python -m web.auth hash   (reads the password, prints its scrypt hash)")
        return 2
    password = getpass.getpass("admin password: ") if sys.stdin.isatty() else sys.stdin.read()
    password = password.rstrip("\n")
    problem = password_problem(password, password)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
