"""One poll of one device: ping, ARP, TCP checks, SNMP profiles, each bounded in time.

Liveness (services/polling/liveness.py) is decided from every answer the host gave: an echo
reply, an ARP frame (on-link hosts only), a TCP SYN-ACK or RST, any SNMP response. When none
of those answered, the ``probe_tcp_ports`` are tried as a last resort before calling it a miss.

Nothing here raises for a device's sake: a timeout, a garbage answer or an agent that walks
backwards becomes a failed check with a message, and the other checks still run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.clock import Clock, system_clock
from core.settings.polling import PollingSettings
from services.polling.access import ClientAccess
from services.polling.arp_probe import ArpProber
from services.polling.icmp import IcmpUnavailable, Pinger
from services.polling.inventory import PollTarget
from services.polling.liveness import Answer, Liveness, method_of
from services.polling.profiles import PollContext, Profile, Reading, profiles_for
from services.polling.rates import RateTracker
from services.polling.results import CheckOutcome, PollResult
from services.polling.tcp import check_port
from services.snmp import (
    SnmpCredential,
    SnmpDecodeError,
    SnmpError,
    SnmpErrorStatus,
    SnmpWalkLoop,
    Target,
)

#: SNMP failures that still prove the agent (so the host) answered.
_SNMP_ANSWERS = (SnmpErrorStatus, SnmpDecodeError, SnmpWalkLoop)


@dataclass
class DeviceState:
    """What the poller remembers of one device between polls."""

    profiles: list[Profile]
    profile_key: tuple[str, str, str]
    rates: RateTracker = field(default_factory=RateTracker)
    missed: int = 0
    next_due: float = 0.0
    varbinds: int = 0  # fetched over the process's life (bench and diagnostics)
    liveness: Liveness = field(default_factory=Liveness)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]


class DevicePoller:
    def __init__(
        self,
        settings: PollingSettings,
        pinger: Pinger | None,
        client: Any | None,
        credentials: dict[str, SnmpCredential],
        snmp_port: int = 161,
        *,
        arp: ArpProber | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or system_clock()  # a result's mono_s, on the scheduler's timeline
        self.snmp_port = snmp_port  # other than 161 only for tests and benchmarks
        self.pinger = pinger
        self.arp = arp
        self.client = client
        self.credentials = credentials
        self.icmp_problem = ""

    def state_for(self, target: PollTarget, state: DeviceState | None) -> DeviceState:
        key = (target.kind, target.sys_object_id, target.credential)
        if state is None or state.profile_key != key:
            fresh = DeviceState(profiles_for(target.kind, target.sys_object_id), key)
            if state is not None:
                fresh.liveness = state.liveness  # how the host proves itself outlives profiles
            return fresh
        return state

    async def poll(
        self,
        target: PollTarget,
        state: DeviceState,
        wall_s: float,
        heard: Mapping[str, float] | None = None,
    ) -> PollResult:
        """Poll every method at once; ``heard``: passive evidence (method -> wall time)."""
        started = self.clock.monotonic()
        began = time.perf_counter()  # real: duration_s measures how long the poll took
        readings: list[Reading] = []
        checks: list[CheckOutcome] = []
        tasks = [
            self._icmp(target),
            self._arp(target),
            self._tcp(target),
            self._snmp(target, state, started),
        ]
        for got_readings, got_checks in await asyncio.gather(*tasks):
            readings.extend(got_readings)
            checks.extend(got_checks)
        if not any(c.tried and c.host_answered for c in checks):
            checks.extend(await self._tcp_probe(target))
        answers = [
            Answer(method_of(c.check), c.host_answered, weak=c.check.startswith("tcp-probe:"))
            for c in checks
            if c.tried
        ]
        passive = dict(heard or {})
        if any(c.check == "arp" for c in checks):
            # Our own ARP probe asked just now: discovery's passive ARP sightings (flushed up
            # to seconds late, and including the replies to our previous probe) add nothing
            # and would keep a host that left "up" for one more poll.
            passive.pop("arp", None)
        verdict = state.liveness.decide(answers, passive, wall_s)
        return PollResult(
            device_id=target.device_id,
            ip=target.ip,
            name=target.name,
            kind=target.kind,
            wall_s=wall_s,
            mono_s=started,
            reachable=verdict.reachable,
            readings=tuple(readings),
            checks=tuple(checks),
            duration_s=time.perf_counter() - began,
            answered_by=verdict.answered,
            silent=verdict.silent,
            last_answer_wall=verdict.last_answer_wall,
            monitored=target.monitored,
        )

    async def _arp(self, target: PollTarget) -> tuple[list[Reading], list[CheckOutcome]]:
        if not self.settings.arp or self.arp is None:
            return [], []
        answered = await self.arp.probe(target.ip, self.settings.arp_timeout_s)
        if answered is None:
            return [], []  # behind a router, or no ARP socket: not evidence either way
        error = "" if answered else f"no ARP reply within {self.settings.arp_timeout_s:g} s"
        return [], [CheckOutcome("arp", answered, error)]

    async def _tcp_probe(self, target: PollTarget) -> list[CheckOutcome]:
        """Last resort when nothing answered: a refused connection (RST) proves the host is
        there as well as an accepted one; only silence counts as no answer."""
        ports = [p for p in self.settings.probe_tcp_ports if p not in target.tcp_ports]
        if not ports:
            return []
        results = await asyncio.gather(
            *(check_port(target.ip, p, self.settings.tcp_timeout_s) for p in ports)
        )
        return [
            CheckOutcome(f"tcp-probe:{r.port}", r.open, r.error, answered=r.answered)
            for r in results
        ]

    async def _icmp(self, target: PollTarget) -> tuple[list[Reading], list[CheckOutcome]]:
        s = self.settings
        if not s.icmp or self.pinger is None:
            return [], []
        try:
            stats = (
                await self.pinger.ping_many(
                    [target.ip], s.icmp_count, s.icmp_spacing_ms / 1000, s.icmp_timeout_s
                )
            )[target.ip]
        except IcmpUnavailable as exc:
            self.icmp_problem = str(exc)
            return [], []
        readings = [
            Reading("icmp.loss_pct", stats.loss_pct, "", "%"),
            Reading("icmp.rtt_ms", stats.rtt_ms, "", "ms"),
        ]
        if stats.jitter_ms is not None:
            readings.append(Reading("icmp.jitter_ms", stats.jitter_ms, "", "ms"))
        ok = stats.received > 0
        error = "" if ok else (stats.error or f"no echo reply to {stats.sent} requests")
        return readings, [CheckOutcome("icmp", ok, error)]

    async def _tcp(self, target: PollTarget) -> tuple[list[Reading], list[CheckOutcome]]:
        if not target.tcp_ports:
            return [], []
        results = await asyncio.gather(
            *(check_port(target.ip, p, self.settings.tcp_timeout_s) for p in target.tcp_ports)
        )
        readings: list[Reading] = []
        checks: list[CheckOutcome] = []
        for r in results:
            readings.append(Reading("tcp.open", float(r.open), str(r.port)))
            if r.connect_ms is not None:
                readings.append(Reading("tcp.connect_ms", r.connect_ms, str(r.port), "ms"))
            checks.append(CheckOutcome(f"tcp:{r.port}", r.open, r.error, answered=r.answered))
        return readings, checks

    def snmp_target(self, target: PollTarget) -> Target | None:
        credential = self.credentials.get(target.credential)
        if credential is None:
            return None
        return Target(
            target.ip,
            self.snmp_port,
            credential,
            timeout_s=self.settings.snmp_timeout_s,
            retries=self.settings.snmp_retries,
        )

    async def _snmp(
        self, target: PollTarget, state: DeviceState, started: float
    ) -> tuple[list[Reading], list[CheckOutcome]]:
        if not self.settings.snmp or not target.credential or self.client is None:
            return [], []
        snmp_target = self.snmp_target(target)
        if snmp_target is None:
            problem = (
                f"SNMP credential {target.credential!r} is not in [[snmp.credentials]]; "
                "add it or change the device's credential"
            )
            return [], [CheckOutcome("snmp", False, problem, tried=False)]
        return await self.poll_profiles(ClientAccess(self.client, snmp_target), state, started)

    async def poll_profiles(
        self, access: ClientAccess, state: DeviceState, started: float
    ) -> tuple[list[Reading], list[CheckOutcome]]:
        """Run every profile within the device's SNMP budget; one failure stops the rest.

        A failed profile usually means the agent stopped answering; asking the next profile
        would only spend another timeout on the same silence.
        """
        ctx = PollContext(at_s=started, rates=state.rates)
        readings: list[Reading] = []
        error = ""
        answered = False
        spoke = False  # the agent sent something back, even an error
        try:
            async with asyncio.timeout(self.settings.snmp_budget_s):
                for profile in state.profiles:
                    try:
                        readings.extend(await profile.poll(access, ctx))
                        answered = True
                    except SnmpError as exc:
                        error = f"{profile.name}: {_describe(exc)}"
                        spoke = isinstance(exc, _SNMP_ANSWERS)
                        break
        except TimeoutError:
            error = f"SNMP poll took longer than {self.settings.snmp_budget_s:g} s; stopped"
        state.varbinds += access.varbinds
        if not error and ctx.errors:
            error = "; ".join(ctx.errors)
            return readings, [CheckOutcome("snmp", True, error)]
        # The agent answered at least one profile: it is up, even if a later one failed. An
        # error status is no data, but it is the host answering.
        return readings, [CheckOutcome("snmp", answered, error, answered=answered or spoke)]
