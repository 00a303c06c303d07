"""The console's notification settings: shown, edited by an admin, and "send test".

Channels, routes, business hours and holidays per site and the fallback are one ``[notify]``
document (docs/notifications.md). The effective one is the newest version saved here (stored in
home's database, so every home instance behind the load balancer sees it: home/notify/stored.py)
or, before the first save, the ``[notify]`` table of home's TOML file. A save is checked with
home/notify's own ``parse`` first (a broken document is never stored), stored as the next
version with its audit entry in one transaction, and put in force on this instance at once and
on the others within home/notify/worker.py's ``SETTINGS_POLL_S``.

Secrets never leave home: the view goes through home/notify's ``describe`` (secrets only as
"set") with URLs cut before their query; the editor shows every secret file name and
token-carrying URL as ``stored.PLACEHOLDER``, which on save keeps the stored value of the same
field. "Send test" sends home/notify's trial message on one channel of the effective settings,
as ``outpost-home notify test CHANNEL`` does.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from home.console import audit
from home.console.actions import ActionError, Actor
from home.console.state import Console
from home.notify import stored
from home.notify.channels import SendError, send
from home.notify.cli import describe
from home.notify.config import NotifyConfig, NotifyConfigError
from home.notify.messages import trial_message
from home.notify.web import NOTIFIER_KEY
from home.notify.worker import Notifier

TEST_BUDGET_S = 30.0
PLACEHOLDER = stored.PLACEHOLDER  # in the editor: "keep the stored secret of this field"


def notifier_of(app: web.Application) -> Notifier | None:
    found = app.get(NOTIFIER_KEY)
    return found if isinstance(found, Notifier) else None


def _redact(value: Any) -> Any:
    """A URL without its user info and query (tokens ride there: Slack, Teams, PSA hooks)."""
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        parts = urlsplit(value)
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        hidden = " (query hidden)" if parts.query else ""
        return urlunsplit((parts.scheme, host, parts.path, "", "")) + hidden
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    return value


def shown(app: web.Application) -> dict[str, Any] | None:
    """The notification settings without secrets (home/notify's describe, and URLs without
    user info or query), or None when notifications are off."""
    notifier = notifier_of(app)
    if notifier is None:
        return None
    doc: dict[str, Any] = _redact(describe(notifier.config))
    for site, hours in notifier.config.sites.items():  # days and holidays: edited here too
        days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        doc["sites"][site]["days"] = [days[d] for d in sorted(hours.days)]
        doc["sites"][site]["holidays"] = sorted(d.isoformat() for d in hours.holidays)
    doc["version"] = notifier.version
    return doc


@dataclass(frozen=True)
class Editor:
    """What the admin's editor shows: the effective document without secrets (``text``), the
    version it is (``version``, 0 = home's file) and who saved it when; ``running`` is the
    version this instance's notifier has in force (it follows within a few seconds)."""

    text: str
    version: int
    saved_by: str
    saved_at: float
    running: int

    def as_json(self) -> dict[str, Any]:
        return {"document": self.text, "version": self.version, "saved_by": self.saved_by,
                "saved_at": self.saved_at, "running_version": self.running}  # fmt: skip


async def editor(console: Console, app: web.Application) -> Editor | None:
    """The effective document for the editor (secrets as placeholders), or None when
    notifications are off, or nothing was saved yet and the file's table is unknown (a
    Notifier made without its Source): an empty editor would drop every channel."""
    notifier = notifier_of(app)
    if notifier is None:
        return None
    found = await console.on_db(stored.effective, notifier.source)
    if found.version == 0 and notifier.source.table is None:
        return None
    text = stored.dump_document(stored.redacted(found.table))
    return Editor(text, found.version, found.saved_by, found.saved_at, notifier.version)


async def save(
    console: Console, actor: Actor, app: web.Application, text: str, base_version: int
) -> dict[str, Any]:
    """Check ``text`` (a ``[notify]`` document edited from version ``base_version``, secrets as
    placeholders), store it as the next version with its audit entry, and put it in force on
    this instance. Raises ActionError: 409 (notifications off; someone saved meanwhile), 422
    (the document does not parse: home/notify's message, naming the key). A refusal changes
    nothing and is audited (without the document)."""
    notifier = notifier_of(app)
    if notifier is None:
        raise ActionError(409, "notifications are off: add a [notify] table to home's config")
    source = notifier.source
    checked: list[NotifyConfig] = []
    stored_tables: list[dict[str, Any]] = []  # the version edited from (its secrets)

    def work(conn: Any) -> tuple[int, str]:
        current = stored.effective(conn, source)
        stored_tables.append(current.table)
        if current.version != base_version:
            newest = stored.newest(conn)
            raise stored.StaleVersion(current.version, newest.saved_by if newest else "")
        table = stored.resolve(stored.read_document(text), current.table)
        stored.confine(table, current.table, source.base)
        checked.append(stored.check(table, source))
        now = console.clock()
        version = stored.insert(conn, stored.dump_document(table), who=actor.who.user, at=now,
                                client=actor.client, base=base_version)  # fmt: skip
        detail = f"version {version}; {stored.summary(current.table, table)}"
        entry = audit.Entry(now, actor.who.user, actor.who.role.value, "notify.settings",
                            "notify", detail, actor.client, "ok")  # fmt: skip
        audit.record(conn, entry)
        return version, detail

    status, error = 0, ""
    try:
        version, detail = await console.in_tx(work)
    except NotifyConfigError as exc:  # may name a stored secret file: not shown, not audited
        status, error = 422, str(exc)
        for known in (source.table or {}, *stored_tables):
            error = stored.scrub(error, known, source.base)
    except stored.StaleVersion as exc:
        status, error = 409, str(exc)
    except sqlite3.IntegrityError:  # two saves of one version at once: the other came first
        status, error = 409, "the settings changed meanwhile; reload the page and try again"
    if status:
        entry = audit.Entry(console.clock(), actor.who.user, actor.who.role.value,
                            "notify.settings", "notify", f"refused: {error}", actor.client,
                            "refused")  # fmt: skip
        await console.in_tx(audit.record, entry)
        raise ActionError(status, error)
    if version > notifier.version:
        notifier.apply(checked[-1], version)
    return {"version": version, "detail": detail}


async def send_test(
    console: Console, actor: Actor, app: web.Application, channel_name: str
) -> dict[str, Any]:
    """Send the trial message on ``channel_name``; audited with its outcome."""
    notifier = notifier_of(app)
    if notifier is None:
        raise ActionError(409, "notifications are off: add a [notify] table to home's config")
    await notifier.reload_settings()  # the newest saved version, even if saved on another instance
    channel = notifier.config.channels.get(channel_name)
    if channel is None:
        known = ", ".join(sorted(notifier.config.channels)) or "none"
        raise ActionError(404, f"no channel {channel_name!r}; configured: {known}")
    rendered = trial_message(channel_name, console.clock())
    started = time.perf_counter()
    error = ""
    try:
        await asyncio.wait_for(
            send(channel, rendered, str(rendered.payload["id"]), ""), TEST_BUDGET_S
        )
    except SendError as exc:
        error = str(exc)
    except TimeoutError:
        error = f"no answer within {TEST_BUDGET_S:.0f} s"
    latency_ms = round((time.perf_counter() - started) * 1000.0, 1)
    entry = audit.Entry(console.clock(), actor.who.user, actor.who.role.value, "notify.test",
                        channel_name, error or f"{latency_ms} ms", actor.client,
                        "failed" if error else "ok")  # fmt: skip
    await console.in_tx(audit.record, entry)
    if error:
        raise ActionError(502, f"the test on {channel_name} failed: {error}")
    return {"channel": channel_name, "sent": True, "latency_ms": latency_ms}
