"""Settings of the front panel ([hardware] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from firmware.schema import setting


@dataclass(frozen=True)
class HardwareSettings:
    backend: Literal["sim", "gpio"] = setting(
        "sim", help="'gpio' on a Raspberry Pi, 'sim' elsewhere"
    )
