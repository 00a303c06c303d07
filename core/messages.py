"""Requests the status page puts on the bus for other services to act on, and facts one
service hands another.

The page never changes another service's state directly: an admin's click becomes one of these
frozen records on ``ctx.bus`` and the owning service (discovery, hardware) subscribes to it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RediscoverRequested:
    """An admin asked for a discovery sweep now (discovery subscribes to this)."""

    requested_by: str  # "admin@<client address>", for the log line
    at: float  # wall time of the request


@dataclass(frozen=True)
class IdentifyRequested:
    """Blink the front panel so the technician can find this box in the rack."""

    duration_s: float
    requested_by: str


@dataclass(frozen=True)
class HostHeard:
    """Discovery heard a host speak on its own: liveness evidence polling uses between its
    polls (services/polling/liveness.py). Published by discovery, read by polling."""

    ip: str
    method: str  # "arp" (a frame the host sent) or "mdns" (an announcement or answer)
    at: float  # wall time it was heard
