"""What a data source hands the report: plain rows, already read, in these typed shapes.

Time is epoch seconds (wall clock). Reachability and levels are kept as plain tuples per series
because a month of a 250-device site is millions of points; everything else is one dataclass a
row. Sources: the box's store (``devices``, ``measurements`` of ``device.reachable``,
``storage.used_pct``, ``supply.level_pct``, ``ups.battery_replace``, ``ups.selftest_ok``,
``if.in_errors_ps``, ``if.out_errors_ps``, ``alerts``, ``events``, the topology's port labels,
the firmware version discovery read) or home's ``records``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.report.hours import BusinessHours, Period

# Kinds the client cares about: their availability is the headline figure.
KEY_KINDS = frozenset({"router", "switch", "ap", "server", "nas", "printer", "ups"})

Point = tuple[float, float | None]  # (ts, value); value None: polled, no usable answer


@dataclass(frozen=True)
class Segment:
    """Consecutive polls of one device with the same verdict, no two further apart than the
    gap threshold (``GAP_SPACINGS`` x the typical spacing): what a source holding a
    reachability summary (the box's ``reach_segments``, services/store/reach.py) hands the
    report instead of every poll. Times are wall seconds."""

    first_s: float  # its first poll
    last_s: float  # its last poll
    value: float | None  # 1.0 up, 0.0 down, None nothing could be tried
    steps: int = 0  # steps between its polls (polls - 1), for the typical spacing


@dataclass(frozen=True)
class ReachSummary:
    """One device's reachability over [period start - margin, period end) as segments."""

    segments: Sequence[Segment]  # in time order
    spacing_s: float  # the series' typical spacing between polls (s)
    polls: int  # polls within the period itself


@dataclass(frozen=True)
class Device:
    id: int
    name: str  # the client's own name for it where known (else host name, else address)
    kind: str  # core.vocabulary.DEVICE_KINDS
    ip: str = ""
    vendor: str = ""
    first_seen: float = 0.0
    is_gateway: bool = False


@dataclass(frozen=True)
class Alert:
    """One alert occurrence (the box's ``alerts`` row, or home's ``alert`` records paired)."""

    id: int
    key: str  # rule:device[:instance], see docs/polling.md
    rule: str
    device_id: int | None
    severity: str
    message: str
    opened_ts: float
    resolved_ts: float | None  # None: still open
    acked: bool = False


@dataclass(frozen=True)
class Happening:
    """One event: a change in the inventory or something the MSP did."""

    kind: str  # device.joined / device.left / device.ip_changed / alert.acked / config.applied
    ts: float
    device_id: int | None = None
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceFirmware:
    """The firmware a device says it runs (the box: discovery's identity, ``attrs.snmp``)."""

    device_id: int
    version: str  # as the device gives it: "V2.10.3 build 7", "1.2a"
    vendor: str = ""
    model: str = ""


@dataclass(frozen=True)
class FirmwareRule:
    """One of the MSP's firmware rules (``[[report.firmware]]``, parsed by
    :func:`core.report.firmware.parse_rules`): devices whose vendor and model match (shell-style
    patterns, case-insensitive, "*" for any) should run ``minimum`` or later, and never one of
    ``flagged`` (exact versions, e.g. with a known fault); ``reason`` is said to the client."""

    vendor: str = "*"
    model: str = "*"
    minimum: str = ""  # "" : no minimum
    flagged: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class ReportInput:
    site: str
    period: Period
    hours: BusinessHours
    devices: Sequence[Device]
    # device id -> reachability polls in time order: 1 up, 0 down, None unknown
    reach: Mapping[int, Sequence[Point]]
    # device id -> the same as segments (a summarising source); used instead of ``reach``
    reach_summary: Mapping[int, ReachSummary] = field(default_factory=dict, kw_only=True)
    # (device id, volume) -> storage.used_pct in time order, over the 30 days before period end
    volumes: Mapping[tuple[int, str], Sequence[Point]]
    # (device id, supply) -> supply.level_pct in time order, same window
    supplies: Mapping[tuple[int, str], Sequence[Point]]
    alerts: Sequence[Alert]
    happenings: Sequence[Happening]
    msp_name: str = ""
    source: str = ""  # "this appliance" / "the MSP's server": said in the appendix
    # (device id, "") -> ups.battery_replace (1: the UPS asks for a new battery, 0: it does not)
    # and ups.selftest_ok (1 passed, 0 failed), in time order, over the 30 days before the end
    ups_replace: Mapping[tuple[int, str], Sequence[Point]] = field(default_factory=dict)
    ups_selftest: Mapping[tuple[int, str], Sequence[Point]] = field(default_factory=dict)
    # (device id, interface) -> if.in_errors_ps / if.out_errors_ps (errors a second between
    # two reads of the counter) in time order, over the 30 days before the end
    port_in_errors: Mapping[tuple[int, str], Sequence[Point]] = field(default_factory=dict)
    port_out_errors: Mapping[tuple[int, str], Sequence[Point]] = field(default_factory=dict)
    # (device id, interface) -> the client's name for the port (the label set on the switch,
    # or the technician's label); absent: only the interface name is known
    port_labels: Mapping[tuple[int, str], str] = field(default_factory=dict)
    # (device id, interface) -> the one device plugged into that port (the topology's
    # placement), for ports without a label: "the connection to Front desk PC"
    port_devices: Mapping[tuple[int, str], int] = field(default_factory=dict)
    firmware: Sequence[DeviceFirmware] = ()
    firmware_rules: Sequence[FirmwareRule] = ()
