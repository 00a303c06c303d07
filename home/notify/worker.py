"""The notification worker: claims due outbox rows, sends them, records the outcome.

One worker per home process (the outbox has one writer: home's database thread). ``step()`` does
one round at the injected clock's time: check for silent sites, claim what is due, send every
message concurrently, record each result. ``run()`` repeats it, sleeping until the next row is
due, a new alert wakes it, or ``TICK_S`` passes (the silent-site check). Tests drive ``step()``
on virtual time.

Settings edited in the console (home/notify/stored.py) reach every instance without a restart:
each one, lease holder or not (the planner runs in every instance's ingest), looks for a newer
saved version every ``SETTINGS_POLL_S`` and applies it. A version this instance cannot parse (a
secret file missing on this machine) is logged once and the settings in force are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from core.logs import get_log
from home.db import HomeDB
from home.leader import Lease
from home.notify import ack, outbox, stored
from home.notify.channels import SendError, send
from home.notify.config import NotifyConfig, NotifyConfigError
from home.notify.messages import render
from home.notify.planner import Planner
from home.notify.web import add_routes
from home.sql import Connection

T = TypeVar("T")

log = get_log("home.notify")

LEASE_NAME = "notify"  # the worker's lease on a shared PostgreSQL database
TICK_S = 1.0  # the silent-site check runs at least this often
SEND_BUDGET_S = 120.0  # one send may not take longer than this, whatever the channel's timeout
STOP_GRACE_S = 5.0  # a clean stop waits this long for sends under way (home's stop budget: 10 s)
SETTINGS_POLL_S = 2.0  # a version saved in the console is in force everywhere within this


class Notifier:
    """Home's notifications: the planner hooked into ingest, the worker and the ack route."""

    def __init__(
        self,
        config: NotifyConfig,
        secret: bytes,
        clock: Callable[[], float],
        source: stored.Source | None = None,
    ) -> None:
        """``source``: the file's [notify] table and folder (None: the table is unknown; saved
        versions still apply, relative file names taken from the working directory)."""
        self.config = config
        self.source = source or stored.Source(None, Path.cwd())
        self.version = 0  # the settings version in force: 0 = the file's, N = saved in console
        self._refused = 0  # the newest version this instance could not parse (logged once)
        self.secret = secret
        self.clock = clock
        self.planner = Planner(config, clock)
        self.db: HomeDB | None = None
        self._wake = asyncio.Event()
        self._stopping = False  # set at a clean stop: finish what is under way, claim nothing
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0  # messages delivered by this process (for the bench)
        # Outcomes waiting for the recorder: sends that finish while a commit is under way go
        # into the next commit together (group commit), each as soon as possible.
        self._outcomes: list[tuple[outbox.Outgoing, outbox.Result, asyncio.Future[str]]] = []
        self._recorder: asyncio.Task[None] | None = None

    @classmethod
    def from_data_dir(
        cls,
        config: NotifyConfig,
        data_dir: Path,
        clock: Callable[[], float] = time.time,
        source: stored.Source | None = None,
    ) -> Notifier:
        return cls(config, ack.load_or_create_secret(data_dir), clock, source)

    # ---- wiring ----

    def attach(self, db: HomeDB) -> None:
        """Hook the planner into ``db``'s ingest transaction."""
        self.db = db
        db.alert_hooks.append(self.planner.on_alert)
        self.planner.wake = self._wake_threadsafe

    def install(self, app: web.Application, db: HomeDB) -> None:
        """Everything home's server needs: the ingest hook, the worker (runs while the app
        runs) and the acknowledgement routes."""
        self.attach(db)
        app.cleanup_ctx.append(self.cleanup_ctx)
        add_routes(app, self)

    def _wake_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def cleanup_ctx(self, _app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: the worker runs while the app does. At a stop it claims
        nothing more and lets the sends under way finish and be recorded (within
        STOP_GRACE_S), so a clean stop leaves no send to repeat after the restart. Settings
        saved in the console are applied before the first alert and then watched."""
        try:
            await self.reload_settings()
        except Exception as exc:  # noqa: BLE001 - start on the file's; the watcher tries again
            log.warning("notify.settings_poll_failed", error=f"{type(exc).__name__}: {exc}")
        watch = asyncio.create_task(self._watch_settings(), name="home-notify-settings")
        task = asyncio.create_task(self.run(), name="home-notify")
        yield
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_GRACE_S)
        except TimeoutError:
            log.warning("notify.stop_timeout", grace_s=STOP_GRACE_S)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def ack_url(self, ref: str, channel: str) -> str:
        if not self.config.public_url:
            return ""
        token = ack.mint(self.secret, ref, channel, self.clock() + self.config.ack_valid_s)
        return f"{self.config.public_url}{ack.ACK_PATH}?t={token}"

    # ---- settings saved in the console ----

    def apply(self, config: NotifyConfig, version: int) -> None:
        """Put ``config`` (settings ``version``) in force: the next alert, round and send use it."""
        self.config = config
        self.planner.config = config
        self.version = version
        self._wake_threadsafe()

    async def reload_settings(self) -> bool:
        """Apply the newest saved version if it is newer than the one in force; True if applied.
        A version that does not parse here is logged (once) and skipped."""
        newest = await self._on_db(stored.newest_version)
        if newest <= self.version or newest == self._refused:
            return False
        found = await self._on_db(stored.newest)
        if found is None or found.version <= self.version:
            return False
        try:
            config = stored.check(stored.read_document(found.toml), self.source)
        except NotifyConfigError as exc:
            self._refused = found.version
            log.error("notify.settings_refused", version=found.version, error=str(exc))
            return False
        self.apply(config, found.version)
        log.info("notify.settings_applied", version=found.version, by=found.saved_by)
        return True

    async def _watch_settings(self) -> None:
        while True:
            await asyncio.sleep(SETTINGS_POLL_S)
            try:
                await self.reload_settings()
            except Exception as exc:  # noqa: BLE001 - a database hiccup: look again next time
                log.warning("notify.settings_poll_failed", error=f"{type(exc).__name__}: {exc}")

    # ---- the worker ----

    def database(self) -> HomeDB:
        if self.db is None:
            raise RuntimeError("Notifier.attach(db) was not called")
        return self.db

    async def _on_db(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` on a database thread, with that thread's connection."""
        db = self.database()
        result: T = await db.call(lambda: fn(db.conn, *args))
        return result

    async def start(self) -> None:
        """Before the first step: take back what a killed process left ``sending``."""
        self._loop = asyncio.get_running_loop()
        resumed = await self._on_db(outbox.recover)
        if resumed:
            log.warning("notify.resumed", messages=resumed)

    async def run(self) -> None:
        """The worker, until cancelled. On PostgreSQL (several home instances on one database)
        only the instance holding the ``notify`` lease (home/leader.py) runs it; on SQLite
        there is one home process, and waiting out a killed predecessor's lease would only
        delay its notifications."""
        self._loop = asyncio.get_running_loop()
        db = self.database()
        if db.dialect == "postgresql":
            await Lease(db, LEASE_NAME, self.clock).run(self._work)
        else:
            await self._work()

    async def _work(self) -> None:
        await self.start()
        while not self._stopping:
            try:
                await self.step()
            except Exception as exc:  # noqa: BLE001 - a bad row must not stop every other notification
                log.error("notify.step_failed", error=f"{type(exc).__name__}: {exc}")
            due = await self._on_db(outbox.next_due)
            wait_s = TICK_S if due is None else min(TICK_S, max(0.0, due - self.clock()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)

    def _check_sites(self, conn: Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            self.planner.check_sites(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _release_silenced(self, conn: Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            self.planner.release_silenced(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def step(self) -> int:
        """One round at the clock's current time; returns how many messages were attempted."""
        if self.config.offline_after_s > 0 or self.config.backlog_warn_s > 0:
            await self._on_db(self._check_sites)
        await self._on_db(self._release_silenced)  # maintenance windows that ended
        batch = await self._on_db(outbox.claim, self.clock())
        if batch:
            await asyncio.gather(*(self._deliver(out) for out in batch))
        return len(batch)

    async def _deliver(self, out: outbox.Outgoing) -> None:
        channel = self.config.channels.get(out.channel)
        started = time.perf_counter()  # a duration, not a time of day: the real one
        error = ""
        if channel is None:
            error = f"channel {out.channel} is no longer configured"
        else:
            rendered = render(out, self.ack_url, self.clock())
            try:
                await asyncio.wait_for(
                    send(channel, rendered, out.message_id, out.in_reply_to), SEND_BUDGET_S
                )
            except SendError as exc:
                error = str(exc)
            except TimeoutError:
                error = f"no answer within {SEND_BUDGET_S:.0f} s"
        latency_ms = (time.perf_counter() - started) * 1000.0
        result = outbox.Result(not error, error, latency_ms)
        state = await self._record(out, result)
        if result.ok:
            self.sent += 1
            log.info(
                "notify.sent",
                channel=out.channel,
                message=out.message_id,
                alerts=len(out.items),
                latency_ms=round(latency_ms, 1),
            )
        else:
            log.warning(
                "notify.failed" if state == "failed" else "notify.retry",
                channel=out.channel,
                message=out.message_id,
                attempt=out.attempt,
                error=error,
            )
        self._wake.set()  # a failure may have raised a fallback notification

    async def _record(self, out: outbox.Outgoing, result: outbox.Result) -> str:
        """The outcome of one send, committed (with whatever else finished meanwhile)."""
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._outcomes.append((out, result, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_pending())
        return await done

    async def _record_pending(self) -> None:
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            try:
                states = await self._on_db(
                    outbox.record_many,
                    self.planner,
                    [(out, result) for out, result, _ in batch],
                    self.clock(),
                )
            except Exception as exc:  # noqa: BLE001 - handed to every waiter of the batch
                for *_, done in batch:
                    done.set_exception(exc)
            else:
                for (*_, done), state in zip(batch, states, strict=True):
                    done.set_result(state)

    # ---- acknowledgement (home/server.py routes these) ----

    def acknowledge_sync(self, ref: str, by: str) -> bool:
        """Acknowledge ``ref`` in its own transaction (call on a database thread)."""
        conn = self.database().conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = self.planner.acknowledge(conn, ref, by)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return done
