"""Where LED patterns go and button edges come from: the Pi's GPIO, or a simulation.

The simulated backend records every LED pattern with its time stamp and lets tests (and
`make run`) press the button for a given time; the status page shows its LEDs from the same
``panel`` status fact as on real hardware. The GPIO backend is the only code touching pins.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from core.clock import Clock, system_clock
from core.logs import get_log
from core.settings.hardware import HardwareSettings
from hardware.leds import LED_NAMES, level

log = get_log("hardware")

# (pressed, monotonic time of the edge)
ButtonHandler = Callable[[bool, float], None]
PWM_HZ = 200  # above flicker fusion; rpi-lgpio does it in software on every Pi model


class Backend(Protocol):
    def set_led(self, name: str, pattern: str) -> None: ...

    def tick(self, now: float) -> None: ...

    def on_button(self, handler: ButtonHandler) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LedChange:
    at: float  # the clock's monotonic time (s)
    led: str
    pattern: str


class SimBackend:
    """LEDs recorded in memory; ``press(duration_s)`` simulates a hold of the button."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or system_clock()
        self.leds: dict[str, str] = dict.fromkeys(LED_NAMES, "off")
        self.history: list[LedChange] = []
        self._handler: ButtonHandler | None = None

    def set_led(self, name: str, pattern: str) -> None:
        if self.leds.get(name) != pattern:
            self.leds[name] = pattern
            self.history.append(LedChange(self.clock.monotonic(), name, pattern))

    def tick(self, now: float) -> None:
        pass

    def on_button(self, handler: ButtonHandler) -> None:
        self._handler = handler

    def press(self, duration_s: float) -> None:
        """A hold of ``duration_s`` that ends now, without waiting for it (virtual hold time)."""
        if self._handler is None:
            raise RuntimeError("the hardware service has not attached to the button yet")
        end = self.clock.monotonic()
        self._handler(True, end - duration_s)
        self._handler(False, end)

    def hold(self) -> None:
        """Press and keep holding (real time); ``release()`` ends it."""
        if self._handler is None:
            raise RuntimeError("the hardware service has not attached to the button yet")
        self._handler(True, self.clock.monotonic())

    def release(self) -> None:
        if self._handler is None:
            raise RuntimeError("the hardware service has not attached to the button yet")
        self._handler(False, self.clock.monotonic())

    def close(self) -> None:
        pass


class GpioBackend:
    """LEDs and button on the Raspberry Pi through the RPi.GPIO API.

    On a Pi 5 (and any Pi with a recent kernel) install ``rpi-lgpio``, which provides the same
    API on top of lgpio; the chip is found automatically unless ``hardware.gpio_chip`` names it
    (rpi-lgpio reads RPI_LGPIO_CHIP).
    """

    def __init__(
        self,
        settings: HardwareSettings,
        loop: asyncio.AbstractEventLoop,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or system_clock()  # edges are stamped on the service's clock
        if settings.gpio_chip >= 0:
            os.environ["RPI_LGPIO_CHIP"] = str(settings.gpio_chip)
        try:
            import RPi.GPIO as gpio
        except ImportError as exc:
            raise RuntimeError(
                "hardware.backend is 'gpio' but RPi.GPIO is missing; install rpi-lgpio "
                "(pip install 'outpost[pi]') or set hardware.backend = 'sim'"
            ) from exc
        self._gpio: Any = gpio
        self._loop = loop
        self._settings = settings
        self._pins = {
            "power": settings.led_power_pin,
            "uplink": settings.led_uplink_pin,
            "alert": settings.led_alert_pin,
        }
        self._patterns: dict[str, str] = dict.fromkeys(LED_NAMES, "off")
        self._duty: dict[str, float] = {}
        self._handler: ButtonHandler | None = None
        gpio.setwarnings(False)
        gpio.setmode(gpio.BCM)
        self._pwm: dict[str, Any] = {}
        for name, pin in self._pins.items():
            gpio.setup(pin, gpio.OUT, initial=gpio.HIGH if settings.leds_active_low else gpio.LOW)
            pwm = gpio.PWM(pin, PWM_HZ)
            pwm.start(100.0 if settings.leds_active_low else 0.0)
            self._pwm[name] = pwm
        gpio.setup(settings.button_pin, gpio.IN, pull_up_down=gpio.PUD_UP)
        gpio.add_event_detect(settings.button_pin, gpio.BOTH, callback=self._edge, bouncetime=20)

    def _edge(self, channel: int) -> None:
        # Runs on the GPIO library's thread: read the level now, hand it to the event loop.
        pressed = self._gpio.input(channel) == self._gpio.LOW  # button pulls to ground
        now = self.clock.monotonic()
        if self._handler is not None:
            self._loop.call_soon_threadsafe(self._handler, pressed, now)

    def set_led(self, name: str, pattern: str) -> None:
        self._patterns[name] = pattern

    def tick(self, now: float) -> None:
        for name, pattern in self._patterns.items():
            duty = 100.0 * level(pattern, now)
            if self._settings.leds_active_low:
                duty = 100.0 - duty
            if self._duty.get(name) != duty:
                self._pwm[name].ChangeDutyCycle(duty)
                self._duty[name] = duty

    def on_button(self, handler: ButtonHandler) -> None:
        self._handler = handler

    def close(self) -> None:
        for pwm in self._pwm.values():
            pwm.stop()
        self._gpio.cleanup([*self._pins.values(), self._settings.button_pin])


def make_backend(
    settings: HardwareSettings, loop: asyncio.AbstractEventLoop, clock: Clock | None = None
) -> Backend:
    if settings.backend == "gpio":
        return GpioBackend(settings, loop, clock)
    return SimBackend(clock)
