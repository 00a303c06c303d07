"""The alerting service: poll results and discovery events in, alert transitions out.

Dependency: the site's gateway is the upstream of every other device. When a device stops
answering, its "down" alert waits until the gateway has been polled after the device's first
miss; if the gateway is down too, the device's alert is suppressed (the gateway's own alert
says it all). Without this, a dead router would page the MSP once per device behind it.
The wait is bounded (``dependency_wait_s``): a gateway poll that never comes (its address
moved to a router nobody polls, polling stopped) must not hold a "down" alert forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from dataclasses import dataclass

from core.logs import get_log
from core.status import StatusKey
from core.vocabulary import Severity
from services.alerting.dependants import OutageDependants, with_kind
from services.alerting.engine import AlertEngine, Transition, in_window
from services.alerting.rules import (
    Condition,
    DeviceMemory,
    annotate_where,
    evaluate,
    port_link_conditions,
    port_speed_conditions,
    presence,
    remember_links,
    watched_for_down,
)
from services.context import AppContext
from services.polling.gateway import GatewayRole
from services.polling.results import PollResult
from services.polling.topology_results import TopologyUpdate
from services.store.db import Tx
from services.store.records import Event, insert_event

log = get_log("alerting")

SWEEP_S = 5.0  # how often timed alerts (reboot, IP conflict) are checked for expiry
#: Rules of older versions that raise no alert any more; what they left open is resolved.
RETIRED_RULES = frozenset({"device.new"})
#: A held "down" waits at most this many poll intervals for the gateway's poll (the gateway
#: is polled at once when a device misses, so its answer is normally seconds away)...
DEPENDENCY_WAIT_POLLS = 3
#: ...and never less than this.
DEPENDENCY_WAIT_MIN_S = 15.0


@dataclass
class GatewayState:
    device_id: int | None = None
    down: bool = False
    last_poll_mono: float = -1.0


class AlertingService:
    name = "alerting"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.settings = ctx.config.alerting
        self.engine = AlertEngine()
        self.memory: dict[int, DeviceMemory] = {}
        self.gateway_role = GatewayRole(self.settings.gateway_ip)
        self._gateway_ip = self.gateway_role.ip
        self.gateway = GatewayState()
        self.pending: dict[int, Condition] = {}  # held "device down" conditions by device
        self.held_since: dict[int, float] = {}  # device -> clock.monotonic() its hold began
        self.gave_up: set[int] = set()  # waited the bound: not held again until it resolves
        self.dependency_wait_s = max(
            DEPENDENCY_WAIT_MIN_S, DEPENDENCY_WAIT_POLLS * ctx.config.polling.interval_s
        )
        self.expiry: dict[str, float] = {}  # key -> monotonic time a timed alert resolves
        # Subscribed at construction so no result published before setup() is missed.
        self._sub = ctx.bus.subscribe(PollResult, Event, TopologyUpdate)
        self._listening = True
        # Where things plug in (the topology service's latest read), each switch port's link
        # at its switch's latest poll, and each port's fastest speed seen (port.speed).
        self.where: TopologyUpdate | None = None
        self.link_up: dict[tuple[int, str], bool] = {}
        self.fastest: dict[tuple[int, int], float] = {}
        # For home's routing and grouping: kinds, and who went silent with the gateway.
        self.dependants = OutageDependants()

    @property
    def gateway_ip(self) -> str:
        """The site's gateway now: configured, else the default route's next hop. When the
        default route moves to another router, what was known of the old one is dropped."""
        ip = self.gateway_role.ip
        if ip != self._gateway_ip:
            log.info("alerting.gateway_changed", old=self._gateway_ip or "none", new=ip or "none")
            self._gateway_ip, self.gateway = ip, GatewayState()
        return ip

    @gateway_ip.setter
    def gateway_ip(self, ip: str) -> None:
        """Fix the gateway to ``ip`` ("" for none), whatever the route says."""
        self.gateway_role = GatewayRole(ip, follow_route=False)

    async def setup(self) -> None:
        if not self._listening:  # set up again after a crash or a restart: listen again
            self._sub = self.ctx.bus.subscribe(PollResult, Event, TopologyUpdate)
            self._listening = True
        await self.ctx.store.read(self.engine.load)
        await self._resolve_retired_rules()
        for device_id, away_since in (await self.ctx.store.read(devices_away)).items():
            # Gone before a restart: no second "left", and "returned" still says how long.
            self.memory.setdefault(device_id, DeviceMemory()).away_since_wall = away_since
        self._publish_counts()
        log.info("alerting.ready", gateway=self.gateway_ip or "none", open=len(self.engine.open))

    async def _resolve_retired_rules(self) -> None:
        """Resolve open alerts of rules that no longer raise any: "new device" (info) alerts of
        an older version would otherwise stay open for ever (their expiry was in memory)."""
        retired = [
            Condition(a.key, a.rule, a.device_id, None, a.message)
            for a in self.engine.open.values()
            if a.rule in RETIRED_RULES or a.severity == Severity.INFO
        ]
        if retired:
            await self._commit(retired)

    async def teardown(self) -> None:
        self.ctx.bus.unsubscribe(self._sub)
        self._listening = False

    async def run(self) -> None:
        next_sweep = self.ctx.clock.monotonic() + SWEEP_S
        while True:
            timeout = max(0.0, next_sweep - self.ctx.clock.monotonic())
            item: object | None = None
            with contextlib.suppress(TimeoutError):
                item = await asyncio.wait_for(self._sub.get(), timeout)
            if isinstance(item, PollResult):
                await self.handle_result(item)
            elif isinstance(item, Event):
                await self.handle_event(item)
            elif isinstance(item, TopologyUpdate):
                await self.handle_topology(item)
            if self.ctx.clock.monotonic() >= next_sweep:
                await self.sweep()
                next_sweep = self.ctx.clock.monotonic() + SWEEP_S

    # ---- inputs

    async def handle_result(self, result: PollResult) -> None:
        memory = self.memory.setdefault(result.device_id, DeviceMemory())
        is_gateway = bool(self.gateway_ip) and result.ip == self.gateway_ip
        conditions = evaluate(
            result, memory, self.settings, self.engine.open_severity(), is_gateway
        )
        remember_links(result, self.link_up)
        conditions += port_link_conditions(result, self.where)
        conditions = annotate_where(conditions, result, self.where, self.link_up)
        watched = watched_for_down(result, self.settings, is_gateway)
        self.dependants.saw(result, watched)
        conditions = with_kind(conditions, result)
        event = presence(result, memory, self.settings, watched)
        if event is not None:
            await self._record_event(event)
        was_down = self.gateway.down
        if is_gateway:
            self.gateway.device_id = result.device_id
            self.gateway.last_poll_mono = result.mono_s
            if result.reachable is not None:
                self.gateway.down = memory.missed > 0
            held = set(self.pending)
            conditions = [
                self.dependants.on_gateway(c, self.memory, held, result.device_id)
                for c in conditions
            ]
        else:
            conditions = [self._dependency(c, memory) for c in conditions]
        for c in conditions:
            if c.rule == "device.rebooted" and c.severity is not None:
                self.expiry[c.key] = self.ctx.clock.monotonic() + self.settings.reboot_hold_s
        if is_gateway and not self.gateway.down:
            if was_down:
                # The gateway is back: what its dependents saw while it was down is stale;
                # their next polls (pulled forward by polling) decide afresh.
                self.pending.clear()
                self.held_since.clear()
            else:
                conditions.extend(self._release_pending())
        await self._commit(conditions)

    def _dependency(self, c: Condition, memory: DeviceMemory) -> Condition:
        if c.rule != "device.down" or c.device_id is None:
            return c
        if c.severity is None:
            self.pending.pop(c.device_id, None)
            self.held_since.pop(c.device_id, None)
            self.gave_up.discard(c.device_id)
            return c
        if self.gateway.device_id is None:
            return c  # no gateway in the inventory: nothing to depend on
        first_miss = memory.first_miss_mono or 0.0
        now = self.ctx.clock.monotonic()
        if c.device_id in self.gave_up or self._waited_enough(c.device_id, now):
            self._give_up_waiting(c.device_id)
            return c
        if self.gateway.down or self.gateway.last_poll_mono < first_miss:
            self.held_since.setdefault(c.device_id, now)
            # Not yet known whether the gateway is the cause: hold until it has been polled.
            self.pending[c.device_id] = c
            return Condition(c.key, c.rule, c.device_id, c.severity, c.message, c.data, hold=True)
        return c

    def _release_pending(self) -> list[Condition]:
        released = []
        for device_id, c in list(self.pending.items()):
            memory = self.memory.get(device_id)
            if memory is not None and memory.missed >= self.settings.down_after_missed:
                released.append(c)
            del self.pending[device_id]
            self.held_since.pop(device_id, None)
        return released

    def _give_up_waiting(self, device_id: int) -> Condition | None:
        """The gateway's poll did not come within ``dependency_wait_s``: decide without it."""
        if self.held_since.pop(device_id, None) is None:
            return self.pending.pop(device_id, None)  # said already
        self.gave_up.add(device_id)
        log.warning(
            "alerting.dependency_unknown",
            device_id=device_id,
            waited_s=self.dependency_wait_s,
            gateway=self.gateway_ip or "none",
            hint="no fresh poll of the gateway: its down alert is not held any longer",
        )
        return self.pending.pop(device_id, None)

    def _waited_enough(self, device_id: int, now: float) -> bool:
        """The hold began ``dependency_wait_s`` ago and the gateway gave no answer to go by
        meanwhile: neither a fresh poll, nor a recent "down" (a recent "down" suppresses)."""
        since = self.held_since.get(device_id)
        if since is None or now - since < self.dependency_wait_s:
            return False
        stale = now - self.gateway.last_poll_mono >= self.dependency_wait_s
        return not self.gateway.down or stale

    def _overdue_holds(self) -> list[Condition]:
        """Held "down" alerts whose wait for the gateway's poll is over."""
        now = self.ctx.clock.monotonic()
        due = [d for d in self.held_since if self._waited_enough(d, now)]
        return [c for c in (self._give_up_waiting(d) for d in due) if c is not None]

    async def handle_topology(self, update: TopologyUpdate) -> None:
        """A switch read: remember where things are; a port that slowed down is a warning."""
        self.where = update
        await self._commit(port_speed_conditions(update, self.fastest))

    async def handle_event(self, event: Event) -> None:
        conditions: list[Condition] = []
        now = self.ctx.clock.monotonic()
        # A new device (discovery's device.joined) is an info event, stored and sent home by
        # discovery: news, not something open to act on, so no alert.
        if event.kind == "device.ip_conflict":
            ip = str(event.data.get("ip", event.device_id))
            key = f"ip.conflict:{ip}"
            conditions.append(
                Condition(
                    key,
                    "ip.conflict",
                    event.device_id,
                    Severity.MINOR,
                    event.message or f"two devices claim {ip}",
                    dict(event.data),
                )
            )
            self.expiry[key] = now + self.settings.ip_conflict_hold_s
        if conditions:
            await self._commit(conditions)

    async def sweep(self) -> None:
        now = self.ctx.clock.monotonic()
        due = [key for key, at in self.expiry.items() if at <= now]
        ongoing = await self._conflicts_still_seen([k for k in due if k.startswith("ip.conflict:")])
        conditions = self._overdue_holds()
        for key in due:
            if key in ongoing:
                # Discovery still sees two MACs on that address: keep the alert open.
                self.expiry[key] = now + self.settings.ip_conflict_hold_s
                continue
            del self.expiry[key]
            alert = self.engine.open.get(key)
            if alert is not None:
                conditions.append(Condition(key, alert.rule, alert.device_id, None, alert.message))
        if conditions:
            await self._commit(conditions)

    async def _conflicts_still_seen(self, keys: list[str]) -> set[str]:
        """The ip.conflict keys whose address discovery's ``ip_conflicts`` table still holds."""
        if not keys:
            return set()

        def read(conn: sqlite3.Connection) -> set[str]:
            try:
                rows = conn.execute("SELECT ip FROM ip_conflicts").fetchall()
            except sqlite3.OperationalError:
                return set()  # discovery's tables are not there: nothing to go by
            return {f"ip.conflict:{ip}" for (ip,) in rows} & set(keys)

        return await self.ctx.store.read(read)

    # ---- output

    async def _record_event(self, event: Event) -> None:
        """Store a presence event (and forward it home), then tell live listeners."""
        try:
            await self.ctx.store.write(lambda tx: insert_event(tx, event))
        except Exception:
            log.exception("alerting.store_failed", kind=event.kind)
            return
        log.info(event.kind, device_id=event.device_id, message=event.message)
        self.ctx.bus.publish(event)

    async def _commit(self, conditions: list[Condition]) -> None:
        quiet = in_window(self.settings.maintenance, self.ctx.clock.local())
        transitions = self.engine.decide(conditions, quiet)
        if not transitions:
            return
        engine = self.engine

        def write(tx: Tx) -> None:
            engine.apply(tx, transitions)

        try:
            await self.ctx.store.write(write)
        except Exception:
            # The store rolled back: reload what is really open so memory matches the disk.
            log.exception("alerting.store_failed")
            await self.ctx.store.read(self.engine.load)
            return
        for t in transitions:
            self._log(t)
            # Live listeners (status page) learn of the transition without reading the store.
            kind = "alert.opened" if t.action == "open" else "alert.resolved"
            self.ctx.bus.publish(Event(kind, t.device_id, t.severity, t.message, {"key": t.key}))
        self._publish_counts()

    def _log(self, t: Transition) -> None:
        log.info(
            f"alert.{'opened' if t.action == 'open' else 'resolved'}",
            key=t.key,
            severity=t.severity,
            message=t.message,
        )

    def _publish_counts(self) -> None:
        self.ctx.status.publish(StatusKey.ALERTS_OPEN, self.engine.counts())


def devices_away(conn: sqlite3.Connection) -> dict[int, float]:
    """Devices whose latest presence event is "left": device id -> wall time it was last
    heard (the event's ``last_answer_ts``, else the event's time)."""
    rows = conn.execute(
        "SELECT e.device_id, e.kind, e.data, e.ts FROM events e JOIN ("
        " SELECT device_id, MAX(id) AS id FROM events"
        " WHERE kind IN ('presence.left', 'presence.returned') AND device_id IS NOT NULL"
        " GROUP BY device_id) latest ON latest.id = e.id"
    ).fetchall()
    out: dict[int, float] = {}
    for device_id, kind, data, ts in rows:
        if kind != "presence.left":
            continue
        try:
            since = json.loads(data or "{}").get("last_answer_ts")
        except (ValueError, AttributeError):
            since = None
        out[int(device_id)] = float(since) if isinstance(since, int | float) else float(ts)
    return out


def make_alerting(ctx: AppContext) -> AlertingService | None:
    return AlertingService(ctx) if ctx.config.alerting.enabled else None
