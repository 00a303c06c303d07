"""Settings of alerting ([alerting] in the configuration): thresholds, hysteresis, windows.

Maintenance windows are written "DAY HH:MM-HH:MM" in the appliance's local time, DAY one of
mon..sun or "daily"; a window may cross midnight ("sat 22:00-02:00"). No alert opens during
a window; conditions still active when it ends open then. Resolutions are never held back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.schema import between, each, ip_address, positive, setting
from core.vocabulary import DEVICE_KINDS

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WINDOW_RE = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun|daily) (\d\d):(\d\d)-(\d\d):(\d\d)$")


def _window(value: str) -> str | None:
    m = WINDOW_RE.match(value.strip().lower())
    if m is None or int(m[2]) > 23 or int(m[4]) > 23 or int(m[3]) > 59 or int(m[5]) > 59:
        return f"{value!r}: write a window like 'sat 22:00-02:00' or 'daily 03:00-03:30'"
    return None


#: Infrastructure and the things people rely on: their "down" is news worth a page. The gateway
#: is always watched, whatever its kind.
WATCHED_KINDS = ("router", "switch", "ap", "server", "nas", "printer", "ups", "camera")


def _kind(value: str) -> str | None:
    if value in DEVICE_KINDS:
        return None
    return f"{value!r} is not a device kind; use some of {', '.join(DEVICE_KINDS)}"


def _optional_ip(value: str) -> str | None:
    return ip_address(value) if value else None


@dataclass(frozen=True)
class AlertingSettings:
    enabled: bool = setting(True, help="turn measurements and events into alerts")
    down_after_missed: int = setting(
        2, check=between(1, 20), help="consecutive missed polls before 'device down'"
    )
    down_alert_kinds: tuple[str, ...] = setting(
        WATCHED_KINDS,
        check=each(_kind),
        help="device kinds whose 'down' is alerted; the others (laptops, phones, media, iot, "
        "unknown) come and go and get 'left'/'returned' presence events instead. A device "
        "marked monitored = true in [[polling.devices]] is alerted whatever its kind, one "
        "marked monitored = false never is",
    )
    volume_minor_pct: float = setting(80.0, check=between(1, 100), help="volume use, minor")
    volume_major_pct: float = setting(95.0, check=between(1, 100), help="volume use, major")
    supply_minor_pct: float = setting(
        10.0, check=between(0, 100), help="printer supply at or below this percent: minor"
    )
    hysteresis_pct: float = setting(
        2.0, check=between(0, 20), help="a level alert resolves this far back past its threshold"
    )
    rtt_warning_ms: float = setting(100.0, check=positive, help="average ping round trip")
    loss_warning_pct: float = setting(20.0, check=between(1, 100), help="ping loss")
    if_error_rate_ps: float = setting(
        1.0, check=positive, help="interface errors per second that raise a warning"
    )
    interface_down_kinds: tuple[str, ...] = setting(
        ("router", "nas", "server"),
        help="device kinds whose interfaces alert when they go down (switch ports of PCs that "
        "are switched off at night would not be news)",
    )
    reboot_hold_s: float = setting(
        3600.0, check=positive, help="seconds a 'device rebooted' alert stays open"
    )
    new_device_hold_s: float = setting(
        86400.0,
        check=positive,
        help="no longer used: a new device is an info event (device.joined), not an alert; "
        "accepted so that older configurations still load",
    )
    ip_conflict_hold_s: float = setting(
        3600.0, check=positive, help="seconds an 'IP conflict' alert stays open after the last"
    )
    gateway_ip: str = setting(
        "", check=_optional_ip, help="upstream of every device; empty: the default route's"
    )
    maintenance: tuple[str, ...] = setting(
        (), check=each(_window), help="windows with no new alerts, e.g. ['sat 22:00-02:00']"
    )

    def __post_init__(self) -> None:
        if self.volume_major_pct < self.volume_minor_pct:
            raise ValueError("volume_major_pct must be at least volume_minor_pct")
