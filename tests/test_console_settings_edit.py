"""Editing the notification settings in the console: an admin changes a channel's recipients and
a site's business hours and holidays; the version is stored in home's database and a second home
instance on the same database applies it without a restart, proved by "send test" reaching the
new recipient on a real SMTP server (STARTTLS + login with the kept password) and the webhook
receiving with its kept token. Broken documents are refused with home/notify's message and
nothing stored; technicians and read-only users are refused; no secret appears in any page, API
answer or audit entry. Real home applications, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from datetime import time as day_time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from home.ca import init_ca, issue_cert
from home.console.api import PREFIX
from home.console.roles import Role
from home.notify import stored
from home.notify.config import EmailChannel, WebhookChannel, parse
from home.notify.worker import SETTINGS_POLL_S, Notifier
from simsite.harness.ports import free_tcp_port
from tests.console_support import Client, Served, client, served
from tests.notify_support import (
    SECRET_TEXT,
    SMTP_PASSWORD,
    Box,
    Hit,
    sinks,
    verify_signature,
)

pytestmark = pytest.mark.usefixtures("home_backend")

URL_TOKEN = "url-tok-5be2a9"  # rides in the webhook URL's query, as Slack/Teams/PSA hooks do
APPLY_WITHIN_S = SETTINGS_POLL_S * 3 + 5.0  # generous on a loaded 2-core machine
_TEXTAREA = re.compile(r'<textarea name="toml"[^>]*>(.*?)</textarea>', re.DOTALL)
_BASE = re.compile(r'name="base_version" value="(\d+)"')


@dataclass
class Hook:
    """A webhook receiver on loopback that keeps each request's query and signed body."""

    hits: list[tuple[str, Hit]]
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={URL_TOKEN}"


@contextlib.asynccontextmanager
async def hook_receiver() -> AsyncIterator[Hook]:
    hits: list[tuple[str, Hit]] = []

    async def handle(request: web.Request) -> web.Response:
        hit = Hit(request.path, dict(request.headers), await request.read())
        hits.append((request.query.get("token", ""), hit))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_tcp_port("127.0.0.1")
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield Hook(hits, port)
    finally:
        await runner.cleanup()


def file_table(smtp_port: int, ca_pem: Path, hook: Hook) -> dict[str, Any]:
    """The [notify] table of home's file: mail with a login, a webhook with a token URL."""
    text = f"""
[notify]
fallback = "service"
[notify.channels.service]
type = "email"
host = "127.0.0.1"
port = {smtp_port}
security = "starttls"
username = "outpost"
password_file = "smtp.password"
ca_file = "{ca_pem}"
from = "outpost@msp.example"
to = ["helpdesk@msp.example"]
[notify.channels.psa]
type = "webhook"
url = "{hook.url("psa")}"
secret_file = "hook.secret"
[[notify.routes]]
severities = ["major", "critical"]
channels = ["service", "psa"]
[notify.sites."Dental"]
timezone = "Europe/Berlin"
start = "08:00"
end = "18:00"
holidays = ["2026-12-25"]
"""
    table: dict[str, Any] = tomllib.loads(text)["notify"]
    return table


def notifier_for(tmp: Path, table: dict[str, Any]) -> Notifier:
    return Notifier(parse(table, tmp), b"k" * 32, time.time, stored.Source(table, tmp))


def editor_of(page: str) -> tuple[str, int]:
    """The editor's text and the version it was made from, as a browser would submit them."""
    text, base = _TEXTAREA.search(page), _BASE.search(page)
    assert text and base, page
    return html.unescape(text.group(1)), int(base.group(1))


def no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (SMTP_PASSWORD, SECRET_TEXT, URL_TOKEN):
            assert secret not in text


async def admin(s: Served, c: Client) -> None:
    await s.user("ann", Role.ADMIN)
    assert await c.login("ann") == 303


async def audit_rows(s: Served) -> list[tuple[Any, ...]]:
    return await s.rows(
        "SELECT user_name, action, target, detail, client, outcome FROM console_audit"
        " WHERE action = 'notify.settings' ORDER BY id"
    )


