"""An acknowledgement made at home reaches the box (issue 13): a real home process (TLS, its
[notify] configuration, SMTP receiver on loopback), a real appliance (its services, store,
uplink, provisioning and status page) claimed by that home. An alert opens on the box, its mail
arrives, the technician acknowledges by the mail's signed link, and within one sync interval the
box's API and alerts page say who acknowledged and when.

Also, in process: the box refuses acknowledgements signed by another key or addressed to another
box, and keeps the first name when home repeats them."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.clock import system_clock
from core.config import Config
from core.vocabulary import Severity
from core.wire import signing
from core.wire.keys import public_key_text
from firmware.app import MIGRATION_CHAINS
from provisioning.acks import take_acks
from services.alerting.engine import AlertEngine
from services.alerting.rules import Condition
from services.alerting.service import AlertingService
from services.context import AppContext
from services.store import Store
from simsite.harness.home import Home
from simsite.harness.ports import free_tcp_port
from simsite.harness.processes import HOME
from tests.notify_support import ALWAYS_ROUTE, notify_toml, sinks
from tests.test_provisioning_e2e import Box, running_box, until

SYNC_INTERVAL_S = 2.0


def _box_config(tmp: Path, home: Home, web_port: int) -> str:
    return f"""
[web]
listen = "127.0.0.1"
port = {web_port}
[discovery]
enabled = false
[polling]
enabled = false
[store]
path = "{tmp / "outpost.db"}"
[uplink]
url = "{home.url}"
ca_file = "{home.ca_file}"
batch_max_age_s = 0.2
backoff_first_s = 0.05
backoff_cap_s = 0.5
request_timeout_s = 2.0
heartbeat_s = 1.0
self_measure_s = 0.0
[provisioning]
identity_dir = "{tmp / "identity"}"
state_dir = "{tmp / "provisioning"}"
config_file = "{tmp / "outpost.toml"}"
sync_interval_s = {SYNC_INTERVAL_S}
[updates]
root = "{tmp / "opt"}"
mailbox_dir = "{tmp / "mailbox"}"
"""


def msp(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HOME, *args, *home.where()], capture_output=True, text=True, timeout=60, check=False
    )


@asynccontextmanager
async def notify_home_at(tmp: Path, toml_for: Any) -> AsyncIterator[Home]:
    """Home with a [notify] configuration that knows home's own URL (its ack links)."""
    home = Home(tmp / "home", tmp / "ca", config=tmp / "home.toml")
    home.prepare()
    (tmp / "home.toml").write_text(toml_for(home.url))
    await asyncio.to_thread(home.start)
    try:
        yield home
    finally:
        await asyncio.to_thread(home.stop)


def _alerting(box: Box) -> AlertingService:
    assert box.supervisor is not None
    (found,) = [s for s in box.supervisor.services if s.name == "alerting"]
    assert isinstance(found, AlertingService)
    return found


