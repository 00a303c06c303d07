"""Claiming, signed configuration and remote commands end to end through a real home server.

Home runs as its own process (``outpost-home run``, TLS with a CA made for the test) on
loopback; the MSP works with the real ``outpost-home`` commands; the appliance runs its real
services, and a configuration change restarts it the way systemd would: stop, load the file with
the signed sections over it, start again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.messages import IdentifyRequested, RediscoverRequested
from core.supervisor import Supervisor
from core.vocabulary import Severity
from core.wire import signing
from firmware.app import build
from home import remote
from home.db import HomeDB
from provisioning.service import ProvisioningService
from provisioning.signed_config import KIND, load_effective_config
from services.context import AppContext
from services.store import Event, insert_event
from tests.uplink_support import HOME, Home, running_home

# The same tests against both home database back ends (SQLite and PostgreSQL).
pytestmark = pytest.mark.usefixtures("home_backend")


def box_events(db: Path, kinds: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """(kind, data) of the box's stored events of these kinds, in order (read-only)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        marks = ",".join("?" for _ in kinds)
        rows = conn.execute(
            f"SELECT kind, data FROM events WHERE kind IN ({marks}) ORDER BY id", kinds
        ).fetchall()
    finally:
        conn.close()
    return [(str(kind), json.loads(data)) for kind, data in rows]


def _config_text(tmp: Path, home: Home, window_s: float) -> str:
    return f"""
[web]
enabled = false
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
sync_interval_s = 0.2
confirm_window_s = {window_s}
reboot_command = ["touch", "{tmp / "rebooted"}"]
[updates]
root = "{tmp / "opt"}"
mailbox_dir = "{tmp / "mailbox"}"
"""