async def put(c: Client, body: dict[str, Any], token: str = "") -> tuple[int, dict[str, Any]]:
    """PUT to the settings API: with an API token, else with the session's CSRF header."""
    headers = {"Origin": c.url, "Cookie": "; ".join(f"{k}={v}" for k, v in c.cookies.items())}
    headers.update({"Authorization": f"Bearer {token}"} if token else {"X-CSRF-Token": c.csrf})
    async with c.http.put(
        c.url + PREFIX + "/settings/notify", json=body, headers=headers
    ) as response:
        return response.status, dict(await response.json())


async def test_admin_edits_recipients_and_hours_and_a_second_instance_sends_with_them(
    tmp_path: Path, home_database: str
) -> None:
    ca = tmp_path / "ca"
    init_ca(ca)
    cert, key = issue_cert(ca, tmp_path / "tls", ["127.0.0.1", "localhost"])
    (tmp_path / "smtp.password").write_text(SMTP_PASSWORD + "\n")
    (tmp_path / "hook.secret").write_text(SECRET_TEXT + "\n")
    async with sinks(tls=(Path(cert), Path(key))) as (smtp, _), hook_receiver() as hook:
        table = file_table(smtp.port, ca / "ca.pem", hook)
        one, two = notifier_for(tmp_path, table), notifier_for(tmp_path, table)
        async with (
            served(tmp_path, home_database, notifier=one) as a,
            served(tmp_path, home_database, notifier=two) as b,
            client(a.url) as c,
        ):
            await admin(a, c)
            status, page, _ = await c.get("/console/settings")
            assert status == 200 and 'id="settings-form"' in page
            text, base = editor_of(page)
            assert base == 0 and text.count(stored.PLACEHOLDER) == 3  # password, secret, URL
            no_secret(page)
            assert "smtp.password" not in page and "hook.secret" not in page
            old_to = 'to = ["helpdesk@msp.example"]'
            old_hours = 'end = "18:00"\nholidays = ["2026-12-25"]'
            assert old_to in text and old_hours in text, text
            edited = (
                text.replace(old_to, 'to = ["oncall@msp.example"]')
                .replace(old_hours, 'end = "16:30"\nholidays = ["2026-12-24", "2026-12-25"]')
                .replace('fallback = "service"', 'fallback = "service"\ngroup_wait_s = 0')
            )
            status, _, answer = await c.post(
                "/console/settings", {"toml": edited, "base_version": str(base)}
            )
            assert status == 303, _
            assert answer.headers["Location"] == "/console/settings?done=settings"
            # In force here at once; on the other instance by its own poll (no request there).
            mail_channel = one.config.channels["service"]
            assert isinstance(mail_channel, EmailChannel) and one.version == 1
            assert mail_channel.to == ("oncall@msp.example",)
            deadline = time.monotonic() + APPLY_WITHIN_S
            while two.version != 1 and time.monotonic() < deadline:  # noqa: ASYNC110 - its poll
                await asyncio.sleep(0.2)
            assert two.version == 1
            hours = two.config.hours_for("Dental")
            assert hours.end == day_time(16, 30)
            assert hours.holidays == {date(2026, 12, 24), date(2026, 12, 25)}
            assert two.planner.config is two.config
            [(version, toml, saved_by)] = await b.rows(
                "SELECT version, toml, saved_by FROM notify_settings"
            )
            assert (version, saved_by) == (1, "ann")
            assert stored.PLACEHOLDER not in toml and "smtp.password" in toml and URL_TOKEN in toml

            status, page, _ = await c.get("/console/settings?done=settings")
            assert status == 200 and "Version 1, saved in the console by ann" in page
            assert 'data-site="Dental"' in page and "16:30" in page and "2026-12-24" in page
            assert editor_of(page)[1] == 1
            no_secret(page)
            status, api, _ = await c.get(PREFIX + "/settings/notify")
            assert status == 200 and '"version": 1' in api and stored.PLACEHOLDER in api
            no_secret(api)

            # "Send test" on the second instance: the new recipient, the kept SMTP password
            # (the server requires the login), the kept webhook token and signing secret.
            async with client(b.url) as c2:
                assert await c2.login("ann") == 303
                for channel in ("service", "psa"):
                    status, page, _ = await c2.post("/console/settings/test", {"channel": channel})
                    assert status == 200 and f"Test message sent on {channel}" in page, page
                    no_secret(page)
            # A planned notification: an alert ingested by the second instance is sent (by
            # whichever instance runs the worker) with the saved group wait and recipients.
            box = Box(b.db, "op-5d1e0c7a2b", "Dental")
            await box.register()
            await box.alert("ups.on_battery:3", "open", "major", "UPS on battery")
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline:
                if len(smtp.messages) >= 2 and len(hook.hits) >= 2:
                    break
                await asyncio.sleep(0.2)
        assert smtp.logins == ["outpost", "outpost"]
        test_mail, alert_mail = smtp.messages
        assert test_mail["To"] == alert_mail["To"] == "oncall@msp.example"
        assert "UPS on battery" in str(alert_mail["Subject"])
        assert len(hook.hits) == 2
        for token, hit in hook.hits:
            assert token == URL_TOKEN and verify_signature(SECRET_TEXT, hit)


