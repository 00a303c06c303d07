"""The provisioning service: say hello until claimed, then sync configuration and commands.

Unclaimed, the box posts ``/api/v1/hello`` (its public key and its claim code's hash) every
``sync_interval_s`` until the MSP claims it. Claimed, it posts ``/api/v1/sync``: the reports of
configurations and the results of commands not yet delivered, the version of the configuration
it runs; home answers with a newer signed configuration, if any, and the commands waiting for
it. Reaching home confirms a configuration on trial; not reaching it within the confirm window
rolls it back (provisioning/signed_config.py). Everything home sends is checked against the MSP
key learnt at the claim; nothing is ever accepted from the network otherwise.

A configuration that changes sections is applied by restarting the appliance process (systemd
starts it again at once, with the file's configuration and the signed sections laid over it by
:func:`provisioning.signed_config.load_effective_config`); a new version that changes nothing is
recorded without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import fsops, mailbox
from core.logs import get_log
from core.schema import to_public_dict
from core.status import StatusKey
from core.update_state import read_update_journal
from core.vocabulary import Severity
from core.wire.claim_codes import code_hash
from core.wire.keys import Identity
from core.wire.protocol import PROTOCOL_VERSION
from core.wire.signing import Refused, public_from_text
from provisioning.acks import take_acks
from provisioning.claim import ClaimState, ClaimStore
from provisioning.commands import Command, CommandBook, Handler, run_commands
from provisioning.signed_config import ConfigKeeper, read_table
from services.context import AppContext
from services.store import StoreError, Tx
from services.store.records import Event, insert_event
from services.uplink.client import HomeClient

log = get_log("provisioning")

HELLO_PATH = "/api/v1/hello"
SYNC_PATH = "/api/v1/sync"
DIAGNOSTICS_PATH = "/api/v1/diagnostics"
PING_TIMEOUT_S = 2
LOG_LINES = 500


def _default_restart() -> None:
    # systemd (Restart=always) starts the appliance again with the new configuration.
    os.kill(os.getpid(), signal.SIGTERM)


# What the box's own monthly report says of remote work ("what the MSP did", core/report/build.py
# reads events ``config.applied`` and ``command.done``): the client's words, not the actions'.
COMMAND_WORDS: dict[str, str] = {
    "identify": "the appliance's light was blinked to find it",
    "rediscover": "a new search for the devices of the office",
    "poll": "a device was checked on request",
    "diagnostics": "diagnostics were collected for the technician",
    "reboot": "the appliance was restarted",
    "update": "a software update of the appliance was started",
}


class ProvisioningService:
    name = "provisioning"

    def __init__(self, ctx: AppContext, home: HomeClient) -> None:
        self.ctx = ctx
        self.settings = ctx.config.provisioning
        state_dir = Path(self.settings.state_dir)
        self.claims = ClaimStore(state_dir, self.settings.claim_code_ttl_s, ctx.clock)
        self.keeper = ConfigKeeper(state_dir, self.settings.confirm_window_s, clock=ctx.clock)
        self.book = CommandBook(state_dir, ctx.clock)
        self.identity: Identity | None = None
        # Shared with the uplink and owned by the composition root, which closes it.
        self.client = home
        self.restart: Callable[[], None] = _default_restart
        self.home_now: float | None = None
        self._reboot_after_sync = False
        self._again = False
        # The configuration version this process runs with; only it can confirm a trial.
        self.running_version = 0
        self._restarting = False

    async def setup(self) -> None:
        # Loaded once by the root's client; when the key cannot be read this raises and the
        # supervisor sets provisioning up again with back-off (the process keeps running).
        self.identity = await self.client.open()
        before = fsops.read_json(self.claims.path)
        owner = before.get("appliance", "") if isinstance(before, dict) else ""
        if owner and owner != self.identity.appliance_id:
            # A new identity (factory reset): what home signed for the old key must not stay.
            await asyncio.to_thread(self._forget_remote_state)
            log.warning("provisioning.new_identity", old=owner, new=self.identity.appliance_id)
        claim = await asyncio.to_thread(self.claims.load, self.identity.appliance_id)
        self._publish(claim)
        self.running_version = await asyncio.to_thread(self.keeper.applied_version)
        self.ctx.status.publish(StatusKey.CONFIG_VERSION, self.running_version)

    async def teardown(self) -> None:
        return None  # the shared client is the root's to close

    def _forget_remote_state(self) -> None:
        for journal in (self.keeper.path, self.book.path):
            journal.unlink(missing_ok=True)

    def _publish(self, claim: ClaimState) -> None:
        self.ctx.status.publish(
            StatusKey.PROVISIONING_STATE, "claimed" if claim.claimed else "unclaimed"
        )
        self.ctx.status.publish(
            StatusKey.PROVISIONING_CLAIM_CODE, "" if claim.claimed else claim.code
        )
        self.ctx.status.publish(StatusKey.PROVISIONING_SITE, claim.site)

    async def run(self) -> None:
        while True:
            await self.step()
            if self._again:
                self._again = False
                continue  # results of commands just run go home at once
            await asyncio.sleep(self.settings.sync_interval_s)

    async def step(self) -> None:
        if self._restarting:
            return  # the process is about to restart with another configuration
        assert self.identity is not None
        claim = await asyncio.to_thread(self.claims.load, self.identity.appliance_id)
        if not claim.claimed:
            claim = await self.hello(claim)
        if claim.claimed:
            await self.sync(claim)
        rolled = await asyncio.to_thread(self.keeper.check)
        if rolled is not None:
            report, changed = rolled
            log.warning("config.rolled_back", version=report["version"], reason=report["reason"])
            self._applied(changed)

    # ---- unclaimed ----

    async def hello(self, claim: ClaimState) -> ClaimState:
        assert self.identity is not None
        doc = {
            "v": PROTOCOL_VERSION,
            "public_key": self.identity.public_text,
            "claim_code_sha256": code_hash(claim.code),
            "code_expires_at": claim.code_expires_at,
            "version": self.ctx.version,
        }
        ex = await self.client.post(HELLO_PATH, doc)
        if ex.outcome != "ok" or ex.doc is None:
            log.info("provisioning.hello_failed", outcome=ex.outcome, error=ex.error)
            return claim
        if ex.doc.get("state") == "claimed":
            site, key = str(ex.doc.get("site", "")), str(ex.doc.get("msp_key", ""))
            try:
                public_from_text(key)
            except Refused as exc:
                log.error("provisioning.bad_msp_key", error=exc.reason)
                return claim
            claim = await asyncio.to_thread(
                self.claims.mark_claimed, site, key, self.identity.appliance_id
            )
            log.info("provisioning.claimed", site=site)
            self._publish(claim)
        return claim

    # ---- claimed ----

    async def sync(self, claim: ClaimState) -> None:
        assert self.identity is not None
        reports = await asyncio.to_thread(self.keeper.take_reports)
        results = await asyncio.to_thread(self.book.take_results)
        journal = await asyncio.to_thread(read_update_journal, self.ctx.config.updates.root)
        last_update = journal.last_result
        doc = {
            "v": PROTOCOL_VERSION,
            "appliance": self.identity.appliance_id,
            "config_version": self.keeper.applied_version(),
            "config_reports": reports,
            "command_results": results,
            "update": None if last_update is None else dict(last_update),
        }
        ex = await self.client.post(SYNC_PATH, doc)
        if ex.outcome == "refused" and (
            "is released" in ex.error or "unknown appliance" in ex.error
        ):
            # Released by the MSP (or home no longer knows this box): be claimable again.
            claim = await asyncio.to_thread(self.claims.release, self.identity.appliance_id)
            log.warning("provisioning.released", detail=ex.error)
            self._publish(claim)
            return
        if ex.outcome != "ok" or ex.doc is None:
            log.info("provisioning.sync_failed", outcome=ex.outcome, error=ex.error)
            return
        answer = ex.doc
        await asyncio.to_thread(self.keeper.drop_reports, int(answer.get("reports_taken", 0)))
        await asyncio.to_thread(self.book.drop_results, int(answer.get("results_taken", 0)))
        confirmed = await asyncio.to_thread(self.keeper.confirm, self.running_version)
        if confirmed is not None:
            log.info("config.confirmed", version=confirmed["version"])
        if self._reboot_after_sync and int(answer.get("results_taken", 0)) >= len(results):
            self._reboot_after_sync = False
            await self._reboot()
        home_now = answer.get("now")
        self.home_now = float(home_now) if isinstance(home_now, int | float) else None
        public = public_from_text(claim.msp_key)
        if answer.get("config") is not None:
            await self._take_config(answer["config"], public)
        if answer.get("acks") is not None:  # alerts acknowledged at home (who, when)
            await take_acks(self.ctx, answer["acks"], public, self.identity.appliance_id)
        commands = answer.get("commands") or []
        if isinstance(commands, list) and commands:
            done: list[tuple[str, str]] = []
            ran = await run_commands(
                commands,
                outcomes=done,
                public=public,
                appliance_id=self.identity.appliance_id,
                now=self._now(),
                book=self.book,
                handlers=self.handlers(),
            )
            self._again = True
            if ran:
                log.info("provisioning.commands_ran", ids=",".join(ran))
            await self._note_all(
                [
                    Event("command.done", None, Severity.INFO,
                          COMMAND_WORDS.get(action, "remote work on the appliance"),
                          {"action": action})
                    for action, outcome in done
                    if outcome == "done"
                ]
            )  # fmt: skip

    def _now(self) -> float:
        """Commands expire by the box's clock once it is synchronised, else by home's."""
        stamp = self.ctx.clock.now()
        if stamp.synced or self.home_now is None:
            return stamp.wall
        return self.home_now

    async def _take_config(self, envelope: Any, public: Any) -> None:
        assert self.identity is not None
        base = await asyncio.to_thread(_base_table, self.ctx)
        report, changed = await asyncio.to_thread(
            self.keeper.offer, envelope, public, self.identity.appliance_id, base
        )
        if report["outcome"] == "refused":
            log.warning("config.refused", version=report["version"], reason=report["reason"])
        else:
            log.info("config.applied", version=report["version"], changed=",".join(changed))
            # Stored before a restart that applies it: the box's report lists it.
            await self._note_all(
                [
                    Event("config.applied", None, Severity.INFO,
                          f"configuration version {report['version']} applied",
                          {"version": report["version"], "changed": changed})
                ]
            )  # fmt: skip
            self._applied(changed)
        self._again = True  # the report goes home now

    async def _note_all(self, events: list[Event]) -> None:
        """Keep what the MSP did as events in the store (and so in the box's report and its
        outbox), in one write; a full or closed store is logged, never fatal to provisioning."""
        if not events:
            return

        def write(tx: Tx) -> None:
            for event in events:
                insert_event(tx, event)

        try:
            await self.ctx.store.write(write)
        except StoreError as exc:
            kinds = ",".join(sorted({e.kind for e in events}))
            log.warning("provisioning.event_not_stored", kinds=kinds, error=str(exc))

    def _applied(self, changed: list[str]) -> None:
        if changed:
            log.info("config.restart", sections=",".join(changed))
            self._restarting = True
            self.restart()
        else:  # nothing that runs changes: this process runs the new version as it is
            self.running_version = self.keeper.applied_version()
            self.ctx.status.publish(StatusKey.CONFIG_VERSION, self.running_version)

    # ---- commands ----

    def handlers(self) -> dict[str, Handler]:
        return {
            "identify": self._identify,
            "rediscover": self._rediscover,
            "poll": self._poll,
            "diagnostics": self._diagnostics,
            "reboot": self._reboot_command,
            "update": self._update,
        }

    async def _identify(self, command: Command) -> str:
        from core.messages import IdentifyRequested

        seconds = float(command.args.get("duration_s", self.ctx.config.hardware.identify_s))
        self.ctx.bus.publish(IdentifyRequested(seconds, f"msp:{command.id}"))
        return f"identify blink for {seconds:g} s"

    async def _rediscover(self, command: Command) -> str:
        from core.messages import RediscoverRequested

        self.ctx.bus.publish(RediscoverRequested(f"msp:{command.id}", self.ctx.clock.wall()))
        return "discovery sweep requested"

    async def _poll(self, command: Command) -> str:
        ip = str(command.args.get("ip", ""))
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"{ip!r} is not an IP address") from None
        # Real time on purpose: it reports how long the ping took.
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            "ping",
            "-n",
            "-c",
            "1",
            "-W",
            str(PING_TIMEOUT_S),
            ip,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        code = await proc.wait()
        if code != 0:
            raise RuntimeError(f"{ip} did not answer a ping within {PING_TIMEOUT_S} s")
        return f"{ip} answered a ping in {(time.monotonic() - started) * 1000:.0f} ms"

    async def _diagnostics(self, command: Command) -> str:
        bundle = await collect_diagnostics(self.ctx)
        bundle["command_id"] = command.id
        size = len(json.dumps(bundle, default=str))
        ex = await self.client.post(DIAGNOSTICS_PATH, json.loads(json.dumps(bundle, default=str)))
        if ex.outcome != "ok":
            raise RuntimeError(f"upload failed: {ex.outcome} {ex.error}")
        return f"diagnostics uploaded ({size} bytes)"

    async def _reboot_command(self, command: Command) -> str:
        if not self.settings.reboot_command:
            raise RuntimeError("reboot is disabled on this box (provisioning.reboot_command)")
        self._reboot_after_sync = True  # after home has this result
        return "rebooting"

    async def _reboot(self) -> None:
        log.warning("provisioning.reboot")
        proc = await asyncio.create_subprocess_exec(*self.settings.reboot_command)
        await proc.wait()

    async def _update(self, command: Command) -> str:
        url, version = command.args.get("url"), command.args.get("version")
        if not isinstance(url, str) or not url:
            raise ValueError("update needs args.url (the bundle's URL)")
        box = Path(self.ctx.config.updates.mailbox_dir)
        await asyncio.to_thread(
            mailbox.write_request,
            box,
            url,
            str(version) if version else None,
            command.id,
            clock=self.ctx.clock,
        )
        return f"update to {version or url} requested from the updater"


def _base_table(ctx: AppContext) -> dict[str, Any]:
    """The local configuration file as a table (what the signed sections are laid over)."""
    return read_table(ctx.config.provisioning.config_file)


async def collect_diagnostics(ctx: AppContext) -> dict[str, Any]:
    """Logs, configuration without secrets, store statistics, status and update journal."""

    def store_stats(conn: Any) -> dict[str, Any]:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        counts = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        return {"rows": counts, "bytes": page_size * pages}

    logs: list[str] = []
    with contextlib.suppress(OSError):
        proc = await asyncio.create_subprocess_exec(
            "journalctl",
            "-u",
            "outpost.service",
            "-n",
            str(LOG_LINES),
            "--no-pager",
            "-o",
            "short-iso",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await proc.communicate()
        logs = out.decode("utf-8", "replace").splitlines()[-LOG_LINES:]
    journal = await asyncio.to_thread(read_update_journal, ctx.config.updates.root)
    config = to_public_dict(ctx.config)
    # Not a secret in the schema's sense, but a password hash has no business leaving the box.
    config.get("web", {}).pop("admin_password_hash", None)
    return {
        "version": ctx.version,
        "collected_at": ctx.clock.wall(),
        "config": config,
        "status": ctx.status.snapshot(),
        "store": await ctx.store.read(store_stats),
        "update": dict(journal.document) if journal.document else None,
        "logs": logs,
    }


def make_provisioning(ctx: AppContext, home: HomeClient | None) -> ProvisioningService | None:
    """Provisioning over the root's shared client to home; None when no home is configured."""
    if home is None or not ctx.config.uplink.url:
        return None  # no home to be claimed by
    return ProvisioningService(ctx, home)
