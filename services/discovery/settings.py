"""Settings of discovery ([discovery] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from firmware.schema import each, positive, setting, subnet


@dataclass(frozen=True)
class DiscoverySettings:
    enabled: bool = setting(True, help="discover devices on the LAN")
    # Empty means the subnets of the appliance's own interfaces.
    subnets: tuple[str, ...] = setting((), check=each(subnet), help="subnets to sweep")
    exclude: tuple[str, ...] = setting((), check=each(subnet), help="subnets or hosts to skip")
    sweep_interval_s: float = setting(300.0, check=positive, help="seconds between ARP sweeps")
    leave_after_s: float = setting(
        3600.0, check=positive, help="seconds unseen before a device counts as gone"
    )