async def test_audit_names_the_change_without_secrets_and_api_put_keeps_them(
    tmp_path: Path, home_database: str
) -> None:
    (tmp_path / "smtp.password").write_text(SMTP_PASSWORD + "\n")
    (tmp_path / "hook.secret").write_text(SECRET_TEXT + "\n")
    async with hook_receiver() as hook:
        table = file_table(2525, tmp_path / "no-ca.pem", hook)
        notifier = notifier_for(tmp_path, table)
        async with served(tmp_path, home_database, notifier=notifier) as s, client(s.url) as c:
            await admin(s, c)
            status, api, answer = await c.get(PREFIX + "/settings/notify")
            doc = await answer.json()
            assert status == 200 and doc["version"] == 0 and doc["running_version"] == 0
            no_secret(api)
            text = doc["document"].replace('start = "08:00"', 'start = "07:30"')
            status, done = await put(c, {"toml": text, "base_version": 0})
            assert status == 200 and done["version"] == 1, done
            # An API token (no session, no CSRF) saves the next version from the one it read.
            token = await s.token("ann", Role.ADMIN)
            status, done = await put(c, {"toml": text, "base_version": 0}, token)
            assert status == 409 and "version 1 was saved by ann" in done["error"]
            text2 = text.replace('fallback = "service"', 'fallback = "psa"')
            status, done = await put(c, {"toml": text2, "base_version": 1}, token)
            assert status == 200 and done["version"] == 2, done
            assert notifier.config.fallback == "psa" and notifier.version == 2
            hook_channel = notifier.config.channels["psa"]
            assert isinstance(hook_channel, WebhookChannel)
            assert URL_TOKEN in hook_channel.url and hook_channel.secret.reveal() == SECRET_TEXT
            email = notifier.config.channels["service"]
            assert isinstance(email, EmailChannel) and email.password.reveal() == SMTP_PASSWORD
            rows = await audit_rows(s)
            assert [(r[0], r[1], r[5]) for r in rows] == [
                ("ann", "notify.settings", "ok"),
                ("ann", "notify.settings", "refused"),
                ("ann", "notify.settings", "ok"),
            ]
            assert "sites.Dental" in rows[0][3] and "fallback" in rows[2][3]
            assert rows[0][4] == "127.0.0.1"
            no_secret(*(str(r) for r in rows))
            all_audit = await s.rows("SELECT detail, target FROM console_audit")
            no_secret(*(str(r) for r in all_audit))
            assert "smtp.password" not in str(all_audit)


BROKEN = (
    ('type = "webhook"', 'type = "pager"', "notify.channels.psa.type: one of email, webhook"),
    ('start = "08:00"', 'start = "25:00"', "'25:00' is not a time of day"),
    ('fallback = "service"', 'fallback = "service', "not valid TOML"),
    ("[notify.channels.psa]", '[notify.channels.new]\ntype = "webhook"\nurl = "http://x.test/"'
     f'\nsecret_file = "{stored.PLACEHOLDER}"\n\n[notify.channels.psa]',
     "notify.channels.new.secret_file: '(kept: set)' keeps the stored secret, but none is"),
)  # fmt: skip


