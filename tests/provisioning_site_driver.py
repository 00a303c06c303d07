"""The appliance as systemd runs it, inside the simulated site: restarted when it asks.

    python -m tests.provisioning_site_driver CONFIG
Each start loads the configuration file with the applied signed site configuration over it
(what `outpost run` does); a configuration change stops every service and starts them again.
Prints one JSON line per start and whenever the status changes; runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from core.status import StatusKey
from provisioning.service import ProvisioningService
from provisioning.signed_config import load_effective_config
from simsite.harness.appliance import running_appliance

STATUS_POLL_S = 0.1


async def main(path: str) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    starts = 0
    while not stop.is_set():
        config = load_effective_config(path)
        restart = asyncio.Event()
        async with running_appliance(config) as (ctx, supervisor):
            for service in supervisor.services:
                if isinstance(service, ProvisioningService):
                    service.restart = restart.set
            starts += 1
            ctx.status.publish(StatusKey.PHASE, "running")
            print(json.dumps({"start": starts, "site": config.site.name}), flush=True)
            last: dict[str, object] = {}
            while not (stop.is_set() or restart.is_set()):
                facts = ctx.status.snapshot()
                keys = ("provisioning.state", "provisioning.claim_code")
                wanted = {k: facts.get(k) for k in keys}
                if wanted != last:
                    print(json.dumps({"status": wanted}), flush=True)
                    last = wanted
                await asyncio.sleep(STATUS_POLL_S)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
