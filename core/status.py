"""Live status: small, in-memory facts of one appliance process that change often.

Services publish into it; the status page, the LEDs and the heartbeat read ``snapshot()``;
``wait_changed()`` wakes the server-sent events and the LED state machine without polling.

Status keys in use (publisher: meaning):
  phase (app): "starting" | "running" | "stopping"
  provisioning.state (provisioning): "unclaimed" | "claimed"
  provisioning.claim_code (provisioning): the code to claim the box with, while unclaimed
  provisioning.site (provisioning): the site the MSP claimed the box for
  config.version (provisioning): version of the applied signed site configuration
  uplink.state (uplink): "unconfigured" | "connected" | "buffering" | "failing"
  uplink.backlog (uplink): records not yet acknowledged by home
  alerts.open (alerting): {"critical": n, "major": n, "minor": n, "warning": n}
  update.state (updater): "idle" | "downloading" | "installing" | "trial"
  identify (hardware/provisioning): True while the identify blink runs
  discovery.state (discovery): "idle" (nothing configured to sweep) | "running"
  panel (hardware): {"state": LED state name, "leds": {"power", "uplink", "alert"}: pattern}
  polling.icmp (polling): why ICMP is unavailable (no CAP_NET_RAW, no ping sockets), else absent
  polling.arp (polling): why ARP liveness probes are unavailable (no CAP_NET_RAW), else absent
  fault (any): text of a fault that needs a technician, else absent
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LiveStatus:
    """Small, in-memory facts that change often and are not worth a database read."""

    facts: dict[str, Any] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    version: int = 0

    def publish(self, key: str, value: Any) -> None:
        if self.facts.get(key) != value:
            self.facts[key] = value
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