async def test_broken_documents_are_refused_with_the_message_and_nothing_is_stored(
    tmp_path: Path, home_database: str
) -> None:
    (tmp_path / "smtp.password").write_text(SMTP_PASSWORD + "\n")
    (tmp_path / "hook.secret").write_text(SECRET_TEXT + "\n")
    async with hook_receiver() as hook:
        table = file_table(2525, tmp_path / "no-ca.pem", hook)
        notifier = notifier_for(tmp_path, table)
        before = notifier.config
        async with served(tmp_path, home_database, notifier=notifier) as s, client(s.url) as c:
            await admin(s, c)
            _, page, _ = await c.get("/console/settings")
            text, base = editor_of(page)
            for old, new, message in BROKEN:
                assert old in text, old
                broken = text.replace(old, new, 1)
                status, page, _ = await c.post(
                    "/console/settings", {"toml": broken, "base_version": str(base)}
                )
                shown = html.unescape(page)
                assert status == 422 and message in shown, (message, shown[:3000])
                assert 'id="settings-error"' in page
                assert editor_of(page) == (broken, base)  # the admin's text is kept
                no_secret(page)
                status, done = await put(c, {"toml": broken, "base_version": base})
                assert status == 422 and message in done["error"], done
            assert await s.rows("SELECT COUNT(*) FROM notify_settings") == [(0,)]
            assert notifier.version == 0 and notifier.config is before
            rows = await audit_rows(s)
            assert len(rows) == 2 * len(BROKEN) and {r[5] for r in rows} == {"refused"}
            no_secret(*(str(r) for r in rows))


async def test_technician_and_read_only_cannot_save(tmp_path: Path, home_database: str) -> None:
    (tmp_path / "hook.secret").write_text(SECRET_TEXT + "\n")
    (tmp_path / "smtp.password").write_text(SMTP_PASSWORD + "\n")
    async with hook_receiver() as hook:
        table = file_table(2525, tmp_path / "no-ca.pem", hook)
        notifier = notifier_for(tmp_path, table)
        async with served(tmp_path, home_database, notifier=notifier) as s:
            await s.user("ann", Role.ADMIN)
            async with client(s.url) as c:
                assert await c.login("ann") == 303
                _, page, _ = await c.get("/console/settings")
                text, base = editor_of(page)
            for name, role in (("tom", Role.TECHNICIAN), ("rita", Role.READ_ONLY)):
                await s.user(name, role)
                token = await s.token(name, role)
                async with client(s.url) as c:
                    assert await c.login(name) == 303
                    status, page, _ = await c.get("/console/settings")
                    assert status == 403 and "settings-form" not in page
                    status, _, _ = await c.post(
                        "/console/settings", {"toml": text, "base_version": str(base)}
                    )
                    assert status == 403
                    status, _ = await put(c, {"toml": text, "base_version": base})
                    assert status == 403
                    status, _ = await put(c, {"toml": text, "base_version": base}, token)
                    assert status == 403
                    status, body, _ = await c.get(PREFIX + "/settings/notify")
                    assert status == 403
                    no_secret(body)
            assert await s.rows("SELECT COUNT(*) FROM notify_settings") == [(0,)]
            assert notifier.version == 0


def test_documents_round_trip_and_placeholders_resolve_per_field(tmp_path: Path) -> None:
    table = tomllib.loads(
        '[notify]\npublic_url = "https://home.msp.example:8443"\n'
        "[notify.channels.ops]\n"
        'type = "apprise"\nurl_file = "ops.url"\n'
        "[notify.channels.hook]\n"
        'type = "webhook"\nurl = "https://u:p@psa.example/h"\nsecret_file = "/etc/h"\n'
        "[[notify.routes]]\n"
        'channels = ["ops"]\nescalation = [{after_s = 900, channels = ["hook"]}]\n'
        '[notify.sites."Bäckerei \\"Ost\\""]\ntimezone = "Europe/Berlin"\nstart = "07:00"\n'
    )["notify"]
    assert stored.read_document(stored.dump_document(table)) == table
    shown = stored.redacted(table)
    assert shown["channels"]["ops"]["url_file"] == stored.PLACEHOLDER
    assert shown["channels"]["hook"]["url"] == stored.PLACEHOLDER
    assert shown["channels"]["hook"]["secret_file"] == stored.PLACEHOLDER
    assert shown["public_url"] == table["public_url"]  # no token in it: shown
    assert stored.resolve(shown, table) == table
    renamed = dict(shown, channels={"other": shown["channels"]["ops"]})
    with pytest.raises(ValueError, match=r"notify\.channels\.other\.url_file"):
        stored.resolve(renamed, table)
