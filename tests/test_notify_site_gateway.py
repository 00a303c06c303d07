"""On the simulated site: the gateway goes down with the servers behind it, and the technician
gets ONE mail naming the gateway and listing the servers (issue 13: "With the gateway down: one
mail naming the gateway, not one per device"); its return is one resolution threaded onto it.

Where home runs: in the simulated site home sits in the MSP's namespace beyond the site's
gateway, so a dead gateway also cuts the box off home. That case is real too (the box keeps its
records and home sends the outage, resolved, when the box is back: test_notify_delivery's
``test_an_outage_that_reaches_home_late_is_sent_a_blip_is_not`` and
test_notify_grouping's late-outage test), but it cannot show the mail while the gateway is
down. Here home and the mail server run in the appliance's own namespace (loopback), which the
dead gateway does not cut: what is measured is the box's dependency rule and home's grouping, live.

The site's LAN is one flat switch: a dead gateway alone leaves the servers answering the box
(as in a real office whose router died). The box's dependency model has one parent, the gateway
(a switch's dependants are not modelled: services/alerting/service.py), so the test takes the
servers down with the gateway, as a power cut of the rack would: the box cannot tell those
apart from devices cut off by the gateway and, by design, names the gateway as the cause.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioning.identity import load_or_create
from simsite.model import SimDevice, SiteSpec
from simsite.site import Site
from tests.conftest import REPO, needs_root
from tests.notify_support import NotifyHome, namespace_database
from tests.test_notify_site import Mailbox, _wait

INTERVAL_S = 3.0
# The gateway's mail lists the dependants silent at its second miss (a later one is named in the
# resolution: services/alerting/dependants.py): the four are cut in one batch, since taken down
# one by one on a loaded CI machine the last server went more than a poll after the gateway and
# was missing from the mail (CI, 2026-11-29 and 30; a longer group wait did not help).
GROUP_WAIT_S = 5.0
SMTP_PORT = 2526  # loopback of the appliance's namespace, beside home
SERVERS = {"fs1": "198.18.0.61", "fs2": "198.18.0.62", "dc1": "198.18.0.63"}


def _appliance_config(tmp: Path, home: NotifyHome) -> Path:
    devices = "".join(
        f'[[polling.devices]]\nname = "{name}"\nip = "{ip}"\nkind = "server"\n'
        for name, ip in SERVERS.items()
    )
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
{devices}
[alerting]
gateway_ip = "198.18.0.1"
down_after_missed = 2
# Two pings a poll: a cut between them reads 50 % loss, a warning of its own, not held by the
# dependency rule (it holds "down"), so a second mail (seen once in three runs). This test is about
# the dependency rule; the loss threshold stays above what one poll of two pings can show.
loss_warning_pct = 60
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
heartbeat_s = 1.0
self_measure_s = 0.0
"""
    path = tmp / "outpost.toml"
    path.write_text(text)
    return path


def _home_config() -> str:
    return f"""
[notify]
group_wait_s = {GROUP_WAIT_S}
resolve_wait_s = 2
offline_after_s = 0
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


@needs_root
def test_gateway_down_with_its_servers_is_one_mail_naming_the_gateway(
    tmp_path: Path, request: pytest.FixtureRequest, home_backend: str
) -> None:
    spec = SiteSpec(
        devices=tuple(
            SimDevice(name, ip, f"52:54:00:00:01:{ip.rsplit('.', 1)[1]}", "Linux", "server")
            for name, ip in SERVERS.items()
        )
    )
    with Site(spec) as site, contextlib.ExitStack() as stack:
        mailbox = Mailbox(tmp_path / "mail")
        sink = site.popen_in(
            site.app_ns,
            [sys.executable, "-m", "tests.notify_mailsink", str(mailbox.directory), str(SMTP_PORT)],
            stdout=subprocess.PIPE,
            stderr=open(tmp_path / "sink.log", "wb"),  # noqa: SIM115
            cwd=REPO,
        )
        assert sink.stdout is not None and b"ready" in sink.stdout.readline()
        config = tmp_path / "home.toml"
        config.write_text(_home_config())
        home = NotifyHome(
            tmp_path / "home", tmp_path / "ca", host="127.0.0.1", netns=site.app_ns, site=site,
            config=config, database=namespace_database(request, home_backend),
        )  # fmt: skip
        home.prepare()
        home.start()
        stack.callback(home.stop)
        identity = load_or_create(tmp_path / "identity")
        home.register(identity, "Dental")
        log = open(tmp_path / "outpost.log", "wb")  # noqa: SIM115
        stack.callback(log.close)
        box = site.popen_in(
            site.app_ns,
            [sys.executable, "-m", "firmware", "run", "--config",
             str(_appliance_config(tmp_path, home))],
            stdout=log, stderr=log, cwd=REPO,
        )  # fmt: skip

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
        time.sleep(2 * INTERVAL_S)  # everything polled up at least once
        assert mailbox.mails() == []

        site.devices_down("gateway", *SERVERS)  # at once, as a power cut of the rack
        took_s = mailbox.wait(1, 3 * INTERVAL_S + GROUP_WAIT_S + 15, "the gateway-down mail")
        # Long enough for the servers' own alerts, had they not been held: still one mail.
        time.sleep(3 * INTERVAL_S + GROUP_WAIT_S)
        mails = mailbox.mails()
        assert len(mails) == 1, [m["Subject"] for m in mails]
        opened = mails[0]
        assert "the gateway" in opened["Subject"] and "is down" in opened["Subject"]
        text = opened.get_body(("plain",))
        assert text is not None
        body = text.get_content()
        # The opening names the servers silent at the gateway's second miss (the box fixes the
        # list when it opens the alert: services/alerting/dependants.py). Usually all three; in
        # two CI runs of about ten one server's first miss came after that moment and only the
        # resolution named it (known limit, in the closing note): at least one here, all three
        # in the resolution below.
        listed = [n for n, ip in SERVERS.items() if f"  - {n} ({ip}), server" in body]
        assert listed, body
        assert f"Not answering behind it ({len(listed)} device(s), not alerted separately):" in body
        print(
            f"\ngateway and 3 servers down -> one mail: {took_s:.1f} s (polls every"
            f" {INTERVAL_S:.0f} s, down after 2 misses, group wait {GROUP_WAIT_S:.0f} s)"
        )

        for name in SERVERS:
            site.device_up(name)
        time.sleep(INTERVAL_S)
        site.device_up("gateway")
        mailbox.wait(2, 3 * INTERVAL_S + 2 + 15, "the resolution mail")
        time.sleep(2 * INTERVAL_S)
        mails = mailbox.mails()
        assert len(mails) == 2, [m["Subject"] for m in mails]
        assert mails[1]["In-Reply-To"] == opened["Message-ID"]
        assert mails[1]["Subject"] == "Re: " + opened["Subject"]
        closing = mails[1].get_body(("plain",))
        assert closing is not None
        resolved_body = closing.get_content()
        assert "Were not answering behind it during the outage" in resolved_body, resolved_body
        for name, ip in SERVERS.items():
            assert f"  - {name} ({ip}), server" in resolved_body, resolved_body
