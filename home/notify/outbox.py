"""The worker's side of the outbox: claim due rows as messages, record what happened.

A message is one send on one channel: a group of ``open`` rows of one site with the same send
time (the group wait, or the digest's business-hours start), or a single ``escalate`` or
``resolved`` row. Claiming marks its rows ``sending`` with a fresh attempt id and writes the
attempt to ``notify_deliveries`` (committed before anything is sent); recording the result
changes only rows still carrying that attempt id. The message id (SMTP Message-ID, webhook
``Idempotency-Key``) is fixed at the first claim and kept by every retry and by a resend after a
crash, so a receiver can recognise a repeat (docs/notifications.md, "Delivery guarantee").
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from core.vocabulary import Severity
from home.notify.planner import (
    CHANNEL_FAILING_KEY,
    HOME_APPLIANCE,
    Planner,
    Thread,
    thread,
)
from home.sql import Connection

CLAIM_LIMIT = 500  # rows per claim; the worker claims again at once while rows are due


@dataclass(frozen=True)
class Item:
    """One notification row of a message, with its alert thread."""

    id: str
    event: str
    held: bool
    body: dict[str, Any]
    thread: Thread


@dataclass(frozen=True)
class Outgoing:
    """One message to send: ``items[0]`` is the cause (most severe; a device down first)."""

    message_id: str
    attempt_id: str
    channel: str
    event: str  # open | escalate | resolved
    site: str
    held: bool  # a digest of alerts held for business hours
    items: tuple[Item, ...]
    in_reply_to: str  # message id of the first message of this alert on this channel, or ''
    attempt: int


def _transaction(conn: Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")


def recover(conn: Connection) -> int:
    """After a restart: rows left ``sending`` by a process that died go back to ``pending``
    (same message id, due at once); their attempts are logged as ``interrupted``."""
    _transaction(conn)
    try:
        conn.execute(
            "UPDATE notify_deliveries SET result = 'interrupted',"
            " error = 'home stopped during the send; resent with the same message id'"
            " WHERE result = 'sending'"
        )
        count = conn.execute(
            "UPDATE notifications SET state = 'pending' WHERE state = 'sending'"
        ).rowcount
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(count)


def _cause_first(item: Item) -> tuple[int, int, float, str]:
    t = item.thread
    rank = Severity.parse(t.severity, Severity.INFO).rank  # the worst alert leads a group
    return (-rank, 0 if "down" in t.rule else 1, t.opened_at, t.ref)


def claim(conn: Connection, now_s: float) -> list[Outgoing]:
    """Mark every due row ``sending`` and return them grouped into messages (committed)."""
    _transaction(conn)
    try:
        rows = conn.execute(
            "SELECT id, ref, site, channel, event, held, due_at, message_id, attempts, body"
            " FROM notifications WHERE state = 'pending' AND next_at <= ?"
            " ORDER BY due_at, created_at, id LIMIT ?",
            (now_s, CLAIM_LIMIT),
        ).fetchall()
        groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        for row in rows:
            row_id, _ref, site, channel, event, held, due_at, message_id, _a, _b = row
            if message_id:
                key: tuple[Any, ...] = ("message", message_id)
            elif event == "open":
                key = ("group", channel, site, due_at, held)
            else:
                key = ("single", row_id)
            groups.setdefault(key, []).append(row)
        out = []
        for members in groups.values():
            items = []
            for row_id, ref, *_rest, body in members:
                found = thread(conn, ref)
                if found is None:
                    continue
                items.append(
                    Item(row_id, members[0][4], bool(members[0][5]), json.loads(body), found)
                )
            if not items:
                continue
            items.sort(key=_cause_first)
            lead = members[0]
            message_id = lead[7] or items[0].id
            attempt_id = secrets.token_hex(8)
            # Each row changes state only if it is still pending: the claim is atomic per row,
            # so a second worker (PostgreSQL, an old leader that has not noticed it lost the
            # lease) that read the same rows claims none of them twice.
            items = [
                item
                for item in items
                if conn.execute(
                    "UPDATE notifications SET state = 'sending', attempt_id = ?, message_id = ?,"
                    " attempts = attempts + 1 WHERE id = ? AND state = 'pending'",
                    (attempt_id, message_id, item.id),
                ).rowcount
                == 1
            ]
            if not items:
                continue
            ids = [item.id for item in items]
            conn.execute(
                "INSERT INTO notify_deliveries (attempt_id, message_id, channel, notifications,"
                " started_at) VALUES (?, ?, ?, ?, ?)",
                (attempt_id, message_id, lead[3], json.dumps(ids), now_s),
            )
            reply = conn.execute(
                "SELECT message_id FROM notifications WHERE ref = ? AND channel = ?"
                " AND event = 'open' AND state = 'sent' AND message_id != ? LIMIT 1",
                (items[0].thread.ref, lead[3], message_id),
            ).fetchone()
            out.append(
                Outgoing(
                    message_id=message_id,
                    attempt_id=attempt_id,
                    channel=lead[3],
                    event=lead[4],
                    site=lead[2],
                    held=bool(lead[5]),
                    items=tuple(items),
                    in_reply_to=str(reply[0]) if reply else "",
                    attempt=int(lead[8]) + 1,
                )
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return out


def backoff_s(attempt: int, first_s: float, cap_s: float) -> float:
    """Wait before retry ``attempt`` (1 = after the first failure): doubling, capped."""
    return float(min(cap_s, first_s * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class Result:
    ok: bool
    error: str
    latency_ms: float


def record(conn: Connection, planner: Planner, out: Outgoing, result: Result, now_s: float) -> str:
    """Store the outcome of one attempt; return the rows' new state (sent, pending, failed)."""
    return record_many(conn, planner, [(out, result)], now_s)[0]


