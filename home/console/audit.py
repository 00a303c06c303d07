"""The console's audit log: who did what to what, when, from where, and how it ended.

One row per state-changing request (and per refused one): ``at`` epoch seconds (home's clock),
``user_name`` and ``role`` (or '-' for an anonymous login attempt), ``action`` (e.g.
``alert.ack``, ``box.claim``, ``login``), ``target`` (what it acted on), ``detail`` (free text,
never a secret), ``client`` (the peer address), ``outcome`` (``ok``, ``refused``, ``failed``).
Written in the same transaction as the change when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass

from home.sql import Connection

MAX_DETAIL_CHARS = 500


@dataclass(frozen=True)
class Entry:
    at: float
    user: str
    role: str
    action: str
    target: str
    detail: str
    client: str
    outcome: str


def record(conn: Connection, entry: Entry) -> None:
    conn.execute(
        "INSERT INTO console_audit (at, user_name, role, action, target, detail, client, outcome)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.at,
            entry.user[:64],
            entry.role,
            entry.action,
            entry.target[:200],
            entry.detail[:MAX_DETAIL_CHARS],
            entry.client[:64],
            entry.outcome,
        ),
    )


def listing(conn: Connection, limit: int = 200, action: str = "") -> list[Entry]:
    sql = "SELECT at, user_name, role, action, target, detail, client, outcome FROM console_audit"
    params: tuple[object, ...] = ()
    if action:
        sql += " WHERE action = ?"
        params = (action,)
    sql += " ORDER BY id DESC LIMIT ?"
    return [Entry(*row) for row in conn.execute(sql, (*params, int(limit))).fetchall()]