def msp(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    """One ``outpost-home`` command, as the MSP types it."""
    return subprocess.run(
        [*HOME, *args, *home.where()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class Box:
    """The appliance process, restarted (like systemd would) when it asks for it."""

    path: Path
    ctx: AppContext | None = None
    supervisor: Supervisor | None = None
    starts: int = 0
    restart: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def service(self) -> ProvisioningService:
        assert self.supervisor is not None
        found = [s for s in self.supervisor.services if s.name == "provisioning"]
        assert isinstance(found[0], ProvisioningService)
        return found[0]

    async def start(self) -> None:
        config = await asyncio.to_thread(load_effective_config, self.path)
        self.ctx, self.supervisor = build(config)
        await self.supervisor.start()
        self.service.restart = self.restart.set
        self.starts += 1

    async def stop(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()
            self.supervisor = None

    async def keep_running(self) -> None:
        while True:
            await self.restart.wait()
            self.restart.clear()
            await self.stop()
            await self.start()


@contextlib.asynccontextmanager
async def running_box(path: Path) -> AsyncIterator[Box]:
    box = Box(path)
    await box.start()
    keeper = asyncio.create_task(box.keep_running())
    try:
        yield box
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await box.stop()


async def until(predicate: Any, what: str, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def remote_status(home: Home, appliance: str) -> dict[str, Any]:
    done = msp(home, "remote-status", appliance)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def reports(home: Home, appliance: str) -> list[tuple[Any, str, str]]:
    return [
        (r["version"], r["outcome"], r["reason"])
        for r in remote_status(home, appliance)["config_reports"]
    ]


def command_state(home: Home, appliance: str, cid: str) -> dict[str, Any] | None:
    for c in remote_status(home, appliance)["commands"]:
        if c["id"] == cid:
            return dict(c)
    return None


def queue(home: Home, appliance: str, action: str, *args: str) -> str:
    done = msp(home, "command", appliance, action, *args)
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["command"])


async def test_claim_configure_command_and_roll_back_through_home(tmp_path: Path) -> None:
    with running_home(tmp_path) as home:
        assert msp(home, "init-signing").returncode == 0
        path = tmp_path / "outpost.toml"
        # 8 s to confirm: a loaded machine restarts the box slowly (3 s failed at load 8).
        path.write_text(_config_text(tmp_path, home, window_s=8.0))
        async with running_box(path) as box:
            assert box.ctx is not None
            # ---- a fresh box phones home, unclaimed, showing its code ----
            code = await until(
                lambda: box.ctx.status.snapshot().get("provisioning.claim_code"), "a claim code"
            )
            assert box.ctx.status.snapshot()["provisioning.state"] == "unclaimed"
            appliance = box.service.identity.appliance_id  # type: ignore[union-attr]
            pending = await until(
                lambda: json.loads(msp(home, "pending").stdout), "the box's hello at home"
            )
            assert pending[0]["appliance"] == appliance and pending[0]["state"] == "pending"
            # Repeated hellos (it has said hello many times by now) made one identity only.
            await asyncio.sleep(0.5)
            assert len(json.loads(msp(home, "pending").stdout)) == 1

            wrong = msp(home, "claim", "AAAA-BBBB-CCCC-DDDD", "--site", "Dentist")
            assert wrong.returncode == 2 and "no box has phoned home" in wrong.stderr
            done = msp(home, "claim", code.lower().replace("-", " "), "--site", "Dentist")
            assert done.returncode == 0, done.stderr
            again = msp(home, "claim", code, "--site", "Other client")
            assert again.returncode == 2 and "already claimed for site 'Dentist'" in again.stderr

            await until(
                lambda: box.ctx.status.snapshot().get("provisioning.state") == "claimed",
                "the box to learn it is claimed",
            )
            assert box.ctx.status.snapshot()["provisioning.site"] == "Dentist"
            # ---- its data now arrives at home ----
            await box.ctx.store.write(
                lambda tx: insert_event(
                    tx, Event("test.after_claim", None, Severity.INFO, "hello", {})
                )
            )
            await until(
                lambda: any(
                    body.get("kind") == "test.after_claim" or "after_claim" in json.dumps(body)
                    for _seq, _lane, _kind, body in home.records(appliance)
                ),
                "the box's records at home",
            )

            # ---- a signed configuration is applied (restart), then confirmed ----
            site = tmp_path / "site.toml"
            site.write_text('[site]\nname = "Dentist, 1st floor"\n[polling]\ninterval_s = 120.0\n')
            assert msp(home, "push-config", appliance, str(site)).returncode == 0
            await until(lambda: box.starts == 2, "the restart that applies the configuration")
            assert box.ctx is not None and box.ctx.config.site.name == "Dentist, 1st floor"
            assert box.ctx.config.polling.interval_s == 120.0
            await until(
                lambda: (1, "confirmed", "reached home") in reports(home, appliance),
                "the configuration confirmed at home",
            )
            assert (1, "applied", "changed: polling, site") in reports(home, appliance)

            # ---- refusals: reason reported home, running configuration untouched ----
            site.write_text("[polling]\ninterval_s = -1\n")
            assert msp(home, "push-config", appliance, str(site)).returncode == 0
            other_key = Ed25519PrivateKey.generate()
            _insert_config(home, appliance, 3, other_key, appliance)
            key = remote.load_signing_key(home.data_dir)
            _insert_config(home, appliance, 4, key, "op-someoneelse000000000")
            await until(
                lambda: len([r for r in reports(home, appliance) if r[1] == "refused"]) == 3,
                "three refusal reports",
            )
            refused = {r[0]: r[2] for r in reports(home, appliance) if r[1] == "refused"}
            assert refused[2].startswith("configuration 2 is invalid: polling.interval_s")
            assert refused[3].startswith("outpost.site-config: bad signature")
            assert refused[4] == (
                f"configuration is for appliance 'op-someoneelse000000000', this is {appliance}"
            )
            assert box.starts == 2 and box.ctx.config.polling.interval_s == 120.0

            # ---- remote commands ----
            sub = box.ctx.bus.subscribe(IdentifyRequested, RediscoverRequested)
            ids = {
                "identify": queue(home, appliance, "identify", "--arg", "duration_s=5"),
                "rediscover": queue(home, appliance, "rediscover"),
                "poll": queue(home, appliance, "poll", "--arg", "ip=127.0.0.1"),
                "poll_bad": queue(home, appliance, "poll", "--arg", "ip=not-an-ip"),
                "diagnostics": queue(home, appliance, "diagnostics"),
                "update": queue(
                    home,
                    appliance,
                    "update",
                    "--arg",
                    "url=https://h/b.bundle",
                    "--arg",
                    "version=9.9.9",
                ),
                "reboot": queue(home, appliance, "reboot"),
            }
            for name, cid in ids.items():
                await until(
                    lambda cid=cid: (
                        (command_state(home, appliance, cid) or {}).get("state")
                        in ("done", "failed")
                    ),
                    f"the result of {name}",
                )
            state = {n: command_state(home, appliance, c) for n, c in ids.items()}
            assert state["identify"]["result"] == "identify blink for 5 s"  # type: ignore[index]
            assert state["poll"]["state"] == "done"  # type: ignore[index]
            assert state["poll"]["result"].startswith("127.0.0.1 answered")  # type: ignore[index]
            assert state["poll_bad"]["state"] == "failed"  # type: ignore[index]
            assert state["diagnostics"]["result"].startswith("diagnostics uploaded")  # type: ignore[index]
            seen = [await asyncio.wait_for(sub.get(), 5) for _ in range(2)]
            assert {type(e) for e in seen} == {IdentifyRequested, RediscoverRequested}
            request = json.loads((tmp_path / "mailbox" / "request.json").read_text())
            assert request["command_id"] == ids["update"] and request["version"] == "9.9.9"
            await until((tmp_path / "rebooted").exists, "the reboot command")
            bundle = _diagnostics(home, appliance)
            assert bundle["command_id"] == ids["diagnostics"]
            assert bundle["config"]["site"]["name"] == "Dentist, 1st floor"
            assert bundle["store"]["rows"]["events"] >= 1
            assert "ca_file" in bundle["config"]["uplink"]
            assert "admin_password_hash" not in bundle["config"]["web"]
            # What the MSP did is kept on the box for its own report (web/report_data.py):
            # the applied configuration and each command that ran, the failed one not.
            noted = box_events(tmp_path / "outpost.db", ("config.applied", "command.done"))
            assert ("config.applied", {"version": 1, "changed": ["polling", "site"]}) in noted
            actions = sorted(d["action"] for k, d in noted if k == "command.done")
            assert actions == [
                "diagnostics",
                "identify",
                "poll",
                "reboot",
                "rediscover",
                "update",
            ], noted

            # Expired: refused by the box, reported, never run.
            expired = _expired_command(home, appliance)
            await until(
                lambda: (command_state(home, appliance, expired) or {}).get("state") == "refused",
                "the expired command's refusal",
            )
            assert "expired" in command_state(home, appliance, expired)["result"]  # type: ignore[index]
            # Replayed: home hands an already-run command out again; it does not run twice.
            _replay(home, ids["identify"])
            await until(
                lambda: (command_state(home, appliance, ids["identify"]) or {}).get("replays") == 1,
                "the replay to be answered as a duplicate",
            )
            assert command_state(home, appliance, ids["identify"])["state"] == "done"  # type: ignore[index]
            with contextlib.suppress(TimeoutError):
                extra = await asyncio.wait_for(sub.get(), 1.0)
                raise AssertionError(f"a replayed command ran again: {extra}")

            # ---- a configuration that cuts the box off from home is rolled back ----
            site.write_text(f'[uplink]\nurl = "https://127.0.0.1:{_dead_port()}"\n')
            assert msp(home, "push-config", appliance, str(site), "--version", "10").returncode == 0
            await until(lambda: box.starts == 3, "the restart with the cut-off configuration")
            assert box.ctx.config.uplink.url != home.url
            await until(lambda: box.starts >= 4, "the rollback restart", timeout_s=30)
            assert box.ctx.config.uplink.url == home.url
            # Several syncs later it is still there: home does not resend the rolled-back
            # version, and the box would refuse it (no flapping between the two).
            await asyncio.sleep(2.0)
            assert box.starts == 4, f"the box flapped: {box.starts} starts"
            assert box.ctx.config.uplink.url == home.url
            await until(
                lambda: any(r[0] == 10 and r[1] == "rolled_back" for r in reports(home, appliance)),
                "the rollback report at home",
            )
            (why,) = [r[2] for r in reports(home, appliance) if r[1] == "rolled_back"]
            assert why == "home was not reachable within 8 s; back to version 1"

            # ---- released by the MSP: the box shows a new code and can be claimed again ----
            assert msp(home, "release", appliance).returncode == 0
            new_code = await until(
                lambda: box.ctx.status.snapshot().get("provisioning.claim_code"),
                "the released box's new claim code",
            )
            assert new_code != code
            await until(
                lambda: json.loads(msp(home, "pending").stdout)[0]["state"] == "pending",
                "the new code's hello at home",
            )
            spent = msp(home, "claim", code, "--site", "Dentist")
            assert spent.returncode == 2
            assert msp(home, "claim", new_code, "--site", "Dentist").returncode == 0
            await until(
                lambda: box.ctx.status.snapshot().get("provisioning.state") == "claimed",
                "the box claimed again",
            )
            assert len(json.loads(msp(home, "pending").stdout)) == 1  # still one identity


def _insert_config(home: Home, appliance: str, version: int, key: Any, target: str) -> None:
    doc = {
        "kind": KIND,
        "appliance": target,
        "site": "Dentist",
        "version": version,
        "config": {"site": {"name": "Evil"}},
    }
    db = HomeDB(home.location)
    db.open_sync()
    try:
        db.conn.execute(
            "INSERT INTO site_configs (appliance, version, envelope, created_at)"
            " VALUES (?, ?, ?, ?)",
            (appliance, version, json.dumps(signing.sign(key, doc)), time.time()),
        )
    finally:
        db.close_sync()


def _expired_command(home: Home, appliance: str) -> str:
    db = HomeDB(home.location)
    db.open_sync()
    try:
        key = remote.load_signing_key(home.data_dir)
        return remote.add_command_sync(
            db, key, appliance, "identify", ttl_s=60.0, issued_at=time.time() - 3600.0
        )
    finally:
        db.close_sync()


def _replay(home: Home, cid: str) -> None:
    db = HomeDB(home.location)
    db.open_sync()
    try:
        db.conn.execute("UPDATE commands SET state = 'pending' WHERE id = ?", (cid,))
    finally:
        db.close_sync()


def _diagnostics(home: Home, appliance: str) -> dict[str, Any]:
    (body,) = home.rows("SELECT body FROM diagnostics WHERE appliance = ?", (appliance,))[0]
    return dict(json.loads(body))


def _dead_port() -> int:
    from tests.uplink_support import free_port

    return free_port()
