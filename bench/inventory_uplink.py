"""What sending the inventory home costs the box's discovery writes.

    python -m bench.inventory_uplink     # figures: one sweep's write with and without the check

Discovery ends each of its store writes with ``services.uplink.devices.forward_changes`` (one
SQL query comparing every device with what home was sent). Measured here on a real store
(WAL, synchronous=FULL, the uplink's forwarder) with N devices whose ``attrs`` look like a
classified device's (evidence, mDNS services: about 2 kB): a sweep's write (``record_seen``
of every device, the write discovery makes every sweep) with the check, against the same
write without it (the peer, same run), when nothing changed (the common case); and the
time to build a full snapshot.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Final

from services.discovery import inventory
from services.discovery.migrations import DISCOVERY
from services.store import Store, Tx
from services.uplink import devices
from services.uplink.outbox import UPLINK_CHAIN, forward

SIZES: Final = (250, 4096)  # an office; discovery's MAX_DEVICES
ROUNDS: Final = 30
KINDS: Final = ("nas", "printer", "server")


def _attrs() -> str:
    evidence = [{"source": "snmp", "kind": "nas", "weight": 0.9, "why": "x" * 100}] * 8
    mdns = [{"type": "_http._tcp", "name": "y" * 40, "txt": {"a": "b" * 50}}] * 4
    return json.dumps({"ips": [], "model": "DS920+", "evidence": evidence, "mdns": mdns})


async def _one(n: int, directory: Path) -> str:
    store = Store(directory / f"box-{n}.db", chains=[UPLINK_CHAIN, DISCOVERY], forward=forward)
    await store.open()
    try:
        attrs = _attrs()
        seen = [
            inventory.Seen(f"00:11:32:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                           (f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",))
            for i in range(1, n + 1)
        ]  # fmt: skip

        def fill(tx: Tx) -> int:
            inventory.record_seen(tx, seen, 1.0, active=True, source="arp")
            tx.conn.execute("UPDATE devices SET attrs = ?", (attrs,))
            return devices.forward_changes(tx, KINDS)

        first = await store.write(fill)
        with_check: list[float] = []
        without: list[float] = []
        for round_ in range(ROUNDS):
            now = 2.0 + round_

            def sweep(tx: Tx, now: float = now) -> None:
                inventory.record_seen(tx, seen, now, active=True, source="arp")

            def sweep_checked(tx: Tx, now: float = now) -> None:
                inventory.record_seen(tx, seen, now + 0.5, active=True, source="arp")
                devices.forward_changes(tx, KINDS)

            started = time.perf_counter()
            await store.write(sweep)
            without.append(time.perf_counter() - started)
            started = time.perf_counter()
            await store.write(sweep_checked)
            with_check.append(time.perf_counter() - started)
        started = time.perf_counter()
        await store.write(lambda tx: devices.forward_snapshot(tx, KINDS))
        snapshot_s = time.perf_counter() - started
    finally:
        await store.close()
    plain, checked = statistics.median(without), statistics.median(with_check)
    return (
        f"{n} devices: sweep write {checked * 1000:.1f} ms with the device check, "
        f"{plain * 1000:.1f} ms without (peer) = {checked / plain:.2f}x, "
        f"+{(checked - plain) * 1000:.1f} ms; first forward {first} records; "
        f"full snapshot {snapshot_s * 1000:.0f} ms"
    )


def run() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        return [asyncio.run(_one(n, Path(tmp))) for n in SIZES]


if __name__ == "__main__":
    for line in run():
        print(line)
