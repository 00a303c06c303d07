"""The uplink service: drain the outbox to home, in order, exactly once; heartbeat every minute.

Sending loop: read the next batch above the ack pointers (priority lane first), post it signed
and compressed, and only when home's answer names what it committed, advance the pointers and
delete those rows in one transaction. Everything else (no network, 5xx, timeouts, garbage,
a reset after home committed) leaves the pointers where they were, and the same records go again
after a capped, fully jittered exponential back-off; home recognises the ones it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from core.logs import get_log
from core.status import StatusKey
from core.wire.keys import IdentityError
from core.wire.protocol import HEARTBEAT_PATH, INGEST_PATH, PROTOCOL_VERSION
from services.context import AppContext
from services.store import StoreError, Tx
from services.uplink import devices, outbox
from services.uplink.client import Exchange, HomeClient, UplinkConfigError, sleep_or_wake

log = get_log("uplink")

IDLE_CHECK_S = 5.0  # even without a wake-up, look at the outbox this often
BACKLOG_COUNT_S = 2.0  # how often uplink.backlog is recounted (real seconds: the page's lag)
#: Consecutive answers from home that are not acknowledgements (5xx, garbage) before
#: "buffering" becomes "failing". A link that is down (no answer at all) never does.
FAILING_AFTER = 5
#: Outcomes of a box that cannot reach home (connection refused, timeout, DNS, no route, a
#: reset) or that home asked to wait: an outage ridden out, records kept ("buffering", amber).
OFFLINE_OUTCOMES = frozenset({"network", "busy"})
#: Outcomes that need a technician although home can be reached: refused (401/403: key not
#: registered, revoked, clock outside home's window) and TLS (a certificate not from the
#: pinned CA): "failing", red, at once.
TECHNICIAN_OUTCOMES = frozenset({"refused", "tls"})


class OutboxForwarder:
    """The store's ``forward`` callback; also wakes the sender when a record is queued.

    It runs in the store's writer thread, inside the caller's transaction; the wake-up may come
    before the commit (or for a rolled-back write): the sender then just finds less to send.
    Waking the event loop costs a system call and a trip through the GIL, so bulk records wake
    the sender once until it has looked at the outbox again (``rearm``); a priority record
    always wakes it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake: Callable[[], None] | None = None
        self._armed = True

    def attach(self, wake: Callable[[], None]) -> None:
        with self._lock:
            self._wake = wake
            self._armed = True

    def rearm(self) -> None:
        """The sender is about to read the outbox: the next bulk record wakes it again."""
        self._armed = True

    def __call__(self, tx: Tx, kind: str, body: dict[str, Any], lane: int) -> None:
        outbox.forward(tx, kind, body, lane)
        if not self._armed and lane != outbox.LANE_PRIORITY:
            return
        self._armed = False
        with self._lock:
            wake = self._wake
        if wake is not None:
            wake()


def full_jitter(failures: int, first_s: float, cap_s: float, rng: random.Random) -> float:
    """Capped exponential back-off with full jitter (uniform between 0 and the cap)."""
    return rng.uniform(0.0, min(cap_s, first_s * 2.0 ** max(0, failures - 1)))


