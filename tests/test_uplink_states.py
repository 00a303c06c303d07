"""What the box says of its uplink (issue 11): an outage it rides out is amber ("buffering":
offline, keeping data) however long it lasts; red ("failing", a technician must act) is for a
box that home refuses or whose home presents a certificate from another CA; and the backlog the
page shows follows the outbox within 2 s during an outage.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.status import StatusKey
from hardware.leds import panel
from home.ca import init_ca
from services.store import Measurement, insert_measurements
from services.uplink.service import FAILING_AFTER, UplinkService, uplink_state_after
from simsite.model import SimDevice, SiteSpec
from simsite.site import Site
from tests.conftest import REPO, needs_root
from tests.uplink_support import (
    Home,
    appliance_config,
    identity_for,
    running_appliance,
    running_home,
    wait_for,
)
from web.pages import uplink_view

OUTAGE_S = 60.0  # long enough for FAILING_AFTER failed tries at the back-off below
BACKLOG_LAG_S = 2.0  # docs/uplink.md: the page's backlog is recounted every 2 s
SAMPLE_SLACK_S = 0.5  # the driver's own sampling step and store read


@pytest.mark.parametrize(
    ("outcome", "failures", "state"),
    [
        ("network", 1, "buffering"),
        ("network", 500, "buffering"),  # a week-long outage is still an outage
        ("busy", 50, "buffering"),
        ("refused", 1, "failing"),  # 401/403: not registered, revoked, clock outside window
        ("tls", 1, "failing"),  # home's certificate is not from the pinned CA
        ("server", FAILING_AFTER - 1, "buffering"),
        ("server", FAILING_AFTER, "failing"),  # home answers, never acknowledges
        ("garbage", FAILING_AFTER, "failing"),
    ],
)
def test_state_after_a_failed_exchange(outcome: str, failures: int, state: str) -> None:
    assert uplink_state_after(outcome, failures) == state


async def test_home_down_is_amber_however_many_tries(tmp_path: Path) -> None:
    """Home's port refuses connections (connection refused, the commonest 'home is down'):
    the box stays "buffering" through far more than FAILING_AFTER tries; amber on the page,
    the uplink LED blinking (not the fast blink of "failing")."""
    with running_home(tmp_path) as home:
        config, _ = appliance_config(tmp_path, home)
        home.register(identity_for(config))
        async with running_appliance(config) as (ctx, supervisor):
            await wait_for(
                lambda: ctx.status.snapshot().get(StatusKey.UPLINK_STATE) == "connected",
                what="connected",
            )
            home.stop()
            service = next(s for s in supervisor.services if s.name == "uplink")
            assert isinstance(service, UplinkService)
            await ctx.store.write(lambda tx: insert_measurements(tx, [Measurement(None, "m", 1.0)]))
            await wait_for(
                lambda: ctx.status.snapshot().get(StatusKey.UPLINK_STATE) == "buffering",
                what="buffering",
            )
            states = set()
            deadline = time.monotonic() + 8.0
            while time.monotonic() < deadline:
                states.add(ctx.status.snapshot().get(StatusKey.UPLINK_STATE))
                await asyncio.sleep(0.1)
            tries = service.failures
            status = ctx.status.snapshot()
    assert states == {"buffering"}, states
    assert tries > FAILING_AFTER, f"only {tries} tries: the test proves nothing"
    view = uplink_view(status, {"outbox": {"priority": 0, "bulk": 0}})
    assert view["tone"] == "warn" and view["text"].startswith("Offline: keeping data")
    assert view["backlog"] >= 1
    assert (
        panel({**status, "phase": "running", "provisioning.state": "claimed"}).leds.uplink
        == "blink"
    )


async def test_home_with_a_certificate_from_another_ca_is_red_at_once(tmp_path: Path) -> None:
    with running_home(tmp_path) as home:
        init_ca(tmp_path / "other-ca")
        config, _ = appliance_config(tmp_path, home, ca_file=str(tmp_path / "other-ca" / "ca.pem"))
        home.register(identity_for(config))
        async with running_appliance(config) as (ctx, _sup):
            await ctx.store.write(lambda tx: insert_measurements(tx, [Measurement(None, "m", 1.0)]))
            await wait_for(
                lambda: ctx.status.snapshot().get(StatusKey.UPLINK_STATE) == "failing",
                what="uplink.state failing",
            )
            status = ctx.status.snapshot()
    view = uplink_view(status, {"outbox": {"priority": 0, "bulk": 0}})
    assert view["tone"] == "bad" and "technician" in view["text"]
    assert (
        panel({**status, "phase": "running", "provisioning.state": "claimed"}).leds.uplink
        == "fast_blink"
    )


@needs_root
def test_wan_cut_is_amber_and_the_backlog_follows_the_outbox(tmp_path: Path) -> None:
    """The real appliance in the site's appliance namespace, home beyond the gateway; the
    gateway's WAN link goes down for a minute while the box keeps storing measurements."""
    spec = SiteSpec(
        devices=(SimDevice("pc", "198.18.0.50", "f8:bc:12:00:00:52", "Dell", "workstation"),)
    )
    with Site(spec) as site:
        home = Home(
            tmp_path / "home", tmp_path / "ca", host=spec.msp_ip, netns=site.msp_ns, site=site
        )
        home.prepare()
        home.start()
        driver = None
        try:
            # Production-like timings: a 1 s first retry doubling to 30 s, a 10 s request
            # timeout, a batch every 2 s, a heartbeat a minute.
            _config, config_path = appliance_config(
                tmp_path,
                home,
                batch_max_age_s=2.0,
                backoff_first_s=1.0,
                backoff_cap_s=30.0,
                request_timeout_s=10.0,
                heartbeat_s=60.0,
            )
            home.register(identity_for(_config))
            driver = site.popen_in(
                site.app_ns,
                [sys.executable, "-m", "tests.uplink_states_driver", str(config_path),
                 str(OUTAGE_S)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=open(tmp_path / "driver.log", "wb"),  # noqa: SIM115
                cwd=REPO,
            )  # fmt: skip
            assert driver.stdin is not None and driver.stdout is not None

            def say(line: str) -> dict[str, object]:
                assert driver is not None and driver.stdin is not None
                assert driver.stdout is not None
                if line:
                    driver.stdin.write(line.encode() + b"\n")
                    driver.stdin.flush()
                answer = json.loads(driver.stdout.readline() or "{}")
                assert answer, (tmp_path / "driver.log").read_text()[-3000:]
                return dict(answer)

            assert say("") == {"connected": True}
            site.cut_internet()
            samples = say("cut")["samples"]
            site.restore_internet()
            drained = say("restored")
            driver.wait(30)
        finally:
            if driver is not None and driver.poll() is None:
                driver.kill()
                driver.wait(10)
            home.stop()
    assert isinstance(samples, list) and len(samples) > OUTAGE_S * 2
    states = [s[1] for s in samples]
    assert "failing" not in states, "an internet cut is an outage to ride out, never red"
    first_amber = next(s[0] for s in samples if s[1] == "buffering")
    # Within a poll (60 s): here a batch every 2 s plus one request timeout (10 s).
    assert first_amber <= 2.0 + 10.0 + 2.0, f"amber only {first_amber:.1f} s after the cut"
    assert states[-1] == "buffering"
    # The published backlog is the outbox as it was at most 2 s (+ sampling) before.
    lags = []
    for t, _state, backlog, _rows in samples:
        if t < BACKLOG_LAG_S + SAMPLE_SLACK_S:
            continue
        since = t - BACKLOG_LAG_S - SAMPLE_SLACK_S
        window = [rows for t2, _s, _b, rows in samples if since <= t2 <= t]
        assert min(window) <= backlog <= max(window), (
            f"at {t:.1f} s the page said {backlog} records, the outbox held {window[0]}-"
            f"{window[-1]} over the 2 s before"
        )
        older = [t2 for t2, _s, _b, rows in samples if t2 <= t and rows <= backlog]
        lags.append(t - max(older) if older else 0.0)
    assert samples[-1][3] > samples[0][3] + 1000, "the outbox grew during the outage"
    print(
        f"\nWAN cut: amber after {first_amber:.1f} s, never red in {OUTAGE_S:.0f} s; backlog "
        f"behind the outbox by at most {max(lags):.1f} s; drained {drained['drained_s']} s "
        "after the restore"
    )
