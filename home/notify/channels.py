"""Senders: email over SMTP, the signed JSON webhook, and Apprise URLs.

Each ``send_*`` returns normally when the receiver accepted the message and raises
:class:`SendError` (a reason with no secret in it) otherwise.

SMTP uses the standard library's ``smtplib`` in a worker thread rather than aiosmtplib: it is
the reference implementation of STARTTLS, implicit TLS (RFC 8314) and AUTH, needs no extra
dependency, and notification volume (a few messages a minute, one connection each) does not
need an asynchronous client; the event loop never blocks on it.

Webhook signature (docs/notifications.md): ``X-Outpost-Signature: sha256=HEX`` where HEX is
HMAC-SHA256 over the exact request body bytes with the channel's secret; ``Idempotency-Key``
is the message id, the same on every retry and on a resend after a crash.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

import aiohttp

from home.notify.config import AppriseChannel, Channel, EmailChannel, WebhookChannel
from home.notify.messages import Rendered

SIGNATURE_HEADER = "X-Outpost-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Outpost-Event"
# Apprise logs the URLs it handles at debug level (with tokens inside): keep its records out of
# home's log entirely; failures are captured per send and scrubbed instead.
logging.getLogger("apprise").propagate = False


class SendError(Exception):
    """The receiver did not take the message; the text names why, without secrets."""


def message_id_header(message_id: str, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "outpost-home"
    return f"<{message_id}@{domain}>"


def build_email(
    channel: EmailChannel, rendered: Rendered, message_id: str, reply_to: str
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = channel.sender
    mail["To"] = ", ".join(channel.to)
    mail["Subject"] = rendered.subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = message_id_header(message_id, channel.sender)
    if reply_to:
        parent = message_id_header(reply_to, channel.sender)
        mail["In-Reply-To"] = parent
        mail["References"] = parent
    mail["X-Outpost-Message"] = message_id
    mail.set_content(rendered.text)
    mail.add_alternative(rendered.html, subtype="html")
    return mail


@functools.lru_cache(maxsize=16)
def _tls_context(ca_file: str) -> ssl.SSLContext:
    # Loading the system's CA store takes ~50-100 ms: once per CA file, not once per mail.
    return ssl.create_default_context(cafile=ca_file or None)


def _smtp_send(channel: EmailChannel, mail: EmailMessage) -> None:
    # The EHLO name: the sender's domain. Without it smtplib asks socket.getfqdn() on every
    # connection, a DNS round trip (0.5 s measured here) that also holds a thread.
    helo = channel.sender.rpartition("@")[2] or "outpost-home"
    client: smtplib.SMTP
    if channel.security == "tls":
        client = smtplib.SMTP_SSL(
            channel.host,
            channel.port,
            local_hostname=helo,
            timeout=channel.timeout_s,
            context=_tls_context(channel.ca_file),
        )
    else:
        client = smtplib.SMTP(
            channel.host, channel.port, local_hostname=helo, timeout=channel.timeout_s
        )
    with client:
        if channel.security == "starttls":
            client.starttls(context=_tls_context(channel.ca_file))
        if channel.username:
            client.login(channel.username, channel.password.reveal())
        client.send_message(mail)


async def send_email(
    channel: EmailChannel, rendered: Rendered, message_id: str, reply_to: str
) -> None:
    await send_email_message(channel, build_email(channel, rendered, message_id, reply_to))


async def send_email_message(channel: EmailChannel, mail: EmailMessage) -> None:
    """Send a complete message through the channel's SMTP server (the monthly report uses it
    for a mail with its PDF attached); raise :class:`SendError` naming why it was refused."""
    try:
        await asyncio.to_thread(_smtp_send, channel, mail)
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(
            f"SMTP login refused ({exc.smtp_code}); check username/password_file"
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise SendError(f"SMTP server answered {exc.smtp_code}: {exc.smtp_error!r}"[:300]) from None
    except smtplib.SMTPException as exc:
        raise SendError(f"SMTP: {type(exc).__name__}: {exc}"[:300]) from None
    except ssl.SSLError as exc:
        raise SendError(f"TLS with {channel.host}:{channel.port} failed: {exc.reason}") from None
    except OSError as exc:
        raise SendError(
            f"cannot reach {channel.host}:{channel.port}: {exc.strerror or exc}"
        ) from None


def sign(secret: bytes, body: bytes) -> str:
    """The webhook signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


async def send_webhook(channel: WebhookChannel, rendered: Rendered, message_id: str) -> None:
    body = json.dumps(rendered.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(channel.secret.reveal().encode(), body),
        IDEMPOTENCY_HEADER: message_id,
        EVENT_HEADER: str(rendered.payload.get("event", "")),
        "User-Agent": "outpost-home",
    }
    timeout = aiohttp.ClientTimeout(total=channel.timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(channel.url, data=body, headers=headers) as response,
        ):
            if not 200 <= response.status < 300:
                raise SendError(f"webhook answered HTTP {response.status}")
    except aiohttp.ClientError as exc:
        raise SendError(f"webhook unreachable: {type(exc).__name__}") from None
    except TimeoutError:
        raise SendError(f"webhook did not answer within {channel.timeout_s:.0f} s") from None


def _apprise_send(channel: AppriseChannel, rendered: Rendered) -> None:
    import apprise  # imported here: loading it takes ~0.3 s, needed only by Apprise channels

    url = channel.url.reveal()
    client = apprise.Apprise()
    if not client.add(url):
        raise SendError("Apprise does not understand this channel's URL; check url_file")
    # apprise ships no annotations for LogCapture.
    with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
        ok = client.notify(
            body=rendered.text, title=rendered.subject, body_format=apprise.NotifyFormat.TEXT
        )
        log_text = captured.getvalue()
    if not ok:
        reason = log_text.strip().splitlines()[-1] if log_text.strip() else "no reason given"
        raise SendError(f"Apprise could not deliver: {reason.replace(url, '<url>')}"[:300])


async def send_apprise(channel: AppriseChannel, rendered: Rendered) -> None:
    await asyncio.to_thread(_apprise_send, channel, rendered)


async def send(channel: Channel, rendered: Rendered, message_id: str, reply_to: str) -> None:
    """Send ``rendered`` on ``channel`` or raise SendError."""
    if isinstance(channel, EmailChannel):
        await send_email(channel, rendered, message_id, reply_to)
    elif isinstance(channel, WebhookChannel):
        await send_webhook(channel, rendered, message_id)
    else:
        await send_apprise(channel, rendered)
