"""What home needs to route and group a box's alerts: the device kind, and a dead gateway's
dependants.

* Every alert about a device carries its kind in ``data.kind`` (``router``, ``switch``,
  ``server``, ...: the inventory's kind as polling reports it), so home's routing rules on
  ``kinds`` match (docs/notifications.md).
* The gateway's "down" alert carries ``data.suppressed``: the watched devices behind it that were
  not answering either, whose own "down" alerts the box held back (service.py's dependency rule),
  as ``[{"device_id", "name", "ip", "kind"}]``. The opening lists those silent at that moment
  (any miss: they are polled in the same rounds, so by the gateway's second miss they have
  missed too); the resolution lists every one seen silent during the outage. Home names the
  gateway as the cause with this list, in one message (docs/uplink.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.alerting.rules import Condition, DeviceMemory
from services.polling.results import PollResult

MAX_LISTED = 100  # an alert record stays small; a site with more says "and N more" at home


@dataclass(frozen=True)
class Dependant:
    device_id: int
    name: str
    ip: str
    kind: str

    def as_dict(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "name": self.name, "ip": self.ip, "kind": self.kind}


def with_kind(conditions: list[Condition], result: PollResult) -> list[Condition]:
    """``data.kind`` on the conditions about the polled device itself."""
    if not result.kind:
        return conditions
    return [
        Condition(
            c.key,
            c.rule,
            c.device_id,
            c.severity,
            c.message,
            {**c.data, "kind": result.kind},
            c.hold,
        )
        if c.device_id == result.device_id and "kind" not in c.data
        else c
        for c in conditions
    ]


class OutageDependants:
    """The watched devices silent while the gateway is down (see the module's docstring)."""

    def __init__(self) -> None:
        self.known: dict[int, Dependant] = {}  # every device polled: its latest name/ip/kind
        self.watched: set[int] = set()  # those whose going away raises a "down" alert
        self.during: dict[int, Dependant] = {}  # silent during the current gateway outage

    def saw(self, result: PollResult, watched: bool) -> None:
        self.known[result.device_id] = Dependant(
            result.device_id, result.name, result.ip, result.kind
        )
        if watched:
            self.watched.add(result.device_id)
        else:
            self.watched.discard(result.device_id)

    def silent(
        self, memory: dict[int, DeviceMemory], held: set[int], gateway_id: int
    ) -> dict[int, Dependant]:
        ids = {d for d in self.watched if (m := memory.get(d)) is not None and m.missed > 0}
        return {d: self.known[d] for d in sorted(ids | held) if d != gateway_id and d in self.known}

    def on_gateway(
        self, c: Condition, memory: dict[int, DeviceMemory], held: set[int], gateway_id: int
    ) -> Condition:
        """The gateway's own "down" condition with ``data.suppressed``; other conditions as
        they are. Call for each condition of a gateway poll, before the holds are cleared."""
        if c.rule != "device.down" or c.device_id != gateway_id:
            return c
        if c.severity is not None:  # down (this poll or still): who is silent with it
            self.during.update(self.silent(memory, held, gateway_id))
            listed = self.during
        elif self.during:  # answers again: everyone seen silent during the outage
            self.during.update(self.silent(memory, held, gateway_id))
            listed, self.during = self.during, {}
        else:
            return c
        suppressed = [d.as_dict() for d in list(listed.values())[:MAX_LISTED]]
        data = {**c.data, "suppressed": suppressed, "suppressed_total": len(listed)}
        return Condition(c.key, c.rule, c.device_id, c.severity, c.message, data, c.hold)
