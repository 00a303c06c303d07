"""The console's view of home/notify's settings and its "send test" action.

Channels, routes, business hours and the fallback come from the ``[notify]`` table of home's
TOML configuration (docs/notifications.md) as the running Notifier holds them; they are shown
through home/notify's own ``describe`` (secrets appear only as "set"), never edited here (the
file is the source of truth). "Send test" sends home/notify's trial message on one channel with
home/notify's sender, as ``outpost-home notify test CHANNEL`` does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from home.console import audit
from home.console.actions import ActionError, Actor
from home.console.state import Console
from home.notify.channels import SendError, send
from home.notify.cli import describe
from home.notify.messages import trial_message
from home.notify.web import NOTIFIER_KEY
from home.notify.worker import Notifier

TEST_BUDGET_S = 30.0


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
    return doc


async def send_test(
    console: Console, actor: Actor, app: web.Application, channel_name: str
) -> dict[str, Any]:
    """Send the trial message on ``channel_name``; audited with its outcome."""
    notifier = notifier_of(app)
    if notifier is None:
        raise ActionError(409, "notifications are off: add a [notify] table to home's config")
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
