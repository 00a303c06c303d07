"""Which mDNS services describe the host that announces them, and which do not.

A service announced from an address is not always the host itself:

* a Cast speaker that leads a speaker group also announces the group (``_googlecast._tcp``,
  ``md=Google Cast Group``, its own friendly name "All speakers") from its own address;
* a computer that shares a printer announces the print queue (``_ipp._tcp``,
  ``rp=printers/<queue>``, ``ty`` = the printer's model): the computer is not a printer;
* a Bonjour Sleep Proxy (an Apple TV, a HomePod, an AirPort) announces ``_sleep-proxy._udp``,
  and answers for the services of sleeping Macs with their records, not its own.

Only services that describe the host name it, give its model and vote for its kind; the others
are kept (the page lists them) with the reason they were set aside. Anything not recognised
as hosted describes the host, as before: ``_device-info``, ``_workstation``, the host's own
printer or camera service.

Sources: Google Cast groups (TXT ``md``, ``fn``, as announced by Cast firmware), CUPS' DNS-SD
registration (``rp=printers/...`` or ``classes/...``, and the ``printer-type`` key only CUPS
sends; Apple's Bonjour Printing Specification 1.2 section 9), Apple's Sleep Proxy
(``_sleep-proxy._udp``, RFC 6762 appendix and Apple's "Bonjour Sleep Proxy").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from services.discovery.mdns import MdnsService

#: Service types a printer announces for itself (and a computer for a queue it shares).
PRINT_TYPES: Final = frozenset({"_ipp._tcp", "_ipps._tcp", "_printer._tcp", "_pdl-datastream._tcp"})
#: CUPS names its shared queues' resource paths so; embedded printers use "ipp/print" & co.
_CUPS_QUEUE: Final = re.compile(r"^(printers|classes)/", re.IGNORECASE)
_CAST_GROUP: Final = re.compile(r"\bcast group\b", re.IGNORECASE)


@dataclass(frozen=True)
class Hosted:
    """A service set aside: it is something the host serves, not the host."""

    service: MdnsService
    why: str  # "a Cast speaker group this device leads"


def bare_type(service_type: str) -> str:
    """``"_ipp._tcp.local."`` -> ``"_ipp._tcp"``."""
    t = service_type.rstrip(".")
    return t[: -len(".local")] if t.endswith(".local") else t


def hosted_reason(svc: MdnsService) -> str:
    """Why ``svc`` does not describe its host ("" when it does)."""
    kind = bare_type(svc.type)
    txt = {k.lower(): v for k, v in svc.txt.items()}
    if kind == "_googlecast._tcp" and _CAST_GROUP.search(txt.get("md", "")):
        return "a Cast speaker group this device leads, not the device"
    if kind in PRINT_TYPES and (_CUPS_QUEUE.match(txt.get("rp", "")) or "printer-type" in txt):
        return "a print queue this computer shares, not the device"
    if kind == "_sleep-proxy._udp":
        return "a sleep proxy: it answers for other hosts while they sleep"
    return ""


def split(services: Iterable[MdnsService]) -> tuple[list[MdnsService], list[Hosted]]:
    """(services that describe the host, services it only hosts, with the reason)."""
    own: list[MdnsService] = []
    hosted: list[Hosted] = []
    for svc in services:
        why = hosted_reason(svc)
        if why:
            hosted.append(Hosted(svc, why))
        else:
            own.append(svc)
    return own, hosted
