"""Settings of the front panel ([hardware] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.schema import between, positive, setting


def bcm_pin(value: int) -> str | None:
    return None if 2 <= value <= 27 else "is not a usable BCM GPIO number; use 2 to 27"


@dataclass(frozen=True)
class HardwareSettings:
    backend: Literal["sim", "gpio"] = setting(
        "sim", help="'gpio' on a Raspberry Pi, 'sim' elsewhere"
    )
    # BCM numbering (the GPIOnn names, not header pin numbers); see docs/hardware.md.
    led_power_pin: int = setting(17, check=bcm_pin, help="GPIO of the power/health LED")
    led_uplink_pin: int = setting(27, check=bcm_pin, help="GPIO of the uplink LED")
    led_alert_pin: int = setting(22, check=bcm_pin, help="GPIO of the alert LED")
    button_pin: int = setting(23, check=bcm_pin, help="GPIO of the button (to ground)")
    # -1: let rpi-lgpio find the chip (gpiochip4 on a Pi 5 with old kernels, 0 otherwise).
    gpio_chip: int = setting(-1, check=between(-1, 15), help="gpiochip number, -1 = automatic")
    leds_active_low: bool = setting(False, help="LEDs wired from 3.3 V to the GPIO (sink)")
    identify_s: float = setting(60.0, check=positive, help="seconds the identify blink lasts")
    reboot_command: tuple[str, ...] = setting(
        ("systemctl", "reboot"), help="command run for a reboot from the button (gpio backend)"
    )