class UplinkService:
    name = "uplink"

    def __init__(self, ctx: AppContext, forwarder: OutboxForwarder, home: HomeClient) -> None:
        self.ctx = ctx
        self.settings = ctx.config.uplink
        self.forwarder = forwarder
        # Shared with provisioning and owned by the composition root, which closes it.
        self.client = home
        self.stream = ""
        self.failures = 0
        self.batch_limit = self.settings.batch_max_records
        self._wake = asyncio.Event()
        self._rng = random.Random()
        self._expander = outbox.Expander()
        self.sent_batches = 0

    async def setup(self) -> None:
        try:
            identity = await self.client.open()
        except (UplinkConfigError, IdentityError, OSError) as exc:
            # Records keep being stored; the supervisor retries setup with back-off.
            self.ctx.status.publish(StatusKey.UPLINK_STATE, "failing")
            log.error("uplink.config_error", error=str(exc))
            raise
        self.stream = await self.ctx.store.read(outbox.read_stream)
        loop = asyncio.get_running_loop()

        def wake() -> None:
            # Runs in the store's writer thread: a closing loop must not fail the write.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake.set)

        self.forwarder.attach(wake)
        self.ctx.status.publish(StatusKey.UPLINK_STATE, "buffering")
        log.info("uplink.ready", appliance=identity.appliance_id, home=self.settings.url)

    async def teardown(self) -> None:
        self.forwarder.attach(lambda: None)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._send_loop())
            group.create_task(self._heartbeat_loop())
            group.create_task(self._backlog_loop())
            group.create_task(self._device_changes_loop())

    # ---- sending ----

    async def _send_loop(self) -> None:
        bulk_since: float | None = None
        while True:
            self.forwarder.rearm()
            # The decision below only looks as far as one batch; the status figure (a count of
            # the whole queue, a scan) is _backlog_loop's, every BACKLOG_COUNT_S.
            limit = self.settings.batch_max_records
            priority, bulk = await self.ctx.store.read(partial(outbox.read_due, bulk_limit=limit))
            if not priority and bulk == 0:
                bulk_since = None
                self.ctx.status.publish(StatusKey.UPLINK_BACKLOG, 0)
                if self.failures == 0:
                    self.ctx.status.publish(StatusKey.UPLINK_STATE, "connected")
                await sleep_or_wake(self._wake, IDLE_CHECK_S)
                continue
            # Bulk waits to fill a batch (count or age); anything in the priority lane goes now.
            if not priority:
                now = self.ctx.clock.monotonic()
                bulk_since = bulk_since if bulk_since is not None else now
                due = bulk_since + self.settings.batch_max_age_s
                if bulk < limit and now < due:
                    await sleep_or_wake(self._wake, due - now)
                    continue
            pause = await self.send_once()
            if pause is None:
                bulk_since = None
            else:
                await asyncio.sleep(pause)

    async def send_once(self) -> float | None:
        """Send one batch; None when it was acknowledged, else seconds to wait before retrying."""
        limit = self.batch_limit

        def build(conn: Any) -> tuple[list[outbox.OutboxRow], list[dict[str, Any]], dict[str, Any]]:
            rows = outbox.read_pending(conn, limit, self.settings.batch_max_bytes)
            return rows, self._expander.records(conn, rows), outbox.read_drops(conn)

        rows, records, drops = await self.ctx.store.read(build)
        if not rows:
            return None
        doc = {
            "v": PROTOCOL_VERSION,
            "appliance": self.client.identity.appliance_id,
            "stream": self.stream,
            "records": records,
            "drops": drops,
        }
        exchange = await self.client.post(INGEST_PATH, doc)
        return await self._settle(rows, exchange)

    async def _settle(self, rows: list[outbox.OutboxRow], ex: Exchange) -> float | None:
        sent: dict[int, int] = {}
        for row in rows:
            sent[row.lane] = max(sent.get(row.lane, 0), row.seq)
        if ex.outcome == "ok" and ex.answer is not None:
            if ex.answer.stream and ex.answer.stream != self.stream:
                return self._failed(ex, "home acknowledged another stream")
            try:
                acked = ex.answer.acked
                await self.ctx.store.write(lambda tx: outbox.apply_ack(tx, acked, sent))
            except StoreError as exc:
                # Home has the records; they go again and home skips them as duplicates.
                log.warning("uplink.ack_not_stored", error=str(exc))
                return self._backoff()
            self.failures = 0
            self.sent_batches += 1
            if (ex.doc or {}).get("inventory") == "snapshot":
                await self._inventory_snapshot()
            self.batch_limit = min(self.settings.batch_max_records, self.batch_limit * 2)
            self.ctx.status.publish(StatusKey.UPLINK_STATE, "connected")
            if ex.answer.slow_down_s > 0:
                log.info("uplink.slow_down", seconds=ex.answer.slow_down_s)
                return ex.answer.slow_down_s
            return None
        if ex.outcome == "busy":
            self._failed(ex, "home is busy")
            return max(ex.retry_after_s or 0.0, self._backoff())
        if ex.outcome == "rejected":
            return await self._rejected(rows, ex)
        return self._failed(ex, ex.error)

    async def _rejected(self, rows: list[outbox.OutboxRow], ex: Exchange) -> float | None:
        """Home refused the batch (4xx): quarantine the record it names, or narrow down to it."""
        doc = ex.doc or {}
        bad = doc.get("bad_seq")
        seqs = {row.seq for row in rows}
        target: int | None = None
        if type(bad) is int and bad in seqs:
            target = bad
        elif len(rows) == 1:
            target = rows[0].seq
        if target is None:
            # Which record is bad is not said: halve the batch until it is alone.
            self.batch_limit = max(1, len(rows) // 2)
            log.warning(
                "uplink.batch_rejected",
                status=ex.status,
                records=len(rows),
                next_batch=self.batch_limit,
                error=ex.error,
            )
            return 0.0
        reason = str(doc.get("reason") or doc.get("error") or ex.error)
        seq = target
        await self.ctx.store.write(
            lambda tx: outbox.quarantine(tx, seq, f"HTTP {ex.status}: {reason}")
        )
        log.error("uplink.record_quarantined", seq=seq, status=ex.status, reason=reason)
        return 0.0

    def _backoff(self) -> float:
        return full_jitter(
            self.failures, self.settings.backoff_first_s, self.settings.backoff_cap_s, self._rng
        )

    def _failed(self, ex: Exchange, why: str) -> float:
        self.failures += 1
        state = uplink_state_after(ex.outcome, self.failures)
        self.ctx.status.publish(StatusKey.UPLINK_STATE, state)
        log.warning(
            "uplink.send_failed",
            outcome=ex.outcome,
            status=ex.status,
            error=why,
            failures=self.failures,
        )
        return self._backoff()

    # ---- device inventory (services/uplink/devices.py) ----

    async def _inventory_snapshot(self) -> None:
        """Home asked for the whole inventory: queue one snapshot unless one is on its way."""
        kinds = self.ctx.config.alerting.down_alert_kinds

        def snapshot(tx: Tx) -> str:
            if devices.snapshot_pending(tx.conn):
                return ""
            return devices.forward_snapshot(tx, kinds)

        try:
            made = await self.ctx.store.write(snapshot)
        except StoreError as exc:
            # Home asks again in its next answer.
            log.warning("uplink.inventory_snapshot_failed", error=str(exc))
            return
        if made:
            log.info("uplink.inventory_snapshot", snapshot=made)

    async def _device_changes_loop(self) -> None:
        """Forward device changes that no writer forwarded itself (discovery and polling
        do, in their own transactions; anything else is caught here), and a snapshot an
        upgrade marked due."""
        kinds = self.ctx.config.alerting.down_alert_kinds

        def check(tx: Tx) -> str:
            # Changes first (a snapshot would record them as a state, not as changes), then
            # a snapshot an upgrade marked due (devices.forward_due_snapshot).
            devices.forward_changes(tx, kinds)
            return devices.forward_due_snapshot(tx, kinds)

        while True:
            try:
                made = await self.ctx.store.write(check)
            except StoreError as exc:
                log.warning("uplink.device_changes_failed", error=str(exc))
            else:
                if made:
                    log.info("uplink.inventory_snapshot", snapshot=made, why="due after upgrade")
            await asyncio.sleep(devices.CHANGES_CHECK_S)

    async def _backlog_loop(self) -> None:
        """Publish ``uplink.backlog`` (unacknowledged rows) every ``BACKLOG_COUNT_S``, on its
        own: the sender may wait a long back-off or a request timeout during an outage, and
        the page must follow the outbox meanwhile (within 2 s)."""
        while True:
            try:
                backlog = await self.ctx.store.read(outbox.read_backlog)
            except StoreError as exc:
                log.warning("uplink.backlog_unreadable", error=str(exc))
            else:
                self.ctx.status.publish(StatusKey.UPLINK_BACKLOG, sum(backlog.pending.values()))
            await asyncio.sleep(BACKLOG_COUNT_S)

    # ---- heartbeat ----

    async def heartbeat_doc(self) -> dict[str, Any]:
        def read(conn: Any) -> tuple[outbox.Backlog, dict[str, Any]]:
            return outbox.read_backlog(conn), outbox.read_drops(conn)

        backlog, drops = await self.ctx.store.read(read)
        stamp = self.ctx.clock.now()
        oldest = None if backlog.oldest_ts is None else max(0.0, stamp.wall - backlog.oldest_ts)
        return {
            "v": PROTOCOL_VERSION,
            "appliance": self.client.identity.appliance_id,
            "stream": self.stream,
            "version": self.ctx.version,
            "site": self.ctx.config.site.name,
            "uptime_s": round(self.ctx.uptime_s(), 1),
            "boot_id": stamp.boot_id,
            "clock_synced": stamp.synced,
            "queue": {str(k): v for k, v in backlog.pending.items()},
            "acked": {str(k): v for k, v in backlog.acked.items()},
            "oldest_unsent_age_s": None if oldest is None else round(oldest, 1),
            "drops": drops,
            "state": self.ctx.status.snapshot().get(StatusKey.UPLINK_STATE),
        }

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                exchange = await self.client.post(HEARTBEAT_PATH, await self.heartbeat_doc())
            except StoreError as exc:
                log.warning("uplink.heartbeat_skipped", error=str(exc))
            else:
                state = self.ctx.status.snapshot().get(StatusKey.UPLINK_STATE)
                if exchange.outcome == "ok":
                    if self.failures == 0:
                        self.ctx.status.publish(StatusKey.UPLINK_STATE, "connected")
                else:
                    log.info(
                        "uplink.heartbeat_failed", outcome=exchange.outcome, error=exchange.error
                    )
                    if exchange.outcome in TECHNICIAN_OUTCOMES:
                        self.ctx.status.publish(StatusKey.UPLINK_STATE, "failing")
                    elif state == "connected":
                        self.ctx.status.publish(StatusKey.UPLINK_STATE, "buffering")
            await asyncio.sleep(self.settings.heartbeat_s)


def uplink_state_after(outcome: str, failures: int) -> str:
    """``uplink.state`` after a failed exchange, the ``failures``-th in a row.

    "failing" (red: a technician must act) for refusals and TLS failures at once, and for a
    home that answers but never acknowledges (5xx, garbage) after ``FAILING_AFTER`` tries;
    "buffering" (amber: offline, keeping data) for an outage however long it lasts."""
    if outcome in TECHNICIAN_OUTCOMES:
        return "failing"
    if outcome in OFFLINE_OUTCOMES:
        return "buffering"
    return "failing" if failures >= FAILING_AFTER else "buffering"


def make_forwarder(ctx_config_url: str) -> OutboxForwarder | None:
    """The store's forwarder when an uplink is configured, else None (records stay local)."""
    return OutboxForwarder() if ctx_config_url else None


def uplink_factory(ctx: AppContext, home: HomeClient | None) -> UplinkService | None:
    """The uplink when one is configured (``home`` is the root's shared client), else None."""
    forwarder = ctx.store.forward
    if home is None or not ctx.config.uplink.url or not isinstance(forwarder, OutboxForwarder):
        ctx.status.publish(StatusKey.UPLINK_STATE, "unconfigured")
        return None
    return UplinkService(ctx, forwarder, home)
