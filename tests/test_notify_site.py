"""Notifications on the simulated site, with the real appliance polling it and the real home
in the MSP's namespace beyond the site's gateway: a server taken down is one mail in the
technician's mailbox (a real SMTP server beside home) within two poll intervals plus the group
wait, its return the resolution threaded onto it; the site's internet cut for longer than three
heartbeats is one "site offline" mail, then one resolution."""

from __future__ import annotations

import contextlib
import email
import email.policy
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from provisioning.identity import load_or_create
from simsite.model import SimDevice, SiteSpec
from simsite.site import Site
from tests.conftest import REPO, needs_root
from tests.notify_support import NotifyHome, namespace_database

INTERVAL_S = 3.0
GROUP_WAIT_S = 5.0
SERVER_IP = "198.18.0.61"
SMTP_PORT = 2525  # on the loopback of the MSP's namespace, beside home
HEARTBEAT_S = 1.0
OFFLINE_AFTER_S = 3 * HEARTBEAT_S


def _appliance_config(tmp: Path, home: NotifyHome) -> Path:
    text = f"""
[web]
enabled = false
[discovery]
enabled = false
[polling]
interval_s = {INTERVAL_S}
icmp_count = 2
icmp_spacing_ms = 100
icmp_timeout_s = 0.5
arp_timeout_s = 0.5
tcp_timeout_s = 0.5
kind_tcp_ports = []
[[polling.devices]]
name = "gateway"
ip = "198.18.0.1"
kind = "router"
[[polling.devices]]
name = "fileserver"
ip = "{SERVER_IP}"
kind = "server"
[alerting]
gateway_ip = "198.18.0.1"
down_after_missed = 2
[store]
path = "{tmp / "outpost.db"}"
[provisioning]
identity_dir = "{tmp / "identity"}"
[uplink]
url = "{home.url}"
ca_file = "{home.ca_file}"
batch_max_age_s = 0.2
backoff_first_s = 0.05
backoff_cap_s = 0.5
request_timeout_s = 2.0
heartbeat_s = {HEARTBEAT_S}
self_measure_s = 0.0
"""
    path = tmp / "outpost.toml"
    path.write_text(text)
    return path


def _home_config(tmp: Path) -> str:
    return f"""
[notify]
group_wait_s = {GROUP_WAIT_S}
resolve_wait_s = 2
offline_after_s = {OFFLINE_AFTER_S}
[notify.channels.technician]
type = "email"
host = "127.0.0.1"
port = {SMTP_PORT}
security = "none"
from = "outpost@msp.example"
to = ["anna@msp.example"]
[notify.defaults]
service = ["technician"]
[notify.sites."*"]
timezone = "UTC"
start = "00:00"
end = "23:59"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
"""


class Mailbox:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def mails(self) -> list[EmailMessage]:
        out = []
        for path in sorted(self.directory.glob("[0-9]*.eml")):
            mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(mail, EmailMessage)
            out.append(mail)
        return out

    def wait(self, count: int, timeout_s: float, what: str) -> float:
        return _wait(lambda: len(self.mails()) >= count, timeout_s, what)


def _wait(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@needs_root
def test_server_down_and_back_and_a_wan_cut_reach_the_technician(
    tmp_path: Path, request: pytest.FixtureRequest, home_backend: str
) -> None:
    spec = SiteSpec(
        devices=(SimDevice("fileserver", SERVER_IP, "52:54:00:00:00:61", "Linux", "server"),)
    )
    with Site(spec) as site, contextlib.ExitStack() as stack:
        mailbox = Mailbox(tmp_path / "mail")
        sink = site.popen_in(
            site.msp_ns,
            [sys.executable, "-m", "tests.notify_mailsink", str(mailbox.directory), str(SMTP_PORT)],
            stdout=subprocess.PIPE,
            stderr=open(tmp_path / "sink.log", "wb"),  # noqa: SIM115
            cwd=REPO,
        )
        assert sink.stdout is not None and b"ready" in sink.stdout.readline()
        config = tmp_path / "home.toml"
        config.write_text(_home_config(tmp_path))
        home = NotifyHome(
            tmp_path / "home", tmp_path / "ca", host=spec.msp_ip, netns=site.msp_ns, site=site,
            config=config, database=namespace_database(request, home_backend),
        )  # fmt: skip
        home.prepare()
        home.start()
        stack.callback(home.stop)
        identity = load_or_create(tmp_path / "identity")
        home.register(identity, "Dental")
        box_config = _appliance_config(tmp_path, home)
        log = open(tmp_path / "outpost.log", "wb")  # noqa: SIM115
        stack.callback(log.close)
        box = site.popen_in(
            site.app_ns,
            [sys.executable, "-m", "firmware", "run", "--config", str(box_config)],
            stdout=log,
            stderr=log,
            cwd=REPO,
        )

        def stop_box() -> None:
            box.send_signal(signal.SIGTERM)
            try:
                box.wait(15)
            except subprocess.TimeoutExpired:
                box.kill()
                box.wait()

        stack.callback(stop_box)
        _wait(
            lambda: (
                home.rows("SELECT COUNT(*) FROM appliances WHERE heartbeat_at IS NOT NULL")[0][0]
                == 1
            ),
            60,
            "the box's first heartbeat",
        )
        time.sleep(2 * INTERVAL_S)  # the server polled up at least once
        assert mailbox.mails() == []

        site.device_down("fileserver")
        took_s = mailbox.wait(1, 2 * INTERVAL_S + GROUP_WAIT_S + 10, "the server-down mail")
        print(f"\nserver down -> mail: {took_s:.1f} s (polls every {INTERVAL_S:.0f} s,"
              f" down after 2 misses, group wait {GROUP_WAIT_S:.0f} s)")  # fmt: skip
        assert took_s <= 2 * INTERVAL_S + GROUP_WAIT_S + 3
        opened = mailbox.mails()[0]
        assert opened["To"] == "anna@msp.example"
        assert opened["Subject"].startswith("[Outpost ") and "Dental: " in opened["Subject"]
        assert "down" in opened["Subject"]
        site.device_up("fileserver")
        mailbox.wait(2, 2 * INTERVAL_S + 2 + 10, "the resolution mail")
        resolved = mailbox.mails()[1]
        assert resolved["Subject"] == "Re: " + opened["Subject"]
        assert resolved["In-Reply-To"] == opened["Message-ID"]

        site.cut_internet()
        cut_at = time.monotonic()
        mailbox.wait(3, OFFLINE_AFTER_S + GROUP_WAIT_S + 10, "the site-offline mail")
        offline = mailbox.mails()[2]
        assert "site Dental offline" in offline["Subject"]
        # Longer than three heartbeats, and then some: still one mail.
        time.sleep(max(0.0, 2 * OFFLINE_AFTER_S - (time.monotonic() - cut_at)))
        assert len(mailbox.mails()) == 3
        site.restore_internet()
        mailbox.wait(4, 20, "the back-online mail")
        back = mailbox.mails()[3]
        assert back["In-Reply-To"] == offline["Message-ID"]
        text = back.get_body(("plain",))
        assert text is not None and "back online" in text.get_content()
        time.sleep(3)
        assert len(mailbox.mails()) == 4  # nothing else: no noise
