"""Notification settings edited in the console: versioned ``[notify]`` documents in the database.

The effective settings are the newest stored version if there is one, else the ``[notify]``
table of home's TOML file (version 0). Every home instance behind the load balancer reads the
same table (migration 13, ``notify_settings``), so an edit reaches all of them; the Notifier
polls :func:`newest_version` and applies a new one without a restart (home/notify/worker.py).

A stored document is the TOML text of one top-level ``[notify]`` table, written as in the file
(``[notify.channels.NAME]``, ``[[notify.routes]]``, ``[notify.sites."NAME"]``); relative file
names in it (``password_file`` ...) are taken from the configuration file's folder, as the
file's own are. A document is stored only after :func:`home.notify.config.parse` accepted it.

Secrets: the document names secret *files* (``password_file``, ``secret_file``, ``url_file``)
and may hold URLs that carry tokens (user info or query: Slack, Teams, PSA hooks). Those values
never leave home: :func:`redacted` replaces each with :data:`PLACEHOLDER`, and :func:`resolve`
puts the stored value of the same field back where a saved document still holds the
placeholder.
"""

from __future__ import annotations

import copy
import json
import math
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from home.notify.config import NotifyConfig, NotifyConfigError, parse
from home.sql import Connection

TABLE = "notify_settings"
PLACEHOLDER = "(kept: set)"
SECRET_KEYS = frozenset({"password_file", "secret_file", "url_file"})  # -> core.schema.Secret
MAX_TOML_CHARS = 200_000  # a [notify] document of thousands of channels and sites fits
MAX_DEPTH = 12  # tables and lists inside [notify]; its own go 6 deep (routes[].escalation[])
# A secret file is sent (the SMTP password at login) to where these keys of its table point:
# a kept placeholder must not follow an edit of them to another server.
DESTINATION_KEYS = ("host", "security")


