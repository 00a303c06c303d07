"""Settings of the uplink to the MSP's home server ([uplink] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from firmware.schema import setting


@dataclass(frozen=True)
class UplinkSettings:
    url: str = setting("", help="home server URL, e.g. 'https://home.example-msp.net' (empty: none)")
