"""The GPIO backend against a recording stand-in of the RPi.GPIO API.

No Raspberry Pi is attached to CI, so the RPi.GPIO module is replaced by a small recorder
with the same calls (setmode, setup, PWM, add_event_detect, input, cleanup); this checks our
side of the contract: pins from settings, active-low inversion, PWM levels per pattern, edges
handed to the event loop, the chip setting passed to rpi-lgpio, and a clean release.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from core.settings.hardware import HardwareSettings
from hardware.backends import GpioBackend


class FakePwm:
    def __init__(self, gpio: FakeGpio, pin: int, hz: float) -> None:
        self.gpio, self.pin, self.hz = gpio, pin, hz
        self.duty: list[float] = []

    def start(self, duty: float) -> None:
        self.duty.append(duty)

    def ChangeDutyCycle(self, duty: float) -> None:
        self.duty.append(duty)

    def stop(self) -> None:
        self.gpio.stopped.append(self.pin)


class FakeGpio(types.ModuleType):
    BCM, OUT, IN, HIGH, LOW, PUD_UP, BOTH = "BCM", "OUT", "IN", 1, 0, "PUD_UP", "BOTH"

    def __init__(self) -> None:
        super().__init__("RPi.GPIO")
        self.mode = ""
        self.setups: dict[int, tuple[Any, ...]] = {}
        self.pwms: dict[int, FakePwm] = {}
        self.callback: Callable[[int], None] | None = None
        self.levels: dict[int, int] = {}
        self.cleaned: list[int] = []
        self.stopped: list[int] = []

    def setwarnings(self, flag: bool) -> None:
        pass

    def setmode(self, mode: str) -> None:
        self.mode = mode

    def setup(self, pin: int, direction: str, **kw: Any) -> None:
        self.setups[pin] = (direction, kw)

    def PWM(self, pin: int, hz: float) -> FakePwm:
        self.pwms[pin] = FakePwm(self, pin, hz)
        return self.pwms[pin]

    def add_event_detect(self, pin: int, edge: str, callback: Callable[[int], None],
                         bouncetime: int) -> None:  # fmt: skip
        self.callback = callback

    def input(self, pin: int) -> int:
        return self.levels.get(pin, 1)

    def cleanup(self, pins: list[int]) -> None:
        self.cleaned = list(pins)


@pytest.fixture
def gpio(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGpio]:
    fake = FakeGpio()
    package = types.ModuleType("RPi")
    package.GPIO = fake  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "RPi", package)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", fake)
    # setenv first records the original state, so whatever the backend sets is undone.
    monkeypatch.setenv("RPI_LGPIO_CHIP", "")
    monkeypatch.delenv("RPI_LGPIO_CHIP")
    yield fake


async def test_pins_levels_and_button_edges(gpio: FakeGpio) -> None:
    settings = replace(HardwareSettings(), backend="gpio", gpio_chip=4)
    backend = GpioBackend(settings, asyncio.get_running_loop())
    import os

    assert os.environ["RPI_LGPIO_CHIP"] == "4"
    assert gpio.mode == "BCM"
    assert set(gpio.pwms) == {17, 27, 22} and gpio.setups[23][0] == "IN"
    backend.set_led("power", "on")
    backend.set_led("uplink", "slow_pulse")
    backend.set_led("alert", "blink")
    backend.tick(0.5)  # blink: second half of the period is dark; pulse: at its peak
    backend.tick(1.0)
    assert gpio.pwms[17].duty[-1] == 100.0
    assert gpio.pwms[27].duty[-2:] == [50.0, 100.0]
    assert gpio.pwms[22].duty[-2:] == [0.0, 100.0]
    edges: list[tuple[bool, float]] = []
    backend.on_button(lambda pressed, at: edges.append((pressed, at)))
    gpio.levels[23] = 0  # pulled to ground: pressed
    assert gpio.callback is not None
    gpio.callback(23)
    gpio.levels[23] = 1
    gpio.callback(23)
    await asyncio.sleep(0)
    assert [p for p, _ in edges] == [True, False]
    backend.close()
    assert sorted(gpio.stopped) == [17, 22, 27] and sorted(gpio.cleaned) == [17, 22, 23, 27]


async def test_active_low_leds_are_inverted(gpio: FakeGpio) -> None:
    settings = replace(HardwareSettings(), backend="gpio", leds_active_low=True)
    backend = GpioBackend(settings, asyncio.get_running_loop())
    assert gpio.pwms[17].duty == [100.0]  # started dark: high on an active-low LED
    backend.set_led("power", "on")
    backend.tick(0.0)
    assert gpio.pwms[17].duty[-1] == 0.0
    backend.close()


async def test_missing_library_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "RPi", None)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    with pytest.raises(RuntimeError, match="rpi-lgpio"):
        GpioBackend(replace(HardwareSettings(), backend="gpio"), asyncio.get_running_loop())
