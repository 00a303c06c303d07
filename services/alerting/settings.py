"""Settings of alerting ([alerting] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from firmware.schema import setting


@dataclass(frozen=True)
class AlertingSettings:
    enabled: bool = setting(True, help="turn measurements and events into alerts")
