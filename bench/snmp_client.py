"""SNMP client benchmark: CPU seconds per 1,000 varbinds of a GetBulk walk, against peers.

A whole recording (a switch's IF-MIB and more) is served by snmpsim on 127.0.0.1 and walked
several times by each peer in the same run, max-repetitions 25:

* outpost: services.snmp (our codec, one shared UDP socket), in this process;
* snmpbulkwalk: net-snmp's C tool, its CPU counted through RUSAGE_CHILDREN;
* ezsnmp: net-snmp's C library through Python bindings, in this process (if importable);
* pysnmp: pysnmp 7's own bulk walk (bulk_walk_cmd), in this process.

snmpsim's CPU is not counted: it is a separate process, reaped only after the measurements.
Also printed: the decoder alone (no network) per varbind.

    python -m bench.snmp_client [RECORDING] [REPEATS]
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

from core.schema import Secret
from services.snmp import SnmpClient, SnmpCredential, Target, ber
from services.snmp.message import Message, decode_message, encode_message
from simsite.local_agents import Snmpsim, corpus_dir

RECORDING = "procurve_2520"  # HP ProCurve 2520 switch: 2,600 varbinds, most of them IF-MIB
REPEATS = 5
MAX_REPETITIONS = 25
ROOT = "1.3"  # the whole recording (pysnmp cannot encode a one-arc OID)
TARGET_RATIO_VS_EZSNMP = 1.5


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _measure(walk: Callable[[], int], repeats: int, cpu: Callable[[], float]) -> tuple[float, int]:
    """(CPU seconds, varbinds) of ``repeats`` walks after one warm-up walk."""
    walk()
    started = cpu()
    varbinds = sum(walk() for _ in range(repeats))
    return cpu() - started, varbinds


def _outpost(agent: Snmpsim, community: str, repeats: int) -> tuple[float, int]:
    async def main() -> tuple[float, int]:
        credential = SnmpCredential(name=community, community=Secret(community))
        target = Target(agent.host, agent.port, credential, timeout_s=5, retries=1)
        async with SnmpClient() as client:
            await client.walk(target, ROOT, max_repetitions=MAX_REPETITIONS)
            started = _self_cpu()
            varbinds = 0
            for _ in range(repeats):
                walked = await client.walk(
                    target, ROOT, max_repetitions=MAX_REPETITIONS, max_varbinds=1_000_000
                )
                varbinds += len(walked)
            return _self_cpu() - started, varbinds

    return asyncio.run(main())


def _snmpbulkwalk(agent: Snmpsim, community: str, repeats: int) -> tuple[float, int]:
    argv = ["snmpbulkwalk", "-v2c", "-c", community, f"-Cr{MAX_REPETITIONS}", "-On"]
    argv += ["-t", "5", f"{agent.host}:{agent.port}", "." + ROOT]

    def walk() -> int:
        done = subprocess.run(argv, capture_output=True, check=True)
        lines = done.stdout.decode(errors="replace").splitlines()
        return sum(1 for line in lines if "No more variables" not in line)

    return _measure(walk, repeats, _children_cpu)


def _ezsnmp(agent: Snmpsim, community: str, repeats: int) -> tuple[float, int] | None:
    try:
        from ezsnmp import Session
    except ImportError:
        return None
    session = Session(
        hostname=agent.host,
        port_number=agent.port,
        version="2c",
        community=community,
        set_max_repeaters_to_num=MAX_REPETITIONS,
        print_oids_numerically=True,
        timeout=5,
    )

    def walk() -> int:
        results = session.bulk_walk("." + ROOT)
        # ezsnmp keeps the endOfMibView varbinds of the last answer: not data, not counted.
        return sum(1 for r in results if not str(r.type).startswith("No more variables"))

    return _measure(walk, repeats, _self_cpu)


def _pysnmp(agent: Snmpsim, community: str, repeats: int) -> tuple[float, int]:
    from pysnmp.hlapi.v3arch import asyncio as hlapi

    async def main() -> tuple[float, int]:
        engine = hlapi.SnmpEngine()
        transport = await hlapi.UdpTransportTarget.create((agent.host, agent.port), timeout=5)

        async def walk() -> int:
            count = 0
            async for error, status, _, varbinds in hlapi.bulk_walk_cmd(
                engine,
                hlapi.CommunityData(community),
                transport,
                hlapi.ContextData(),
                0,
                MAX_REPETITIONS,
                hlapi.ObjectType(hlapi.ObjectIdentity(ROOT)),
                lookupMib=False,
                lexicographicMode=True,
            ):
                if error or status:
                    raise RuntimeError(f"pysnmp walk failed: {error or status}")
                count += len(varbinds)
            return count

        await walk()
        started = _self_cpu()
        varbinds = 0
        for _ in range(repeats):
            varbinds += await walk()
        engine.close_dispatcher()
        return _self_cpu() - started, varbinds

    return asyncio.run(main())


def _decoder_us_per_varbind(agent: Snmpsim, community: str) -> float:
    """The decoder alone on a real 25-varbind answer (IF-MIB rows), microseconds per varbind."""
    import socket

    from services.snmp.message import encode_request

    request = encode_request(
        1,
        community.encode(),
        ber.GET_BULK_REQUEST,
        1,
        [(1, 3, 6, 1, 2, 1, 2, 2, 1)],
        max_repetitions=MAX_REPETITIONS,
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(request, (agent.host, agent.port))
        data, _ = sock.recvfrom(65535)
    message: Message = decode_message(data)
    assert encode_message(message) == data
    loops = 2000
    seconds = timeit.timeit(lambda: decode_message(data), number=loops)
    return seconds / loops / len(message.varbinds) * 1e6


def _ratio(value: float, peer: float | None) -> str:
    return f"{value / peer:.2f}x" if peer else "n/a"


def run(recording: str = RECORDING, repeats: int = REPEATS) -> list[str]:
    corpus = corpus_dir()
    if corpus is None:
        return ["skipped: the shared SNMP corpus (../shared/snmp-corpus) is absent"]
    path = corpus / f"{recording}.snmprec"
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-snmp-") as tmp:
        agent = Snmpsim([path], Path(tmp))
        agent.start()
        try:
            results: dict[str, tuple[float, int] | None] = {
                "outpost": _outpost(agent, recording, repeats),
                "snmpbulkwalk": _snmpbulkwalk(agent, recording, repeats),
                "ezsnmp": _ezsnmp(agent, recording, repeats),
                "pysnmp": _pysnmp(agent, recording, repeats),
            }
            decoder_us = _decoder_us_per_varbind(agent, recording)
        finally:
            agent.stop()
    per_k: dict[str, float | None] = {
        name: (r[0] / r[1] * 1000 if r and r[1] else None) for name, r in results.items()
    }
    counts = {name: r[1] // (repeats) for name, r in results.items() if r}
    lines.append(
        f"GetBulk walk of {recording} (snmpsim on 127.0.0.1), {repeats} walks per peer, "
        f"max-repetitions {MAX_REPETITIONS}; varbinds per walk: "
        + ", ".join(f"{n} {c}" for n, c in counts.items())
    )
    ez, nb = per_k["ezsnmp"], per_k["snmpbulkwalk"]
    for name, value in per_k.items():
        if value is None:
            lines.append(f"{name:13s} not importable (pip install ezsnmp)")
            continue
        lines.append(
            f"{name:13s} {value * 1000:8.2f} ms CPU per 1,000 varbinds   "
            f"vs ezsnmp {_ratio(value, ez):>7s}   vs snmpbulkwalk {_ratio(value, nb):>7s}"
        )
    lines.append(f"decoder alone: {decoder_us:.2f} us per varbind (25-varbind IF-MIB answer)")
    ours = per_k["outpost"]
    if ours is not None and ez:
        met = "met" if ours <= TARGET_RATIO_VS_EZSNMP * ez else "NOT met"
        lines.append(f"target outpost <= {TARGET_RATIO_VS_EZSNMP}x ezsnmp: {met}")
    return lines


def main(argv: list[str]) -> int:
    recording = argv[0] if argv else RECORDING
    repeats = int(argv[1]) if len(argv) > 1 else REPEATS
    began = time.monotonic()
    for line in run(recording, repeats):
        print(line, flush=True)
    print(f"({time.monotonic() - began:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
