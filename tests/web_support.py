"""Shared helpers of the status-page tests: re-exported from simsite.harness.status_page
(bench/web.py uses the same seeding), so the tests keep importing them from here."""

from __future__ import annotations

from simsite.harness.ports import free_tcp_port as free_port
from simsite.harness.status_page import (
    KINDS,
    appliance,
    backfill,
    insert_device,
    make_config,
    mark_down,
    seed_site,
    serve,
    unix_proxy,
)

__all__ = [
    "KINDS",
    "appliance",
    "backfill",
    "free_port",
    "insert_device",
    "make_config",
    "mark_down",
    "seed_site",
    "serve",
    "unix_proxy",
]
