"""Every state change the console can make, shared by the pages and the JSON API.

Each function runs the change and its audit entry in one transaction on a database thread and
returns a small dict; a change that cannot be made raises :class:`ActionError` (HTTP status and
a message naming the problem and the fix), which is audited as refused.

Acknowledging goes through home/notify's planner when the alert has a notification thread, so
its pending escalations are cancelled exactly as an acknowledgement link would.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

from core.config import parse_config
from core.schema import ConfigError
from core.wire.keys import public_key_text
from home import claims, remote
from home.console import accounts, audit
from home.console.accounts import AccountError, Principal
from home.console.roles import Role, allows
from home.console.state import Console
from home.notify import silences
from home.notify.config import EMPTY
from home.notify.planner import Planner
from home.sql import Connection

MAX_NOTE_CHARS = 1000
MAX_SILENCE_S = 30 * 86400.0
MAX_CONFIG_CHARS = 200_000


class ActionError(Exception):
    def __init__(self, status: int, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems


@dataclass(frozen=True)
class Actor:
    who: Principal
    client: str


async def _run(
    console: Console, actor: Actor, action: str, target: str, work: Any, *, detail: str = ""
) -> Any:
    """``work(conn, now)`` and the audit entry in one transaction; a refusal audited alone."""
    now = console.clock()

    def entry(outcome: str, why: str = "") -> audit.Entry:
        text = detail if not why else (f"{detail}; {why}" if detail else why)
        return audit.Entry(
            now, actor.who.user, actor.who.role.value, action, target, text, actor.client, outcome
        )

    def tx(conn: Connection) -> Any:
        result = work(conn, now)
        audit.record(conn, entry("ok"))
        return result

    try:
        return await console.in_tx(tx)
    except (ActionError, AccountError, claims.ClaimError) as exc:
        await console.in_tx(audit.record, entry("refused", str(exc)))
        if isinstance(exc, ActionError):
            raise
        raise ActionError(409 if isinstance(exc, claims.ClaimError) else 400, str(exc)) from None


def _alert_exists(conn: Connection, appliance: str, key: str) -> float:
    row = conn.execute(
        "SELECT ts FROM alerts WHERE appliance = ? AND key = ? AND state = 'open'",
        (appliance, key),
    ).fetchone()
    if row is None:
        raise ActionError(404, f"no open alert {key!r} on {appliance!r}; it may have resolved")
    return float(row[0])


def _state_row(conn: Connection, appliance: str, key: str) -> None:
    conn.execute(
        "INSERT INTO console_alert_state (appliance, key) VALUES (?, ?)"
        " ON CONFLICT (appliance, key) DO NOTHING",
        (appliance, key),
    )


# ---- alerts (technician) ----


async def acknowledge(console: Console, actor: Actor, appliance: str, key: str) -> dict[str, Any]:
    by = actor.who.user

    def work(conn: Connection, now: float) -> dict[str, Any]:
        opened = _alert_exists(conn, appliance, key)
        _state_row(conn, appliance, key)
        conn.execute(
            "UPDATE console_alert_state SET acked_by = ?, acked_at = ?, opened_ts = ?"
            " WHERE appliance = ? AND key = ?",
            (by, now, opened, appliance, key),
        )
        # home/notify's thread of this alert, if notifications know it: stop its escalation.
        ref = conn.execute(
            "SELECT ref FROM notify_threads WHERE appliance = ? AND alert_key = ? AND state ="
            " 'open' ORDER BY opened_at DESC LIMIT 1",
            (appliance, key),
        ).fetchone()
        escalation_stopped = False
        if ref is not None:
            escalation_stopped = Planner(EMPTY, lambda: now).acknowledge(
                conn, str(ref[0]), f"{by} (console)"
            )
        return {
            "acknowledged": key,
            "appliance": appliance,
            "by": by,
            "notify_ref": str(ref[0]) if ref else "",
            "escalation_stopped": escalation_stopped,
        }

    result: dict[str, Any] = await _run(
        console, actor, "alert.ack", f"{appliance}/{key}", work, detail=""
    )
    return result


async def note(
    console: Console, actor: Actor, appliance: str, key: str, text: str
) -> dict[str, Any]:
    text = text.strip()
    if len(text) > MAX_NOTE_CHARS:
        raise ActionError(400, f"a note holds at most {MAX_NOTE_CHARS} characters")

    def work(conn: Connection, now: float) -> dict[str, Any]:
        _alert_exists(conn, appliance, key)
        _state_row(conn, appliance, key)
        conn.execute(
            "UPDATE console_alert_state SET note = ?, note_by = ?, note_at = ?"
            " WHERE appliance = ? AND key = ?",
            (text, actor.who.user, now, appliance, key),
        )
        return {"noted": key, "appliance": appliance}

    result: dict[str, Any] = await _run(
        console, actor, "alert.note", f"{appliance}/{key}", work, detail=text[:200]
    )
    return result


async def silence(
    console: Console, actor: Actor, appliance: str, key: str, minutes: float
) -> dict[str, Any]:
    if not 0 <= minutes * 60.0 <= MAX_SILENCE_S:
        raise ActionError(400, f"silence for 0 to {MAX_SILENCE_S / 86400:.0f} days (in minutes)")

    def work(conn: Connection, now: float) -> dict[str, Any]:
        _alert_exists(conn, appliance, key)
        _state_row(conn, appliance, key)
        until = now + minutes * 60.0 if minutes > 0 else None
        conn.execute(
            "UPDATE console_alert_state SET silenced_until = ?, silenced_by = ?"
            " WHERE appliance = ? AND key = ?",
            (until, actor.who.user, appliance, key),
        )
        notify_silence = ""
        if until is not None:
            # home/notify's maintenance window for this site and key: a re-opening of the alert
            # within it notifies nobody (docs/notifications.md).
            site = conn.execute("SELECT site FROM appliances WHERE id = ?", (appliance,)).fetchone()
            notify_silence = silences.add(
                conn,
                site=str(site[0]) if site else "",
                device="",
                key_pattern=_literal_pattern(key),
                starts_at=now,
                ends_at=until,
                reason="silenced in the console",
                created_by=actor.who.user,
            )
        return {"silenced": key, "appliance": appliance, "until": until,
                "notify_silence": notify_silence}  # fmt: skip

    result: dict[str, Any] = await _run(
        console, actor, "alert.silence", f"{appliance}/{key}", work, detail=f"{minutes:g} min"
    )
    return result


def _literal_pattern(key: str) -> str:
    """A shell pattern (fnmatch) matching exactly ``key``."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in key)


