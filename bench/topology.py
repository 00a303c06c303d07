"""Topology tables: agreement with LibreNMS, and the SNMP cost of reading them.

    python -m bench.topology            # figures: agreement per field, cost per switch

Every recording of the shared corpus and its ``extended/`` folder that LibreNMS's output
gives ports, an FDB or discovery-protocol links for is served by ONE snmpsim on loopback (the
community picks the recording) and read through the real SNMP client exactly as the
topology service reads a switch (services.polling.topology.read_tables). Compared with
``ports.poller.ports`` (ifName, ifAlias, ifSpeed, ifOperStatus, ifAdminStatus, ifDuplex,
ifVlan, keyed by ifIndex), ``fdb-table.discovery.ports_fdb`` (MAC, ifIndex, VLAN) and
``discovery-protocols.discovery.links`` (local ifName, remote system name, remote port).
A field is counted only where the oracle has a value.

Cost: for each switch with a forwarding table or LLDP neighbours, the varbinds and the CPU
time (this process: client, codec, parsing) of the ports+FDB+LLDP read, against the peer
measured in the same run: one steady-state poll of the interfaces profile (the counters
read every poll interval) of the same switch.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from services.polling.access import ClientAccess
from services.polling.profiles import InterfacesProfile, PollContext
from services.polling.rates import RateTracker
from services.polling.topology import SwitchTables, read_ports, read_tables
from services.snmp import SnmpClient, SnmpError
from simsite.harness.paths import CORPUS, corpus_missing_reason
from simsite.harness.snmp_corpus import corpus_agent, corpus_target

EXTENDED: Final = CORPUS / "extended"
PORT_FIELDS: Final = ("ifName", "ifAlias", "ifSpeed", "ifOperStatus", "ifAdminStatus",
                      "ifDuplex", "ifVlan")  # fmt: skip
CONCURRENCY: Final = 8
TIMEOUT_S: Final = 5.0
COST_RUNS: Final = 5
#: The defaults the cost is spread over: [polling] interval_s and [topology] interval_s.
COUNTER_INTERVAL_S: Final = 60.0
TOPOLOGY_INTERVAL_S: Final = 300.0


def _ctx() -> PollContext:
    return PollContext(at_s=time.monotonic(), rates=RateTracker())


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def oracle_files() -> dict[str, Path]:
    """Recording name -> its LibreNMS output, for those with ports, FDB or links."""
    out: dict[str, Path] = {}
    for folder in (CORPUS, EXTENDED):
        for path in sorted(folder.glob("*.expected.json")):
            data = _load(path)
            if (
                data.get("ports", {}).get("poller", {}).get("ports")
                or "fdb-table" in data
                or "discovery-protocols" in data
            ) and path.with_name(path.name.replace(".expected.json", ".snmprec")).exists():
                out[path.name[: -len(".expected.json")]] = path
    return out


@dataclass
class Score:
    compared: int = 0
    agree: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.agree / self.compared if self.compared else 1.0

    def add(self, ok: bool, miss: str) -> None:
        self.compared += 1
        self.agree += ok
        if not ok:
            self.misses.append(miss)


def _norm(value: object) -> str:
    return re.sub(r"\s+", " ", str(value)).strip().lower()


def _hex(value: str) -> str:
    return re.sub(r"[^0-9a-f]", "", value.lower())


def _same_port(ours: str, theirs: str) -> bool:
    """Equal names, or the same MAC however written ("18 0F 76 0C BA F9", "18:0f:76:...")."""
    return _norm(ours) == _norm(theirs) or (len(_hex(ours)) == 12 and _hex(ours) == _hex(theirs))


def our_port_value(tables: SwitchTables, if_index: int, name: str) -> object:
    port = tables.port(if_index)
    if port is None:
        return None
    if name == "ifName":
        return port.name
    if name == "ifAlias":
        return port.label  # LibreNMS too shows ifDescr (else ifName) when ifAlias is empty
    if name == "ifSpeed":
        return None if port.speed_bps is None else int(port.speed_bps)
    if name == "ifOperStatus":
        return None if port.oper_up is None else ("up" if port.oper_up else "down")
    if name == "ifAdminStatus":
        return None if port.admin_up is None else ("up" if port.admin_up else "down")
    if name == "ifDuplex":
        return {"full": "fullDuplex", "half": "halfDuplex"}.get(port.duplex, port.duplex or None)
    if name == "ifVlan":
        return port.pvid
    raise ValueError(name)


def compare(name: str, tables: SwitchTables, oracle: Mapping[str, Any], scores: dict[str, Score],
            ) -> None:  # fmt: skip
    """Add recording ``name``'s agreement to ``scores`` (field -> Score)."""
    ports = oracle.get("ports", {}).get("poller", {}).get("ports") or []
    for row in ports:
        if_index = row.get("ifIndex")
        if row.get("ifType") in (None, "softwareLoopback"):
            # Loopbacks are left out by design; rows without an ifType are ports LibreNMS
            # builds from a vendor MIB (the UISP OLT's PON ports), not in IF-MIB.
            scores["ports left out (loopback, not in IF-MIB)"].add(True, "")
            continue
        for f in PORT_FIELDS:
            theirs = row.get(f)
            if theirs is None or theirs == "":
                continue
            ours = our_port_value(tables, int(if_index), f)
            if f == "ifOperStatus" and theirs == "lowerLayerDown":
                theirs = "down"
            ok = ours is not None and _norm(ours) == _norm(theirs)
            miss = f"{name} if {if_index} {f}: ours {ours!r} theirs {theirs!r}"
            scores[f"port {f}"].add(ok, miss)
    fdb = oracle.get("fdb-table", {}).get("discovery", {}).get("ports_fdb") or []
    ours_fdb = {(e.mac.replace(":", ""), e.if_index, e.vlan) for e in tables.fdb}
    ours_macs = {(e.mac.replace(":", ""), e.if_index) for e in tables.fdb}
    for row in fdb:
        mac, if_index, vlan = row["mac_address"], row["ifIndex"], row.get("vlan_vlan")
        scores["fdb MAC on port"].add((mac, if_index) in ours_macs, f"{name} fdb {mac} {if_index}")
        scores["fdb VLAN"].add((mac, if_index, vlan) in ours_fdb, f"{name} fdb {mac} vlan {vlan}")
    links = oracle.get("discovery-protocols", {}).get("discovery", {}).get("links") or []
    for link in links:
        local = str(link.get("ifName") or "")
        remote = str(link.get("remote_hostname") or "")
        rport = str(link.get("remote_port") or "")
        rport_name = rport.rsplit(" (", 1)[0]
        candidates = [n for n in tables.neighbours if n.protocol == link.get("protocol")]
        here = [n for n in candidates if _norm(n.local_port) == _norm(local)]
        scores["link local port"].add(bool(here), f"{name} link on {local}: ours "
                                      f"{[n.local_port for n in candidates]}")  # fmt: skip
        named = [n for n in here if _norm(n.remote_name) == _norm(remote)]
        scores["link remote name"].add(bool(named), f"{name} {local} remote {remote!r}: ours "
                                       f"{[n.remote_name for n in here]}")  # fmt: skip
        scores["link remote port"].add(
            any(_same_port(n.remote_port, rport_name) for n in named or here),
            f"{name} {local} remote port {rport_name!r}: ours "
            f"{[n.remote_port for n in named or here]}",
        )


