"""Polling benchmark: CPU per 1,000 varbinds as the poller's profiles fetch them, against
net-snmp's snmpbulkwalk and ezsnmp on the same agent in the same run; a full poll cycle of
the simulated corpus site (wall and CPU per cycle); a 254-address ICMP sweep in a namespace.

    python -m bench.polling            # all parts (the site parts need root)
Figures are printed as lines; run() returns them (make bench).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.settings.polling import PollingSettings
from services.polling.access import ClientAccess
from services.polling.icmp import Pinger
from services.polling.inventory import PollTarget
from services.polling.poller import DevicePoller
from services.polling.profiles import PollContext, profiles_for
from services.polling.rates import RateTracker
from services.snmp import SnmpClient, SnmpCredential, SnmpError
from simsite.harness.paths import CORPUS
from simsite.harness.snmp_corpus import CORPUS_KINDS, corpus_agent, corpus_target

POLLS = 6  # polls per recording; the first (metadata) is left out of the steady-state figure
WALK_ROOT = "1.3.6.1.2.1"  # what the peers walk: the standard MIB-2 subtree of each recording
SWEEP_TARGET_S = 1.0


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


async def _poller_cpu(port: int) -> tuple[float, int]:
    """CPU seconds and varbinds of steady-state profile polls of every recording."""
    cpu = 0.0
    varbinds = 0
    async with SnmpClient() as client:
        for name, kind in CORPUS_KINDS.items():
            profiles = profiles_for(kind)
            tracker = RateTracker()
            for i in range(POLLS):
                access = ClientAccess(client, corpus_target(port, name))
                ctx = PollContext(at_s=time.monotonic(), rates=tracker)
                started = time.process_time()
                for p in profiles:
                    await p.poll(access, ctx)
                if i > 0:
                    cpu += time.process_time() - started
                    varbinds += access.varbinds
    return cpu, varbinds


async def _client_walk_cpu(port: int) -> tuple[float, int, list[str]]:
    """Our client's walk of mib-2 of every recording that snmpsim serves to the end."""
    cpu, count = 0.0, 0
    complete: list[str] = []
    async with SnmpClient() as client:
        for name in CORPUS_KINDS:
            started = time.process_time()
            try:
                got = await client.walk(corpus_target(port, name), WALK_ROOT, max_repetitions=25)
            except SnmpError:
                # snmpsim cannot serve some recorded values (it stops answering there): leave
                # the recording out of the walk comparison, for every peer alike.
                continue
            cpu += time.process_time() - started
            count += len(got)
            complete.append(name)
    return cpu, count, complete


def _snmpbulkwalk_cpu(port: int, names: list[str]) -> tuple[float, int]:
    cpu, count = 0.0, 0
    env = {**os.environ, "MIBS": "", "MIBDIRS": "/nonexistent"}  # no MIB parsing at start
    for name in names:
        before = _children_cpu()
        out = subprocess.run(
            [
                "snmpbulkwalk",
                "-v2c",
                "-c",
                name,
                "-On",
                "-Cr25",
                "-t",
                "3",
                f"127.0.0.1:{port}",
                WALK_ROOT,
            ],
            capture_output=True,
            env=env,
            check=False,
        )
        cpu += _children_cpu() - before
        count += sum(1 for line in out.stdout.splitlines() if line.startswith(b"."))
    return cpu, count


def _ezsnmp_cpu(port: int, names: list[str]) -> tuple[float, int] | None:
    try:
        from ezsnmp import Session  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    cpu, count = 0.0, 0
    for name in names:
        session = Session(
            hostname="127.0.0.1",
            port_number=port,
            version=2,
            community=name,
            timeout=3,
            retries=1,
            set_max_repeaters_to_num=25,
            print_oids_numerically=True,
        )
        started = time.process_time()
        got = session.bulk_walk(WALK_ROOT)
        cpu += time.process_time() - started
        count += len(got)
    return cpu, count


def _per_k(cpu: float, n: int) -> float:
    return 1000.0 * cpu / n if n else float("nan")


