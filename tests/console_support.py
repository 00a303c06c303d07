"""Test support for the MSP console: an in-process home app on loopback and a cookie-keeping
client that logs in through the real login form (double-submit CSRF, Secure cookies kept by
hand because the in-process server speaks plain HTTP on loopback)."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from home.console import accounts
from home.console.roles import Role
from home.db import HomeDB
from home.notify.worker import Notifier
from home.server import create_app
from simsite.harness.ports import free_tcp_port

PASSWORD = "correct horse battery"
HOSTILE = "Dentist <script>alert(1)</script> & <img src=x onerror=alert(2)>"


@dataclass
class Served:
    db: HomeDB
    app: web.Application
    url: str
    data_dir: Path

    async def call(self, fn: Any, *args: Any) -> Any:
        db = self.db

        def work() -> Any:
            conn = db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return result

        return await db.call(work)

    async def user(self, name: str, role: Role, password: str = PASSWORD) -> None:
        await self.call(accounts.create_user, name, role, password, time.time())

    async def token(self, name: str, role: Role) -> str:
        _id, secret = await self.call(accounts.create_token, name, "test", role, time.time())
        return str(secret)

    async def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        db = self.db
        return list(await db.call(lambda: db.conn.execute(sql, params).fetchall()))


@contextlib.asynccontextmanager
async def served(
    tmp_path: Path,
    database: str = "",
    extend: Callable[[web.Application], None] | None = None,
    notifier: Notifier | None = None,
) -> AsyncIterator[Served]:
    """Home's real application (create_app) on a loopback port, database under tmp_path;
    ``extend`` may add to the application before it starts."""
    db = HomeDB(database or tmp_path / "home.db")
    await db.open()
    app = create_app(db, data_dir=tmp_path, notifier=notifier)
    if extend is not None:
        extend(app)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    port = free_tcp_port("127.0.0.1")
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield Served(db, app, f"http://127.0.0.1:{port}", tmp_path)
    finally:
        await runner.cleanup()
        await db.close()


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Client:
    """A browser-like client: keeps the cookies it is given, sends its own Origin on POSTs."""

    http: aiohttp.ClientSession
    url: str
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Origin": self.url}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers.update(extra or {})
        return headers

    def _keep(self, response: aiohttp.ClientResponse) -> None:
        for name, morsel in response.cookies.items():
            if morsel.value:
                self.cookies[name] = morsel.value
            else:
                self.cookies.pop(name, None)

    async def get(self, path: str, **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.get(
            self.url + path, headers=self._headers(kw.pop("headers", None)),
            allow_redirects=False, **kw,
        ) as response:  # fmt: skip
            self._keep(response)
            text = await response.text()
            found = _CSRF.search(text)
            if found and "outpost_console" in self.cookies:
                self.csrf = found.group(1)
            return response.status, text, response

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True,
        headers: dict[str, str] | None = None, json_body: Any = None,
    ) -> tuple[int, str, aiohttp.ClientResponse]:  # fmt: skip
        form = dict(data or {})
        if csrf and json_body is None:
            form.setdefault("csrf", self.csrf)
        kwargs: dict[str, Any] = {"json": json_body} if json_body is not None else {"data": form}
        async with self.http.post(
            self.url + path, headers=self._headers(headers), allow_redirects=False, **kwargs
        ) as response:
            self._keep(response)
            return response.status, await response.text(), response

    async def login(self, name: str, password: str = PASSWORD) -> int:
        status, page, _ = await self.get("/console/login")
        assert status == 200, page
        pre = _CSRF.search(page)
        assert pre, page
        status, _text, _ = await self.post(
            "/console/login", {"name": name, "password": password, "csrf": pre.group(1)}
        )
        if status == 303:
            await self.get("/console")  # picks up the session's CSRF token
        return status


@contextlib.asynccontextmanager
async def client(url: str) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        yield Client(http, url)


async def seed_site(
    served: Served, appliance: str, site: str, *, heartbeat_age_s: float | None,
    version: str = "1.4.2", queue: dict[str, int] | None = None,
) -> None:  # fmt: skip
    """A registered box with its last heartbeat ``heartbeat_age_s`` ago (None: never)."""
    now = time.time()
    await served.db.call(served.db.register_sync, appliance, "unused-public-key", site)

    def beat(conn: Any) -> None:
        if heartbeat_age_s is not None:
            doc = {"version": version, "queue": queue or {"0": 0, "1": 3}, "uptime_s": 86000,
                   "clock_synced": True, "state": "connected"}  # fmt: skip
            conn.execute(
                "UPDATE appliances SET heartbeat_at = ?, last_seen = ?, heartbeat = ? WHERE id = ?",
                (now - heartbeat_age_s, now - heartbeat_age_s, json.dumps(doc), appliance),
            )

    await served.call(beat)


async def seed_alert(
    served: Served, appliance: str, key: str, severity: str, message: str, *, age_s: float = 600.0
) -> None:
    await served.call(
        lambda conn: conn.execute(
            "INSERT INTO alerts (appliance, key, state, severity, message, ts)"
            " VALUES (?, ?, 'open', ?, ?, ?)",
            (appliance, key, severity, message, time.time() - age_s),
        )
    )
