"""Settings of firmware updates ([updates] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from core.schema import each, positive, setting
from core.wire.keys import load_public_key


def _public_key(value: str) -> str | None:
    try:
        load_public_key(value)
    except ValueError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class UpdateSettings:
    root: str = setting("/opt/outpost", help="install root holding releases/, current, previous")
    mailbox_dir: str = setting(
        "/var/lib/outpost/update",
        help="where the appliance drops update requests and health reports for the updater",
    )
    release_keys: tuple[str, ...] = setting(
        (),
        check=each(_public_key),
        help="Ed25519 public keys (base64) whose signature a release bundle must carry",
    )
    trial_window_s: float = setting(
        600.0, check=positive, help="seconds a new release has to report healthy before rollback"
    )
    max_trial_boots: int = setting(
        2, check=positive, help="boots a release on trial may take to report healthy"
    )
    healthy_after_s: float = setting(
        30.0, check=positive, help="seconds of clean running before the appliance says healthy"
    )
    python: str = setting(
        "/usr/bin/python3", help="interpreter that new releases' virtualenvs are built from"
    )
    system_site_packages: bool = setting(
        False, help="let release virtualenvs see the OS's Python packages"
    )
    extra_site_dirs: tuple[str, ...] = setting(
        (), help="extra site directories added to every release virtualenv (a shared base layer)"
    )
    restart_command: tuple[str, ...] = setting(
        ("systemctl", "restart", "--no-block", "outpost.service"),
        help="command that restarts the appliance after a switch (empty list: none)",
    )
    max_attempts: int = setting(
        5, check=positive, help="tries of one update (download, install) before giving up"
    )
