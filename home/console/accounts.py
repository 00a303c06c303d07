"""Console users, browser sessions, API tokens and the one-time setup token (home's database).

Every function runs on a database thread with that thread's connection (``HomeDB.call``).
Secrets (session cookies, API tokens, the setup token) are random 32-byte url-safe strings of
which only the SHA-256 is stored: a copy of the database logs nobody in. Times are epoch
seconds from the caller's clock.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass

from home.console import totp
from home.console.passwords import DUMMY_HASH, hash_password, password_problem, verify_password
from home.console.roles import Role, allows, parse_role
from home.sql import Connection

SESSION_IDLE_S = 8 * 3600.0  # a technician's working day without a click logs out
SESSION_MAX_S = 24 * 3600.0  # and no session lives longer than a day
TOKEN_PREFIX = "opc_"  # API tokens are recognisable in a leaked log or a secret scanner
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class AccountError(Exception):
    """A user or token change that cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    created_at: float
    disabled: bool
    totp: bool = False  # a TOTP code is needed after the password


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user through a session cookie or an API token."""

    user: str
    role: Role
    via: str  # "session" or "token"
    csrf: str  # the session's CSRF token ('' for an API token: no ambient credential)
    session: str  # the hash of the session or token id, to log out or revoke


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# ---- users ----


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise AccountError(
            f"user name {name!r}: 1-64 letters, digits, '.', '_', '@' or '-', starting with a "
            "letter or digit"
        )
    return name


def user_count(conn: Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM console_users").fetchone()[0])


def users(conn: Connection) -> list[User]:
    return [
        User(n, Role(r), float(c), bool(d))
        for n, r, c, d in conn.execute(
            "SELECT name, role, created_at, disabled FROM console_users ORDER BY name"
        ).fetchall()
    ]


def create_user(conn: Connection, name: str, role: Role, password: str, now: float) -> User:
    """Add a user; AccountError if the name is taken or the password too weak."""
    check_name(name)
    problem = password_problem(password)
    if problem:
        raise AccountError(f"password refused: {problem}")
    try:
        conn.execute(
            "INSERT INTO console_users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
            (name, role.value, hash_password(password), now),
        )
    except sqlite3.IntegrityError:
        raise AccountError(f"user {name!r} exists; choose another name") from None
    conn.execute("DELETE FROM console_setup")  # the setup token is spent once a user exists
    return User(name, role, now, False)


def set_role(conn: Connection, name: str, role: Role) -> None:
    if conn.execute(
        "UPDATE console_users SET role = ? WHERE name = ?", (role.value, name)
    ).rowcount:
        return
    raise AccountError(f"no user {name!r}")


def set_password(conn: Connection, name: str, password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise AccountError(f"password refused: {problem}")
    done = conn.execute(
        "UPDATE console_users SET password_hash = ? WHERE name = ?", (hash_password(password), name)
    ).rowcount
    if not done:
        raise AccountError(f"no user {name!r}")
    conn.execute("DELETE FROM console_sessions WHERE user_name = ?", (name,))


def delete_user(conn: Connection, name: str, now: float) -> None:
    """Remove a user, their sessions and tokens; the last admin cannot be removed."""
    row = conn.execute("SELECT role FROM console_users WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise AccountError(f"no user {name!r}")
    if row[0] == Role.ADMIN.value:
        admins = conn.execute(
            "SELECT COUNT(*) FROM console_users WHERE role = ? AND disabled = 0",
            (Role.ADMIN.value,),
        ).fetchone()[0]
        if int(admins) <= 1:
            raise AccountError("this is the last admin; make another admin first")
    conn.execute("DELETE FROM console_users WHERE name = ?", (name,))
    conn.execute("DELETE FROM console_sessions WHERE user_name = ?", (name,))
    conn.execute(
        "UPDATE console_tokens SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL",
        (now, name),
    )


def check_password(conn: Connection, name: str, password: str) -> User | None:
    """The user when ``password`` is theirs (and they are not disabled), else None. Read-only:
    the 80 ms of scrypt must not hold the database's write lock. ``User.totp`` says whether a
    code must follow (:func:`accept_code`)."""
    row = conn.execute(
        "SELECT name, role, password_hash, created_at, disabled, totp_secret"
        " FROM console_users WHERE name = ?",
        (name,),
    ).fetchone()
    if row is None:
        verify_password(password, DUMMY_HASH)  # same time as a wrong password
        return None
    if not verify_password(password, str(row[2])) or row[4]:
        return None
    return User(str(row[0]), Role(row[1]), float(row[3]), bool(row[4]), bool(row[5]))


def accept_code(conn: Connection, name: str, code: str, now: float) -> bool:
    """Whether ``code`` is the user's current TOTP code, not used before; the step it matched
    is stored in the same statement that checks it was not (two logins cannot both use it)."""
    row = conn.execute(
        "SELECT totp_secret, totp_last_step FROM console_users WHERE name = ?", (name,)
    ).fetchone()
    if row is None or not row[0]:
        return False
    step = totp.matching_step(str(row[0]), code, now, int(row[1]))
    if step is None:
        return False
    return bool(
        conn.execute(
            "UPDATE console_users SET totp_last_step = ? WHERE name = ? AND totp_last_step < ?",
            (step, name, step),
        ).rowcount
    )


def set_totp(conn: Connection, name: str, secret_b32: str) -> None:
    """Enable the TOTP second factor with ``secret_b32`` ('' disables it)."""
    done = conn.execute(
        "UPDATE console_users SET totp_secret = ?, totp_last_step = 0 WHERE name = ?",
        (secret_b32, name),
    ).rowcount
    if not done:
        raise AccountError(f"no user {name!r}")
    conn.execute("DELETE FROM console_sessions WHERE user_name = ?", (name,))


# ---- sessions ----


def create_session(conn: Connection, user: User, client: str, now: float) -> tuple[str, str]:
    """A new session: (cookie value, CSRF token)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    conn.execute("DELETE FROM console_sessions WHERE expires_at < ?", (now,))
    conn.execute(
        "INSERT INTO console_sessions (token_hash, user_name, csrf, client, created_at,"
        " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        (digest(token), user.name, csrf, client[:64], now, now + SESSION_IDLE_S),
    )
    return token, csrf


