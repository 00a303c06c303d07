"""Settings of identity and provisioning ([provisioning] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from core.schema import positive, setting


@dataclass(frozen=True)
class ProvisioningSettings:
    identity_dir: str = setting(
        "/var/lib/outpost/identity", help="directory of the appliance's key pair"
    )
    config_file: str = setting(
        "/etc/outpost/outpost.toml",
        help="the local configuration file that signed site configurations are laid over",
    )
    state_dir: str = setting(
        "/var/lib/outpost/provisioning",
        help="claim state, signed configurations and seen commands (on the data partition)",
    )
    confirm_window_s: float = setting(
        600.0,
        check=positive,
        help="seconds a new site configuration has to reach home before it is rolled back",
    )
    sync_interval_s: float = setting(
        30.0, check=positive, help="seconds between asking home for configuration and commands"
    )
    claim_code_ttl_s: float = setting(
        30 * 86400.0, check=positive, help="seconds a claim code stays valid before it is replaced"
    )
    reboot_command: tuple[str, ...] = setting(
        ("systemctl", "reboot"), help="command run for a remote reboot (empty list: none)"
    )
