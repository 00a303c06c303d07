"""The site's internet is cut for a simulated day, then restored: nothing lost, alerts first.

The appliance runs in the simulated site's appliance namespace, home in the MSP namespace
(198.19.0.2) beyond the gateway; the gateway's WAN link goes down for the whole day (stored on an
accelerated clock: a simulated minute every few milliseconds).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from simsite.model import SimDevice, SiteSpec
from simsite.site import Site
from tests.conftest import REPO, needs_root
from tests.uplink_outage_driver import DEVICES, METRICS
from tests.uplink_support import Home, appliance_config, identity_for

MINUTES = 24 * 60


@needs_root
def test_day_long_outage_drains_everything_in_order_alerts_first(tmp_path: Path) -> None:
    spec = SiteSpec(
        devices=(SimDevice("pc", "198.18.0.50", "f8:bc:12:00:00:51", "Dell", "workstation"),)
    )
    with Site(spec) as site:
        home = Home(
            tmp_path / "home", tmp_path / "ca", host=spec.msp_ip, netns=site.msp_ns, site=site
        )
        home.prepare()
        home.start()
        try:
            config, config_path = appliance_config(
                tmp_path, home, batch_max_records=5000, heartbeat_s=5.0, request_timeout_s=2.0
            )
            identity = identity_for(config)
            home.register(identity)
            site.cut_internet()
            driver = site.popen_in(
                site.app_ns,
                [
                    sys.executable,
                    "-m",
                    "tests.uplink_outage_driver",
                    str(config_path),
                    str(MINUTES),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=open(tmp_path / "driver.log", "wb"),  # noqa: SIM115
                cwd=REPO,
            )
            assert driver.stdin is not None and driver.stdout is not None
            stored = json.loads(driver.stdout.readline() or "{}")
            assert stored, (tmp_path / "driver.log").read_text()[-3000:]
            # A whole day waited in the outbox, and home saw none of it.
            lanes = {row["lane"]: row["n"] for row in stored["stored"]}
            assert lanes == {0: 24, 1: MINUTES * DEVICES * len(METRICS)}
            assert stored["state"]["uplink.state"] in ("buffering", "failing")
            assert home.rows("SELECT COUNT(*) FROM records")[0][0] == 0
            # A request already trying to connect holds a batch read before the last alerts;
            # "alerts first" holds for what is queued when a batch is read, so let it time out.
            time.sleep(2.5)
            site.restore_internet()
            driver.stdin.write(b"go\n")
            driver.stdin.flush()
            drained = json.loads(driver.stdout.readline() or "{}")
            assert drained.get("drained"), (tmp_path / "driver.log").read_text()[-3000:]
            driver.wait(30)
            got = home.records(identity.appliance_id)
        finally:
            home.stop()
    kinds = [kind for _seq, _lane, kind, _body in got]
    assert kinds.count("event") == 24
    # Alerts first: every event of the day arrived before the first measurement.
    assert kinds.index("measurement") > max(i for i, k in enumerate(kinds) if k == "event")
    values = [body["value"] for _s, _l, kind, body in got if kind == "measurement"]
    assert len(values) == MINUTES * DEVICES * len(METRICS)
    assert values == [float(m) for m in range(MINUTES) for _ in range(DEVICES * len(METRICS))]
    for lane in (0, 1):
        seqs = [seq for seq, lane_, _k, _b in got if lane_ == lane]
        assert seqs == sorted(set(seqs))
    print(f"outage: a day ({len(values)} measurements) drained in {drained['seconds']:.1f} s")
