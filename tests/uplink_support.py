"""Test support for the uplink: a real home server subprocess with its own CA, and appliances.

The shared parts live in simsite.harness (bench/ uses them too); this module re-exports them
for the uplink tests and keeps what only those tests read.
"""

from __future__ import annotations

from typing import Any

from core.supervisor import Supervisor
from services.context import AppContext
from simsite.harness.appliance import appliance_config, identity_for, running_appliance
from simsite.harness.home import Home, running_home
from simsite.harness.ports import free_tcp_port as free_port
from simsite.harness.processes import HOME, OUTPOST
from simsite.harness.waiting import wait_for

__all__ = [
    "HOME",
    "OUTPOST",
    "Home",
    "appliance_config",
    "ctx_backlog",
    "free_port",
    "identity_for",
    "running_appliance",
    "running_home",
    "supervisor_states",
    "wait_for",
]


def supervisor_states(supervisor: Supervisor) -> dict[str, str]:
    return {name: s.state for name, s in supervisor.states.items()}


def ctx_backlog(ctx: AppContext) -> Any:
    return ctx.status.snapshot().get("uplink.backlog")
