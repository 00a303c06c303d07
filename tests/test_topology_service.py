"""The topology service against a real agent (snmpsim on loopback) and a real store: where
a device was placed survives a restart, so a move made while the appliance was off is still
reported as a move (``device.moved``) at the first read after it (no root)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from core.config import parse_config
from services.polling.topology_service import TopologyService
from services.store.records import Event
from simsite.local_agents import Snmpsim
from simsite.recordings.generate import LldpNeighbour, SwitchPort, switch_recording
from tests.web_support import appliance, insert_device

SWITCH_MAC, NAS_MAC, GATEWAY_MAC = "a0:40:a0:00:00:03", "00:11:32:00:00:20", "00:08:a2:00:00:01"
CONFIG = """
[[snmp.credentials]]
name = "sw"
community = "switch"
[polling]
snmp_timeout_s = 2.0
"""


def _write(path: Path, nas_port: int) -> None:
    ports = [SwitchPort(p, (NAS_MAC,) if p == nas_port else (), 10) for p in range(2, 11)]
    ports.insert(0, SwitchPort(1, (GATEWAY_MAC,), 10))
    gw = LldpNeighbour(1, "gw", GATEWAY_MAC, "igb1", "pfSense", 0x08, "127.0.0.9")
    path.write_text(switch_recording("sw-lab", SWITCH_MAC, "127.0.0.1", ports, [gw]))


async def _seed(ctx: Any) -> dict[str, int]:
    now = time.time()
    ids: dict[str, int] = {}

    def write(tx: Any) -> None:
        ids["sw"] = insert_device(tx, ip="127.0.0.1", name="sw-lab", kind="switch",
                                  mac=SWITCH_MAC, now=now)  # fmt: skip
        ids["nas"] = insert_device(tx, ip="127.0.0.20", name="nas", kind="nas", mac=NAS_MAC,
                                   now=now)  # fmt: skip
        ids["gw"] = insert_device(tx, ip="127.0.0.9", name="gw", kind="router", mac=GATEWAY_MAC,
                                  now=now)  # fmt: skip
        tx.conn.execute(
            "INSERT INTO device_snmp (device_id, credential, updated) VALUES (?, 'sw', ?)",
            (ids["sw"], now),
        )

    await ctx.store.write(write)
    return ids


async def test_a_move_while_the_appliance_was_off_is_reported_after_the_restart(
    tmp_path: Path,
) -> None:
    recordings = tmp_path / "rec"
    recordings.mkdir()
    _write(recordings / "switch.snmprec", 7)
    config = parse_config(CONFIG)
    agent = Snmpsim([recordings / "switch.snmprec"], tmp_path / "agent")
    agent.start()
    try:
        async with appliance(tmp_path, config) as ctx:
            ids = await _seed(ctx)
            svc = TopologyService(ctx, snmp_port=agent.port)
            await svc.setup()
            try:
                update = await svc.read_once()
            finally:
                await svc.teardown()
            placed = {d.device_id: d for d in update.placed}
            assert (placed[ids["nas"]].if_index, placed[ids["nas"]].via) == (7, "fdb")
            assert (placed[ids["gw"]].if_index, placed[ids["gw"]].via) == (1, "lldp")
            assert svc.varbinds > 0
        # Off; the NAS is moved to g9; on again (same store, a fresh service).
        agent.stop()
        _write(recordings / "switch.snmprec", 9)
        agent.start()
        async with appliance(tmp_path, config) as ctx:
            events = ctx.bus.subscribe(Event)
            svc = TopologyService(ctx, snmp_port=agent.port)
            await svc.setup()
            try:
                await svc.read_once()
            finally:
                await svc.teardown()
            got: list[Event] = []
            while not events.queue.empty():
                got.append(events.queue.get_nowait())
            moved = [e for e in got if e.kind == "device.moved"]
            assert [e.message for e in moved] == [
                "nas (127.0.0.20) moved from sw-lab port g7 to sw-lab port g9"
            ]
            rows = await ctx.store.query(
                "SELECT kind, data FROM events WHERE kind = 'device.moved'", ()
            )
            assert len(rows) == 1 and json.loads(rows[0]["data"])["to_port"] == "g9"
    finally:
        agent.stop()
