"""Heartbeats reach home; the fleet view (JSON, and the console's pages that replaced the HTML
fleet table) shows sites, heartbeats, open alerts, to a console user only."""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from services.store import Measurement, insert_measurements
from tests.uplink_support import (
    HOME,
    Home,
    appliance_config,
    identity_for,
    running_appliance,
    running_home,
    wait_for,
)

# The same tests against both home database back ends (SQLite and PostgreSQL).
pytestmark = pytest.mark.usefixtures("home_backend")


HOSTILE_SITE = "Dentist <script>alert(1)</script> & Co"


def console_token(home: Home, tmp_path: Path, role: str = "read-only") -> str:
    """A console user made with ``outpost-home create-user`` (password from a file) and an API
    token for it from ``outpost-home create-token``."""
    password = tmp_path / "password"
    password.write_text("a long console password\n")
    subprocess.run(
        [*HOME, "create-user", "viewer", "--role", role, "--password-file", str(password),
         *home.where()],
        check=True, capture_output=True,
    )  # fmt: skip
    made = subprocess.run(
        [*HOME, "create-token", "viewer", "--label", "test", "--role", role, *home.where()],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return str(json.loads(made.stdout)["token"])


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
            auth = {"Authorization": f"Bearer {console_token(home, tmp_path)}"}
            async with aiohttp.ClientSession(headers=auth) as session:
                async with session.get(home.url + "/api/v1/fleet", ssl=context) as response:
                    fleet = (await response.json())["appliances"]
                async with session.get(home.url + "/console/alerts", ssl=context) as response:
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


async def test_fleet_view_needs_a_console_user(tmp_path: Path) -> None:
    with running_home(tmp_path) as home:
        config, _ = appliance_config(tmp_path, home, heartbeat_s=0.3)
        identity = identity_for(config)
        home.register(identity)
        context = ssl.create_default_context(cafile=str(home.ca_file))
        async with running_appliance(config), aiohttp.ClientSession() as session:
            # Appliances sign their requests: the console's login does not stand in their way.
            await wait_for(
                lambda: home.rows("SELECT heartbeat_at FROM appliances")[0][0] is not None,
                what="a heartbeat at home",
            )
            for path in ("/fleet", "/api/v1/fleet", "/console"):
                # No user yet: home serves no page at all, and says how to make one.
                async with session.get(home.url + path, ssl=context) as response:
                    assert response.status == 503
                    assert "create-user" in await response.text()
            right = {"Authorization": f"Bearer {console_token(home, tmp_path)}"}
            wrong = {"Authorization": "Bearer opc_guess"}
            for path in ("/fleet", "/api/v1/fleet"):
                async with session.get(
                    home.url + path, ssl=context, allow_redirects=False
                ) as response:
                    assert response.status in (401, 303)
                    if response.status == 303:
                        assert response.headers["Location"].startswith("/console/login")
                async with session.get(home.url + path, ssl=context, headers=wrong) as response:
                    assert response.status == 401
                async with session.get(home.url + path, ssl=context, headers=right) as response:
                    assert response.status == 200
            async with session.get(home.url + "/fleet", ssl=context, headers=right) as response:
                assert response.url.path == "/console"  # the fleet page moved to the console
