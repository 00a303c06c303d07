"""Live status: small, in-memory facts of one appliance process that change often.

Services publish into it; the status page, the LEDs and the heartbeat read ``snapshot()``;
``wait_changed()`` wakes the server-sent events and the LED state machine without polling.

Status keys are the :class:`StatusKey` members below (a ``StrEnum``: each member is also its
string, so JSON, templates and lookups by the plain text see the same key); publishers and
readers use the members, never string literals, so a typo is a mypy error instead of a fact
nobody reads.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class StatusKey(StrEnum):
    """Every live status key, with its publisher and the values it takes."""

    #: (app) "starting" | "running" | "stopping"
    PHASE = "phase"
    #: (provisioning) "unclaimed" | "claimed"
    PROVISIONING_STATE = "provisioning.state"
    #: (provisioning) the code to claim the box with, while unclaimed
    PROVISIONING_CLAIM_CODE = "provisioning.claim_code"
    #: (provisioning) the site the MSP claimed the box for
    PROVISIONING_SITE = "provisioning.site"
    #: (provisioning) version of the applied signed site configuration
    CONFIG_VERSION = "config.version"
    #: (uplink) "unconfigured" | "connected" | "buffering" | "failing"
    UPLINK_STATE = "uplink.state"
    #: (uplink) records not yet acknowledged by home
    UPLINK_BACKLOG = "uplink.backlog"
    #: (alerting) {"critical": n, "major": n, "minor": n, "warning": n}
    ALERTS_OPEN = "alerts.open"
    #: (updater) "idle" | "downloading" | "installing" | "trial"
    UPDATE_STATE = "update.state"
    #: (hardware/provisioning) True while the identify blink runs
    IDENTIFY = "identify"
    #: (discovery) "idle" (nothing configured to sweep) | "running"
    DISCOVERY_STATE = "discovery.state"
    #: (hardware) {"state": LED state name, "leds": {"power", "uplink", "alert"}: pattern}
    PANEL = "panel"
    #: (polling) why ICMP is unavailable (no CAP_NET_RAW, no ping sockets), else absent
    POLLING_ICMP = "polling.icmp"
    #: (polling) why ARP liveness probes are unavailable (no CAP_NET_RAW), else absent
    POLLING_ARP = "polling.arp"
    #: (any) text of a fault that needs a technician, else absent
    FAULT = "fault"


@dataclass
class LiveStatus:
    """Small, in-memory facts that change often and are not worth a database read."""

    facts: dict[str, Any] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    version: int = 0

    def publish(self, key: StatusKey, value: Any) -> None:
        name = str(key)  # stored as plain text: snapshots go to JSON, templates and logs
        if self.facts.get(name) != value:
            self.facts[name] = value
            self.version += 1
            # Wake every current waiter, then re-arm for the next change.
            self.changed.set()
            self.changed = asyncio.Event()

    def snapshot(self) -> dict[str, Any]:
        return dict(self.facts)

    async def wait_changed(self, timeout_s: float) -> bool:
        # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
        # arrives as the event fires, and a stopping service would then never stop.
        waiter = asyncio.ensure_future(self.changed.wait())
        try:
            done, _ = await asyncio.wait({waiter}, timeout=timeout_s)
        finally:
            waiter.cancel()
        return bool(done)
