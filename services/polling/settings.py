"""Settings of polling ([polling] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from firmware.schema import positive, setting


@dataclass(frozen=True)
class PollingSettings:
    enabled: bool = setting(True, help="poll discovered and configured devices")
    interval_s: float = setting(60.0, check=positive, help="seconds between polls of a device")
