"""The discovery service: sweeps, listens, fingerprints, classifies, and reports changes.

One task, one cycle every ``sweep_interval_s``:
  1. ARP-sweep every planned subnet (who answers, and which IPs have two answers);
  2. store sightings and conflicts -> device.joined / ip_changed / returned / ip_conflict;
  3. read the SNMP identity of devices that have none yet (or an old one);
  4. merge SNMP and mDNS identity into each device and classify it again;
  5. device.left for devices unseen for ``leave_after_s``.
Between sweeps, every ``FLUSH_INTERVAL_S``, passive ARP sightings are stored and new mDNS
answers merged, so a device that appears between sweeps is known within seconds. A change of
the appliance's links, addresses or routes (rtnetlink) re-plans at once: ARP and mDNS follow
an address that arrives, changes or goes, with no restart.

Identity follows the MAC (docs/discovery.md "Identity"): an mDNS service belongs to the MAC
that held its newest address when the announcement that changed it last arrived, so a device
that takes an address later inherits nothing; a new randomised MAC whose mDNS services are a
known device's is that device under its new MAC.

Safety (docs/discovery.md): with no ``subnets`` and no ``auto_subnets`` the service logs one
``discovery.idle`` line and does nothing. Without CAP_NET_RAW it logs the missing capability
and keeps mDNS and SNMP going, sweeping through the kernel's own ARP instead
(services/discovery/kernel_arp.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from core.logs import get_log
from core.messages import HostHeard, RediscoverRequested
from core.status import StatusKey
from services.context import AppContext
from services.discovery import inventory, multihomed, names
from services.discovery.arp import ArpNotPermitted, ArpSighting, ArpSocket, SweepResult
from services.discovery.classify import mdns_types
from services.discovery.fingerprint import Fingerprint, Fingerprinter
from services.discovery.interfaces import (
    AddressWatcher,
    InterfaceError,
    SweepPlan,
    default_gateways,
    ipv4_interfaces,
    plan_sweeps,
)
from services.discovery.kernel_arp import kernel_sweep
from services.discovery.mdns import MdnsService, MdnsWatcher
from services.discovery.oui import lookup
from services.snmp import SnmpClient
from services.store import Event, Tx
from services.uplink.devices import forward_changes

log = get_log("discovery")

FLUSH_INTERVAL_S: Final = 5.0
#: After mDNS news, wait this long for the rest of the device's answers before merging.
MDNS_SETTLE_S: Final = 1.0
#: Without any sweepable subnet (no address yet), interfaces are looked at again this often.
NO_PLAN_RETRY_S: Final = 10.0
#: A device that answered no SNMP credential is asked again after this long.
NO_ANSWER_RETRY_S: Final = 3600.0
#: Reverse DNS / NetBIOS lookups at once: two datagrams each, 0.5 s at most.
NAME_LOOKUPS_AT_ONCE: Final = 32
#: Passive sightings buffered between flushes (a flood of spoofed ARP cannot grow memory).
MAX_BUFFERED: Final = 4096
#: A new randomised MAC waits this long for mDNS to say whether it is a known device under a
#: new private MAC before it joins as a new device.
RANDOM_MAC_HOLD_S: Final = 20.0

ServiceKey = tuple[str, str]  # (type, instance name)


class DiscoveryService:
    name = "discovery"

    def __init__(self, ctx: AppContext, snmp: SnmpClient | None = None) -> None:
        """``snmp``: the process's one SNMP client (firmware/app.py builds it, shared with
        polling, and closes it); without one, the fingerprinter makes and closes its own."""
        self.ctx = ctx
        self.settings = ctx.config.discovery
        self.snmp = snmp
        self.plans: list[SweepPlan] = []
        self.sockets: dict[str, ArpSocket] = {}
        self.mdns: MdnsWatcher | None = None
        self.fingerprinter: Fingerprinter | None = None
        self._passive: dict[str, set[str]] = {}
        self._snmp_next_try: dict[str, float] = {}
        #: mac -> time.monotonic() when its reverse DNS / NetBIOS names may be asked again.
        self._names_next: dict[str, float] = {}
        self._mdns_version = -1
        self._idle = False
        self._raw_denied = False
        self._problems: list[str] = []
        self.last_sweeps: list[SweepResult] = []
        self.gateways: frozenset[str] = frozenset()  # next hops of the default routes
        self.netwatch = AddressWatcher()
        #: mDNS service -> (MAC that owns it, resolved_at of the announcement that decided).
        self.owners: dict[ServiceKey, tuple[str, float]] = {}
        self._owners_loaded = False
        #: New randomised MACs held back: mac -> (addresses, time.monotonic() first seen).
        self.held: dict[str, tuple[tuple[str, ...], float]] = {}
        #: The last sweep: when it started (time.monotonic()) and who answered what (ip -> MACs).
        self._sweep_started = 0.0
        self._sweep_answers: dict[str, frozenset[str]] = {}
        #: A fresh box's first sweep is the baseline (inventory.open_baseline): no
        #: device.joined per device found then, one summary event instead.
        self._baseline = False
        # "Rediscover now" from the status page (and, later, from the MSP): a sweep at the next
        # flush instead of at the end of the interval.
        self._rediscover = ctx.bus.subscribe(RediscoverRequested, limit=4)

    # ---- lifecycle ----

    async def setup(self) -> None:
        s = self.settings
        if not s.subnets and not s.auto_subnets:
            self._idle = True
            log.info(
                "discovery.idle",
                reason="no subnets configured and auto_subnets is false; set "
                'discovery.subnets = ["192.168.1.0/24"] or discovery.auto_subnets = true',
            )
            self.ctx.status.publish(StatusKey.DISCOVERY_STATE, "idle")
            return
        self._baseline = await self.ctx.store.write(inventory.open_baseline)
        try:
            self.netwatch.open()
            await self._replan()
            if s.mdns:
                self.mdns = MdnsWatcher(known_types=mdns_types())
                try:
                    await self.mdns.start(self._mdns_addresses())
                except OSError as exc:
                    log.error("discovery.mdns_failed", error=str(exc))
                    self.mdns = None
            if s.snmp:
                self.fingerprinter = Fingerprinter.from_config(
                    self.ctx.config, s.snmp_timeout_s, client=self.snmp
                )
                await self.fingerprinter.__aenter__()
        except BaseException:
            await self.teardown()  # the supervisor only tears down what finished setting up
            raise
        log.info(
            "discovery.started",
            subnets=",".join(str(p.subnet) for p in self.plans),
            arp="on" if self.sockets else "off",
            mdns="on" if self.mdns else "off",
            snmp="on" if self.fingerprinter else "off",
        )
        self.ctx.status.publish(StatusKey.DISCOVERY_STATE, "running")

    async def teardown(self) -> None:
        self.netwatch.close()
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()
        if self.mdns is not None:
            await self.mdns.stop()
            self.mdns = None
        if self.fingerprinter is not None:
            await self.fingerprinter.__aexit__(None, None, None)
            self.fingerprinter = None

    async def run(self) -> None:
        if self._idle:
            await asyncio.Event().wait()  # nothing to do, ever, with this configuration
        while True:
            started = time.monotonic()
            await self._replan()
            await self.cycle()
            interval = self.settings.sweep_interval_s
            if not self.plans:
                # At boot the LAN interface may not have its DHCP address yet: look again soon.
                interval = min(interval, NO_PLAN_RETRY_S)
            next_cycle = started + interval
            while (left := next_cycle - time.monotonic()) > 0:
                await self._pause(min(FLUSH_INTERVAL_S, left))
                if self.netwatch.changed.is_set():
                    self.netwatch.changed.clear()
                    if await self._replan():
                        break  # a new address or subnet: sweep it now, not at the next cycle
                await self.flush()
                if self._take_rediscover_request():
                    break

    def _take_rediscover_request(self) -> bool:
        requested = False
        while not self._rediscover.queue.empty():
            request: RediscoverRequested = self._rediscover.queue.get_nowait()
            log.info("discovery.rediscover_requested", by=request.requested_by)
            requested = True
        return requested

    async def _pause(self, seconds: float) -> None:
        """Sleep until the next flush, until the interfaces change, or until mDNS news (then
        a short settle, so that the burst of answers a device sends when it announces lands
        in one merge)."""
        waits = [asyncio.ensure_future(self.netwatch.changed.wait())]
        if self.mdns is not None:
            waits.append(asyncio.ensure_future(self.mdns.changed.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds)
        finally:
            for waiting in waits:
                waiting.cancel()
        if self.mdns is not None and self.mdns.changed.is_set():
            await asyncio.sleep(MDNS_SETTLE_S)
            self.mdns.changed.clear()

    async def _replan(self) -> bool:
        """(Re)compute the sweeps from the interfaces as they are now; adapt the sockets and
        the mDNS listener. True if the plan changed.

        Interfaces change under a running appliance: DHCP gives the address seconds after
        boot, a lease changes, a USB adapter comes and goes.
        """
        try:
            interfaces = await ipv4_interfaces()
        except InterfaceError as exc:
            log.error("discovery.interfaces_unreadable", error=str(exc))
            interfaces = []
        plans, problems = plan_sweeps(self.settings, interfaces)
        if problems != self._problems:
            for problem in problems:
                log.warning("discovery.subnet_skipped", problem=problem)
            self._problems = problems
        try:
            self.gateways = frozenset(await default_gateways())
        except InterfaceError:
            self.gateways = frozenset()
        # One raw socket per interface; each subnet's sweep sends from its own address there.
        wanted = {p.interface.name for p in plans}
        for name, sock in list(self.sockets.items()):
            if name not in wanted:
                sock.close()
                del self.sockets[name]
        changed = [(p.subnet, p.interface) for p in plans] != [
            (p.subnet, p.interface) for p in self.plans
        ]
        if changed:
            log.info("discovery.planned", subnets=",".join(str(p.subnet) for p in plans) or "none")
        self.plans = plans
        if self.mdns is not None:
            try:
                await self.mdns.follow(self._mdns_addresses())
            except OSError as exc:
                log.error("discovery.mdns_failed", error=str(exc))
        if self._raw_denied:
            return changed
        for name in sorted(wanted):
            if name in self.sockets:
                continue
            sock = ArpSocket(name, self._on_sighting)
            try:
                sock.open()
            except ArpNotPermitted as exc:
                log.error("discovery.arp_not_permitted", error=str(exc))
                self._raw_denied = True  # said once; the kernel-assisted sweep takes over
                return changed
            except OSError as exc:
                log.error("discovery.arp_open_failed", interface=name, error=str(exc))
                continue
            self.sockets[name] = sock
        return changed

    def _mdns_addresses(self) -> list[str]:
        """The appliance's address on each discovered interface (one per interface: the
        multicast group is joined per interface)."""
        first: dict[str, str] = {}
        for plan in self.plans:
            first.setdefault(plan.interface.name, plan.interface.ip)
        return sorted(first.values())

    # ---- one cycle ----

    async def cycle(self) -> None:
        started = time.monotonic()
        results = await self._sweep_all()
        self.last_sweeps = results
        self._sweep_started = started
        self._sweep_answers = {ip: m for r in results for ip, m in r.answers.items()}
        seen: dict[str, set[str]] = {}
        for result in results:
            for ip, macs in result.answers.items():
                for mac in macs:
                    seen.setdefault(mac, set()).add(ip)
        now = self.ctx.clock.now().wall
        items = [inventory.Seen(mac, tuple(ips)) for mac, ips in sorted(seen.items())]
        # Conflicts are only visible to a raw sweep (the kernel keeps one MAC per address).
        complete = bool(self.sockets) and len(results) == len(self.plans)
        answers: dict[str, frozenset[str]] = {}
        for result in results:
            answers.update(result.answers)
        # Several MACs on one address is a conflict, unless it is one host answering ARP for
        # each of its addresses on each of its cards (services/discovery/multihomed.py).
        conflicts, multi_homed = multihomed.split_conflicts(answers)
        for host in multi_homed:
            log.debug("discovery.multi_homed", macs=sorted(host.macs), ips=sorted(host.ips))
        roles, gateways = self.gateways, self.gateways
        held = self._holding()
        # The baseline ends with the first sweep that found anyone (none: no address yet).
        baseline, closing = self._baseline, self._baseline and bool(items)

        def store_sweep(tx: Tx) -> list[Event]:
            events = inventory.record_seen(
                tx, items, now, active=True, source="arp", roles=roles, hold_local=held,
                baseline=baseline,
            )  # fmt: skip
            if complete:
                inventory.release_lost_addresses(tx, answers)
            inventory.record_gateway_role(tx, gateways, answers, now)
            if closing:
                events += inventory.close_baseline(tx, now)
            return events + inventory.record_conflicts(tx, conflicts, now, complete=complete)

        await self._write(store_sweep)
        if closing:
            self._baseline = False
        self._hold(held)
        await self.flush(force_identity=True)
        await self._expire()

    async def flush(self, *, force_identity: bool = False) -> None:
        """Store buffered passive sightings; merge identity when mDNS news arrived."""
        if self._passive:
            buffered, self._passive = self._passive, {}
            now = self.ctx.clock.now().wall
            for heard_ip in {ip for ips in buffered.values() for ip in ips}:
                # Liveness evidence for polling: a host that spoke between polls is there.
                self.ctx.bus.publish(HostHeard(heard_ip, "arp", now))
            items = [inventory.Seen(mac, tuple(ips)) for mac, ips in sorted(buffered.items())]
            roles = self.gateways
            held = self._holding()
            baseline = self._baseline
            events = await self._write(
                lambda tx: inventory.record_seen(
                    tx, items, now, active=False, source="arp", roles=roles, hold_local=held,
                    baseline=baseline,
                )
            )  # fmt: skip
            self._hold(held)
            # A host learnt between sweeps is fingerprinted now, not at the next sweep.
            force_identity = force_identity or any(e.kind == "device.joined" for e in events)
        if self.mdns is not None:
            self.mdns.expire()
        mdns_changed = self.mdns is not None and self.mdns.version != self._mdns_version
        if force_identity or mdns_changed or self.held:
            await self._merge_identity()

    def _holding(self) -> dict[str, tuple[str, ...]] | None:
        """Where record_seen puts new randomised MACs: nowhere (join at once) without mDNS,
        the only source that can tell they are a known device under a new MAC, nor during a
        fresh box's baseline (there is no known device to be; they are part of the site)."""
        return {} if self.mdns is not None and not self._baseline else None

    def _hold(self, held: dict[str, tuple[str, ...]] | None) -> None:
        """Remember new randomised MACs until mDNS tells whether they are known devices."""
        mono = time.monotonic()
        for mac, ips in (held or {}).items():
            _, since = self.held.get(mac, ((), mono))
            if mac in self.held or len(self.held) < MAX_BUFFERED:
                self.held[mac] = (ips, since)

    async def _sweep_all(self) -> list[SweepResult]:
        results = []
        s = self.settings
        for plan in self.plans:
            sock = self.sockets.get(plan.interface.name)
            if sock is None:
                # No raw socket (no CAP_NET_RAW): the kernel's own ARP does the asking.
                answers, took = await kernel_sweep(
                    plan.targets, plan.interface.name, rate_pps=s.arp_rate_pps
                )
                results.append(SweepResult(str(plan.subnet), answers, len(plan.targets), took))
                log.info("discovery.swept_by_kernel", subnet=str(plan.subnet),
                         hosts=len(answers), duration_s=round(took, 3))  # fmt: skip
                continue
            try:
                result = await sock.sweep(
                    str(plan.subnet),
                    plan.targets,
                    src_ip=plan.interface.ip,
                    rate_pps=s.arp_rate_pps,
                    timeout_s=s.arp_timeout_s,
                    attempts=s.arp_attempts,
                )
            except OSError as exc:
                log.error("discovery.sweep_failed", subnet=str(plan.subnet), error=str(exc))
                # The interface went away or changed: the next re-plan opens a fresh socket.
                sock.close()
                self.sockets.pop(plan.interface.name, None)
                continue
            log.info(
                "discovery.swept",
                subnet=result.subnet,
                hosts=result.hosts,
                sent=result.sent,
                duration_s=round(result.duration_s, 3),
            )
            results.append(result)
        return results

    def _publish_mdns_heard(self, services: Sequence[MdnsService]) -> None:
        """Addresses whose mDNS answers were resolved since the last merge: liveness
        evidence for polling (HostHeard on the bus, services/polling/liveness.py)."""
        mono, wall = time.monotonic(), self.ctx.clock.now().wall
        since = getattr(self, "_mdns_heard_mono", 0.0)
        for svc in services:
            if svc.resolved_at > since:
                for address in svc.addresses:
                    at = wall - (mono - svc.resolved_at)
                    self.ctx.bus.publish(HostHeard(address, "mdns", at))
        self._mdns_heard_mono = mono

    async def _merge_identity(self) -> None:
        mdns_services = self.mdns.snapshot() if self.mdns else []
        self._publish_mdns_heard(mdns_services)
        if self.mdns is not None:
            self._mdns_version = self.mdns.version
        # Devices a technician added by IP only (no MAC yet) are the poller's, not ours.
        devices = [d for d in await self.ctx.store.read(inventory.all_devices) if d.mac]
        if not self._owners_loaded:
            for device in devices:
                for stored in device.attrs.get("mdns", []):
                    if isinstance(stored, dict):
                        key = (str(stored.get("type", "")), str(stored.get("name", "")))
                        self.owners.setdefault(key, (device.mac, 0.0))
            self._owners_loaded = True
        if self.held and await self._settle_held(devices, mdns_services):
            devices = [d for d in await self.ctx.store.read(inventory.all_devices) if d.mac]
        present = await self.ctx.store.query(
            "SELECT device_id FROM device_presence WHERE present = 0"
        )
        gone = {row["device_id"] for row in present}
        fingerprints = await self._fingerprint([d for d in devices if d.id not in gone])
        looked_up = await self._lookup_names([d for d in devices if d.id not in gone], fingerprints)
        gateways = self.gateways
        announced = await self._assign_owners(devices, mdns_services)
        owners = self.owners
        now = self.ctx.clock.now().wall

        def merge(tx: Tx) -> None:
            for device in devices:
                ips = {device.ip, *[i for i in device.attrs.get("ips", []) if isinstance(i, str)]}
                owned = announced.get(device.mac, [])
                keys = {(s.type, s.name) for s in owned}
                stored = [
                    inventory.mdns_from_attrs(m)
                    for m in device.attrs.get("mdns", [])
                    if isinstance(m, dict)
                ]
                # A service this device announced once and that is gone (asleep, goodbye)
                # stays part of its identity; one that another MAC announced since does not.
                kept = [
                    s
                    for s in stored
                    if (s.type, s.name) not in keys
                    and owners.get((s.type, s.name), (device.mac, 0.0))[0] == device.mac
                ]
                found = fingerprints.get(device.mac)
                other_names = looked_up.get(device.mac)
                if (
                    found is None
                    and other_names is None
                    and not owned
                    and len(kept) == len(stored)
                    and "evidence" in device.attrs
                    and not (ips & gateways)
                ):
                    continue  # nothing new to merge
                inventory.update_identity(
                    tx,
                    device.mac,
                    snmp=found.identity if found else None,
                    credential=found.credential if found else "",
                    mdns=_unique([*owned, *kept]),
                    is_gateway=bool(ips & gateways),
                    now=now,
                    other_names=other_names,
                )

        kinds = self.ctx.config.alerting.down_alert_kinds

        def merge_and_forward(tx: Tx) -> None:
            merge(tx)
            forward_changes(tx, kinds)  # names, kinds, models learnt: to home, same commit

        await self.ctx.store.write(merge_and_forward)

    async def _assign_owners(
        self, devices: Sequence[inventory.DeviceRow], services: Sequence[MdnsService]
    ) -> dict[str, list[MdnsService]]:
        """mac -> the current services it announced.

        A service belongs to the MAC that holds its newest address *after* the announcement
        that changed it last (a new lease re-announces with a new A record first). Who holds
        it is asked by ARP: the last sweep's answers if that sweep started after the
        announcement, else a short sweep of just those addresses now, because the inventory
        may still show the address's previous holder (two devices that swapped leases). Until
        one MAC answers, the service keeps its previous owner: a device that later takes an
        old address of it inherits nothing. Without raw ARP the inventory is all there is.
        """
        due = [
            svc
            for svc in services
            if self._lan_address(svc)
            and (
                (owner := self.owners.get((svc.type, svc.name))) is None
                or owner[1] != svc.resolved_at
            )
        ]
        holders: dict[str, frozenset[str]] = {}
        if self.sockets:
            holders.update(self._sweep_answers)
            recent = {
                self._lan_address(svc) for svc in due if svc.resolved_at >= self._sweep_started
            }
            if recent:
                holders.update(await self._ask(recent))
        else:
            held_by: dict[str, set[str]] = {}
            for device in devices:
                ips = {device.ip, *[i for i in device.attrs.get("ips", []) if isinstance(i, str)]}
                for ip in ips - {""}:
                    held_by.setdefault(ip, set()).add(device.mac)
            holders = {ip: frozenset(macs) for ip, macs in held_by.items()}
        known = {d.mac for d in devices}
        for svc in due:
            macs = holders.get(self._lan_address(svc), frozenset())
            # None (gone) or two (a conflict): undecided, asked again later. A MAC not in the
            # inventory yet (a randomised one held back) waits until it is linked or joins.
            if len(macs) == 1 and (mac := next(iter(macs))) in known:
                self.owners[(svc.type, svc.name)] = (mac, svc.resolved_at)
        announced: dict[str, list[MdnsService]] = {}
        for svc in services:
            owner = self.owners.get((svc.type, svc.name))
            if owner is not None:
                announced.setdefault(owner[0], []).append(svc)
        return announced

    def _lan_address(self, svc: MdnsService) -> str:
        """The service's newest address on a discovered subnet ("" if none): a host may also
        announce a link-local (169.254/16) or another network's address."""
        return next((a for a in svc.addresses if self._wanted(a)), "")

    async def _ask(self, ips: Iterable[str]) -> dict[str, frozenset[str]]:
        """Who answers ARP for ``ips`` now: a short sweep of just these addresses (one
        timeout at most, sooner when all answer)."""
        s = self.settings
        wanted = set(ips)
        answers: dict[str, frozenset[str]] = {}
        for plan in self.plans:
            sock = self.sockets.get(plan.interface.name)
            targets = [ip for ip in wanted if ip in plan.targets]
            if sock is None or not targets:
                continue
            try:
                result = await sock.sweep(
                    str(plan.subnet),
                    targets,
                    src_ip=plan.interface.ip,
                    rate_pps=s.arp_rate_pps,
                    timeout_s=s.arp_timeout_s,
                    attempts=s.arp_attempts,
                )
            except (OSError, RuntimeError) as exc:
                log.warning("discovery.ask_failed", subnet=str(plan.subnet), error=str(exc))
                continue
            answers.update(result.answers)
        return answers

    async def _settle_held(
        self, devices: Sequence[inventory.DeviceRow], services: Sequence[MdnsService]
    ) -> bool:
        """Link held randomised MACs to the device they are, or join them once the hold is
        over. A held MAC is a known device when the mDNS services announced from its address
        are that device's (same instances, or the same mDNS host name, which responders keep
        unique on a link by probing, RFC 6762 section 8). True if the inventory changed."""
        mono = time.monotonic()
        local = {d.mac: d for d in devices if lookup(d.mac).local}
        by_host = {
            str(d.attrs.get("names", {}).get("mdns", "")).lower(): d.mac
            for d in local.values()
            if isinstance(d.attrs.get("names"), dict) and d.attrs["names"].get("mdns")
        }
        at_address: dict[str, list[MdnsService]] = {}
        for svc in services:
            if address := self._lan_address(svc):
                at_address.setdefault(address, []).append(svc)
        links: list[tuple[str, str, tuple[str, ...]]] = []
        joins: list[inventory.Seen] = []
        known = {d.mac for d in devices}
        for mac, (ips, since) in list(self.held.items()):
            if mac in known:
                del self.held[mac]
                continue
            candidates: set[str] = set()
            for svc in (s for ip in ips for s in at_address.get(ip, [])):
                owner = self.owners.get((svc.type, svc.name))
                if owner is not None and owner[0] in local and owner[0] != mac:
                    candidates.add(owner[0])
                if svc.short_host.lower() in by_host:
                    candidates.add(by_host[svc.short_host.lower()])
            if len(candidates) == 1:
                links.append((candidates.pop(), mac, ips))
                del self.held[mac]
            elif mono - since >= RANDOM_MAC_HOLD_S:
                joins.append(inventory.Seen(mac, ips))
                del self.held[mac]
        if not links and not joins:
            return False
        now = self.ctx.clock.now().wall
        roles = self.gateways

        def store(tx: Tx) -> list[Event]:
            events: list[Event] = []
            for old, new, ips in links:
                events += inventory.rekey(tx, old, new, ips, now)
            return events + inventory.record_seen(
                tx, joins, now, active=False, source="arp", roles=roles
            )

        await self._write(store)
        for old, new, _ in links:
            for key, (holder, stamp) in list(self.owners.items()):
                if holder == old:
                    self.owners[key] = (new, stamp)
        return True

    async def _fingerprint(self, devices: Sequence[inventory.DeviceRow]) -> dict[str, Fingerprint]:
        fp = self.fingerprinter
        if fp is None:
            return {}
        rows = await self.ctx.store.query("SELECT device_id, credential, updated FROM device_snmp")
        known = {r["device_id"]: r for r in rows}
        wall = self.ctx.clock.now().wall
        mono = time.monotonic()
        due: list[tuple[inventory.DeviceRow, str]] = []
        for device in devices:
            if not device.ip:
                continue
            if self._snmp_next_try.get(device.mac, 0.0) > mono:
                continue  # answered no credential lately
            row = known.get(device.id)
            if row is None:
                due.append((device, ""))
            elif wall - float(row["updated"]) >= self.settings.snmp_refresh_s:
                due.append((device, str(row["credential"])))  # the one that worked, first
        if not due:
            return {}
        answers = await asyncio.gather(
            *(fp.identify(device.ip, preferred) for device, preferred in due),
            return_exceptions=True,
        )
        found: dict[str, Fingerprint] = {}
        for (device, _), answer in zip(due, answers, strict=True):
            if isinstance(answer, Fingerprint):
                found[device.mac] = answer
                log.info("discovery.snmp_identified", device=device.ip, platform=
                         answer.identity.platform, model=answer.identity.model)  # fmt: skip
            else:
                if isinstance(answer, BaseException):
                    log.warning("discovery.snmp_failed", device=device.ip, error=str(answer))
                self._snmp_next_try[device.mac] = mono + NO_ANSWER_RETRY_S
        return found

    async def _lookup_names(
        self, devices: Sequence[inventory.DeviceRow], fingerprints: dict[str, Fingerprint]
    ) -> dict[str, dict[str, str]]:
        """Reverse DNS (asked of the default gateway, the LAN's usual DNS server) and NetBIOS
        names of the devices nothing else names (no usable sysName, no mDNS name), once per
        ``snmp_refresh_s`` each: mac -> {"rdns": ..., "netbios": ...}."""
        mono = time.monotonic()
        due: list[inventory.DeviceRow] = []
        for device in devices:
            if not device.ip or self._names_next.get(device.mac, 0.0) > mono:
                continue
            found = fingerprints.get(device.mac)
            stored = device.attrs.get("names")
            known = stored if isinstance(stored, dict) else {}
            named_by_snmp = bool(found and inventory.best_name(found.identity, [])[0])
            if named_by_snmp or (found is None and "snmp" in known):
                continue
            if any(k in known for k in ("mdns", "mdns_friendly", "mdns_instances")):
                continue
            due.append(device)
        if not due:
            return {}
        server = min(self.gateways) if self.gateways else None
        limit = asyncio.Semaphore(NAME_LOOKUPS_AT_ONCE)

        async def one(ip: str) -> names.HostNames:
            async with limit:
                return await names.host_names(ip, server)

        answers = await asyncio.gather(*(one(d.ip) for d in due), return_exceptions=True)
        out: dict[str, dict[str, str]] = {}
        for device, answer in zip(due, answers, strict=True):
            self._names_next[device.mac] = mono + self.settings.snmp_refresh_s
            if isinstance(answer, names.HostNames) and (answer.rdns or answer.netbios):
                out[device.mac] = {"rdns": answer.rdns, "netbios": answer.netbios}
        return out

    async def _expire(self) -> None:
        now = self.ctx.clock.now().wall
        await self._write(lambda tx: inventory.expire(tx, now, self.settings.leave_after_s))

    async def _write(self, fn: Callable[[Tx], list[Event]]) -> list[Event]:
        kinds = self.ctx.config.alerting.down_alert_kinds

        def write_and_forward(tx: Tx) -> list[Event]:
            events = fn(tx)
            forward_changes(tx, kinds)  # the inventory's changes to home, in the same commit
            return events

        events = await self.ctx.store.write(write_and_forward)
        for event in events:
            log.info(event.kind, device_id=event.device_id, message=event.message)
            self.ctx.bus.publish(event)
        return events

    # ---- passive sources ----

    def _wanted(self, ip: str) -> bool:
        try:
            address = ipaddress.IPv4Address(ip)
        except ValueError:
            return False
        for plan in self.plans:
            if address in plan.subnet and address in plan.interface.network:
                return ip != plan.interface.ip and not any(
                    address in ipaddress.ip_network(ex, strict=False)
                    for ex in self.settings.exclude
                )
        return False

    def _on_sighting(self, sighting: ArpSighting) -> None:
        if sighting.active or not self.settings.passive_arp or not self._wanted(sighting.ip):
            return
        if sighting.mac not in self._passive and len(self._passive) >= MAX_BUFFERED:
            return
        ips = self._passive.setdefault(sighting.mac, set())
        if len(ips) < inventory.MAX_IPS:
            ips.add(sighting.ip)


def _unique(services: Iterable[MdnsService]) -> list[MdnsService]:
    seen: dict[tuple[str, str], MdnsService] = {}
    for svc in services:
        seen.setdefault((svc.type, svc.name), svc)
    return list(seen.values())


def discovery_factory(ctx: AppContext, snmp: SnmpClient | None = None) -> DiscoveryService | None:
    return DiscoveryService(ctx, snmp) if ctx.config.discovery.enabled else None
