"""On the simulated site: a fresh box with no site configuration phones home, is claimed,
receives its signed configuration, discovers and polls the LAN, and its data arrives at home."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from simsite.model import SimDevice, SiteSpec
from simsite.site import Site
from tests.conftest import REPO, needs_root
from tests.uplink_support import HOME, Home

DEVICES = (
    SimDevice("pc", "198.18.0.50", "f8:bc:12:00:00:51", "Dell", "workstation"),
    SimDevice("printer", "198.18.0.60", "00:1b:a9:00:00:61", "Brother", "printer"),
)


def _msp(home: Home, *args: str) -> dict[str, Any] | list[Any]:
    done = subprocess.run(
        [*HOME, *args, "--data-dir", str(home.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _line(stream: IO[bytes], deadline: float) -> dict[str, Any]:
    assert time.monotonic() < deadline, "timed out waiting for the appliance"
    raw = stream.readline()
    assert raw, "the appliance exited"
    return dict(json.loads(raw))


@needs_root
def test_fresh_box_is_claimed_configured_and_reports_its_site(tmp_path: Path) -> None:
    spec = SiteSpec(devices=DEVICES)
    with Site(spec) as site:
        home = Home(
            tmp_path / "home", tmp_path / "ca", host=spec.msp_ip, netns=site.msp_ns, site=site
        )
        home.prepare()
        home.start()
        box: subprocess.Popen[bytes] | None = None
        try:
            subprocess.run(
                [*HOME, "init-signing", "--data-dir", str(home.data_dir)],
                check=True,
                capture_output=True,
            )
            # What the MSP puts on every box before shipping it: where home is, and its CA.
            config = tmp_path / "outpost.toml"
            config.write_text(
                f'[store]\npath = "{tmp_path / "outpost.db"}"\n'
                "[web]\nenabled = false\n"
                f'[uplink]\nurl = "{home.url}"\nca_file = "{home.ca_file}"\n'
                "batch_max_age_s = 0.5\nheartbeat_s = 2.0\nself_measure_s = 0.0\n"
                f'[provisioning]\nidentity_dir = "{tmp_path / "identity"}"\n'
                f'state_dir = "{tmp_path / "prov"}"\nconfig_file = "{config}"\n'
                "sync_interval_s = 0.5\n"
                f'[updates]\nroot = "{tmp_path / "opt"}"\nmailbox_dir = "{tmp_path / "mb"}"\n'
            )
            started = time.monotonic()
            box = site.popen_in(
                site.app_ns,
                [sys.executable, "-m", "tests.provisioning_site_driver", str(config)],
                stdout=subprocess.PIPE,
                stderr=open(tmp_path / "box.log", "wb"),  # noqa: SIM115
                cwd=REPO,
            )
            assert box.stdout is not None
            deadline = time.monotonic() + 60
            code = ""
            while not code:
                line = _line(box.stdout, deadline)
                code = (line.get("status") or {}).get("provisioning.claim_code") or ""
            pending = _msp(home, "pending")
            while not pending:
                time.sleep(0.2)
                pending = _msp(home, "pending")
            appliance = pending[0]["appliance"]  # type: ignore[index]
            _msp(home, "claim", code, "--site", "Dentist")
            while (_line(box.stdout, deadline).get("status") or {}).get(
                "provisioning.state"
            ) != "claimed":
                pass
            claimed_s = time.monotonic() - started
            site_toml = tmp_path / "site.toml"
            site_toml.write_text(
                '[site]\nname = "Dentist"\n'
                '[discovery]\nsubnets = ["198.18.0.0/24"]\nsweep_interval_s = 30.0\n'
                "mdns = false\n"
                "[polling]\ninterval_s = 5.0\n"
            )
            _msp(home, "push-config", appliance, str(site_toml))
            line = _line(box.stdout, deadline)
            while line.get("start") != 2:
                line = _line(box.stdout, deadline)
            assert line["site"] == "Dentist"
            # Discovery and polling now run; their records reach home.
            wanted = {d.ip for d in DEVICES}
            seen: set[str] = set()
            while not wanted <= seen:
                assert time.monotonic() < deadline, f"home saw {seen}, wanted {wanted}"
                seen = _ips_at_home(home, appliance, wanted)
                time.sleep(0.5)
            status = _msp(home, "remote-status", appliance)
            assert isinstance(status, dict)
            outcomes = [r["outcome"] for r in status["config_reports"]]
            assert "applied" in outcomes
            print(
                f"site e2e: claimed after {claimed_s:.1f} s, both devices' data at home after "
                f"{time.monotonic() - started:.1f} s"
            )
        finally:
            if box is not None:
                box.send_signal(signal.SIGTERM)
                try:
                    box.wait(20)
                except subprocess.TimeoutExpired:
                    box.kill()
                    box.wait(10)
            home.stop()


def _ips_at_home(home: Home, appliance: str, wanted: set[str]) -> set[str]:
    bodies = [b for (b,) in home.rows("SELECT body FROM records WHERE appliance = ?", (appliance,))]
    return {ip for ip in wanted if any(ip in b for b in bodies)}