async def _get(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as r:
        assert r.status == 200, url
        return await r.json() if "json" in r.content_type else await r.text()


@pytest.mark.usefixtures("home_backend")  # SQLite and PostgreSQL
async def test_ack_by_link_reaches_the_box_within_one_sync(tmp_path: Path) -> None:
    async with sinks() as (smtp, hooks):

        def toml(url: str) -> str:
            return notify_toml(
                tmp_path, smtp, hooks, ALWAYS_ROUTE, group_wait_s=0, resolve_wait_s=1,
                public_url=url,
            )  # fmt: skip

        async with notify_home_at(tmp_path, toml) as home:
            assert msp(home, "init-signing").returncode == 0
            web_port = free_tcp_port("127.0.0.1")
            path = tmp_path / "outpost.toml"
            path.write_text(_box_config(tmp_path, home, web_port))
            async with running_box(path) as box:
                assert box.ctx is not None
                code = await until(
                    lambda: box.ctx.status.snapshot().get("provisioning.claim_code"), "a code"
                )
                await until(lambda: json.loads(msp(home, "pending").stdout), "the box's hello")
                claimed = msp(home, "claim", code, "--site", "Dental")
                assert claimed.returncode == 0, claimed.stderr
                await until(
                    lambda: box.ctx.status.snapshot().get("provisioning.state") == "claimed",
                    "the claim",
                )
                # ---- an alert opens on the box (its alerting engine, store, uplink) ----
                down = Condition(
                    "device.down:7", "device.down", None, Severity.MAJOR, "server FS1 is down"
                )
                # The service's one write path (engine, store, uplink), without a poll.
                await _alerting(box)._commit([down])  # noqa: SLF001
                await until(lambda: smtp.messages, "the alert's mail", timeout_s=30)
                text = smtp.text(smtp.messages[0])
                match = re.search(r"Acknowledge \(stops escalation\): (\S+)", text)
                assert match, text
                link = match.group(1)
                assert link.startswith(home.url + "/notify/ack?t=")
                api = f"http://127.0.0.1:{web_port}/api/v1/alerts"
                (before,) = (await _get(api))["alerts"]
                assert before["acked"] == 0 and before["acked_by"] == ""
                # ---- the technician opens the link and presses its button ----
                token = link.split("t=", 1)[1]
                context = ssl.create_default_context(cafile=str(home.ca_file))
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(
                        home.url + "/notify/ack", data={"t": token, "by": "Anna"}, ssl=context
                    ) as r,
                ):
                    assert r.status == 200, await r.text()
                acked_at = time.monotonic()

                async def on_box() -> dict[str, Any]:
                    while True:
                        (row,) = (await _get(api))["alerts"]
                        if row["acked_by"]:
                            return dict(row)
                        await asyncio.sleep(0.05)

                row = await asyncio.wait_for(on_box(), SYNC_INTERVAL_S + 3.0)
                delay_s = time.monotonic() - acked_at
                assert row["acked"] == 1
                assert row["acked_by"] == "Anna (link via service)"
                assert abs(row["acked_ts"] - time.time()) < 30
                page = await _get(f"http://127.0.0.1:{web_port}/alerts")
                assert "acknowledged by Anna (link via service) at" in page
                print(f"\nacknowledged at home -> shown on the box: {delay_s:.2f} s"
                      f" (sync interval {SYNC_INTERVAL_S:g} s)")  # fmt: skip
                # Home repeats it in later answers: nothing changes, no error.
                await asyncio.sleep(SYNC_INTERVAL_S * 1.5)
                (again,) = (await _get(api))["alerts"]
                assert again["acked_by"] == row["acked_by"] and again["acked_ts"] == row["acked_ts"]


# ---- in process: what the box accepts ----


async def _store_with_alert(tmp: Path) -> tuple[AppContext, int]:
    store = Store(tmp / "a.db", chains=MIGRATION_CHAINS)
    await store.open()
    ctx = AppContext(config=Config(), store=store, clock=system_clock())
    engine = AlertEngine()
    cond = Condition("device.down:3", "device.down", None, Severity.MAJOR, "NAS down")
    transitions = engine.decide([cond], quiet=False)
    await store.write(lambda tx: engine.apply(tx, transitions))
    return ctx, engine.open["device.down:3"].id


def _row(ctx: AppContext, alert_id: int) -> Any:
    return ctx.store.read(
        lambda c: c.execute(
            "SELECT acked, acked_by, acked_ts FROM alerts WHERE id = ?", (alert_id,)
        ).fetchone()
    )


async def test_box_takes_only_acks_signed_by_its_msp_for_itself(tmp_path: Path) -> None:
    ctx, alert_id = await _store_with_alert(tmp_path)
    try:
        msp_key, other_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        public = signing.public_from_text(public_key_text(msp_key.public_key()))
        me = "op-aaaaaaaa"

        def doc(appliance: str, by: str, key: str = "device.down:3") -> dict[str, Any]:
            ack = {"alert_id": alert_id, "key": key, "by": by, "at": 1.8e9}
            return {"kind": signing.ACKS_KIND, "appliance": appliance, "issued_at": 1.8e9,
                    "acks": [ack]}  # fmt: skip

        # Signed by another key, addressed to another box, another kind, wrong key: nothing.
        assert await take_acks(ctx, signing.sign(other_key, doc(me, "Mallory")), public, me) == []
        assert await take_acks(ctx, signing.sign(msp_key, doc("op-b", "Eve")), public, me) == []
        config_kind = {**doc(me, "Eve"), "kind": signing.CONFIG_KIND}
        assert await take_acks(ctx, signing.sign(msp_key, config_kind), public, me) == []
        other_alert = doc(me, "Eve", key="device.down:4")
        assert await take_acks(ctx, signing.sign(msp_key, other_alert), public, me) == []
        assert await _row(ctx, alert_id) == (0, "", None)
        # The genuine one: stored; repeated or replayed with another name: the first stays.
        taken = await take_acks(ctx, signing.sign(msp_key, doc(me, "Anna")), public, me)
        assert [a.by for a in taken] == ["Anna"]
        assert await take_acks(ctx, signing.sign(msp_key, doc(me, "Ben")), public, me) == []
        assert await _row(ctx, alert_id) == (1, "Anna", 1.8e9)
    finally:
        await ctx.store.close()