def record_many(
    conn: Connection, planner: Planner, outcomes: list[tuple[Outgoing, Result]], now_s: float
) -> list[str]:
    """Store several attempts' outcomes in one transaction (one commit, one fsync, however many
    sends finished meanwhile); their new states in order."""
    _transaction(conn)
    try:
        states = [_record_one(conn, planner, out, result, now_s) for out, result in outcomes]
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return states


def _record_one(
    conn: Connection, planner: Planner, out: Outgoing, result: Result, now_s: float
) -> str:
    config = planner.config
    if result.ok:
        state = "sent"
        conn.execute(
            "UPDATE notifications SET state = 'sent', sent_at = ?, last_error = ''"
            " WHERE attempt_id = ? AND state = 'sending'",
            (now_s, out.attempt_id),
        )
    elif out.attempt >= config.max_attempts:
        state = "failed"
        conn.execute(
            "UPDATE notifications SET state = 'failed', last_error = ?"
            " WHERE attempt_id = ? AND state = 'sending'",
            (result.error[:500], out.attempt_id),
        )
    else:
        state = "pending"
        wait_s = backoff_s(out.attempt, config.backoff_first_s, config.backoff_cap_s)
        conn.execute(
            "UPDATE notifications SET state = 'pending', next_at = ?, last_error = ?"
            " WHERE attempt_id = ? AND state = 'sending'",
            (now_s + wait_s, result.error[:500], out.attempt_id),
        )
    conn.execute(
        "UPDATE notify_deliveries SET finished_at = ?, result = ?, error = ?, latency_ms = ?"
        " WHERE attempt_id = ?",
        (
            now_s,
            "sent" if result.ok else "error",
            result.error[:500],
            result.latency_ms,
            out.attempt_id,
        ),
    )
    if out.channel != config.fallback:
        if state == "failed":
            planner.set_home_alert(
                conn,
                appliance=HOME_APPLIANCE,
                site="",
                key=CHANNEL_FAILING_KEY + out.channel,
                state="open",
                severity="major",
                message=f"notification channel {out.channel} keeps failing"
                f" ({result.error[:200]}); see 'outpost-home notify list --state failed'",
            )
        elif state == "sent":
            planner.set_home_alert(
                conn,
                appliance=HOME_APPLIANCE,
                site="",
                key=CHANNEL_FAILING_KEY + out.channel,
                state="resolved",
                severity="major",
                message=f"notification channel {out.channel} delivers again",
            )
    return state


def next_due(conn: Connection) -> float | None:
    """When the next pending row becomes due (epoch seconds), or None."""
    row = conn.execute("SELECT MIN(next_at) FROM notifications WHERE state = 'pending'").fetchone()
    return None if row[0] is None else float(row[0])


def listing(conn: Connection, state: str = "", limit: int = 100) -> list[dict[str, Any]]:
    """Notifications, newest first, for the CLI (optionally only one state)."""
    where, params = ("WHERE n.state = ?", [state]) if state else ("", [])
    rows = conn.execute(
        "SELECT n.id, n.ref, n.site, n.channel, n.event, n.state, n.attempts, n.due_at,"
        " n.sent_at, n.last_error, t.message FROM notifications n"
        f" LEFT JOIN notify_threads t ON t.ref = n.ref {where}"
        " ORDER BY n.created_at DESC, n.id LIMIT ?",
        (*params, limit),
    ).fetchall()
    keys = ("id", "ref", "site", "channel", "event", "state", "attempts", "due_at", "sent_at",
            "error", "message")  # fmt: skip
    return [dict(zip(keys, row, strict=True)) for row in rows]


def deliveries(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The delivery log, newest first."""
    rows = conn.execute(
        "SELECT attempt_id, message_id, channel, started_at, finished_at, result, error,"
        " latency_ms FROM notify_deliveries ORDER BY started_at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    keys = ("attempt_id", "message_id", "channel", "started_at", "finished_at", "result",
            "error", "latency_ms")  # fmt: skip
    return [dict(zip(keys, row, strict=True)) for row in rows]
