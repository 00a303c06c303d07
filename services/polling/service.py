"""The polling service: schedules every device's poll, stores the results, tells alerting.

Scheduling: each device has its own due time. Polls start when due, at most ``concurrency``
at a time, each bounded by its own timeouts, so a slow or dead device holds one slot for at
most its budget and never delays the others. Intervals carry jitter so a site's devices do
not all get polled in the same second. A device that missed a poll is re-checked sooner
(to confirm "down" quickly); one that keeps missing is polled less and less often, up to
``backoff_max_s``, so a site with dead devices does not spend its slots on timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from functools import partial
from typing import Any

from core.logs import get_log
from core.messages import HostHeard
from core.status import StatusKey
from services.context import AppContext
from services.polling.arp_probe import ArpProber
from services.polling.gateway import GatewayRole
from services.polling.icmp import IcmpUnavailable, Pinger
from services.polling.inventory import PollTarget, load_targets, upsert_configured
from services.polling.liveness import Liveness, ordered
from services.polling.poller import DevicePoller, DeviceState
from services.polling.profiles import BOOLEAN_METRICS
from services.polling.results import PollResult
from services.snmp import SnmpClient, SnmpCredential
from services.store.db import Tx
from services.store.records import Measurement, insert_measurements
from services.uplink.devices import forward_changes

log = get_log("polling")

INVENTORY_REFRESH_S = 15.0  # how often new devices from discovery are picked up
TICK_S = 0.25  # scheduler resolution
CONFIRM_FRACTION = 1 / 3  # after a miss, re-check after this fraction of the interval
BACKOFF_AFTER_MISSES = 6  # consecutive misses before polls of a device thin out
MIN_CONFIRM_S = 1.0


def next_delay(interval_s: float, jitter_frac: float, missed: int, backoff_max_s: float) -> float:
    """Seconds until a device's next poll, given how many polls in a row it missed."""
    jitter = 1 + random.uniform(-jitter_frac, jitter_frac)
    if missed == 0:
        return interval_s * jitter
    if missed < BACKOFF_AFTER_MISSES:
        return max(MIN_CONFIRM_S, interval_s * CONFIRM_FRACTION) * jitter
    grown = interval_s * 2.0 ** (missed - BACKOFF_AFTER_MISSES)
    return min(backoff_max_s, grown) * jitter


