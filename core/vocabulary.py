"""Words every layer and home share: alert severities and the inventory's device kinds."""

from __future__ import annotations

from typing import Final, Literal, get_args

Severity = Literal["info", "warning", "minor", "major", "critical"]
# The inventory's vocabulary of device kinds: discovery classifies into these, the config and
# the status page use them. "ap" is a wireless access point, "media" a TV or streaming box.
DeviceKind = Literal[
    "router", "switch", "ap", "nas", "printer", "ups", "server", "workstation", "phone",
    "camera", "media", "iot", "unknown",
]  # fmt: skip
DEVICE_KINDS: Final[tuple[DeviceKind, ...]] = get_args(DeviceKind)
