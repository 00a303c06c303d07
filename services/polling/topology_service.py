"""The topology service: reads the switches' tables, places every device on its port.

Every ``[topology] interval_s`` (300 s by default: slower than counters) each device of a kind
in ``[topology] kinds`` with an SNMP credential is read (services/polling/topology.py), the
result is joined with the inventory (placement.py) and stored in the chain "topology"
(topology_schema.py) in one transaction with the events it implies:

- ``device.moved`` (info): a device is learned on another access port than before
  ("nas moved from sw-floor1 port g7 to sw-floor1 port g9");
- ``port.swapped`` (info): a device, or a MAC the inventory does not know, is learned on the
  access port where another device lived, and that one is no longer there ("sw-floor1 port
  g7: nas is where printer was"): a device moved or swapped.

A device that is no longer learned anywhere keeps its last place (``present`` False in the
bus message): the alert of an unplugged device still says which port it was on. After each
read a :class:`TopologyUpdate` goes on the bus for alerting.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from core.logs import get_log
from core.settings.topology import TopologySettings
from core.vocabulary import Severity
from services.context import AppContext
from services.polling.access import ClientAccess
from services.polling.inventory import load_targets
from services.polling.placement import KnownDevice, Placement, SwitchView, Topology, place
from services.polling.topology import SwitchTables, read_tables
from services.polling.topology_results import PlacedDevice, PortSnapshot, TopologyUpdate
from services.snmp import SnmpClient, SnmpCredential, SnmpError, Target
from services.store.db import Tx
from services.store.records import Event, insert_event

log = get_log("topology")

#: How often the inventory is looked at for new switches between reads (s).
TICK_S = 1.0


def label(name: str, ip: str) -> str:
    return f"{name} ({ip})" if name and ip and name != ip else name or ip


class TopologyService:
    name = "topology"

    def __init__(
        self, ctx: AppContext, snmp: SnmpClient | None = None, *, snmp_port: int = 161
    ) -> None:
        self.ctx = ctx
        self.snmp_port = snmp_port  # other than 161 only for tests and benchmarks
        self.settings: TopologySettings = ctx.config.topology
        self.shared_client = snmp
        self.client: SnmpClient | None = None
        self.tables: dict[int, SwitchTables] = {}  # last good read of each switch
        self.previous: dict[int, Placement] = {}  # placements as stored
        self.previous_since: dict[int, float] = {}
        self.reads = 0
        self.varbinds = 0  # fetched over the process's life (bench and diagnostics)

    async def setup(self) -> None:
        if self.shared_client is not None:
            self.client = self.shared_client
        else:
            self.client = SnmpClient(getattr(self.ctx.config, "snmp", None))
            await self.client.start()
        self.previous, self.previous_since = await self.ctx.store.read(load_placements)

    async def teardown(self) -> None:
        if self.client is not None and self.client is not self.shared_client:
            await self.client.close()
        self.client = None

    async def run(self) -> None:
        while True:
            started = self.ctx.clock.monotonic()
            try:
                await self.read_once()
            except Exception:
                # A bug must not stop the topology for good: log, try again next interval.
                log.exception("topology.crashed")
            await self.ctx.clock.sleep(
                max(TICK_S, self.settings.interval_s - (self.ctx.clock.monotonic() - started))
            )

    def _credentials(self) -> dict[str, SnmpCredential]:
        snmp = getattr(self.ctx.config, "snmp", None)
        if snmp is None:
            default = SnmpCredential()
            return {default.name: default}
        return {c.name: c for c in snmp.credentials}

    async def read_once(self) -> TopologyUpdate:
        """Read every switch, place every device, store, publish; returns what was published."""
        assert self.client is not None
        polling = self.ctx.config.polling
        targets = await self.ctx.store.read(lambda conn: load_targets(conn, polling))
        devices = await self.ctx.store.read(load_devices)
        credentials = self._credentials()
        switches = [t for t in targets if t.kind in self.settings.kinds and t.credential]
        for t in switches:
            credential = credentials.get(t.credential)
            if credential is None:
                continue
            target = Target(t.ip, self.snmp_port, credential, timeout_s=polling.snmp_timeout_s,
                            retries=polling.snmp_retries)  # fmt: skip
            access = ClientAccess(self.client, target)
            try:
                self.tables[t.device_id] = await read_tables(access)
            except SnmpError as exc:
                log.warning("topology.read_failed", device=t.ip, error=str(exc)[:200])
            self.varbinds += access.varbinds
        by_id = {d.device_id: d for d in devices}
        views = [
            SwitchView(sid, by_id[sid].name, by_id[sid].ip, by_id[sid].mac, tables)
            for sid, tables in self.tables.items()
            if sid in by_id
        ]
        topo = place(views, devices, self.settings.uplink_min_macs)
        now = self.ctx.clock.now().wall
        events = self._changes(topo, views, by_id)
        snapshot = self._snapshot(topo, views, by_id, now)
        previous, since = self.previous, self.previous_since

        def write(tx: Tx) -> None:
            store_topology(tx, topo, views, snapshot, previous, since, now)
            for e in events:
                insert_event(tx, e)

        await self.ctx.store.write(write)
        for pl in topo.placements.values():
            old = previous.get(pl.device_id)
            moved = old is None or (old.switch_id, old.if_index) != (pl.switch_id, pl.if_index)
            self.previous_since[pl.device_id] = now if moved else since.get(pl.device_id, now)
            self.previous[pl.device_id] = pl
        self.reads += 1
        for e in events:
            log.info(e.kind, device_id=e.device_id, message=e.message)
            self.ctx.bus.publish(e)
        self.ctx.bus.publish(snapshot)
        return snapshot

    def _port_label(self, view: SwitchView, name: str, if_index: int, alias: str) -> str:
        configured = self.settings.label_for((view.name, view.ip), (name, str(if_index)))
        return configured or alias

    def _snapshot(
        self, topo: Topology, views: list[SwitchView], by_id: dict[int, KnownDevice], now: float
    ) -> TopologyUpdate:
        ports = []
        for v in views:
            for p in v.tables.ports:
                role = topo.roles.get((v.device_id, p.if_index))
                ports.append(
                    PortSnapshot(
                        v.device_id, v.name or v.ip, p.if_index, p.name,
                        self._port_label(v, p.name, p.if_index, p.alias), p.speed_bps,
                        p.duplex, p.oper_up, p.admin_up, bool(role and role.uplink),
                    )
                )  # fmt: skip
        placed = []
        for device_id, pl in {**self.previous, **topo.placements}.items():
            d = by_id.get(device_id)
            if d is None:
                continue
            placed.append(
                PlacedDevice(
                    device_id, label(d.name, d.ip), d.kind, pl.switch_id, pl.if_index, pl.vlan,
                    pl.via, pl.shared, device_id in topo.placements,
                )
            )  # fmt: skip
        return TopologyUpdate(tuple(ports), tuple(placed), now)

    def _changes(
        self, topo: Topology, views: list[SwitchView], by_id: dict[int, KnownDevice]
    ) -> list[Event]:
        """device.moved and port.swapped events against the stored placements."""
        names = {v.device_id: v.name or v.ip for v in views}
        ports = {(v.device_id, p.if_index): p for v in views for p in v.tables.ports}

        def where(pl: Placement) -> str:
            port = ports.get((pl.switch_id, pl.if_index))
            text = f"{names.get(pl.switch_id, pl.switch_id)} port {pl.port_name}"
            lab = self._port_label(
                next(v for v in views if v.device_id == pl.switch_id), pl.port_name,
                pl.if_index, port.alias if port else "",
            ) if pl.switch_id in names else ""  # fmt: skip
            return f"{text} ({lab})" if lab and lab != pl.port_name else text

        events: list[Event] = []
        occupied_before: dict[tuple[int, int], int] = {}
        for dev_id, stored in self.previous.items():
            if stored.via == "fdb":
                occupied_before[(stored.switch_id, stored.if_index)] = dev_id
        for dev_id, pl in topo.placements.items():
            d = by_id.get(dev_id)
            old = self.previous.get(dev_id)
            if d is None or pl.via != "fdb":
                continue
            moved = old is not None and (old.switch_id, old.if_index) != (pl.switch_id, pl.if_index)
            if moved and old is not None and old.switch_id in names:
                events.append(
                    Event(
                        "device.moved", dev_id, Severity.INFO,
                        f"{label(d.name, d.ip)} moved from {where(old)} to {where(pl)}",
                        {"mac": d.mac, "from_switch_id": old.switch_id, "from_port": old.port_name,
                         "to_switch_id": pl.switch_id, "to_port": pl.port_name},
                    )
                )  # fmt: skip
            before = occupied_before.get((pl.switch_id, pl.if_index))
            if (old is None or moved) and before is not None and before != dev_id:
                gone = topo.placements.get(before)
                if gone is None or (gone.switch_id, gone.if_index) != (pl.switch_id, pl.if_index):
                    prev = by_id.get(before)
                    prev_label = label(prev.name, prev.ip) if prev else f"device {before}"
                    events.append(
                        Event(
                            "port.swapped", dev_id, Severity.INFO,
                            f"{where(pl)}: {label(d.name, d.ip)} is where {prev_label} was "
                            "(a device moved or swapped)",
                            {"switch_id": pl.switch_id, "port": pl.port_name,
                             "device_id": dev_id, "previous_device_id": before},
                        )
                    )  # fmt: skip
        # A MAC the inventory does not know, alone on the port where a device lived.
        for (switch_id, if_index), dev_id in occupied_before.items():
            role = topo.roles.get((switch_id, if_index))
            now_there = topo.placements.get(dev_id)
            if role is None or role.uplink or not role.unknown_macs:
                continue
            if now_there is not None and (now_there.switch_id, now_there.if_index) == (
                switch_id, if_index,
            ):  # fmt: skip
                continue
            if any((p.switch_id, p.if_index) == (switch_id, if_index)
                   for p in topo.placements.values()):  # fmt: skip
                continue
            prev = by_id.get(dev_id)
            was = self.previous[dev_id]
            events.append(
                Event(
                    "port.swapped", dev_id, Severity.INFO,
                    f"{where(was)}: an unknown device ({', '.join(role.unknown_macs)}) is where "
                    f"{label(prev.name, prev.ip) if prev else dev_id} was (a device moved or "
                    "swapped)",
                    {"switch_id": switch_id, "port": was.port_name,
                     "macs": list(role.unknown_macs), "previous_device_id": dev_id},
                )
            )  # fmt: skip
        return events


def load_devices(conn: sqlite3.Connection) -> list[KnownDevice]:
    return [
        KnownDevice(int(i), str(mac or "").lower(), str(ip or ""), str(name or ""), str(kind))
        for i, mac, ip, name, kind in conn.execute("SELECT id, mac, ip, name, kind FROM devices")
    ]


def load_placements(conn: sqlite3.Connection) -> tuple[dict[int, Placement], dict[int, float]]:
    try:
        rows = conn.execute(
            "SELECT device_id, switch_id, if_index, port_name, vlan, via, shared, since_ts"
            " FROM topology_placements"
        ).fetchall()
    except sqlite3.OperationalError:
        return {}, {}  # the chain is not applied (a store opened without it)
    placements = {
        int(r[0]): Placement(int(r[0]), int(r[1]), int(r[2]), r[3], r[4], r[5], bool(r[6]))
        for r in rows
    }
    return placements, {int(r[0]): float(r[7]) for r in rows}


def store_topology(  # noqa: PLR0917 - one caller, the service's write
    tx: Tx,
    topo: Topology,
    views: list[SwitchView],
    snapshot: TopologyUpdate,
    previous: dict[int, Placement],
    since: dict[int, float],
    now: float,
) -> None:
    """Replace each switch's ports and neighbours; upsert the placements seen now."""
    labels = {(p.switch_id, p.if_index): p.label for p in snapshot.ports}
    for v in views:
        tx.conn.execute("DELETE FROM topology_ports WHERE switch_id = ?", (v.device_id,))
        tx.conn.execute("DELETE FROM topology_neighbours WHERE switch_id = ?", (v.device_id,))
        rows: list[tuple[Any, ...]] = []
        for p in v.tables.ports:
            role = topo.roles.get((v.device_id, p.if_index))
            rows.append((
                v.device_id, p.if_index, p.name, p.descr, p.alias,
                labels.get((v.device_id, p.if_index), ""), p.speed_bps, p.duplex,
                _bool(p.admin_up), _bool(p.oper_up), p.pvid, p.in_errors, p.out_errors,
                int(bool(role and role.uplink)), role.why if role else "",
                json.dumps(list(role.macs) if role else []), now,
            ))  # fmt: skip
        tx.conn.executemany(
            "INSERT INTO topology_ports (switch_id, if_index, name, descr, alias, label,"
            " speed_bps, duplex, admin_up, oper_up, pvid, in_errors, out_errors, uplink,"
            " uplink_why, macs, ts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        nrows = []
        for (switch_id, if_index), found in topo.neighbours.items():
            if switch_id != v.device_id:
                continue
            for n, dev_id in found:
                nrows.append((
                    switch_id, if_index, n.protocol, n.local_port, n.remote_name, n.remote_port,
                    n.remote_chassis, n.remote_descr, n.remote_ip, dev_id, now,
                ))  # fmt: skip
        tx.conn.executemany(
            "INSERT INTO topology_neighbours (switch_id, if_index, protocol, local_port,"
            " remote_name, remote_port, remote_chassis, remote_descr, remote_ip,"
            " remote_device_id, ts) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            nrows,
        )
    for pl in topo.placements.values():
        old = previous.get(pl.device_id)
        same = old is not None and (old.switch_id, old.if_index) == (pl.switch_id, pl.if_index)
        first = since.get(pl.device_id, now) if same else now
        tx.conn.execute(
            "INSERT INTO topology_placements (device_id, switch_id, if_index, port_name, vlan,"
            " via, shared, since_ts, seen_ts) VALUES (?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (device_id) DO UPDATE SET switch_id = excluded.switch_id,"
            " if_index = excluded.if_index, port_name = excluded.port_name,"
            " vlan = excluded.vlan, via = excluded.via, shared = excluded.shared,"
            " since_ts = excluded.since_ts, seen_ts = excluded.seen_ts",
            (pl.device_id, pl.switch_id, pl.if_index, pl.port_name, pl.vlan, pl.via,
             int(pl.shared), first, now),
        )  # fmt: skip


def _bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def make_topology(ctx: AppContext, snmp: SnmpClient | None = None) -> TopologyService | None:
    enabled = ctx.config.topology.enabled and ctx.config.polling.enabled
    return TopologyService(ctx, snmp) if enabled else None
