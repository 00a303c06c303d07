"""The composition root (firmware/app.py): each shared resource is built once, opened before any
service's setup, reaches every service that uses it, and is closed after all of them.

Real pieces throughout: the real store, the real identity files, a real aiohttp session and a
real SNMP client (sockets bound on the host, nothing sent: home is a closed loopback port, and
discovery and polling have nothing to sweep or poll).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core import supervisor as sup
from core.config import Config, parse_config
from core.supervisor import Supervisor
from core.wire.keys import Identity
from firmware import app
from home.ca import init_ca
from provisioning.service import ProvisioningService
from services.discovery.service import DiscoveryService
from services.polling.service import PollingService
from services.snmp import SnmpClient
from services.uplink.service import UplinkService


def _closed_port() -> int:
    """A loopback TCP port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(tmp: Path) -> Config:
    ca_file, _ = init_ca(tmp / "ca")
    sections: dict[str, dict[str, Any]] = {
        "web": {"enabled": False},
        "store": {"path": str(tmp / "outpost.db")},
        # A closed loopback port: the uplink's posts fail fast, nothing leaves the host.
        "uplink": {
            "url": f"https://127.0.0.1:{_closed_port()}",
            "ca_file": str(ca_file),
            "request_timeout_s": 1.0,
            "heartbeat_s": 3600.0,
            "self_measure_s": 0.0,
        },
        "provisioning": {
            "identity_dir": str(tmp / "identity"),
            "state_dir": str(tmp / "provisioning"),
            "sync_interval_s": 3600.0,
        },
        "updates": {"root": str(tmp / "updates"), "mailbox_dir": str(tmp / "mailbox")},
        # SNMP on, but nothing to sweep (no subnets) and nothing to poll (empty inventory).
        "discovery": {"snmp": True, "subnets": [], "auto_subnets": False, "mdns": False},
        "polling": {"snmp": True, "icmp": False},
        "alerting": {"gateway_ip": "198.18.0.1"},
    }
    lines: list[str] = []
    for name, settings in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return parse_config("\n".join(lines) + "\n")


def _counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[Any]:
    """Replace ``owner.name`` (a class or function) by a wrapper that records each call."""
    made: list[Any] = []
    real: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(result := real(*args, **kwargs))
        return result

    monkeypatch.setattr(owner, name, counted)
    return made


def _one(supervisor: Supervisor, kind: type[Any]) -> Any:
    [found] = [s for s in supervisor.services if isinstance(s, kind)]
    return found


async def test_one_identity_one_home_session_one_snmp_client_reach_every_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identities: list[Identity] = _counting(monkeypatch, app, "load_or_create")
    homes = _counting(monkeypatch, app, "HomeClient")
    snmps = _counting(monkeypatch, app, "SnmpClient")
    sessions = _counting(monkeypatch, aiohttp, "ClientSession")  # the module the client uses

    _ctx, supervisor = app.build(_config(tmp_path))
    assert [r.name for r in supervisor.resources] == ["store", "home", "snmp"]
    uplink, provisioning = _one(supervisor, UplinkService), _one(supervisor, ProvisioningService)
    discovery, polling = _one(supervisor, DiscoveryService), _one(supervisor, PollingService)
    assert len(homes) == 1 and uplink.client is homes[0] and provisioning.client is homes[0]
    assert len(snmps) == 1 and discovery.snmp is snmps[0] and polling.shared_client is snmps[0]

    await supervisor.start()
    try:
        await asyncio.sleep(0.05)  # the run loops begin
        assert supervisor.states["uplink"].state == "running"
        assert supervisor.states["provisioning"].state == "running"
        # One key loaded (made, on this first start), one session, one identity for both users.
        assert len(identities) == 1 and homes[0].opens == 1
        assert len(sessions) == 1
        assert provisioning.identity is identities[0] is uplink.client.identity
        # Polling uses the shared SNMP client instead of opening its own.
        assert polling.client is snmps[0]
        assert isinstance(snmps[0], SnmpClient)
    finally:
        await supervisor.stop()
    # Closed by the root, after every user's teardown.
    session: aiohttp.ClientSession = sessions[0]
    assert session.closed and not homes[0].is_open
    assert {s.state for s in supervisor.states.values()} == {"stopped"}


async def test_every_setup_is_awaited_in_order_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal: list[str] = []
    _ctx, supervisor = app.build(_config(tmp_path))
    for service in supervisor.services:

        def wrap(service: Any = service) -> None:
            setup, run = service.setup, service.run

            async def traced_setup() -> None:
                await setup()
                journal.append(f"setup {service.name}")

            async def traced_run() -> None:
                journal.append(f"run {service.name}")
                await run()

            service.setup, service.run = traced_setup, traced_run

        wrap()
    await supervisor.start()
    try:
        await asyncio.sleep(0.2)
    finally:
        await supervisor.stop()
    names = [s.name for s in supervisor.services]
    setups = [line for line in journal if line.startswith("setup")]
    assert setups == [f"setup {n}" for n in names]
    first_run = next(i for i, line in enumerate(journal) if line.startswith("run"))
    assert first_run == len(names), journal


async def test_unreadable_key_does_not_stop_the_appliance_and_heals_once_fixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sup, "BACKOFF_FIRST_S", 0.05)
    monkeypatch.setattr(sup, "BACKOFF_CAP_S", 0.2)
    monkeypatch.setattr(app, "IDENTITY_RETRY_S", 0.01)
    config = _config(tmp_path)
    key = Path(config.provisioning.identity_dir) / "device.key"
    key.parent.mkdir(mode=0o700, parents=True)
    key.write_text("-----BEGIN PRIVATE KEY-----\ndamaged\n-----END PRIVATE KEY-----\n")
    key.chmod(0o600)
    ctx, supervisor = app.build(config)
    await supervisor.start()  # no FatalStartError: the store, polling, the page keep working
    try:
        await asyncio.sleep(0.02)  # the run loops begin (the uplink's after its back-off)
        states = supervisor.states
        assert states["store"].state == "running" and states["polling"].state == "running"
        assert states["uplink"].state == "backoff"
        assert "not a readable Ed25519 private key" in states["uplink"].last_error
        assert states["provisioning"].state == "backoff"
        assert ctx.status.snapshot().get("uplink.state") == "failing"
        await asyncio.sleep(0.5)
        assert states["uplink"].restarts >= 2  # retried with back-off, the process still up
        # The technician moves the damaged key aside: a new identity, without a restart.
        key.rename(key.with_suffix(".damaged"))
        for _ in range(100):
            if states["uplink"].state == states["provisioning"].state == "running":
                break
            await asyncio.sleep(0.05)
        assert states["uplink"].state == "running" and states["provisioning"].state == "running"
        provisioning = _one(supervisor, ProvisioningService)
        assert provisioning.identity is _one(supervisor, UplinkService).client.identity
    finally:
        await supervisor.stop()
