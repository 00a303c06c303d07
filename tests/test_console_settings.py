"""The console's notification settings page (home/notify's configuration, secrets hidden) and
its "send test" button through home/notify's real webhook sender to a receiver on loopback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiohttp import web

from home.console.roles import Role
from home.notify.config import parse
from home.notify.worker import Notifier
from simsite.harness.ports import free_tcp_port
from tests.console_support import client, served

pytestmark = pytest.mark.usefixtures("home_backend")

WEBHOOK_SECRET = "whsec-console-7d1e9a"


async def test_settings_show_channels_without_secrets_and_send_a_test(
    tmp_path: Path, home_database: str
) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    port = free_tcp_port("127.0.0.1")
    await web.TCPSite(runner, "127.0.0.1", port).start()
    (tmp_path / "hook.secret").write_text(WEBHOOK_SECRET + "\n")
    hook_url = f"http://127.0.0.1:{port}/hook?token=url-s3cret"
    config = parse(
        {
            "channels": {
                "psa": {"type": "webhook", "url": hook_url, "secret_file": "hook.secret"},
                "dead": {"type": "webhook", "url": "http://127.0.0.1:9/x",
                         "secret_file": "hook.secret", "timeout_s": 2},
            },
            "routes": [{"severities": ["critical", "major"], "channels": ["psa"]}],
        },
        tmp_path,
    )  # fmt: skip
    notifier = Notifier(config, b"k" * 32, time.time)
    try:
        async with served(tmp_path, home_database, notifier=notifier) as s:
            await s.user("ann", Role.ADMIN)
            await s.user("tom", Role.TECHNICIAN)
            async with client(s.url) as c:
                assert await c.login("tom") == 303
                assert (await c.get("/console/settings"))[0] == 403
            async with client(s.url) as c:
                assert await c.login("ann") == 303
                status, page, _ = await c.get("/console/settings")
                assert status == 200 and 'data-channel="psa"' in page
                assert WEBHOOK_SECRET not in page and "url-s3cret" not in page
                _, api, _ = await c.get("/api/v1/console/settings/notify")
                assert WEBHOOK_SECRET not in api and "url-s3cret" not in api
                status, page, _ = await c.post("/console/settings/test", {"channel": "psa"})
                assert status == 200 and "Test message sent on psa" in page
                status, page, _ = await c.post("/console/settings/test", {"channel": "dead"})
                assert status == 502 and "the test on dead failed" in page
            rows = await s.rows(
                "SELECT action, target, outcome FROM console_audit WHERE action = 'notify.test'"
                " ORDER BY id"
            )
            assert rows == [("notify.test", "psa", "ok"), ("notify.test", "dead", "failed")]
    finally:
        await runner.cleanup()
    [(headers, body)] = received
    assert b"test" in body and any(k.lower().startswith("x-outpost") for k in headers)
