"""What a message says: subject, plain text, HTML and the webhook payload, from one Outgoing.

Subjects are made for PSA email-to-ticket parsers (ConnectWise, Autotask, HaloPSA match on
subject): ``[Outpost REF] SITE: MESSAGE`` where REF is the alert's stable id and MESSAGE the
alert's text when it opened, so the opening, escalations and the resolution (``Re:`` + the same
subject, with In-Reply-To/References) land on the same ticket. A digest of alerts held for
business hours has its own subject; each alert in it keeps its REF in the body.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.vocabulary import Severity
from home.notify.outbox import Item, Outgoing

PAYLOAD_VERSION = 1
EVENTS = {"open": "alert.opened", "escalate": "alert.escalated", "resolved": "alert.resolved"}

# (ref, channel) -> acknowledgement URL, or '' when home has no public URL configured.
AckUrl = Callable[[str, str], str]


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    payload: dict[str, Any]


def subject_of(site: str, ref: str, message: str) -> str:
    where = site or "home"
    return f"[Outpost {ref}] {where}: {message}"[:200]


def _when(epoch_s: float | None) -> str:
    if epoch_s is None:
        return ""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _behind(item: Item, lead_in: str) -> list[str]:
    """The devices the box suppressed behind this alert's device (a dead gateway), one a line:
    the cause is named once, its dependants listed, not alerted one by one."""
    listed = item.body.get("dependants") or []
    if not isinstance(listed, list) or not listed:
        return []
    total = int(item.body.get("dependants_total") or len(listed))
    lines = [f"{lead_in} ({total} device(s), not alerted separately):"]
    for d in listed:
        name, ip, kind = (str(d.get(k, "")) for k in ("name", "ip", "kind"))
        label = f"{name} ({ip})" if name and name != ip else ip or name or "?"
        lines.append(f"  - {label}" + (f", {kind}" if kind else ""))
    if total > len(listed):
        lines.append(f"  ... and {total - len(listed)} more")
    return lines


def _line(item: Item) -> str:
    t = item.thread
    state = "OPEN" if t.state == "open" else f"resolved {_when(t.resolved_at)}"
    extra = f", flapped {t.flaps} time(s)" if t.flaps else ""
    acked = f", acknowledged by {t.acked_by}" if t.acked_by else ""
    return f"[{t.ref}] {t.severity.upper()} {t.message} ({state}{extra}{acked})"


def render(out: Outgoing, ack_url: AckUrl, now_s: float) -> Rendered:
    lead = out.items[0].thread
    base = subject_of(lead.site or out.site, lead.ref, lead.message)
    urgent = Severity.parse(lead.severity, Severity.INFO) >= Severity.MAJOR
    link = ack_url(lead.ref, out.channel) if urgent else ""
    lines: list[str] = []
    if out.event == "open" and out.held:
        subject = f"[Outpost digest] {out.site or 'home'}: {len(out.items)} alert(s) held"
        subject += " outside business hours"
        lines.append(f"Alerts of {out.site} held outside business hours:")
        lines += [f"  - {_line(item)}  opened {_when(item.thread.opened_at)}" for item in out.items]
        link = ""
    elif out.event == "open":
        subject = base
        if len(out.items) > 1:
            subject = f"{base} (+{len(out.items) - 1} more)"[:220]
        lines.append(_line(out.items[0]))
        lines.append(f"Opened {_when(lead.opened_at)} at site {lead.site or '-'}.")
        lines += _behind(out.items[0], "Not answering behind it")
        if out.items[0].body.get("after_silence"):
            lines.append("Still open when its maintenance window ended: notified now.")
        if len(out.items) > 1:
            lines.append(f"Probable cause: {lead.message}. Also at this site, at the same time:")
            lines += [f"  - {_line(item)}" for item in out.items[1:]]
    elif out.event == "escalate":
        subject = "Re: " + base
        step = out.items[0].body.get("step", 1)
        minutes = float(out.items[0].body.get("after_s", 0)) / 60
        lines.append(f"ESCALATION (step {step}): not acknowledged after {minutes:.0f} min.")
        lines.append(_line(out.items[0]))
    else:
        subject = "Re: " + base
        note = out.items[0].body.get("message") or "resolved"
        lines.append(f"RESOLVED {_when(lead.resolved_at)}: {note}")
        lines.append(_line(out.items[0]))
        lines += _behind(out.items[0], "Were not answering behind it during the outage")
        link = ""
    if link:
        lines.append(f"Acknowledge (stops escalation): {link}")
    lines.append(f"Reference: {lead.ref}")
    text = "\n".join(lines) + "\n"
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines if not line.startswith("Ack"))
    if link:
        body += f'<p><a href="{html.escape(link)}">Acknowledge</a> (stops escalation)</p>'
    page = f"<!doctype html><html><body>{body}</body></html>"
    payload = {
        "v": PAYLOAD_VERSION,
        "id": out.message_id,
        "event": "digest" if out.held and out.event == "open" else EVENTS[out.event],
        "site": out.site,
        "channel": out.channel,
        "subject": subject,
        "in_reply_to": out.in_reply_to or None,
        "sent_at": round(now_s, 3),
        "ack_url": link or None,
        "alerts": [_alert(item) for item in out.items],
    }
    return Rendered(subject, text, page, payload)


def _alert(item: Item) -> dict[str, Any]:
    t = item.thread
    return {
        "ref": t.ref,
        "appliance": t.appliance,
        "key": t.alert_key,
        "box_alert_id": t.box_id,
        "rule": t.rule,
        "device_kind": t.device_kind or None,
        "severity": t.severity,
        "state": t.state,
        "message": t.message,
        "opened_at": t.opened_at,
        "resolved_at": t.resolved_at,
        "acked_by": t.acked_by or None,
        "flaps": t.flaps,
        # Devices the box suppressed behind this one (a dead gateway): name, ip, kind.
        "dependants": list(item.body.get("dependants") or []),
    }


def trial_message(channel: str, now_s: float) -> Rendered:
    """The message of ``outpost-home notify test CHANNEL``."""
    subject = f"[Outpost test] test message for channel {channel}"
    text = f"This is a test from Outpost home, sent {_when(now_s)}. No action needed.\n"
    payload = {
        "v": PAYLOAD_VERSION,
        "id": f"test-{channel}-{now_s:.0f}",
        "event": "test",
        "site": "",
        "channel": channel,
        "subject": subject,
        "in_reply_to": None,
        "sent_at": round(now_s, 3),
        "ack_url": None,
        "alerts": [],
    }
    return Rendered(subject, text, f"<p>{html.escape(text)}</p>", payload)
