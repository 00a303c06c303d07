"""`make run` shows a healthy demo: every device answering is up, none down or unknown, no
down alert. As an unprivileged user (the loopback fallback: no ARP, no mDNS, usually no
ICMP) the ICMP fix is shown once on the network page; as root the demo LAN in namespaces is
discovered and every device of it is up too.

As root the unprivileged run is made as ``nobody`` (setpriv, no network capabilities), as a
new user would run it; as any other user it runs as that user.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.conftest import REPO, needs_root

NOBODY_UID = 65534
DEVICES_UP_TIMEOUT_S = 90.0


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        body: bytes = answer.read()
        return body


def _unprivileged(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    # nobody, no supplementary groups, no network privilege (no CAP_NET_RAW, no
    # CAP_NET_BIND_SERVICE): as a fresh user account would be. The one capability kept,
    # CAP_DAC_READ_SEARCH, only lets it reach an interpreter installed under /root (mode 700,
    # as pyenv does on this build machine); it grants nothing on the network.
    return [
        "setpriv", f"--reuid={NOBODY_UID}", f"--regid={NOBODY_UID}", "--clear-groups",
        "--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search",
        "--bounding-set=-all,+dac_read_search", "--", *argv,
    ]  # fmt: skip


def _run_demo(argv: list[str], expect_devices: int, loopback: bool) -> None:
    """Start the launcher, wait for its banner, then until every device is up; check the
    ICMP note and that no down alert is open; Ctrl-C; everything torn down."""
    work_root = Path(tempfile.mkdtemp(prefix="outpost-demo-"))
    work_root.chmod(0o777)  # the unprivileged launcher writes its run state here
    work = work_root / "run"
    env = {**os.environ, "HOME": str(work_root), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen(
        [*argv, "--workdir", str(work)],
        cwd=REPO,
        env=env,
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
        assert ("loopback fallback" in text) is loopback, text
        page = re.search(r"status page:\s+(http://\S+)", text)
        assert page, text
        base = page.group(1)
        states: dict[str, str] = {}
        started = time.monotonic()
        while time.monotonic() - started < DEVICES_UP_TIMEOUT_S:
            rows = json.loads(_get(base + "api/v1/devices"))["devices"]
            states = {str(r["name"] or r["ip"]): str(r["state"]) for r in rows}
            if len(states) >= expect_devices and all(s == "up" for s in states.values()):
                break
            time.sleep(1)
        took = time.monotonic() - started
        print(f"demo devices after {took:.1f} s: {states}")
        assert len(states) >= expect_devices, states
        assert {n: s for n, s in states.items() if s != "up"} == {}, states
        network = _get(base + "network").decode()
        icmp_note = "cannot open an ICMP socket"
        if loopback and (os.geteuid() == 0 or _no_ping_sockets()):
            # The usual unprivileged case: the fix is on the network page, once.
            assert network.count(icmp_note) == 1, network
        elif not loopback:
            assert icmp_note not in network  # root in namespaces: ICMP works
        print(f"ICMP note shown: {icmp_note in network}")
        alerts = json.loads(_get(base + "api/v1/alerts"))
        opened = [a for a in alerts.get("alerts", []) if a.get("rule") == "device.down"]
        assert opened == [], opened
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
        shutil.rmtree(work_root, ignore_errors=True)
    assert proc.returncode == 0, rest
    assert "simulated site torn down." in rest


def test_loopback_demo_has_no_false_down_or_unknown() -> None:
    """As an unprivileged user: 7 devices on 127.18.0.x, judged by TCP (RST included)."""
    _run_demo(_unprivileged([sys.executable, "-m", "simsite.launch"]), 7, loopback=True)


@needs_root
def test_namespace_demo_has_no_false_down_or_unknown() -> None:
    """As root: the demo LAN in namespaces, discovered (gateway + 7 devices), every one up."""
    _run_demo([sys.executable, "-m", "simsite.launch"], 8, loopback=False)


def _no_ping_sockets() -> bool:
    """True when this user may not open unprivileged ping sockets."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ping_group_range").read_text().split()
    except (OSError, ValueError):
        return True
    return not int(low) <= os.getegid() <= int(high)
