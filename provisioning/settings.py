"""Settings of identity and provisioning ([provisioning] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from firmware.schema import setting


@dataclass(frozen=True)
class ProvisioningSettings:
    identity_dir: str = setting(
        "/var/lib/outpost/identity", help="directory of the appliance's key pair"
    )
