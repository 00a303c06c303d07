"""Heartbeats reach home; the fleet view (JSON and HTML) shows sites, heartbeats, open alerts."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest

from services.store import Measurement, insert_measurements
from tests.uplink_support import (
    appliance_config,
    identity_for,
    running_appliance,
    running_home,
    wait_for,
)

# The same tests against both home database back ends (SQLite and PostgreSQL).
pytestmark = pytest.mark.usefixtures("home_backend")


HOSTILE_SITE = "Dentist <script>alert(1)</script> & Co"


async def test_heartbeat_and_fleet_view(tmp_path: Path) -> None:
    with running_home(tmp_path) as home:
        config, _ = appliance_config(tmp_path, home, heartbeat_s=0.3)
        identity = identity_for(config)
        home.register(identity, site=HOSTILE_SITE)
        async with running_appliance(config) as (ctx, _sup):
            alert = {
                "key": "icmp.down:7",
                "state": "open",
                "severity": "critical",
                "message": "printer <b>down</b>",
                "ts": 1.8e9,
            }
            await ctx.store.write(lambda tx: tx.forward("alert", alert, 0))
            await ctx.store.write(lambda tx: insert_measurements(tx, [Measurement(None, "m", 1.0)]))
            await wait_for(
                lambda: home.rows("SELECT heartbeat_at FROM appliances")[0][0] is not None,
                what="a heartbeat at home",
            )
            await wait_for(lambda: len(home.records(identity.appliance_id)) == 2, what="records")
            context = ssl.create_default_context(cafile=str(home.ca_file))
            async with aiohttp.ClientSession() as session:
                async with session.get(home.url + "/api/v1/fleet", ssl=context) as response:
                    fleet = (await response.json())["appliances"]
                async with session.get(home.url + "/fleet", ssl=context) as response:
                    page = await response.text()
    [entry] = fleet
    assert entry["appliance"] == identity.appliance_id and entry["site"] == HOSTILE_SITE
    assert entry["last_heartbeat_age_s"] < 60 and entry["version"] == ctx.version
    assert set(entry["queue"]) == {"0", "1"}
    assert entry["open_alerts"] == [
        {"severity": "critical", "key": "icmp.down:7", "message": "printer <b>down</b>"}
    ]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page
    assert "<script>" not in page and "<b>down</b>" not in page
    assert "printer &lt;b&gt;down&lt;/b&gt;" in page


async def test_fleet_view_password(tmp_path: Path) -> None:
    with running_home(tmp_path, fleet_password="s3cret horse") as home:
        config, _ = appliance_config(tmp_path, home, heartbeat_s=0.3)
        identity = identity_for(config)
        home.register(identity)
        context = ssl.create_default_context(cafile=str(home.ca_file))
        async with running_appliance(config), aiohttp.ClientSession() as session:
            # Appliances sign their requests: the password does not stand in their way.
            await wait_for(
                lambda: home.rows("SELECT heartbeat_at FROM appliances")[0][0] is not None,
                what="a heartbeat at home",
            )
            for path in ("/fleet", "/api/v1/fleet"):
                async with session.get(home.url + path, ssl=context) as response:
                    assert response.status == 401
                    assert "Basic" in response.headers["WWW-Authenticate"]
                wrong = {"Authorization": aiohttp.encode_basic_auth("msp", "guess")}
                async with session.get(home.url + path, ssl=context, headers=wrong) as response:
                    assert response.status == 401
                right = {"Authorization": aiohttp.encode_basic_auth("msp", "s3cret horse")}
                async with session.get(home.url + path, ssl=context, headers=right) as response:
                    assert response.status == 200
