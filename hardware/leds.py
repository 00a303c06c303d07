"""What the three front-panel LEDs show: a pure function of the appliance's live facts.

The panel has a power/health LED (green), an uplink LED (blue) and an alert LED (amber). The
panel *state* is the highest-priority condition that holds; the states that mean "stop and
look" (updating, identify, fault, booting) take over all three LEDs, while the everyday
states combine: the uplink LED always tells the link and the alert LED always tells the worst
open alert, so "uplink down and a major alert" shows both at once.

Priority, highest first (the first that holds names the state):
  updating        all three slow pulse     installing firmware: do not unplug
  identify        all three blink together the MSP asked to find this box
  fault           power fast blink, alert on  needs a technician
  booting         power slow pulse          starting up
  unprovisioned   uplink slow pulse         waiting to be claimed by the MSP
  major_alert     alert on                  a critical or major alert is open
  uplink_down     uplink blink              offline, buffering data until home answers;
                  uplink fast blink         failing: refused or TLS, a technician must act
  minor_alert     alert slow pulse          a minor alert is open
  healthy         power on, uplink on       all good
Button feedback (while held / the factory-reset confirm) overrides everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from core.status import StatusKey
from core.vocabulary import Severity

Pattern = Literal["off", "on", "slow_pulse", "blink", "fast_blink"]
LED_NAMES = ("power", "uplink", "alert")
# Pattern timing, used by the GPIO backend's renderer and shown by the page's CSS.
SLOW_PULSE_PERIOD_S = 2.0
BLINK_PERIOD_S = 1.0
FAST_BLINK_PERIOD_S = 0.25


class PanelState(Enum):
    # Button feedback first: it answers the hand on the button right now.
    RESET_CONFIRM = "reset_confirm"
    RESET_ARMED = "reset_armed"
    REBOOT_ARMED = "reboot_armed"
    UPDATING = "updating"
    IDENTIFY = "identify"
    FAULT = "fault"
    BOOTING = "booting"
    UNPROVISIONED = "unprovisioned"
    MAJOR_ALERT = "major_alert"
    UPLINK_DOWN = "uplink_down"
    MINOR_ALERT = "minor_alert"
    HEALTHY = "healthy"


PRIORITY = tuple(PanelState)  # declaration order is priority order


@dataclass(frozen=True)
class Leds:
    power: Pattern
    uplink: Pattern
    alert: Pattern

    def as_dict(self) -> dict[str, str]:
        return {"power": self.power, "uplink": self.uplink, "alert": self.alert}


@dataclass(frozen=True)
class Panel:
    state: PanelState
    leds: Leds
    active: tuple[PanelState, ...]  # every condition that holds, highest first


_TAKEOVER: dict[PanelState, Leds] = {
    PanelState.RESET_CONFIRM: Leds("fast_blink", "fast_blink", "fast_blink"),
    PanelState.RESET_ARMED: Leds("fast_blink", "off", "fast_blink"),
    PanelState.REBOOT_ARMED: Leds("fast_blink", "off", "off"),
    PanelState.UPDATING: Leds("slow_pulse", "slow_pulse", "slow_pulse"),
    PanelState.IDENTIFY: Leds("blink", "blink", "blink"),
    PanelState.FAULT: Leds("fast_blink", "off", "on"),
    PanelState.BOOTING: Leds("slow_pulse", "off", "off"),
}
UPDATING_STATES = ("installing",)  # downloading is safe to interrupt; installing is not
UPLINK_DOWN_STATES = ("buffering", "failing")


def _alert_counts(facts: Mapping[str, Any]) -> Mapping[str, int]:
    counts = facts.get(StatusKey.ALERTS_OPEN)
    return counts if isinstance(counts, Mapping) else {}


def active_conditions(
    facts: Mapping[str, Any], overlay: PanelState | None = None
) -> tuple[PanelState, ...]:
    """Every panel condition that holds for these status facts, highest priority first."""
    alerts = _alert_counts(facts)
    holds = {
        PanelState.UPDATING: facts.get(StatusKey.UPDATE_STATE) in UPDATING_STATES,
        PanelState.IDENTIFY: bool(facts.get(StatusKey.IDENTIFY)),
        PanelState.FAULT: bool(facts.get(StatusKey.FAULT)),
        PanelState.BOOTING: facts.get(StatusKey.PHASE, "starting") != "running",
        PanelState.UNPROVISIONED: facts.get(StatusKey.PROVISIONING_STATE) == "unclaimed",
        PanelState.MAJOR_ALERT: any(
            n and Severity.parse(s, Severity.INFO) >= Severity.MAJOR for s, n in alerts.items()
        ),
        PanelState.UPLINK_DOWN: facts.get(StatusKey.UPLINK_STATE) in UPLINK_DOWN_STATES,
        PanelState.MINOR_ALERT: bool(alerts.get(Severity.MINOR, 0)),
        PanelState.HEALTHY: True,
    }
    if overlay is not None:
        holds[overlay] = True
    return tuple(s for s in PRIORITY if holds.get(s))


def panel(facts: Mapping[str, Any], overlay: PanelState | None = None) -> Panel:
    """The panel state and LED patterns for ``facts`` (a ``ctx.status`` snapshot)."""
    active = active_conditions(facts, overlay)
    state = active[0]
    if state in _TAKEOVER:
        return Panel(state, _TAKEOVER[state], active)
    uplink_state = facts.get(StatusKey.UPLINK_STATE)
    uplink: Pattern
    if PanelState.UNPROVISIONED in active:
        uplink = "slow_pulse"
    elif uplink_state == "failing":
        uplink = "fast_blink"  # home reachable but refusing us: not an outage to sit out
    elif uplink_state in UPLINK_DOWN_STATES:
        uplink = "blink"
    elif uplink_state == "connected":
        uplink = "on"
    else:
        uplink = "off"  # no uplink configured: nothing to tell
    alert: Pattern = "off"
    if PanelState.MAJOR_ALERT in active:
        alert = "on"
    elif PanelState.MINOR_ALERT in active:
        alert = "slow_pulse"
    return Panel(state, Leds("on", uplink, alert), active)


def level(pattern: str, t: float) -> float:
    """Brightness 0..1 of ``pattern`` at monotonic time ``t`` (for a GPIO/PWM renderer)."""
    if pattern == "on":
        return 1.0
    if pattern == "blink":
        return 1.0 if (t % BLINK_PERIOD_S) < BLINK_PERIOD_S / 2 else 0.0
    if pattern == "fast_blink":
        return 1.0 if (t % FAST_BLINK_PERIOD_S) < FAST_BLINK_PERIOD_S / 2 else 0.0
    if pattern == "slow_pulse":
        phase = (t % SLOW_PULSE_PERIOD_S) / SLOW_PULSE_PERIOD_S
        return 1.0 - abs(2.0 * phase - 1.0)  # triangle 0 -> 1 -> 0
    return 0.0
