"""The update command end to end: MSP → home → box → updater (root) → trial → commit → home.

Home is a real ``outpost-home run`` process; the box runs its real services; the updater is run
as ``outpost-updater.service`` would run it when the box drops the request in its mailbox.
"""

from __future__ import annotations

import asyncio
import json
import sys
import sysconfig
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.wire.keys import public_key_text
from firmware.updater.build import build_bundle
from tests.test_provisioning_e2e import msp, queue, remote_status, running_box, until
from tests.updater_support import build_wheel, file_server, pip_wheel, run_updater
from tests.uplink_support import running_home


async def test_update_command_installs_commits_and_reports_home(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    for version in ("1.0.0", "1.1.0"):
        wheel = build_wheel(version, tmp_path / "wheels" / version, tmp_path)
        build_bundle(
            bundles / f"outpost-{version}.bundle",
            version=version,
            wheels=[wheel, pip_wheel()],
            key=key,
        )
    root, box_dir = tmp_path / "opt", tmp_path / "box"
    box_dir.mkdir()
    with running_home(tmp_path) as home, file_server(bundles) as server:
        assert msp(home, "init-signing").returncode == 0
        config = box_dir / "outpost.toml"
        config.write_text(
            f"[web]\nenabled = false\n[discovery]\nenabled = false\n[polling]\nenabled = false\n"
            f'[store]\npath = "{box_dir / "outpost.db"}"\n'
            f'[uplink]\nurl = "{home.url}"\nca_file = "{home.ca_file}"\nself_measure_s = 0.0\n'
            "heartbeat_s = 1.0\nrequest_timeout_s = 2.0\n"
            f'[provisioning]\nidentity_dir = "{box_dir / "identity"}"\n'
            f'state_dir = "{box_dir / "prov"}"\nconfig_file = "{config}"\nsync_interval_s = 0.2\n'
            f'[updates]\nroot = "{root}"\nmailbox_dir = "{box_dir / "mailbox"}"\n'
            f'release_keys = ["{public_key_text(key.public_key())}"]\n'
            f'python = "{sys.executable}"\n'
            f'extra_site_dirs = ["{sysconfig.get_paths()["purelib"]}"]\n'
            "restart_command = []\n"
        )
        # The box was installed with 1.0.0 (committed), as install.sh or an earlier update left it.
        first = run_updater(config, "install", str(bundles / "outpost-1.0.0.bundle"))
        assert json.loads(first.stdout)["phase"] == "trial", first.stderr
        _confirm(root, config, "1.0.0")
        assert json.loads(run_updater(config, "check").stdout)["current"] == "1.0.0"

        async with running_box(config) as box:
            assert box.ctx is not None
            code = await until(
                lambda: box.ctx.status.snapshot().get("provisioning.claim_code"), "a claim code"
            )
            await until(lambda: json.loads(msp(home, "pending").stdout), "the hello")
            assert msp(home, "claim", code, "--site", "Dentist").returncode == 0
            assert box.service.identity is not None
            appliance = box.service.identity.appliance_id
            await until(
                lambda: box.ctx.status.snapshot().get("provisioning.state") == "claimed", "claim"
            )
            cid = queue(
                home,
                appliance,
                "update",
                "--arg",
                f"url={server.url('outpost-1.1.0.bundle')}",
                "--arg",
                "version=1.1.0",
            )
            mailbox = box_dir / "mailbox" / "request.json"
            await until(mailbox.exists, "the update request in the updater's mailbox")
            # outpost-updater.path starts the updater: it takes the request and installs.
            state = json.loads((await asyncio.to_thread(run_updater, config, "resume")).stdout)
            assert state["phase"] == "trial" and state["current"] == "1.1.0"
            assert not mailbox.exists()
            # The new release (its own code, from its own venv) reports healthy; commit.
            _confirm(root, config, "1.1.0")
            state = json.loads((await asyncio.to_thread(run_updater, config, "check")).stdout)
            assert state["last_result"]["outcome"] == "committed"
            assert state["last_result"]["command_id"] == cid

            def result() -> str:
                for c in remote_status(home, appliance)["commands"]:
                    if c["id"] == cid:
                        return str(c["result"])
                return ""

            got = await until(lambda: result().startswith("update committed"), "home's result")
            assert got
            assert result() == "update committed: release 1.1.0 reported healthy"


def _confirm(root: Path, config: Path, version: str) -> None:
    python = root / "releases" / version / "venv" / "bin" / "python"
    done = run_updater(config, "confirm", python=str(python))
    assert done.returncode == 0 and f"reported {version} healthy" in done.stdout, done.stderr
