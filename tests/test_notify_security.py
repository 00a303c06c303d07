"""Acknowledgement links (signed, expiring, single purpose), the webhook signature, secrets kept
out of configuration output, logs and payloads; STARTTLS with a login on a real SMTP server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest
from aiohttp import web

from core.wire.keys import b64
from home.ca import init_ca, issue_cert
from home.notify import ack
from home.notify.config import NotifyConfigError, parse
from home.notify.web import add_routes
from tests.notify_support import (
    SECRET_TEXT,
    SMTP_PASSWORD,
    FakeClock,
    at,
    free_port,
    rig,
    rows,
    sinks,
    verify_signature,
)

HOME = [sys.executable, "-m", "home.cli"]


async def test_ack_link_stops_escalation_and_forged_or_expired_links_change_nothing(
    tmp_path: Path,
) -> None:
    clock = FakeClock(at("2026-12-02 22:00"))
    port = free_port()
    async with rig(tmp_path, clock, public_url=f"http://127.0.0.1:{port}") as r:
        app = web.Application()
        add_routes(app, r.notifier)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await r.box.alert("device.down:7", "open", "critical", "server FS1 is down")
            clock.advance(31)
            await r.notifier.step()
            page = r.hooks.on("oncall")[0]
            assert verify_signature(SECRET_TEXT, page)
            link = page.doc["ack_url"]
            assert link.startswith(f"http://127.0.0.1:{port}/notify/ack?t=")
            token = parse_qs(urlparse(link).query)["t"][0]
            ref = page.doc["alerts"][0]["ref"]

            def state() -> list[tuple[object, ...]]:
                return rows(
                    r.db,
                    "SELECT t.acked_by, n.state FROM notify_threads t JOIN notifications n"
                    " ON n.ref = t.ref WHERE n.event = 'escalate' ORDER BY n.id",
                )

            before = await r.db.call(state)
            assert before == [("", "pending"), ("", "pending")]
            head, _, mac = token.partition(".")
            forged = [
                head + "." + ("A" if mac[0] != "A" else "B") + mac[1:],  # MAC altered
                ack.mint(b"not home's secret" * 2, ref, "oncall", clock() + 3600),
                ack.mint(r.notifier.secret, ref, "oncall", clock() - 1),  # expired
                "garbage",
            ]
            async with aiohttp.ClientSession() as session:
                for bad in forged:
                    async with session.post(link.split("?")[0], data={"t": bad}) as resp:
                        assert resp.status == 403, bad
                    async with session.get(link.split("?")[0], params={"t": bad}) as resp:
                        assert resp.status == 403
                assert await r.db.call(state) == before
                # Opening the link (a mail scanner would) shows a button and changes nothing.
                async with session.get(link) as resp:
                    assert resp.status == 200
                    assert "Acknowledge" in await resp.text()
                assert await r.db.call(state) == before
                # Escalation step 1 goes out while nobody has acknowledged.
                clock.advance(900)
                await r.notifier.step()
                assert len(r.hooks.on("tech2")) == 1
                async with session.post(
                    link.split("?")[0], data={"t": token, "by": "Anna"}
                ) as resp:
                    assert resp.status == 200
                    assert "acknowledged by Anna" in await resp.text()
            assert await r.db.call(state) == [
                ("Anna (link via oncall)", "sent"),
                ("Anna (link via oncall)", "cancelled"),
            ]
            clock.advance(3600)
            await r.notifier.step()
            assert r.hooks.on("manager") == []  # acknowledged: the chain stopped
            # The same link after its lifetime (7 days) is refused.
            clock.advance(7 * 86400)
            async with (
                aiohttp.ClientSession() as session,
                session.get(link) as resp,
            ):
                assert resp.status == 403
                assert "expired" in await resp.text()
        finally:
            await runner.cleanup()


def test_a_token_for_another_purpose_is_refused() -> None:
    secret = b"k" * 32
    good = ack.mint(secret, "ref-1", "oncall", 2e9)
    assert ack.verify(secret, good, 1.9e9).ref == "ref-1"
    head = b64(  # the same unpadded URL-safe base64 as ack's tokens
        json.dumps({"p": "unsubscribe", "r": "ref-1", "c": "x", "x": 2_000_000_000}).encode()
    )
    mac = b64(hmac.new(secret, head.encode(), hashlib.sha256).digest())
    with pytest.raises(ack.AckError, match="not an acknowledgement link"):
        ack.verify(secret, f"{head}.{mac}", 1.9e9)


def test_config_refuses_inline_secrets_unknown_channels_and_bad_zones(tmp_path: Path) -> None:
    def load(text: str) -> object:
        return parse(tomllib.loads(text)["notify"], tmp_path)

    with pytest.raises(NotifyConfigError, match="secrets are not written in the configuration"):
        load('[notify.channels.hook]\ntype = "webhook"\nurl = "https://x"\nsecret = "s3cret"\n')
    with pytest.raises(NotifyConfigError, match="channel 'pager' is not defined"):
        load('[notify.defaults]\noncall = ["pager"]\n')
    with pytest.raises(NotifyConfigError, match="not an IANA time zone"):
        load('[notify.sites."A"]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(NotifyConfigError, match="unknown keys"):
        load("[notify]\ngroup_wait = 3\n")


async def test_starttls_login_and_cli_test_without_leaking_secrets(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    init_ca(ca)
    cert, key = issue_cert(ca, tmp_path / "tls", ["127.0.0.1", "localhost"])
    async with sinks(tls=(Path(cert), Path(key))) as (smtp, hooks):
        (tmp_path / "smtp.password").write_text(SMTP_PASSWORD + "\n")
        (tmp_path / "hook.secret").write_text(SECRET_TEXT + "\n")
        config = tmp_path / "home.toml"
        config.write_text(
            "[notify]\n"
            "[notify.channels.service]\n"
            'type = "email"\nhost = "127.0.0.1"\n'
            f'port = {smtp.port}\nsecurity = "starttls"\nusername = "outpost"\n'
            f'password_file = "smtp.password"\nca_file = "{ca / "ca.pem"}"\n'
            'from = "outpost@msp.example"\nto = ["helpdesk@msp.example"]\n'
            "[notify.channels.oncall]\n"
            f'type = "webhook"\nurl = "{hooks.url("oncall")}"\nsecret_file = "hook.secret"\n'
        )
        outputs = []
        for argv in (["test", "service"], ["test", "oncall"], ["check"]):
            done = await asyncio.to_thread(
                subprocess.run,
                [*HOME, "notify", *argv, "--config", str(config)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout + done.stderr)
        assert json.loads(outputs[0])["ok"] is True
        assert smtp.logins == ["outpost"]
        assert len(smtp.messages) == 1
        assert smtp.messages[0]["Subject"] == "[Outpost test] test message for channel service"
        assert len(hooks.hits) == 1 and verify_signature(SECRET_TEXT, hooks.hits[0])
        assert json.loads(hooks.hits[0].body)["event"] == "test"
        shown = json.loads(outputs[2])
        assert shown["channels"]["service"]["password"] == "(set, from its file)"
        assert shown["channels"]["oncall"]["secret"] == "(set, from its file)"
        assert shown["channels"]["oncall"]["url"] == hooks.url("oncall")  # not a secret
        for text in [*outputs, hooks.hits[0].body.decode(), smtp.messages[0].as_string()]:
            assert SMTP_PASSWORD not in text and SECRET_TEXT not in text
        # A wrong password is refused by the server and reported without the password.
        (tmp_path / "smtp.password").write_text("wrong-password-77\n")
        done = await asyncio.to_thread(
            subprocess.run,
            [*HOME, "notify", "test", "service", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert "login refused" in json.loads(done.stdout)["error"]
        assert "wrong-password-77" not in done.stdout + done.stderr


async def test_signed_json_callback_acknowledges_like_the_button(tmp_path: Path) -> None:
    clock = FakeClock(at("2026-12-02 22:00"))
    port = free_port()
    async with rig(tmp_path, clock, public_url=f"http://127.0.0.1:{port}") as r:
        app = web.Application()
        add_routes(app, r.notifier)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await r.box.alert("device.down:7", "open", "major", "server FS1 is down")
            clock.advance(31)
            await r.notifier.step()
            link = r.hooks.on("oncall")[0].doc["ack_url"]
            token = parse_qs(urlparse(link).query)["t"][0]
            endpoint = link.split("?")[0]
            async with aiohttp.ClientSession() as session:
                forged = token[:-2] + ("xx" if not token.endswith("xx") else "yy")
                async with session.post(endpoint, json={"t": forged, "by": "bot"}) as resp:
                    assert resp.status == 403
                    assert (await resp.json())["ok"] is False
                async with session.post(endpoint, json={"t": token, "by": "psa-bot"}) as resp:
                    assert resp.status == 200
                    assert await resp.json() == {
                        "ok": True,
                        "ref": "4f3a9c2b-101",
                        "acked_by": "psa-bot (link via oncall)",
                    }
            clock.advance(3600)
            await r.notifier.step()
            assert r.hooks.on("tech2") == [] and r.hooks.on("manager") == []
        finally:
            await runner.cleanup()