# Migration 13 (home/migrations.py): one row per saved version; ``version`` counts from 1
# (0 stands for the file's [notify] table), ``toml`` the whole document, ``saved_by`` the
# console user, ``saved_at`` epoch seconds (home's clock), ``client`` the peer address.
SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        version INTEGER PRIMARY KEY,
        toml TEXT NOT NULL,
        saved_by TEXT NOT NULL,
        saved_at REAL NOT NULL,
        client TEXT NOT NULL DEFAULT ''
    )""",
)


class StaleVersion(Exception):
    """Another save came first: the document was edited from an older version."""

    def __init__(self, newest: int, by: str) -> None:
        super().__init__(
            f"the settings changed meanwhile: version {newest} was saved by {by or 'someone'};"
            " reload the page and make your change again"
        )
        self.newest = newest


@dataclass(frozen=True)
class Source:
    """The file's side: its ``[notify]`` table (as tomllib read it; None when the process was
    given a parsed configuration only) and the folder relative file names are taken from."""

    table: dict[str, Any] | None
    base: Path


@dataclass(frozen=True)
class Stored:
    """One saved version (``version`` >= 1)."""

    version: int
    toml: str
    saved_by: str
    saved_at: float
    client: str


@dataclass(frozen=True)
class Effective:
    """The settings in force: ``version`` 0 is the file's table. ``table`` holds the secret
    file names and token URLs: never show it, show :func:`redacted` of it."""

    version: int
    table: dict[str, Any]
    saved_by: str = ""
    saved_at: float = 0.0


# ---- the table ----


def newest_version(conn: Connection) -> int:
    """The newest saved version; 0 when the console never saved one."""
    row = conn.execute(f"SELECT MAX(version) FROM {TABLE}").fetchone()
    return int(row[0] or 0)


def newest(conn: Connection) -> Stored | None:
    """The newest saved version, or None."""
    row = conn.execute(
        f"SELECT version, toml, saved_by, saved_at, client FROM {TABLE}"
        " ORDER BY version DESC LIMIT 1"
    ).fetchone()
    return None if row is None else Stored(int(row[0]), row[1], row[2], float(row[3]), row[4])


def insert(conn: Connection, text: str, *, who: str, at: float, client: str, base: int) -> int:
    """Store ``text`` as the version after ``base``; call inside a transaction, after
    :func:`check` accepted ``text``. Raises StaleVersion when ``base`` is not the newest (two
    admins saving at once: the later one sees the other's version first)."""
    found = newest(conn)
    if (found.version if found else 0) != base:
        raise StaleVersion(found.version if found else 0, found.saved_by if found else "")
    conn.execute(
        f"INSERT INTO {TABLE} (version, toml, saved_by, saved_at, client) VALUES (?, ?, ?, ?, ?)",
        (base + 1, text, who[:64], at, client[:64]),
    )
    return base + 1


def effective(conn: Connection, source: Source) -> Effective:
    """The newest saved version, else the file's table (``{}`` when unknown). A stored text is
    parsed back to a table; it was checked before it was stored."""
    found = newest(conn)
    if found is None:
        return Effective(0, copy.deepcopy(source.table or {}))
    return Effective(found.version, read_document(found.toml), found.saved_by, found.saved_at)


# ---- documents ----


def read_document(text: str) -> dict[str, Any]:
    """TOML text holding one ``[notify]`` table -> that table. Raises NotifyConfigError."""
    if len(text) > MAX_TOML_CHARS:
        raise NotifyConfigError(
            f"{len(text)} characters: a document holds at most {MAX_TOML_CHARS}"
        )
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NotifyConfigError(f"not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        raise NotifyConfigError(_TOO_DEEP) from None
    if not _shallow(doc):  # the checks below recurse too
        raise NotifyConfigError(_TOO_DEEP)
    others = sorted(set(doc) - {"notify"})
    if others:
        raise NotifyConfigError(
            f"only the [notify] table belongs here; remove {others} (write [notify.channels.NAME],"
            ' [[notify.routes]], [notify.sites."NAME"])'
        )
    table = doc.get("notify", {})
    if not isinstance(table, dict):
        raise NotifyConfigError("notify: a table, written [notify]")
    return table


_TOO_DEEP = (
    f"tables and lists nested more than {MAX_DEPTH} deep; a [notify] document needs at most 6"
    " ([[notify.routes]] escalation = [{channels = [...]}])"
)


def _shallow(value: Any) -> bool:
    """Tables and lists in ``value`` nest at most :data:`MAX_DEPTH` deep (no recursion)."""
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return False
            todo.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return True


def check(table: dict[str, Any], source: Source) -> NotifyConfig:
    """``parse`` of home/notify (the one the Notifier runs), with the file's folder as base."""
    return parse(table, source.base)


def _secret_url(value: Any) -> bool:
    """An http(s) URL carrying user info, a query or a fragment: tokens ride there."""
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        return False
    parts = urlsplit(value)
    return bool(parts.username or parts.password or parts.query or parts.fragment)


def _is_secret(key: str, value: Any) -> bool:
    return (key in SECRET_KEYS and isinstance(value, str)) or _secret_url(value)


def redacted(table: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``table`` with every secret file name and token-carrying URL replaced by
    :data:`PLACEHOLDER` (at any depth)."""

    def walk(value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        return PLACEHOLDER if _is_secret(key, value) else value

    result: dict[str, Any] = walk(table, "")
    return result


def resolve(table: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``table`` where each :data:`PLACEHOLDER` is the value at the same place in
    ``stored`` (the version it was edited from: same channel, same field). Raises
    NotifyConfigError naming the field when there is no stored secret there, or when a table
    keeping a secret file changed one of :data:`DESTINATION_KEYS` (an SMTP password kept while
    the host changed would be sent to the new host)."""

    def walk(value: Any, old: Any, where: str) -> Any:
        if isinstance(value, dict):
            old_table = old if isinstance(old, dict) else {}
            if any(value.get(k) == PLACEHOLDER for k in SECRET_KEYS):
                for key in DESTINATION_KEYS:
                    if value.get(key) != old_table.get(key):
                        raise NotifyConfigError(
                            f"{where}.{key} changed: {PLACEHOLDER!r} does not keep a stored"
                            " secret for another destination; keep the old value or write"
                            " the secret file's name again"
                        )
            return {k: walk(v, old_table.get(k), f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            old_list = old if isinstance(old, list) else []
            return [
                walk(v, old_list[i] if i < len(old_list) else None, f"{where}[{i}]")
                for i, v in enumerate(value)
            ]
        if value == PLACEHOLDER:
            key = where.rpartition(".")[2]
            if not isinstance(old, str) or not _is_secret(key, old):
                raise NotifyConfigError(
                    f"{where}: {PLACEHOLDER!r} keeps the stored secret, but none is stored"
                    " there; write the value (a secret file's name, or the URL)"
                )
            return old
        return value

    result: dict[str, Any] = walk(table, stored, "notify")
    return result


def confine(table: dict[str, Any], before: dict[str, Any], base: Path) -> None:
    """Refuse a secret file name (:data:`SECRET_KEYS`) that a console save writes anew (not the
    one stored at the same place) outside the configuration's folder ``base``: home reads the
    file and sends it on (an SMTP password to the channel's host), so any file home can read,
    its CA key included, would reach a server the admin names. Raises NotifyConfigError naming
    the field and the folder."""
    folder = base.resolve()

    def walk(value: Any, old: Any, where: str) -> None:
        if isinstance(value, dict):
            old_table = old if isinstance(old, dict) else {}
            for k, v in value.items():
                here = f"{where}.{k}"
                written = k in SECRET_KEYS and isinstance(v, str) and v != old_table.get(k)
                if written and not (folder / v).resolve().is_relative_to(folder):
                    raise NotifyConfigError(
                        f"{here}: a secret file named in the console must be in the"
                        f" configuration's folder {folder}; put it there (mode 600) and"
                        " name it relative to that folder"
                    )
                walk(v, old_table.get(k), here)
        elif isinstance(value, list):
            old_list = old if isinstance(old, list) else []
            for i, v in enumerate(value):
                walk(v, old_list[i] if i < len(old_list) else None, f"{where}[{i}]")

    walk(table, before, "notify")


def scrub(message: str, table: dict[str, Any], base: Path) -> str:
    """``message`` (a refusal, shown and audited) with each secret of ``table`` (a secret file's
    name, also as read from ``base``; a token URL) replaced by :data:`PLACEHOLDER`: home/notify's
    "cannot read /etc/outpost/smtp.password" names the file the editor hides."""
    found: set[str] = set()

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and value and _is_secret(key, value):
            found.add(value)
            if key in SECRET_KEYS:
                found.add(str(base / value))

    walk(table, "")
    for secret in sorted(found, key=len, reverse=True):  # the longer form first
        message = message.replace(secret, PLACEHOLDER)
    return message


def summary(before: dict[str, Any], after: dict[str, Any]) -> str:
    """What a save changed, by name only (for the audit log: never a value, so no secret)."""
    changed: list[str] = []
    for section in ("channels", "sites"):
        old, new = before.get(section) or {}, after.get(section) or {}
        for name in sorted(set(old) | set(new)):
            if name not in new:
                changed.append(f"-{section}.{name}")
            elif name not in old:
                changed.append(f"+{section}.{name}")
            elif old[name] != new[name]:
                changed.append(f"{section}.{name}")
    for key in sorted(set(before) | set(after)):
        if key not in ("channels", "sites") and before.get(key) != after.get(key):
            changed.append(key)
    return "changed: " + (", ".join(changed) if changed else "nothing")


# ---- writing TOML (the subset a [notify] table uses) ----

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else _string(name)


def _string(text: str) -> str:
    # JSON's escapes are TOML basic-string escapes; DEL must be escaped in TOML too.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _emit(path: str, table: dict[str, Any], lines: list[str], top: bool) -> None:
    """``table``'s keys under the header already written for ``path``; sub-tables follow as
    their own headers (none for a table of tables only), and lists of tables as ``[[...]]``
    at the top (the routes), inline below it (an escalation)."""

    def nested(value: Any) -> bool:
        return isinstance(value, dict) or (top and _tables(value))

    for key, value in table.items():
        if not nested(value):
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in table.items():
        sub = f"{path}.{_key(key)}"
        if isinstance(value, dict):
            if not value or any(not isinstance(v, dict) for v in value.values()):
                lines.extend(("", f"[{sub}]"))
            _emit(sub, value, lines, top=False)
        elif top and _tables(value):
            for item in value:
                lines.extend(("", f"[[{sub}]]"))
                _emit(sub, item, lines, top=False)


def dump_document(table: dict[str, Any]) -> str:
    """``table`` as TOML text under ``[notify]`` (:func:`read_document` reads it back equal)."""
    lines = ["[notify]"]
    _emit("notify", table, lines, top=True)
    return "\n".join(lines) + "\n"
