"""Test support for home's notifications: a real SMTP server (aiosmtpd) and a real HTTP
receiver on loopback, a virtual clock, and a home database driven through its ingest path."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import hashlib
import hmac
import json
import socket
import ssl
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from core.wire.keys import Identity
from core.wire.protocol import INGEST_PATH, encode
from home.db import HomeDB
from home.notify.config import parse
from home.notify.worker import Notifier
from simsite.harness.home import Home, new_database
from simsite.harness.postgres import PostgresServer

BERLIN = ZoneInfo("Europe/Berlin")
SECRET_TEXT = "whsec-test-3f9a2c1b7e"  # the webhook secret the test config uses
SMTP_PASSWORD = "smtp-pw-91c0ffee"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def at(text: str, zone: ZoneInfo = BERLIN) -> float:
    """'2026-12-02 22:00' in ``zone`` -> epoch seconds."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=zone).timestamp()


class FakeClock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self, start_s: float) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class SmtpSink:
    """aiosmtpd on 127.0.0.1 that keeps every mail it accepted, parsed.

    ``refuse`` answers 550 to every DATA. With ``tls`` (cert, key) it offers STARTTLS and
    requires it and a login (user ``outpost``, password SMTP_PASSWORD) before mail."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = False
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            kwargs = {
                "tls_context": context,
                "require_starttls": True,
                "auth_required": True,
                "authenticator": self._authenticate,
            }
        # server_hostname: else aiosmtpd asks socket.getfqdn() (a DNS lookup) per connection.
        self.controller = Controller(
            self, hostname="127.0.0.1", port=self.port, server_hostname="mx.test", **kwargs
        )
        self.logins: list[str] = []

    def _authenticate(
        self, _server: SmtpServer, _session: Session, _env: Envelope, _mech: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == SMTP_PASSWORD.encode()
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # False: the server answers 535

    async def handle_DATA(self, _server: SmtpServer, _session: Session, envelope: Envelope) -> str:
        if self.refuse:
            return "550 refused by the test"
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.controller.stop()

    def text(self, message: EmailMessage) -> str:
        part = message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookSink:
    """An aiohttp server on 127.0.0.1 that records every POST; ``status`` is its answer."""

    status: int = 200
    delay_s: float = 0.0  # answer this much later (a slow receiver widens the crash window)
    hits: list[Hit] = field(default_factory=list)
    port: int = 0
    runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.hits.append(Hit(request.path, dict(request.headers), await request.read()))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.json_response({"ok": self.status < 300}, status=self.status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def on(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == "/" + path]


def verify_signature(secret: str, hit: Hit) -> bool:
    """The documented scheme (docs/notifications.md), written independently of home's code."""
    given = hit.headers.get("X-Outpost-Signature", "")
    expected = "sha256=" + hmac.new(secret.encode(), hit.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(given, expected)


def notify_toml(
    tmp: Path, smtp: SmtpSink, hooks: WebhookSink, extra: str = "", **overrides: Any
) -> str:
    """A [notify] configuration for an MSP: a service queue (mail), an on-call phone (webhook),
    a second technician and a manager (webhooks), an ops fallback (Apprise json://)."""
    (tmp / "hook.secret").write_text(SECRET_TEXT + "\n")
    (tmp / "ops.url").write_text(f"json://127.0.0.1:{hooks.port}/ops\n")
    settings = {
        "group_wait_s": 30,
        "resolve_wait_s": 120,
        "offline_after_s": 0,
        "max_attempts": 3,
        "backoff_first_s": 10,
        "backoff_cap_s": 60,
        "fallback": "ops",
        "public_url": "http://127.0.0.1:9",
        **overrides,
    }
    lines = ["[notify]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    lines += [
        "[notify.channels.service]",
        'type = "email"',
        'host = "127.0.0.1"',
        f"port = {smtp.port}",
        'security = "none"',
        'from = "outpost@msp.example"',
        'to = ["helpdesk@msp.example"]',
    ]
    for name in ("oncall", "tech2", "manager", "psa"):
        lines += [
            f"[notify.channels.{name}]",
            'type = "webhook"',
            f'url = "{hooks.url(name)}"',
            'secret_file = "hook.secret"',
        ]
    lines += ["[notify.channels.ops]", 'type = "apprise"', 'url_file = "ops.url"']
    lines += [
        "[notify.defaults]",
        'service = ["service"]',
        'oncall = ["oncall"]',
        'escalation = [{after_s = 900, channels = ["tech2"]},'
        ' {after_s = 2700, channels = ["manager"]}]',
        '[notify.sites."Dental"]',
        'timezone = "Europe/Berlin"',
        'start = "08:00"',
        'end = "18:00"',
        'holidays = ["2026-12-25"]',
    ]
    return "\n".join(lines) + "\n" + extra


# Majors and criticals to the service mailbox and the PSA webhook whatever the hour (e2e tests
# run at the machine's real time).
ALWAYS_ROUTE = """
[[notify.routes]]
severities = ["major", "critical"]
channels = ["service", "psa"]
"""


class Box:
    """Sends alert records to home's ingest path as one appliance (stream dedup included)."""

    def __init__(self, db: HomeDB, appliance: str, site: str) -> None:
        self.db = db
        self.appliance = appliance
        self.site = site
        self.seq = 0
        self.nonce = 0
        self.ids: dict[str, int] = {}
        self.next_id = 100

    async def register(self) -> None:
        await self.db.call(self.db.register_sync, self.appliance, "test-key", self.site)

    def batch(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        out = []
        for rec in records:
            self.seq += 1
            out.append({"seq": self.seq, "lane": 0, "kind": "alert", "ts": 1.8e9,
                        "synced": True, "body": rec})  # fmt: skip
        return {"v": 1, "appliance": self.appliance, "stream": "s1", "records": out}

    def body(
        self, key: str, state: str, severity: str, message: str, **extra: Any
    ) -> dict[str, Any]:
        if state == "open":
            self.next_id += 1
            self.ids[key] = self.next_id
        rule = key.split(":", maxsplit=1)[0]
        return {"key": key, "id": self.ids[key], "state": state, "severity": severity,
                "message": message, "rule": rule, **extra}  # fmt: skip

    async def send(self, *bodies: dict[str, Any]) -> dict[str, Any]:
        self.nonce += 1
        doc = self.batch(list(bodies))
        answer: dict[str, Any] = await self.db.call(
            self.db.ingest_sync, self.appliance, f"n{self.nonce}", doc
        )
        return answer

    async def alert(self, key: str, state: str, severity: str, message: str) -> None:
        await self.send(self.body(key, state, severity, message))


@contextlib.asynccontextmanager
async def virtual_home(
    tmp: Path, toml: str, clock: FakeClock, database: str = ""
) -> AsyncIterator[tuple[HomeDB, Notifier]]:
    """Home's database with notifications on a virtual clock (no server, no worker loop):
    the test calls ``notifier.step()`` after moving the clock."""
    config = parse(tomllib.loads(toml)["notify"], tmp)
    db = HomeDB(database or tmp / "home.db")
    await db.open()
    notifier = Notifier.from_data_dir(config, tmp, clock)
    notifier.attach(db)
    await notifier.start()
    try:
        yield db, notifier
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def sinks(
    tls: tuple[Path, Path] | None = None,
) -> AsyncIterator[tuple[SmtpSink, WebhookSink]]:
    smtp = SmtpSink(tls)
    hooks = WebhookSink()
    await asyncio.to_thread(smtp.start)
    try:
        await hooks.start()
        yield smtp, hooks
    finally:
        await hooks.stop()
        await asyncio.to_thread(smtp.stop)


def rows(db: HomeDB, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Synchronous read for assertions, on the database thread's connection (tests only)."""
    return list(db.conn.execute(sql, params).fetchall())


@dataclass
class Rig:
    smtp: SmtpSink
    hooks: WebhookSink
    db: HomeDB
    notifier: Notifier
    box: Box


@contextlib.asynccontextmanager
async def rig(
    tmp: Path, clock: FakeClock, database: str = "", **overrides: Any
) -> AsyncIterator[Rig]:
    """Receivers, home's database (``database``: a PostgreSQL URL or '' for SQLite) with
    notifications on ``clock``, and a registered box of the site "Dental" (Europe/Berlin,
    08:00-18:00 Monday to Friday, 25 December a holiday)."""
    async with sinks() as (smtp, hooks):
        toml = notify_toml(tmp, smtp, hooks, **overrides)
        async with virtual_home(tmp, toml, clock, database) as (db, notifier):
            box = Box(db, "op-4f3a9c2b1d", "Dental")
            await box.register()
            yield Rig(smtp, hooks, db, notifier, box)


# The harness's Home runs `outpost-home run --config FILE` when given one.
NotifyHome = Home


@contextlib.contextmanager
def notify_home(tmp: Path, toml: str) -> Iterator[NotifyHome]:
    """A real home process on loopback with ``toml`` as its configuration; stopped on exit."""
    config = tmp / "home.toml"
    config.write_text(toml)
    home = NotifyHome(tmp / "home", tmp / "ca", config=config)
    home.prepare()
    home.start()
    try:
        yield home
    finally:
        home.stop()


async def post_batch(home: Home, identity: Identity, doc: dict[str, Any]) -> int:
    """POST one signed batch to home's ingest; the HTTP status, or 0 when home did not answer."""
    body = encode(doc)
    headers = {"Content-Encoding": "gzip", **identity.sign_headers("POST", INGEST_PATH, body)}
    context = ssl.create_default_context(cafile=str(home.ca_file))
    timeout = aiohttp.ClientTimeout(total=5)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(home.url + INGEST_PATH, data=body, headers=headers, ssl=context) as resp,
        ):
            await resp.read()
            return resp.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


def namespace_database(request: pytest.FixtureRequest, home_backend: str) -> str:
    """Home's database as a home inside a simulated site's namespace reaches it: "" (SQLite)
    or a PostgreSQL URL over the server's Unix socket (a file: reachable from any network
    namespace, unlike the server's loopback port)."""
    url = new_database()
    if home_backend != "postgresql":
        return url
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = url.rsplit("/", 1)[1]
    return f"postgresql://outpost@/{name}?host={server.root / 'sock'}&port={server.port}"
