"""The appliance's side of the updater: it asks for updates and reports health through files.

The appliance runs unprivileged and faces the network; the updater runs as root and owns the
install root. They meet in the mailbox directory (``/var/lib/outpost/update``, the appliance's):
``request.json`` (written by the appliance: "install this bundle"; a systemd path unit starts
the updater when it appears) and ``health.json`` (written by a release on trial once it runs
well). The updater verifies everything itself; the mailbox carries no authority.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import fsops
from core.clock import Clock, system_clock

REQUEST = "request.json"
HEALTH = "health.json"


def write_request(
    mailbox: Path,
    url: str,
    version: str | None = None,
    command_id: str | None = None,
    *,
    clock: Clock | None = None,
) -> None:
    mailbox.mkdir(parents=True, exist_ok=True)
    at = (clock or system_clock()).wall()
    fsops.write_json_atomic(
        mailbox / REQUEST,
        {"url": url, "version": version, "command_id": command_id, "at": at},
        mode=0o640,
    )


def take_request(mailbox: Path) -> dict[str, Any] | None:
    data = fsops.read_json(mailbox / REQUEST)
    return data if isinstance(data, dict) and isinstance(data.get("url"), str) else None


def clear_request(mailbox: Path) -> None:
    (mailbox / REQUEST).unlink(missing_ok=True)


def write_health(
    mailbox: Path, version: str, boot_id: str, detail: str = "", *, clock: Clock | None = None
) -> None:
    mailbox.mkdir(parents=True, exist_ok=True)
    at = (clock or system_clock()).wall()
    fsops.write_json_atomic(
        mailbox / HEALTH,
        {"version": version, "boot_id": boot_id, "at": at, "detail": detail},
    )
