"""`make run`: the launcher brings up the demo site, an answering status page and home's fleet
page, and Ctrl-C tears everything down."""

from __future__ import annotations

import json
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import REPO, needs_root


def _get(url: str, cafile: Path | None = None, token: str = "") -> bytes:
    context = None
    if cafile is not None:
        context = ssl.create_default_context(cafile=str(cafile))
        context.check_hostname = (
            False  # the certificate names 198.19.0.2; we reach it via 127.0.0.1
        )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10, context=context) as answer:
        body: bytes = answer.read()
        return body


@needs_root
def test_make_run_serves_the_status_page_and_cleans_up(tmp_path: Path) -> None:
    work = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simsite.launch", "--workdir", str(work)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    out: list[str] = []
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            out.append(line)
            if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
                break
        text = "".join(out)
        page = re.search(r"status page:\s+(http://\S+)", text)
        fleet = re.search(r"MSP fleet:\s+(https://\S+)", text)
        assert page and fleet, text
        # The fresh box was claimed with its own claim code, as an MSP technician would.
        assert re.search(r"appliance:\s+op-\w+, claimed for 'Demo Dental Practice'", text), text
        status: dict[str, object] = {}
        for _ in range(60):  # discovery needs a sweep before the devices are in
            status = json.loads(_get(page.group(1) + "api/v1/status"))
            if status.get("site") == "Demo Dental Practice" and _devices(status) >= 6:
                break
            time.sleep(1)
        assert status["site"] == "Demo Dental Practice"
        assert _devices(status) >= 6, status
        html = _get(page.group(1)).decode()
        assert "Demo Dental Practice" in html
        fleet_json = json.loads(
            _get(
                fleet.group(1).replace("/fleet", "/api/v1/fleet"),
                cafile=work / "home" / "ca.pem",
                token=(work / "home" / "console.token").read_text().strip(),  # console API token
            )
        )
        assert fleet_json["appliances"][0]["site"] == "Demo Dental Practice"
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "simulated site torn down." in rest
    prefix = re.search(r"namespaces:\s+(op\w+)\*", "".join(out))
    assert prefix, "the launcher names its namespaces"
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert prefix.group(1) not in namespaces


def _devices(status: dict[str, object]) -> int:
    devices = status.get("devices")
    if isinstance(devices, dict):
        return int(devices.get("total", 0))
    return devices if isinstance(devices, int) else 0