def session_principal(conn: Connection, token: str, now: float) -> Principal | None:
    """The user behind a session cookie (its idle deadline pushed on), or None."""
    if not token or len(token) > 128:
        return None
    key = digest(token)
    row = conn.execute(
        "SELECT s.user_name, u.role, s.csrf, s.created_at, s.expires_at FROM console_sessions s"
        " JOIN console_users u ON u.name = s.user_name WHERE s.token_hash = ? AND u.disabled = 0",
        (key,),
    ).fetchone()
    if row is None:
        return None
    user, role, csrf, created, expires = row
    if float(expires) < now or float(created) + SESSION_MAX_S < now:
        conn.execute("DELETE FROM console_sessions WHERE token_hash = ?", (key,))
        return None
    if float(expires) - now < SESSION_IDLE_S - 60.0:  # at most one write a minute per session
        conn.execute(
            "UPDATE console_sessions SET expires_at = ? WHERE token_hash = ?",
            (now + SESSION_IDLE_S, key),
        )
    return Principal(str(user), Role(role), "session", str(csrf), key)


def drop_session(conn: Connection, key: str) -> None:
    conn.execute("DELETE FROM console_sessions WHERE token_hash = ?", (key,))


# ---- API tokens ----


def create_token(
    conn: Connection, user: str, label: str, role: Role, now: float
) -> tuple[str, str]:
    """A new API token for ``user`` with at most ``role`` (never above the user's): (id, secret).
    The secret is shown once; only its hash is kept."""
    row = conn.execute("SELECT role FROM console_users WHERE name = ?", (user,)).fetchone()
    if row is None:
        raise AccountError(f"no user {user!r}")
    if not allows(Role(row[0]), role):
        raise AccountError(f"a token cannot hold more than its user's role ({row[0]})")
    token_id = "t-" + secrets.token_hex(6)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO console_tokens (id, token_hash, user_name, label, role, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (token_id, digest(secret), user, label[:80], role.value, now),
    )
    return token_id, secret


def token_principal(conn: Connection, secret: str, now: float) -> Principal | None:
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
        return None
    row = conn.execute(
        "SELECT t.id, t.user_name, t.role, u.role, t.last_used_at FROM console_tokens t"
        " JOIN console_users u ON u.name = t.user_name"
        " WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.disabled = 0",
        (digest(secret),),
    ).fetchone()
    if row is None:
        return None
    token_id, user, role, user_role, used = row
    # A token never holds more than its user holds now (the user may have been demoted).
    held = min((Role(role), Role(user_role)), key=lambda r: list(Role).index(r))
    if used is None or now - float(used) > 60.0:
        conn.execute("UPDATE console_tokens SET last_used_at = ? WHERE id = ?", (now, token_id))
    return Principal(str(user), held, "token", "", str(token_id))


def tokens(conn: Connection) -> list[dict[str, object]]:
    return [
        {"id": i, "user": u, "label": lb, "role": r, "created_at": c, "last_used_at": lu,
         "revoked": rv is not None}
        for i, u, lb, r, c, lu, rv in conn.execute(
            "SELECT id, user_name, label, role, created_at, last_used_at, revoked_at"
            " FROM console_tokens ORDER BY created_at"
        ).fetchall()
    ]  # fmt: skip


def revoke_token(conn: Connection, token_id: str, now: float) -> None:
    done = conn.execute(
        "UPDATE console_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (now, token_id),
    ).rowcount
    if not done:
        raise AccountError(f"no active token {token_id!r}")


# ---- the one-time setup token ----


def new_setup_token(conn: Connection, now: float) -> str | None:
    """When no user exists: a fresh setup token (replacing any earlier one), else None."""
    if user_count(conn):
        return None
    token = secrets.token_urlsafe(24)
    conn.execute("DELETE FROM console_setup")
    conn.execute(
        "INSERT INTO console_setup (id, token_hash, created_at) VALUES ('setup', ?, ?)",
        (digest(token), now),
    )
    return token


def setup_token_valid(conn: Connection, token: str) -> bool:
    if not token or len(token) > 128 or user_count(conn):
        return False
    row = conn.execute("SELECT token_hash FROM console_setup WHERE id = 'setup'").fetchone()
    return row is not None and secrets.compare_digest(str(row[0]), digest(token))


def parse_role_or_error(text: str) -> Role:
    try:
        return parse_role(text)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