@dataclass
class Cost:
    varbinds: int
    cpu_s: float


@dataclass
class Measurement:
    tables: dict[str, SwitchTables | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    topology_cost: dict[str, Cost] = field(default_factory=dict)
    counters_cost: dict[str, Cost] = field(default_factory=dict)
    ports_cost: dict[str, Cost] = field(default_factory=dict)  # the port table alone
    read_s: float = 0.0


async def _read_all(port: int, names: list[str]) -> Measurement:
    out = Measurement()
    sem = asyncio.Semaphore(CONCURRENCY)
    async with SnmpClient() as client:

        async def one(name: str) -> None:
            target = corpus_target(port, name, TIMEOUT_S)
            async with sem:
                try:
                    out.tables[name] = await read_tables(ClientAccess(client, target))
                except SnmpError as exc:
                    out.tables[name] = None
                    out.errors[name] = str(exc)

        started = time.monotonic()
        await asyncio.gather(*(one(n) for n in names))
        out.read_s = time.monotonic() - started
        # Cost, one switch at a time (process CPU time would count the others' work):
        # median of COST_RUNS reads of the topology tables, and the peer, a steady-state
        # poll of the interfaces profile (the counters read every poll interval).
        for name in sorted(n for n, t in out.tables.items() if t and (t.fdb or t.neighbours)):
            target = corpus_target(port, name, TIMEOUT_S)
            topo: list[Cost] = []
            ports: list[Cost] = []
            counters: list[Cost] = []
            profile = InterfacesProfile()
            await profile.poll(ClientAccess(client, target), _ctx())  # metadata poll
            for _ in range(COST_RUNS):
                access = ClientAccess(client, target)
                cpu = time.process_time()
                await read_tables(access)
                topo.append(Cost(access.varbinds, time.process_time() - cpu))
                access = ClientAccess(client, target)
                cpu = time.process_time()
                await read_ports(access, [])
                ports.append(Cost(access.varbinds, time.process_time() - cpu))
                access = ClientAccess(client, target)
                cpu = time.process_time()
                await profile.poll(access, _ctx())
                counters.append(Cost(access.varbinds, time.process_time() - cpu))
            out.topology_cost[name] = sorted(topo, key=lambda c: c.cpu_s)[COST_RUNS // 2]
            out.counters_cost[name] = sorted(counters, key=lambda c: c.cpu_s)[COST_RUNS // 2]
            out.ports_cost[name] = sorted(ports, key=lambda c: c.cpu_s)[COST_RUNS // 2]
    return out


def measure() -> tuple[Measurement, dict[str, Path]]:
    files = oracle_files()
    by_folder: dict[Path, list[str]] = defaultdict(list)
    for name, path in files.items():
        by_folder[path.parent].append(name)
    total = Measurement()
    for folder, names in by_folder.items():
        with tempfile.TemporaryDirectory() as tmp, corpus_agent(Path(tmp), names, folder) as port:
            got = asyncio.run(_read_all(port, names))
        total.tables.update(got.tables)
        total.errors.update(got.errors)
        total.topology_cost.update(got.topology_cost)
        total.counters_cost.update(got.counters_cost)
        total.ports_cost.update(got.ports_cost)
        total.read_s += got.read_s
    return total, files


def scores_of(m: Measurement, files: Mapping[str, Path]) -> dict[str, Score]:
    scores: dict[str, Score] = defaultdict(Score)
    for name, tables in sorted(m.tables.items()):
        if tables is not None:
            compare(name, tables, _load(files[name]), scores)
    return dict(scores)


def report(m: Measurement, files: Mapping[str, Path]) -> list[str]:
    lines = [f"topology: {len(m.tables)} recordings read in {m.read_s:.1f} s "
             f"({len(m.errors)} unanswered)"]  # fmt: skip
    for f, s in scores_of(m, files).items():
        lines.append(f"topology.agree {f}: {s.agree}/{s.compared} = {s.ratio:.1%}")
    switches = [n for n, t in m.tables.items() if t is not None and (t.fdb or t.neighbours)]
    extra_vb: list[float] = []
    extra_cpu: list[float] = []
    vb_ratio: list[float] = []
    cpu_ratio: list[float] = []
    for name in sorted(switches):
        t, c = m.tables[name], m.topology_cost[name]
        p, q = m.counters_cost[name], m.ports_cost[name]
        assert t is not None
        # FDB + LLDP (+ CDP): the read minus its port table, which counters already cover.
        ev, ec = c.varbinds - q.varbinds, max(0.0, c.cpu_s - q.cpu_s)
        extra_vb.append(ev)
        extra_cpu.append(ec)
        vb_ratio.append(ev / max(1, p.varbinds))
        cpu_ratio.append(ec / max(1e-6, p.cpu_s))
        lines.append(
            f"topology.cost {name}: {len(t.ports)} ports, {len(t.fdb)} FDB, "
            f"{len(t.neighbours)} neighbours: read {c.varbinds} varbinds {c.cpu_s * 1000:.1f} ms "
            f"CPU, of which FDB+LLDP {ev} varbinds {ec * 1000:.1f} ms; counters poll (peer) "
            f"{p.varbinds} varbinds {p.cpu_s * 1000:.1f} ms; FDB+LLDP / counters "
            f"{vb_ratio[-1]:.2f}x varbinds {cpu_ratio[-1]:.2f}x CPU per read"
        )
    if switches:
        per_poll = COUNTER_INTERVAL_S / TOPOLOGY_INTERVAL_S
        lines.append(
            f"topology.cost median over {len(switches)} switches: FDB+LLDP "
            f"{statistics.median(extra_vb):.0f} varbinds, "
            f"{statistics.median(extra_cpu) * 1000:.1f} ms CPU per read = "
            f"{statistics.median(vb_ratio):.2f}x varbinds, {statistics.median(cpu_ratio):.2f}x "
            f"CPU of a counters poll; read every {TOPOLOGY_INTERVAL_S:g} s against counters "
            f"every {COUNTER_INTERVAL_S:g} s: +{statistics.median(vb_ratio) * per_poll:.0%} "
            f"varbinds, +{statistics.median(cpu_ratio) * per_poll:.0%} CPU per counters poll "
            f"(largest: {max(vb_ratio) * per_poll:.0%} varbinds)"
        )
    return lines


def run() -> list[str]:
    missing = corpus_missing_reason(EXTENDED) or corpus_missing_reason(CORPUS)
    if missing:
        return [f"topology: skipped: {missing}"]
    m, files = measure()
    return report(m, files)


if __name__ == "__main__":
    for line in run():
        print(line)