def varbind_figures() -> list[str]:
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, corpus_agent(Path(tmp)) as port:
        poller_cpu, poller_n = asyncio.run(_poller_cpu(port))
        walk_cpu, walk_n, walkable = asyncio.run(_client_walk_cpu(port))
        net_cpu, net_n = _snmpbulkwalk_cpu(port, walkable)
        ez = _ezsnmp_cpu(port, walkable)
    poller_k, walk_k, net_k = (
        _per_k(poller_cpu, poller_n),
        _per_k(walk_cpu, walk_n),
        _per_k(net_cpu, net_n),
    )
    lines.append(
        f"poller profiles: {poller_k * 1000:.1f} ms CPU per 1000 varbinds "
        f"({poller_n} varbinds, {POLLS - 1} steady-state polls x {len(CORPUS_KINDS)} "
        "recordings)"
    )
    lines.append(
        f"client bulk walk of mib-2: {walk_k * 1000:.1f} ms CPU per 1000 varbinds "
        f"({walk_n} varbinds, the {len(walkable)} recordings snmpsim serves to the end)"
    )
    lines.append(
        f"snmpbulkwalk (net-snmp, process start included): {net_k * 1000:.1f} ms CPU "
        f"per 1000 varbinds ({net_n} varbinds); poller/snmpbulkwalk = "
        f"{poller_k / net_k:.2f}x"
    )
    if ez is None:
        lines.append("ezsnmp: not installed, ratio skipped (pip install ezsnmp)")
    else:
        ez_k = _per_k(*ez)
        lines.append(
            f"ezsnmp bulk_walk: {ez_k * 1000:.1f} ms CPU per 1000 varbinds ({ez[1]} "
            f"varbinds); poller/ezsnmp = {poller_k / ez_k:.2f}x (target <= 1.5x), "
            f"client walk/ezsnmp = {walk_k / ez_k:.2f}x"
        )
    return lines


# ---------------------------------------------------------------- inside the site (workers)


async def _cycle_worker(targets: list[dict[str, str]]) -> dict[str, object]:
    settings = PollingSettings()
    credential = SnmpCredential()
    out: dict[str, object] = {"devices": len(targets), "cycles": []}
    async with SnmpClient() as client, Pinger() as pinger:
        poller = DevicePoller(settings, pinger, client, {credential.name: credential})
        polls = [
            PollTarget(i, t["ip"], t["name"], t["kind"], credential.name, "", ())
            for i, t in enumerate(targets)
        ]
        states = {p.device_id: poller.state_for(p, None) for p in polls}
        for _ in range(4):
            wall, cpu = time.monotonic(), time.process_time()
            results = await asyncio.gather(
                *(poller.poll(p, states[p.device_id], time.time()) for p in polls)
            )
            cycle = {
                "wall_s": time.monotonic() - wall,
                "cpu_s": time.process_time() - cpu,
                "up": sum(1 for r in results if r.reachable),
                "readings": sum(len(r.readings) for r in results),
                "varbinds": sum(s.varbinds for s in states.values()),
            }
            out["cycles"].append(cycle)  # type: ignore[attr-defined]
    return out


async def _sweep_worker(prefix: str) -> dict[str, object]:
    addresses = [f"{prefix}.{i}" for i in range(1, 255)]
    async with Pinger() as pinger:
        started = time.monotonic()
        stats = await pinger.ping_many(addresses, count=1, spacing_s=0.0, timeout_s=0.5)
        wall = time.monotonic() - started
    return {
        "wall_s": wall,
        "answered": sum(1 for s in stats.values() if s.received),
        "mode": "raw" if pinger.raw else "ping-socket",
    }


def site_figures() -> list[str]:
    if os.geteuid() != 0:
        return ["site cycle and ICMP sweep: skipped (need root for network namespaces)"]
    from simsite.corpus import corpus_site
    from simsite.site import Site

    spec = corpus_site(CORPUS)
    targets = [{"ip": d.ip, "name": d.name, "kind": d.role} for d in spec.devices]
    targets.append({"ip": spec.gateway_ip, "name": "gateway", "kind": "router"})
    lines: list[str] = []
    site = Site(spec)
    with site:
        py = [sys.executable, "-m", "bench.polling"]
        cycle = site.run_in(
            site.app_ns,
            [*py, "cycle-worker", json.dumps(targets)],
            capture_output=True,
            check=True,
            cwd=Path(__file__).parents[1],
        )
        sweep = site.run_in(
            site.app_ns,
            [*py, "sweep-worker", "198.18.0"],
            capture_output=True,
            check=True,
            cwd=Path(__file__).parents[1],
        )
    c = json.loads(cycle.stdout)
    for i, cy in enumerate(c["cycles"]):
        kind = "first (metadata)" if i == 0 else "steady"
        lines.append(
            f"site poll cycle {i + 1} ({kind}): {c['devices']} devices, "
            f"{cy['up']} up, wall {cy['wall_s']:.2f} s, CPU {cy['cpu_s']:.2f} s, "
            f"{cy['readings']} readings"
        )
    s = json.loads(sweep.stdout)
    verdict = "meets" if s["wall_s"] <= SWEEP_TARGET_S else "MISSES"
    lines.append(
        f"ICMP sweep of 254 addresses ({s['mode']}): {s['wall_s']:.2f} s, "
        f"{s['answered']} answered; {verdict} the {SWEEP_TARGET_S:g} s target"
    )
    return lines


def run() -> list[str]:
    return varbind_figures() + site_figures()


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "cycle-worker":
        print(json.dumps(asyncio.run(_cycle_worker(json.loads(argv[1])))))
        return 0
    if len(argv) >= 2 and argv[0] == "sweep-worker":
        print(json.dumps(asyncio.run(_sweep_worker(argv[1]))))
        return 0
    for line in run():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
