"""mDNS / DNS-SD: every announced service on the LAN, resolved, with its TXT record.

python-zeroconf does the protocol. We browse the DNS-SD meta-query
(``_services._dns-sd._udp.local.``, RFC 6763 section 9) to learn every service type, and also
browse the types the classifier relies on directly (``known_types``): many embedded
responders never answer the meta-query. One browser per type; each instance is resolved
(SRV, TXT, A) when it appears or changes. Instances are keyed by (type, full name); a goodbye
(TTL 0) removes them.

Addresses are records with a TTL like any other: each one kept expires when its A record does
(``expire``), and a newer announcement (a new lease) puts its address first. So a device that
moved leaves no address behind for whoever gets its old one.

The watcher listens on the addresses it is given (``start`` / ``follow``): the appliance's
addresses on the discovered LANs. When they change (DHCP at boot, a new lease, a cable plugged
in later) ``follow`` restarts the listener on the new ones; the services known so far stay.

Everything a device announces is hostile input: names and TXT values are sanitised and
bounded, and the number of types and instances kept is capped so that a device announcing
thousands of services cannot exhaust the appliance's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from zeroconf import (
    BadTypeInNameException,
    IPVersion,
    ServiceStateChange,
    Zeroconf,
    current_time_millis,
)
from zeroconf._dns import DNSAddress  # re-exported by zeroconf, but not in its __all__
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf
from zeroconf.const import _CLASS_IN, _TYPE_A

from core.logs import get_log
from services.discovery.sanitize import clean_mapping, clean_name

log = get_log("discovery")

META_QUERY: Final = "_services._dns-sd._udp.local."
RESOLVE_TIMEOUT_MS: Final = 3000
MAX_TYPES: Final = 256
MAX_INSTANCES: Final = 4096
MAX_CONCURRENT_RESOLVES: Final = 16
MAX_TXT_ITEMS: Final = 32


@dataclass(frozen=True)
class MdnsService:
    """One resolved DNS-SD service instance; all text sanitised."""

    type: str  # "_ipp._tcp.local."
    name: str  # the instance label, e.g. "Office Printer"
    host: str  # SRV target, e.g. "brn3c2af4.local."
    port: int
    addresses: tuple[str, ...]
    txt: dict[str, str] = field(hash=False)
    resolved_at: float = 0.0  # time.monotonic() of the announcement that changed it last
    #: address -> when its A record expires (time.monotonic() s); addresses newest first.
    expires: dict[str, float] = field(default_factory=dict, hash=False, compare=False)

    @property
    def short_host(self) -> str:
        host = self.host.rstrip(".")
        return host[: -len(".local")] if host.endswith(".local") else host

    def as_attrs(self) -> dict[str, object]:
        return {
            "type": self.type,
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "txt": self.txt,
        }


def _instance_label(full_name: str, service_type: str) -> str:
    suffix = "." + service_type
    label = full_name[: -len(suffix)] if full_name.endswith(suffix) else full_name
    return clean_name(label)


class MdnsWatcher:
    """Browses every service type until stopped; ``snapshot()`` is the current set.

    ``known_types``: service types browsed directly, whatever the meta-query answers
    (``"_ipp._tcp.local."``).
    """

    def __init__(self, known_types: Iterable[str] = ()) -> None:
        self._known_types = tuple(dict.fromkeys(known_types))
        self._interfaces: tuple[str, ...] | None = None  # None: every interface
        self._azc: AsyncZeroconf | None = None
        self._browsers: dict[str, AsyncServiceBrowser] = {}
        self._services: dict[tuple[str, str], MdnsService] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_RESOLVES)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped = 0  # types or instances refused by the caps
        self.version = 0  # bumped on every change of the service set
        self.changed = asyncio.Event()  # set on every change; the consumer clears it

    async def start(self, interfaces: Sequence[str] | None = None) -> None:
        """Listen on ``interfaces`` (the appliance's IPv4 addresses; None: all of them; empty:
        not yet, ``follow`` starts it when an address arrives)."""
        self._loop = asyncio.get_running_loop()
        wanted = None if interfaces is None else tuple(sorted(set(interfaces)))
        # Remembered only once listening: a failed start (OSError) is tried again by the
        # next ``follow`` with the same addresses.
        self._interfaces = ("<not started>",)
        if wanted == ():
            self._interfaces = wanted
            return
        if wanted is None:
            self._azc = AsyncZeroconf(ip_version=IPVersion.V4Only)
        else:
            self._azc = AsyncZeroconf(interfaces=list(wanted), ip_version=IPVersion.V4Only)
        self._interfaces = wanted
        self._browse(META_QUERY)
        for service_type in self._known_types:
            self._browse(service_type)

    @property
    def listening_on(self) -> tuple[str, ...] | None:
        return self._interfaces

    async def follow(self, interfaces: Sequence[str]) -> bool:
        """Listen on ``interfaces`` from now on; True if that changed anything (restarted).

        Multicast membership is per address: a listener opened before the LAN address
        arrived hears nothing on it, so a change of addresses means a new listener.
        """
        wanted = tuple(sorted(set(interfaces)))
        if wanted == self._interfaces:
            return False
        await self._close()
        log.info("mdns.interfaces", addresses=",".join(wanted) or "none")
        await self.start(wanted)
        return True

    def expire(self, now_s: float | None = None) -> bool:
        """Drop addresses whose A record expired (TTL); True if any service changed."""
        now = time.monotonic() if now_s is None else now_s
        changed = False
        for key, svc in list(self._services.items()):
            alive = {a: at for a, at in svc.expires.items() if at > now}
            if len(alive) == len(svc.expires):
                continue
            addresses = tuple(a for a in svc.addresses if a in alive)
            self._services[key] = dataclasses.replace(svc, addresses=addresses, expires=alive)
            changed = True
            if not addresses and self._azc is not None:
                # Nobody refreshed the host's address (a quiet device): ask for it again. A
                # device still there answers with its address now, wherever that is.
                self._start_resolve(*key)
        if changed:
            self.version += 1
            self.changed.set()
        return changed

    async def stop(self) -> None:
        await self._close()

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for browser in self._browsers.values():
            with contextlib.suppress(Exception):
                await browser.async_cancel()
        self._browsers.clear()
        if self._azc is not None:
            await self._azc.async_close()
            self._azc = None

    def snapshot(self) -> list[MdnsService]:
        return sorted(self._services.values(), key=lambda s: (s.type, s.name))

    def _browse(self, service_type: str) -> None:
        if self._azc is None or service_type in self._browsers:
            return
        if len(self._browsers) >= MAX_TYPES:
            self.dropped += 1
            return
        try:
            browser = AsyncServiceBrowser(
                self._azc.zeroconf, [service_type], handlers=[self._on_change]
            )
        except BadTypeInNameException:
            log.debug("mdns.bad_type", type=service_type)
            return
        self._browsers[service_type] = browser

    def _on_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        # Called by zeroconf on its loop; hop onto ours explicitly to be safe either way.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._handle, service_type, name, state_change)

    def _handle(self, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if service_type == META_QUERY:
            if state_change is not ServiceStateChange.Removed:
                self._browse(name)
            return
        key = (service_type, name)
        if state_change is ServiceStateChange.Removed:
            if self._services.pop(key, None) is not None:
                self.version += 1
                self.changed.set()
            return
        if key not in self._services and len(self._services) >= MAX_INSTANCES:
            self.dropped += 1
            return
        self._start_resolve(service_type, name)

    def _start_resolve(self, service_type: str, name: str) -> None:
        task = asyncio.create_task(self._resolve(service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        azc = self._azc
        if azc is None:
            return
        async with self._limit:
            # The constructor validates the name and would refuse hostile ones; a browser has
            # to resolve whatever the LAN announces, so the name is set after construction.
            info = AsyncServiceInfo(service_type, f"placeholder.{service_type}")
            info.name = name
            try:
                ok = await info.async_request(azc.zeroconf, RESOLVE_TIMEOUT_MS)
            except Exception as exc:  # noqa: BLE001 - a malformed record must never stop the browse
                log.debug("mdns.resolve_failed", type=service_type, error=str(exc))
                return
        if not ok:
            return
        txt: dict[str | bytes, str | bytes | None] = {}
        try:
            txt.update(dict(info.properties.items()))
        except Exception:  # noqa: BLE001 - undecodable TXT: keep the service without it
            txt = {}
        service = MdnsService(
            type=clean_name(service_type),
            name=_instance_label(name, service_type),
            host=clean_name(info.server or ""),
            port=int(info.port or 0),
            addresses=tuple(info.parsed_addresses(IPVersion.V4Only)),
            txt=clean_mapping(txt, max_items=MAX_TXT_ITEMS),
            resolved_at=time.monotonic(),
            expires=_address_expiry(azc.zeroconf, info.server or ""),
        )
        old = self._services.get((service_type, name))
        if old is not None and dataclasses.replace(old, resolved_at=0.0) == dataclasses.replace(
            service, resolved_at=0.0
        ):
            # A periodic re-announcement: nothing new, keep the first resolution time (the
            # owner of a service is decided by the announcement that changed it), but the
            # refreshed records live longer.
            self._services[(service_type, name)] = dataclasses.replace(
                old, expires=service.expires or old.expires
            )
            return
        self._services[(service_type, name)] = service
        self.version += 1
        self.changed.set()


def _address_expiry(zc: Zeroconf, server: str) -> dict[str, float]:
    """address -> expiry (time.monotonic() s) of the host's cached A records, newest first."""
    if not server:
        return {}
    now_ms = current_time_millis()
    records = [
        r
        for r in zc.cache.get_all_by_details(server, _TYPE_A, _CLASS_IN)
        if isinstance(r, DNSAddress) and not r.is_expired(now_ms)
    ]
    records.sort(key=lambda r: r.created, reverse=True)
    out: dict[str, float] = {}
    for record in records:
        address = ".".join(str(b) for b in record.address) if len(record.address) == 4 else ""
        if address and address not in out:
            # zeroconf's clock is time.monotonic() in ms.
            out[address] = record.get_expiration_time(100) / 1000.0
    return out