async def assign(
    console: Console, actor: Actor, appliance: str, key: str, user: str
) -> dict[str, Any]:
    """Assign an open alert to a technician or admin ('' unassigns)."""

    def work(conn: Connection, now: float) -> dict[str, Any]:
        _alert_exists(conn, appliance, key)
        if user:
            row = conn.execute(
                "SELECT role FROM console_users WHERE name = ? AND disabled = 0", (user,)
            ).fetchone()
            if row is None or not allows(Role(row[0]), Role.TECHNICIAN):
                raise ActionError(400, f"{user!r} is not a technician or admin of this console")
        _state_row(conn, appliance, key)
        conn.execute(
            "UPDATE console_alert_state SET assigned_to = ? WHERE appliance = ? AND key = ?",
            (user, appliance, key),
        )
        return {"assigned": key, "appliance": appliance, "to": user}

    result: dict[str, Any] = await _run(
        console, actor, "alert.assign", f"{appliance}/{key}", work, detail=f"to {user or '-'}"
    )
    return result


# ---- boxes (claim, release, configuration: admin; commands: technician, update: admin) ----


def _signing_key(console: Console) -> Any:
    if console.data_dir is None:
        raise ActionError(503, "home runs without a data directory; claims need its signing key")
    try:
        return remote.load_signing_key(console.data_dir)
    except claims.ClaimError as exc:
        raise ActionError(503, str(exc)) from None


async def claim(console: Console, actor: Actor, code: str, site: str) -> dict[str, Any]:
    code, site = code.strip(), site.strip()
    if not code or not site or len(site) > 200:
        raise ActionError(400, "give the claim code from the box and a site name (200 at most)")
    msp_key = public_key_text(_signing_key(console).public_key())
    db = console.db

    def work(conn: Connection, now: float) -> dict[str, Any]:
        # claims.claim_sync runs its own transaction: ours pauses around it (the audit entry
        # follows in a transaction of its own).
        conn.execute("COMMIT")
        try:
            appliance = claims.claim_sync(db, code, site, msp_key, now)
        finally:
            conn.execute("BEGIN IMMEDIATE")
        return {"claimed": appliance, "site": site}

    result: dict[str, Any] = await _run(console, actor, "box.claim", site, work, detail="")
    return result


async def release(console: Console, actor: Actor, appliance: str) -> dict[str, Any]:
    db = console.db

    def work(conn: Connection, now: float) -> dict[str, Any]:
        conn.execute("COMMIT")
        try:
            claims.release_sync(db, appliance)
        finally:
            conn.execute("BEGIN IMMEDIATE")
        return {"released": appliance}

    result: dict[str, Any] = await _run(console, actor, "box.release", appliance, work, detail="")
    return result


def check_config(text: str) -> dict[str, Any]:
    """The TOML table of a site configuration the box will accept; ActionError listing every
    problem (core.config.parse_config, the box's own validation) otherwise."""
    if len(text) > MAX_CONFIG_CHARS:
        raise ActionError(400, f"a configuration holds at most {MAX_CONFIG_CHARS} characters")
    try:
        parse_config(text, "site configuration")
    except ConfigError as exc:
        raise ActionError(422, "the configuration was refused", tuple(exc.problems)) from None
    return tomllib.loads(text)


