"""The appliance for tests and benchmarks: its configuration file, and the appliance built
in-process (``firmware.app.build``, the composition root) with its supervisor started.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

from core.clock import Clock
from core.config import Config, parse_config
from core.supervisor import Supervisor
from core.wire.keys import Identity
from firmware.app import build
from provisioning.identity import load_or_create
from services.context import AppContext

#: Loopback tests: nothing may sweep or poll the machine's real networks, nor serve a page.
LOOPBACK_ONLY: Final = (
    "[web]",
    "enabled = false",
    "[discovery]",
    "enabled = false",
    "[polling]",
    "enabled = false",
)

#: Uplink timings of a test: a batch leaves within 0.2 s, retries within half a second.
FAST_UPLINK: Final[dict[str, Any]] = {
    "batch_max_age_s": 0.2,
    "backoff_first_s": 0.05,
    "backoff_cap_s": 0.5,
    "request_timeout_s": 2.0,
    "heartbeat_s": 1.0,
    "self_measure_s": 0.0,
}


def toml_section(name: str, settings: dict[str, Any]) -> list[str]:
    """``[name]`` and one ``key = value`` line per setting (values written as JSON, which is
    valid TOML for strings, numbers, booleans and lists of them)."""
    return [f"[{name}]", *(f"{key} = {json.dumps(value)}" for key, value in settings.items())]


def appliance_config(
    tmp: Path, home: Any, store: dict[str, Any] | None = None, **uplink: Any
) -> tuple[Config, Path]:
    """A configuration for an appliance in ``tmp`` that sends to ``home`` (anything with
    ``url`` and ``ca_file``), written to ``tmp/outpost.toml``; returns it parsed and its path.

    Web, discovery and polling are off (loopback only); ``store`` and ``uplink`` override
    the store's and the uplink's settings.
    """
    settings = {"url": home.url, "ca_file": str(home.ca_file), **FAST_UPLINK, **uplink}
    lines = list(LOOPBACK_ONLY)
    lines += toml_section("store", {"path": str(tmp / "outpost.db"), **(store or {})})
    lines += toml_section("provisioning", {"identity_dir": str(tmp / "identity")})
    lines += toml_section("uplink", settings)
    text = "\n".join(lines) + "\n"
    path = tmp / "outpost.toml"
    path.write_text(text)
    return parse_config(text, str(path)), path


@contextlib.asynccontextmanager
async def running_appliance(
    config: Config, clock: Clock | None = None
) -> AsyncIterator[tuple[AppContext, Supervisor]]:
    """The appliance of ``config`` built and started in this process; stopped on exit."""
    ctx, supervisor = build(config, clock)
    await supervisor.start()
    try:
        yield ctx, supervisor
    finally:
        await supervisor.stop()


def identity_for(config: Config) -> Identity:
    """The appliance's identity (created on first use, as the appliance itself does)."""
    return load_or_create(config.provisioning.identity_dir)