class PollingService:
    name = "polling"

    def __init__(self, ctx: AppContext, snmp: SnmpClient | None = None) -> None:
        """``snmp``: the process's one SNMP client (firmware/app.py builds it, shared with
        discovery, and closes it); without one, polling makes and closes its own."""
        self.ctx = ctx
        self.settings = ctx.config.polling
        self.pinger: Pinger | None = None
        self.arp: ArpProber | None = None
        # Passive liveness evidence from discovery (HostHeard): ip -> method -> wall time.
        self.heard: dict[str, dict[str, float]] = {}
        self._heard_sub = ctx.bus.subscribe(HostHeard)
        self._noted: set[str] = set()  # status keys of problems already published
        self.shared_client = snmp
        self.client: SnmpClient | None = None
        self.poller: DevicePoller | None = None
        self.states: dict[int, DeviceState] = {}
        self.targets: dict[int, PollTarget] = {}
        self._running: dict[int, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self.cycles = 0
        self.gateway_role = GatewayRole(ctx.config.alerting.gateway_ip)

    @property
    def gateway_ip(self) -> str:
        """The site's gateway now: configured, else the default route's next hop."""
        return self.gateway_role.ip

    @gateway_ip.setter
    def gateway_ip(self, ip: str) -> None:
        """Fix the gateway to ``ip`` ("" for none), whatever the route says."""
        self.gateway_role = GatewayRole(ip, follow_route=False)

    def _snmp_settings(self) -> Any:
        return getattr(self.ctx.config, "snmp", None)

    async def setup(self) -> None:
        snmp_settings = self._snmp_settings()
        credentials: dict[str, SnmpCredential] = {}
        if snmp_settings is not None:
            credentials = {c.name: c for c in snmp_settings.credentials}
        else:
            default = SnmpCredential()
            credentials = {default.name: default}
        if self.settings.snmp and self.shared_client is not None:
            self.client = self.shared_client
        elif self.settings.snmp:
            self.client = SnmpClient(snmp_settings)
            await self.client.start()
        if self.settings.icmp:
            self.pinger = Pinger()
            try:
                self.pinger.open()
            except IcmpUnavailable as exc:
                log.error("icmp.unavailable", problem=str(exc))
                self.ctx.status.publish(StatusKey.POLLING_ICMP, str(exc))
                self._noted.add(StatusKey.POLLING_ICMP)
                self.pinger = None
        if self.settings.arp:
            self.arp = ArpProber()
        self.poller = DevicePoller(
            self.settings, self.pinger, self.client, credentials, arp=self.arp, clock=self.ctx.clock
        )
        if self.settings.devices:
            devices = self.settings.devices
            kinds = self.ctx.config.alerting.down_alert_kinds

            def configure(tx: Tx) -> None:
                upsert_configured(tx, devices)
                forward_changes(tx, kinds)  # the technician's devices to home, same commit

            await self.ctx.store.write(configure)

    async def teardown(self) -> None:
        for task in self._running.values():
            task.cancel()
        for task in list(self._running.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._running.clear()
        if self.pinger is not None:
            self.pinger.close()
        if self.arp is not None:
            self.arp.close()
            self.arp = None
        if self.client is not None and self.client is not self.shared_client:
            await self.client.close()
        self.client = None

    async def _refresh_inventory(self) -> None:
        settings = self.settings
        targets = await self.ctx.store.read(lambda conn: load_targets(conn, settings))
        remembered: dict[int, Liveness] = {}
        if any(t.device_id not in self.states for t in targets):
            remembered = await self.ctx.store.read(load_liveness)
        now = self.ctx.clock.monotonic()
        fresh = {t.device_id: t for t in targets}
        for device_id in set(self.states) - set(fresh):
            del self.states[device_id]
        assert self.poller is not None
        for device_id, target in fresh.items():
            old = self.states.get(device_id)
            state = self.poller.state_for(target, old)
            if old is None:
                if device_id in remembered:
                    state.liveness = remembered[device_id]  # what worked before a restart
                # Spread the first polls over a fraction of the interval.
                spread = settings.interval_s * settings.jitter_frac
                state.next_due = now + random.uniform(0, spread)
            elif state is not old:
                state.next_due, state.missed = old.next_due, old.missed
            self.states[device_id] = state
        self.targets = fresh
        # Passive evidence is kept for polled addresses only (memory stays bounded).
        polled = {t.ip for t in targets}
        self.heard = {ip: m for ip, m in self.heard.items() if ip in polled}

    async def run(self) -> None:
        next_inventory = 0.0
        while True:
            now = self.ctx.clock.monotonic()
            if now >= next_inventory:
                await self._refresh_inventory()
                next_inventory = now + INVENTORY_REFRESH_S
            for device_id, state in self.states.items():
                if state.next_due <= now and device_id not in self._running:
                    target = self.targets[device_id]
                    task = asyncio.create_task(self._poll_one(target, state))
                    self._running[device_id] = task
                    task.add_done_callback(self._finished(device_id))
            await asyncio.sleep(TICK_S)

    def _check_gateway_soon(self) -> None:
        """A device stopped answering: poll the gateway now, so alerting learns at once
        whether the gateway is the cause (and suppresses the device's alert) or not."""
        for device_id, target in self.targets.items():
            if target.ip == self.gateway_ip:
                state = self.states.get(device_id)
                if state is not None:
                    state.next_due = min(state.next_due, self.ctx.clock.monotonic())

    def _recheck_missing(self) -> None:
        """The gateway is back: re-check at once every device that missed polls meanwhile."""
        now = self.ctx.clock.monotonic()
        for state in self.states.values():
            if state.missed:
                state.next_due = min(state.next_due, now)

    def _finished(self, device_id: int) -> Any:
        def done(_task: asyncio.Task[None]) -> None:
            self._running.pop(device_id, None)

        return done

    def _take_heard(self) -> None:
        """Drain discovery's HostHeard messages into ``heard`` (latest per ip and method)."""
        queue = self._heard_sub.queue
        while not queue.empty():
            item: HostHeard = queue.get_nowait()
            methods = self.heard.setdefault(item.ip, {})
            methods[item.method] = max(item.at, methods.get(item.method, item.at))

    def _note_problems(self) -> None:
        """ICMP or ARP unavailable: say how to fix it once, on the status (network page)."""
        assert self.poller is not None
        problems = {StatusKey.POLLING_ICMP: self.poller.icmp_problem}
        if self.arp is not None:
            problems[StatusKey.POLLING_ARP] = self.arp.problem
        for key, problem in problems.items():
            if problem and key not in self._noted:
                self._noted.add(key)
                log.error(f"{key.split('.')[1]}.unavailable", problem=problem)
                self.ctx.status.publish(key, problem)

    async def _poll_one(self, target: PollTarget, state: DeviceState) -> None:
        assert self.poller is not None
        s = self.settings
        self._take_heard()
        heard = dict(self.heard.get(target.ip, {}))
        async with self._slots:
            try:
                result = await self.poller.poll(
                    target, state, self.ctx.clock.now().wall, heard=heard
                )
            except Exception:
                # A bug must not stop this device's polls for good: log, retry next interval.
                log.exception("poll.crashed", device=target.ip)
                state.next_due = self.ctx.clock.monotonic() + s.interval_s
                return
        self._note_problems()
        was_missing = state.missed > 0
        state.missed = state.missed + 1 if result.reachable is False else 0
        if target.ip == self.gateway_ip:
            if was_missing and result.reachable:
                self._recheck_missing()
        elif state.missed == 1:
            self._check_gateway_soon()
        interval = target.interval_s or s.interval_s
        state.next_due = result.mono_s + next_delay(
            interval, s.jitter_frac, state.missed, s.backoff_max_s
        )
        worked = ordered(state.liveness.worked)
        missed = state.missed
        try:
            # Deferred: committed with the other polls of the next few seconds (the store's
            # commit_window_s), one commit for many polls (flash wear, docs/polling.md).
            stored = self.ctx.store.submit(
                lambda tx: store_result(tx, result, missed, worked), defer=True
            )
        except Exception as exc:  # noqa: BLE001 - store failure costs this result, not the poller
            log.error("poll.store_failed", device=target.ip, error=str(exc))
            return
        # The device is free for its next poll now, not when the group commits (a re-check
        # of the gateway must not wait for the window); the commit is only counted or logged.
        stored.add_done_callback(partial(self._stored, target.ip))
        # Alerting hears of the result now too: alerting's writes commit at once, and the
        # store runs writes in the order they were asked for, so the poll behind an alert is
        # committed with the alert or before it, never after.
        self.ctx.bus.publish(result)

    def _stored(self, ip: str, stored: asyncio.Future[None]) -> None:
        """A poll's deferred write has committed (or failed: that result alone is lost)."""
        if stored.cancelled():
            return
        error = stored.exception()
        if error is not None:
            log.error("poll.store_failed", device=ip, error=str(error))
            return
        self.cycles += 1  # polls stored (committed)


def load_liveness(conn: sqlite3.Connection) -> dict[int, Liveness]:
    """Each device's liveness memory as stored by :func:`store_result` (methods that worked,
    when anything last answered), so a restart keeps "no ARP answer since 21:04" true."""
    out: dict[int, Liveness] = {}
    for device_id, worked, last_answer_ts in conn.execute(
        "SELECT device_id, worked, last_answer_ts FROM poll_state"
    ):
        methods = {m for m in str(worked or "").split(",") if m}
        last = {m: float(last_answer_ts) for m in methods} if last_answer_ts else {}
        out[int(device_id)] = Liveness(worked=methods, last_answer=last)
    return out


REACHABLE_METRIC = "device.reachable"


def _verdict(reachable: bool | None) -> float | None:
    return None if reachable is None else float(reachable)


def store_result(tx: Tx, result: PollResult, missed: int, worked: tuple[str, ...] = ()) -> None:
    """Measurements, the device's current state and each check's outcome, in one transaction."""
    insert_measurements(
        tx,
        [
            Measurement(
                result.device_id,
                r.metric,
                r.value,
                r.instance,
                r.unit or ("0/1" if r.metric in BOOLEAN_METRICS else ""),
            )
            for r in result.readings
        ]
        # The liveness verdict of every poll (1/0, None: nothing could be tried): the monthly
        # report's availability (core/report/availability.py) is computed from this series.
        + [Measurement(result.device_id, REACHABLE_METRIC, _verdict(result.reachable), "", "0/1")],
    )
    reachable = None if result.reachable is None else int(result.reachable)
    tx.conn.execute(
        "INSERT INTO poll_state (device_id, ip, reachable, missed, last_poll_ts, last_ok_ts,"
        " duration_ms, answered_by, silent, last_answer_ts, worked)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (device_id) DO UPDATE SET"
        " ip = excluded.ip, reachable = excluded.reachable, missed = excluded.missed,"
        " last_poll_ts = excluded.last_poll_ts,"
        " last_ok_ts = COALESCE(excluded.last_ok_ts, poll_state.last_ok_ts),"
        " duration_ms = excluded.duration_ms, answered_by = excluded.answered_by,"
        " silent = excluded.silent,"
        " last_answer_ts = COALESCE(excluded.last_answer_ts, poll_state.last_answer_ts),"
        " worked = CASE WHEN excluded.worked != '' THEN excluded.worked ELSE poll_state.worked END",
        (
            result.device_id,
            result.ip,
            reachable,
            missed,
            result.wall_s,
            result.wall_s if result.reachable else None,
            result.duration_s * 1000,
            ",".join(result.answered_by),
            ",".join(result.silent),
            result.last_answer_wall,
            ",".join(worked),
        ),
    )
    if not any(c.check.startswith("tcp-probe:") for c in result.checks):
        # The last-resort probe did not run (something else answered): its old rows would
        # show a stale "no answer" on the device page.
        tx.conn.execute(
            "DELETE FROM poll_checks WHERE device_id = ? AND check_name LIKE 'tcp-probe:%'",
            (result.device_id,),
        )
    tx.conn.executemany(
        "INSERT INTO poll_checks (device_id, check_name, ok, ts, error, answered)"
        " VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (device_id, check_name) DO UPDATE SET ok = excluded.ok, ts = excluded.ts,"
        " error = excluded.error, answered = excluded.answered",
        [
            (result.device_id, c.check, int(c.ok), result.wall_s, c.error, int(c.host_answered))
            for c in result.checks
            if c.tried or c.error
        ],
    )


def make_polling(ctx: AppContext, snmp: SnmpClient | None = None) -> PollingService | None:
    return PollingService(ctx, snmp) if ctx.config.polling.enabled else None
