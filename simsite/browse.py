"""A tiny mDNS browser for tests: ``python -m simsite.browse [--seconds S] TYPE...``.

Run it inside a namespace (``site.run_in(site.app_ns, ...)``) to see what the LAN
announces. Prints one JSON array of the resolved services; TXT values are given as
latin-1 strings so that arbitrary bytes survive the round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

#: How long one resolution (SRV/TXT/A queries) may take.
RESOLVE_TIMEOUT_MS = 3000
DEFAULT_BROWSE_S = 3.0


def _full_type(type_: str) -> str:
    base = type_.rstrip(".")
    return base + "." if base.endswith(".local") else base + ".local."


async def browse(types: list[str], seconds: float) -> list[dict[str, Any]]:
    found: set[tuple[str, str]] = set()

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is not ServiceStateChange.Removed:
            found.add((service_type, name))

    azc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    browser = AsyncServiceBrowser(
        azc.zeroconf, [_full_type(t) for t in types], handlers=[on_change]
    )
    await asyncio.sleep(seconds)
    results = []
    for service_type, name in sorted(found):
        info = AsyncServiceInfo(service_type, f"placeholder.{service_type}")
        info.name = name  # the constructor would refuse hostile names; a real browser must not
        if not await info.async_request(azc.zeroconf, RESOLVE_TIMEOUT_MS):
            results.append({"type": service_type, "name": name, "resolved": False})
            continue
        results.append(
            {
                "type": service_type,
                "name": name,
                "resolved": True,
                "server": info.server,
                "port": info.port,
                "addresses": info.parsed_addresses(),
                "txt": {
                    k.decode("latin-1"): (v.decode("latin-1") if v is not None else None)
                    for k, v in info.properties.items()
                },
            }
        )
    await browser.async_cancel()
    await azc.async_close()
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m simsite.browse")
    parser.add_argument("types", nargs="+", help="service types, e.g. _ipp._tcp")
    parser.add_argument("--seconds", type=float, default=DEFAULT_BROWSE_S)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(browse(args.types, args.seconds)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
