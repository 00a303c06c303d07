"""The acknowledgement link's two routes on home's server.

``GET /notify/ack?t=TOKEN`` checks the token and shows the alert with one button (nothing
changes: mail scanners open links); ``POST /notify/ack`` (form ``t``, optional ``by``)
acknowledges, which cancels the alert's pending escalations. A forged, damaged, expired or
other-purpose token is answered 403 and changes nothing.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from core.logs import get_log
from home.db import HomeDB
from home.notify.ack import ACK_PATH, AckError, verify
from home.notify.planner import thread

log = get_log("home.notify")


class AckBackend(Protocol):
    """What the routes need of the notifier (home/notify/worker.py: Notifier)."""

    secret: bytes
    clock: Callable[[], float]

    def database(self) -> HomeDB: ...

    def acknowledge_sync(self, ref: str, by: str) -> bool: ...


NOTIFIER_KEY: web.AppKey[AckBackend] = web.AppKey("notifier")

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="referrer" content="no-referrer"><title>Outpost: {title}</title></head>
<body style="font-family:sans-serif;margin:2em"><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = _PAGE.format(title=html.escape(title), body=body)
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


async def ack_form(request: web.Request) -> web.Response:
    notifier = request.app[NOTIFIER_KEY]
    token = request.query.get("t", "")
    try:
        claim = verify(notifier.secret, token, notifier.clock())
    except AckError as exc:
        return _page("Link refused", f"<p>{html.escape(str(exc))}</p>", 403)
    db = notifier.database()
    found = await db.call(lambda: thread(db.conn, claim.ref))
    if found is None:
        return _page("Unknown alert", "<p>This alert is not known to home.</p>", 404)
    state = "open" if found.state == "open" else "already resolved"
    acked = f" Acknowledged by {html.escape(found.acked_by)}." if found.acked_by else ""
    body = (
        f"<p>[{html.escape(found.ref)}] {html.escape(found.severity)}: "
        f"{html.escape(found.message)} ({state}).{acked}</p>"
        f'<form method="post" action="{ACK_PATH}">'
        f'<input type="hidden" name="t" value="{html.escape(token)}">'
        '<label>Your name <input name="by" maxlength="80"></label> '
        '<button type="submit">Acknowledge</button></form>'
    )
    return _page("Acknowledge alert", body)


async def ack_post(request: web.Request) -> web.Response:
    """The link's button (form ``t``, ``by``), or a signed callback from a PSA or chat bot:
    JSON ``{"t": TOKEN, "by": NAME}`` answered in JSON (the token is the signature)."""
    notifier = request.app[NOTIFIER_KEY]
    as_json = request.content_type == "application/json"
    if as_json:
        try:
            doc = await request.json()
        except ValueError:
            doc = None
        fields = doc if isinstance(doc, dict) else {}
    else:
        fields = dict(await request.post())
    token = str(fields.get("t", ""))
    name = str(fields.get("by", "")).strip()[:80]
    try:
        claim = verify(notifier.secret, token, notifier.clock())
    except AckError as exc:
        log.warning("notify.ack_refused", reason=str(exc))
        if as_json:
            return web.json_response({"ok": False, "error": str(exc)}, status=403)
        return _page("Link refused", f"<p>{html.escape(str(exc))}</p>", 403)
    by = f"{name} (link via {claim.channel})" if name else f"link via {claim.channel}"
    db = notifier.database()
    done = await db.call(notifier.acknowledge_sync, claim.ref, by)
    if as_json:
        answer = {"ok": done, "ref": claim.ref, "acked_by": by if done else None}
        return web.json_response(answer, status=200 if done else 409)
    if not done:
        return _page("Nothing to acknowledge", "<p>This alert is resolved or unknown.</p>", 409)
    log.info("notify.acknowledged", ref=claim.ref, by=by)
    return _page("Acknowledged", f"<p>[{html.escape(claim.ref)}] acknowledged by "
                 f"{html.escape(by)}; its escalation is stopped.</p>")  # fmt: skip


def add_routes(app: web.Application, notifier: AckBackend) -> None:
    app[NOTIFIER_KEY] = notifier
    app.router.add_get(ACK_PATH, ack_form)
    app.router.add_post(ACK_PATH, ack_post)