async def push_config(console: Console, actor: Actor, appliance: str, text: str) -> dict[str, Any]:
    try:
        table = check_config(text)
    except ActionError as exc:
        refused = audit.Entry(
            console.clock(),
            actor.who.user,
            actor.who.role.value,
            "box.config",
            appliance,
            "; ".join(exc.problems)[:400],
            actor.client,
            "refused",
        )
        await console.in_tx(audit.record, refused)
        raise
    key = _signing_key(console)
    db = console.db

    def work(conn: Connection, now: float) -> dict[str, Any]:
        version = remote.push_config_sync(db, key, appliance, table)
        return {"appliance": appliance, "config_version": version}

    result: dict[str, Any] = await _run(
        console, actor, "box.config", appliance, work, detail=f"{len(text)} characters"
    )
    return result


async def command(
    console: Console, actor: Actor, appliance: str, action: str, args: dict[str, str]
) -> dict[str, Any]:
    if action not in remote.ACTIONS:
        raise ActionError(400, f"unknown command {action!r}; known: {', '.join(remote.ACTIONS)}")
    if action == "update" and not allows(actor.who.role, Role.ADMIN):
        raise ActionError(403, "an update needs the admin role")
    key = _signing_key(console)
    db = console.db

    def work(conn: Connection, now: float) -> dict[str, Any]:
        row = conn.execute(
            "SELECT 1 FROM appliances WHERE id = ? AND state = 'registered'", (appliance,)
        ).fetchone()
        if row is None:
            raise ActionError(404, f"no claimed box {appliance!r}")
        cid = remote.add_command_sync(db, key, appliance, action, args=args, issued_at=now)
        return {"command": cid, "appliance": appliance, "action": action}

    detail = " ".join(f"{k}={v}" for k, v in sorted(args.items()))[:200]
    result: dict[str, Any] = await _run(
        console, actor, f"box.command.{action}", appliance, work, detail=detail
    )
    return result


async def roll_out(
    console: Console, actor: Actor, targets: list[str], url: str, version: str
) -> dict[str, Any]:
    """Send a signed ``update`` command (args url, version) to each of ``targets`` (claimed
    boxes; ["all"] for every claimed box): one box first, then more, as the MSP decides."""
    url, version = url.strip(), version.strip()
    if not url.startswith(("https://", "http://")) or len(url) > 1000:
        raise ActionError(400, "give the update bundle's URL (https://...)")
    if targets == ["all"]:
        targets = [str(a) for (a,) in await console.on_db(
            lambda conn: conn.execute(
                "SELECT id FROM appliances WHERE state = 'registered' ORDER BY site, id"
            ).fetchall())]  # fmt: skip
    if not targets:
        raise ActionError(400, "choose a box, or all boxes")
    args = {"url": url, **({"version": version} if version else {})}
    sent = [(await command(console, actor, t, "update", args))["command"] for t in targets]
    return {"commands": sent, "boxes": targets}


# ---- users and tokens (admin) ----


async def create_user(
    console: Console, actor: Actor, name: str, role: str, password: str
) -> dict[str, Any]:
    def work(conn: Connection, now: float) -> dict[str, Any]:
        user = accounts.create_user(conn, name, accounts.parse_role_or_error(role), password, now)
        return {"user": user.name, "role": user.role.value}

    result: dict[str, Any] = await _run(
        console, actor, "user.create", name, work, detail=f"role {role}"
    )
    return result


async def delete_user(console: Console, actor: Actor, name: str) -> dict[str, Any]:
    def work(conn: Connection, now: float) -> dict[str, Any]:
        accounts.delete_user(conn, name, now)
        return {"deleted": name}

    result: dict[str, Any] = await _run(console, actor, "user.delete", name, work, detail="")
    return result


async def set_role(console: Console, actor: Actor, name: str, role: str) -> dict[str, Any]:
    def work(conn: Connection, now: float) -> dict[str, Any]:
        accounts.set_role(conn, name, accounts.parse_role_or_error(role))
        return {"user": name, "role": role}

    result: dict[str, Any] = await _run(
        console, actor, "user.role", name, work, detail=f"role {role}"
    )
    return result


async def create_token(console: Console, actor: Actor, label: str, role: str) -> dict[str, Any]:
    def work(conn: Connection, now: float) -> dict[str, Any]:
        parsed = accounts.parse_role_or_error(role)
        token_id, secret = accounts.create_token(conn, actor.who.user, label, parsed, now)
        return {"id": token_id, "token": secret, "role": parsed.value, "label": label}

    result: dict[str, Any] = await _run(
        console, actor, "token.create", label, work, detail=f"role {role}"
    )
    return result


async def revoke_token(console: Console, actor: Actor, token_id: str) -> dict[str, Any]:
    def work(conn: Connection, now: float) -> dict[str, Any]:
        accounts.revoke_token(conn, token_id, now)
        return {"revoked": token_id}

    result: dict[str, Any] = await _run(console, actor, "token.revoke", token_id, work, detail="")
    return result
