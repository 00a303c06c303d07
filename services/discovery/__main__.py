"""Discovery from the command line, for technicians, tests and the benchmark.

    python -m services.discovery sweep 198.18.0.0/24 [--rate 500] [--timeout 0.5]
        one ARP sweep; prints JSON {"hosts": {ip: [macs]}, "duration_s", "sent"}
    python -m services.discovery mdns [--seconds 8] [--enumeration-only]
        browse mDNS; prints JSON of every resolved service, with the second it was resolved
    python -m services.discovery snmp IP [IP...] [--config F | --credentials F]
        fingerprint hosts with the [snmp] credentials of a config, or a file of
        [[credentials]] tables; prints JSON identities and the credential that answered
    python -m services.discovery run --config FILE
        the store and the discovery service alone, until SIGTERM (tests use this in a
        simulated site's appliance namespace)

Every command only touches the subnets / hosts it is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.config import load_config
from core.logs import setup_logging


async def _sweep(args: argparse.Namespace) -> dict[str, Any]:
    from core.settings.discovery import DiscoverySettings
    from services.discovery.arp import ArpNotPermitted, ArpSighting, ArpSocket
    from services.discovery.interfaces import ipv4_interfaces, plan_sweeps

    settings = DiscoverySettings(
        subnets=(args.subnet,),
        arp_rate_pps=args.rate,
        arp_timeout_s=args.timeout,
        arp_attempts=args.attempts,
    )
    plans, problems = plan_sweeps(settings, await ipv4_interfaces())
    if problems:
        raise SystemExit("; ".join(problems))
    plan = plans[0]
    sightings: list[ArpSighting] = []
    sock = ArpSocket(plan.interface.name, sightings.append)
    try:
        sock.open()
    except ArpNotPermitted as exc:
        raise SystemExit(f"outpost discovery: {exc}") from None
    try:
        result = await sock.sweep(
            str(plan.subnet),
            plan.targets,
            src_ip=plan.interface.ip,
            rate_pps=args.rate,
            timeout_s=args.timeout,
            attempts=args.attempts,
        )
    finally:
        sock.close()
    return {
        "subnet": result.subnet,
        "hosts": {ip: sorted(macs) for ip, macs in sorted(result.answers.items())},
        "sent": result.sent,
        "duration_s": round(result.duration_s, 4),
    }


async def _mdns(args: argparse.Namespace) -> dict[str, Any]:
    from services.discovery.classify import mdns_types
    from services.discovery.mdns import MdnsWatcher

    # As the service does: the type enumeration and the classifier's types directly, unless
    # asked for what the enumeration alone finds.
    watcher = MdnsWatcher(known_types=() if args.enumeration_only else mdns_types())
    started = time.monotonic()  # a one-shot CLI: real time
    await watcher.start()
    try:
        await asyncio.sleep(args.seconds)
    finally:
        services = watcher.snapshot()
        await watcher.stop()
    return {
        "services": [
            {**asdict(s), "resolved_after_s": round(s.resolved_at - started, 3)} for s in services
        ]
    }


async def _snmp(args: argparse.Namespace) -> dict[str, Any]:
    from services.discovery.fingerprint import Fingerprinter

    if args.credentials:
        # A file of [[credentials]] tables, the same keys as [[snmp.credentials]].
        import tomllib

        from core.schema import load_dataclass
        from services.snmp import SnmpSettings

        table = tomllib.loads(args.credentials_text)
        settings = load_dataclass(SnmpSettings, table, "snmp")
        fp = Fingerprinter(settings.credentials, timeout_s=args.timeout)
    else:
        config = load_config(args.config) if args.config else None
        fp = Fingerprinter.from_config(config, args.timeout)
    out: dict[str, Any] = {}
    async with fp:
        results = await asyncio.gather(*(fp.identify(ip) for ip in args.hosts))
    for ip, result in zip(args.hosts, results, strict=True):
        out[ip] = (
            None
            if result is None
            else {
                "credential": result.credential,
                **result.identity.as_attrs(),
                "kind": result.identity.kind,
                "why": result.identity.why,
            }
        )
    return out


async def _run(args: argparse.Namespace) -> None:
    from core.clock import Clock
    from core.supervisor import Supervisor
    from services.context import AppContext
    from services.discovery.migrations import DISCOVERY
    from services.discovery.service import DiscoveryService
    from services.store import Store
    from services.store.service import StoreService

    config = load_config(args.config)
    setup_logging(config.log.level)
    clock = Clock()
    store = Store(config.store.path, chains=[DISCOVERY], clock=clock)
    ctx = AppContext(config=config, store=store, clock=clock)
    supervisor = Supervisor(
        [StoreService(store), DiscoveryService(ctx)], critical=frozenset({"store"})
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await supervisor.start()
    await stop.wait()
    await supervisor.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.discovery")
    sub = parser.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="one ARP sweep of a subnet")
    sweep.add_argument("subnet")
    sweep.add_argument("--rate", type=float, default=500.0, help="requests per second")
    sweep.add_argument("--timeout", type=float, default=0.5, help="seconds to wait per pass")
    sweep.add_argument("--attempts", type=int, default=2, help="requests per silent address")
    mdns = sub.add_parser("mdns", help="browse mDNS for a while")
    mdns.add_argument("--seconds", type=float, default=8.0)
    mdns.add_argument(
        "--enumeration-only",
        action="store_true",
        help="browse only the types devices list (_services._dns-sd._udp), not the known ones",
    )
    snmp = sub.add_parser("snmp", help="fingerprint hosts over SNMP")
    snmp.add_argument("hosts", nargs="+")
    snmp.add_argument("--config", default="", help="TOML file with [snmp] credentials")
    snmp.add_argument(
        "--credentials", default="", help="TOML file of [[credentials]] tables (tried in order)"
    )
    snmp.add_argument("--timeout", type=float, default=1.0, help="seconds per request")
    run = sub.add_parser("run", help="store + discovery service until SIGTERM")
    run.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    if args.command == "run":
        asyncio.run(_run(args))
        return 0
    setup_logging("warning")
    if args.command == "snmp" and args.credentials:
        args.credentials_text = Path(args.credentials).read_text(encoding="utf-8")
    handler = {"sweep": _sweep, "mdns": _mdns, "snmp": _snmp}[args.command]
    result = asyncio.run(handler(args))
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
