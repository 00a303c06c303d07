"""What the box's alert records carry for home's routing and grouping (docs/uplink.md): the
device kind on every alert of a device, and on the gateway's "down" the devices behind it that
were silent too and whose own alerts the box held back."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from services.alerting.service import AlertingService
from tests.test_alerting import GATEWAY, open_alerts, result, service

__all__ = ["service"]  # the fixture, shared with test_alerting


def records(svc: AlertingService) -> list[dict[str, Any]]:
    """The alert records queued for home (the uplink's outbox), oldest first."""
    conn = sqlite3.connect(svc.ctx.store.path)
    rows = conn.execute("SELECT body FROM outbox WHERE kind = 'alert' ORDER BY seq").fetchall()
    conn.close()
    return [json.loads(b) for (b,) in rows]


async def test_gateway_down_lists_the_silent_devices_behind_it(service: AlertingService) -> None:
    await service.handle_result(result(1, GATEWAY, kind="router"))
    for dev in (5, 6, 7):
        await service.handle_result(result(dev, f"198.18.0.{50 + dev}", kind="server"))
    await service.handle_result(result(8, "198.18.0.58", kind="laptop"))  # not watched
    # The gateway and the three servers stop answering (the laptop too: it comes and goes).
    for _ in range(3):
        for dev in (5, 6, 7):
            await service.handle_result(result(dev, f"198.18.0.{50 + dev}", False, kind="server"))
        await service.handle_result(result(8, "198.18.0.58", False, kind="laptop"))
        await service.handle_result(result(1, GATEWAY, False, kind="router"))
    assert open_alerts(service) == [("device.down:1", "critical")]
    (opened,) = records(service)
    assert opened["data"]["kind"] == "router"
    listed = opened["data"]["suppressed"]
    assert [(d["device_id"], d["name"], d["ip"], d["kind"]) for d in listed] == [
        (5, "dev5", "198.18.0.55", "server"),
        (6, "dev6", "198.18.0.56", "server"),
        (7, "dev7", "198.18.0.57", "server"),
    ]
    assert opened["data"]["suppressed_total"] == 3
    # Back: the resolution lists everyone seen silent during the outage.
    await service.handle_result(result(1, GATEWAY, kind="router"))
    resolved = records(service)[-1]
    assert resolved["state"] == "resolved" and resolved["key"] == "device.down:1"
    assert [d["device_id"] for d in resolved["data"]["suppressed"]] == [5, 6, 7]
    # The next outage starts afresh: nothing of this one is carried over.
    assert service.dependants.during == {}


async def test_every_alert_of_a_device_carries_its_kind(service: AlertingService) -> None:
    await service.handle_result(result(1, GATEWAY, kind="router"))
    for _ in range(3):
        await service.handle_result(result(9, "198.18.0.90", False, kind="nas"))
    await service.handle_result(result(1, GATEWAY, kind="router"))
    await service.handle_result(result(9, "198.18.0.90", False, kind="nas"))
    await service.handle_result(result(9, "198.18.0.90", True, kind="nas"))
    kinds = [(r["key"], r["state"], r["data"].get("kind")) for r in records(service)]
    assert kinds == [("device.down:9", "open", "nas"), ("device.down:9", "resolved", "nas")]
