"""The LED state machine: every state, and the priority between them."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import cast

import pytest

from core.status import StatusKey
from hardware.backends import SimBackend
from hardware.leds import Leds, PanelState, level, panel
from hardware.service import HardwareService
from tests.web_support import appliance

HEALTHY: dict[str, object] = {
    "phase": "running",
    "provisioning.state": "claimed",
    "uplink.state": "connected",
    "alerts.open": {"critical": 0, "major": 0, "minor": 0, "warning": 0},
}

# One fact set per condition, each on top of a healthy box.
CONDITIONS: dict[PanelState, dict[str, object]] = {
    PanelState.UPDATING: {"update.state": "installing"},
    PanelState.IDENTIFY: {"identify": True},
    PanelState.FAULT: {"fault": "store on a read-only file system"},
    PanelState.BOOTING: {"phase": "starting"},
    PanelState.UNPROVISIONED: {"provisioning.state": "unclaimed"},
    PanelState.MAJOR_ALERT: {"alerts.open": {"major": 1}},
    PanelState.UPLINK_DOWN: {"uplink.state": "buffering"},
    PanelState.MINOR_ALERT: {"alerts.open": {"minor": 2}},
}

EXPECTED = {
    PanelState.UPDATING: Leds("slow_pulse", "slow_pulse", "slow_pulse"),
    PanelState.IDENTIFY: Leds("blink", "blink", "blink"),
    PanelState.FAULT: Leds("fast_blink", "off", "on"),
    PanelState.BOOTING: Leds("slow_pulse", "off", "off"),
    PanelState.UNPROVISIONED: Leds("on", "slow_pulse", "off"),
    PanelState.MAJOR_ALERT: Leds("on", "on", "on"),
    PanelState.UPLINK_DOWN: Leds("on", "blink", "off"),
    PanelState.MINOR_ALERT: Leds("on", "on", "slow_pulse"),
    PanelState.HEALTHY: Leds("on", "on", "off"),
}


# The priority the panel must keep, highest first, written down from docs/hardware.md's table
# (not read from hardware.leds, so a change of order there fails here).
SPEC_PRIORITY = (
    PanelState.RESET_CONFIRM,
    PanelState.RESET_ARMED,
    PanelState.REBOOT_ARMED,
    PanelState.UPDATING,
    PanelState.IDENTIFY,
    PanelState.FAULT,
    PanelState.BOOTING,
    PanelState.UNPROVISIONED,
    PanelState.MAJOR_ALERT,
    PanelState.UPLINK_DOWN,
    PanelState.MINOR_ALERT,
    PanelState.HEALTHY,
)
OVERLAYS = (PanelState.RESET_CONFIRM, PanelState.RESET_ARMED, PanelState.REBOOT_ARMED)


def facts_with(*states: PanelState) -> dict[str, object]:
    facts = dict(HEALTHY)
    for state in states:
        facts.update(CONDITIONS[state])
    if PanelState.MAJOR_ALERT in states and PanelState.MINOR_ALERT in states:
        facts["alerts.open"] = {"major": 1, "minor": 2}
    return facts


@pytest.mark.parametrize("state", list(EXPECTED), ids=lambda s: s.value)
def test_each_state_alone(state: PanelState) -> None:
    facts = dict(HEALTHY) if state is PanelState.HEALTHY else facts_with(state)
    result = panel(facts)
    assert result.state is state
    assert result.leds == EXPECTED[state]


def test_priority_between_every_pair() -> None:
    """With two conditions at once, the higher-priority one names the state."""
    for a, b in itertools.combinations(CONDITIONS, 2):
        result = panel(facts_with(a, b))
        higher = a if SPEC_PRIORITY.index(a) < SPEC_PRIORITY.index(b) else b
        assert result.state is higher, (a, b, result.state)
        # Every condition that holds is listed, highest first; healthy always holds.
        wanted = tuple(s for s in SPEC_PRIORITY if s in (a, b, PanelState.HEALTHY))
        assert result.active == wanted, (a, b, result.active)


def test_all_conditions_at_once_are_listed_in_priority_order() -> None:
    result = panel(facts_with(*CONDITIONS))
    assert result.active == tuple(s for s in SPEC_PRIORITY if s not in OVERLAYS)
    assert result.state is PanelState.UPDATING


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda s: s.value)
def test_button_feedback_is_listed_above_every_condition(overlay: PanelState) -> None:
    result = panel(facts_with(*CONDITIONS), overlay)
    assert result.active == (overlay, *(s for s in SPEC_PRIORITY if s not in OVERLAYS))


def test_everyday_states_combine_on_their_own_leds() -> None:
    # Uplink down and a major alert: the uplink LED blinks and the alert LED is lit together.
    result = panel(facts_with(PanelState.UPLINK_DOWN, PanelState.MAJOR_ALERT))
    assert result.state is PanelState.MAJOR_ALERT
    assert result.leds == Leds("on", "blink", "on")
    # Critical counts as major; warnings alone do not light the alert LED.
    assert panel({**HEALTHY, "alerts.open": {"critical": 1}}).leds.alert == "on"
    assert panel({**HEALTHY, "alerts.open": {"warning": 5}}).state is PanelState.HEALTHY
    # Downloading an update is safe to interrupt; only installing is "do not unplug".
    assert panel({**HEALTHY, "update.state": "downloading"}).state is PanelState.HEALTHY
    # A failing uplink is "uplink down" too; an unconfigured one leaves the LED dark.
    assert panel({**HEALTHY, "uplink.state": "failing"}).state is PanelState.UPLINK_DOWN
    # ...told apart on the uplink LED: an outage ridden out blinks, a refusal blinks fast.
    assert panel({**HEALTHY, "uplink.state": "buffering"}).leds.uplink == "blink"
    assert panel({**HEALTHY, "uplink.state": "failing"}).leds.uplink == "fast_blink"
    assert panel({**HEALTHY, "uplink.state": "unconfigured"}).leds.uplink == "off"


def test_no_facts_at_all_is_booting() -> None:
    assert panel({}).state is PanelState.BOOTING


@pytest.mark.parametrize(
    "overlay", [PanelState.REBOOT_ARMED, PanelState.RESET_ARMED, PanelState.RESET_CONFIRM]
)
def test_button_feedback_overrides_even_updating(overlay: PanelState) -> None:
    facts = facts_with(PanelState.UPDATING, PanelState.FAULT, PanelState.IDENTIFY)
    assert panel(facts, overlay).state is overlay


def test_levels_of_patterns() -> None:
    assert level("on", 12.3) == 1.0 and level("off", 12.3) == 0.0
    assert level("blink", 0.1) == 1.0 and level("blink", 0.6) == 0.0
    assert level("fast_blink", 0.05) == 1.0 and level("fast_blink", 0.2) == 0.0
    assert level("slow_pulse", 0.0) == 0.0 and level("slow_pulse", 1.0) == 1.0
    assert 0.4 < level("slow_pulse", 0.5) < 0.6


async def test_every_state_through_the_service_on_the_sim_backend(tmp_path: Path) -> None:
    """The running panel service drives the simulated LEDs for each state, in priority order."""
    async with appliance(tmp_path) as ctx:
        backend = SimBackend()
        service = HardwareService(ctx, backend=backend)
        await service.setup()
        try:
            for key, value in HEALTHY.items():
                ctx.status.publish(StatusKey(key), value)
            assert (await service.step()).state is PanelState.HEALTHY
            assert backend.leds == EXPECTED[PanelState.HEALTHY].as_dict()
            # Raise the conditions from the lowest priority to the highest: each takes over.
            for state in reversed(list(CONDITIONS)):
                for key, value in CONDITIONS[state].items():
                    if key == "alerts.open":
                        before = cast(dict[str, int], ctx.status.snapshot()["alerts.open"])
                        value = {**before, **cast(dict[str, int], value)}  # noqa: PLW2901
                    ctx.status.publish(StatusKey(key), value)
                assert (await service.step()).state is state
                assert ctx.status.snapshot()["panel"]["state"] == state.value
            assert backend.leds == EXPECTED[PanelState.UPDATING].as_dict()
            # The recorded history has a time stamp for every change, in order.
            stamps = [c.at for c in backend.history]
            assert stamps == sorted(stamps) and len(backend.history) >= 10
        finally:
            await service.teardown()
        assert backend.leds == {"power": "off", "uplink": "off", "alert": "off"}
