"""Settings of the topology reading ([topology] in the configuration): where each device
plugs in (switch forwarding tables, LLDP/CDP neighbours) and the names a technician gives to
switch ports (``[[topology.ports]]``, e.g. "desk 12")."""

from __future__ import annotations

from dataclasses import dataclass

from core.schema import between, each, positive, setting
from core.vocabulary import DEVICE_KINDS


def _kind(value: str) -> str | None:
    return None if value in DEVICE_KINDS else f"{value!r} is not a device kind: {DEVICE_KINDS}"


@dataclass(frozen=True)
class PortLabel:
    """A technician's name for one switch port, shown wherever the port is named."""

    switch: str = setting("", help="the switch's name or IP address, e.g. 'sw-floor1'")
    port: str = setting("", help="the port's ifName (e.g. 'g7') or its ifIndex ('7')")
    label: str = setting("", help="what is at the other end of the cable, e.g. 'desk 12'")


@dataclass(frozen=True)
class TopologySettings:
    enabled: bool = setting(True, help="read switch port tables, forwarding tables and LLDP/CDP")
    interval_s: float = setting(
        300.0,
        check=between(1, 86400),
        help="seconds between two reads of a switch's tables (slower than counters: a forwarding "
        "table changes when a cable moves, and costs hundreds of varbinds)",
    )
    kinds: tuple[str, ...] = setting(
        ("switch", "ap", "router"),
        check=each(_kind),
        help="device kinds whose tables are read (they need an SNMP credential)",
    )
    uplink_min_macs: int = setting(
        10,
        check=positive,
        help="a port that learns at least this many MACs is an uplink (another switch behind "
        "it), not the port of the devices it learns",
    )
    ports: tuple[PortLabel, ...] = setting((), help="names of switch ports ([[topology.ports]])")

    def __post_init__(self) -> None:
        for index, p in enumerate(self.ports):
            if not (p.switch and p.port and p.label):
                raise ValueError(
                    f"ports[{index}] needs switch, port and label, e.g. switch = 'sw-floor1', "
                    "port = 'g7', label = 'desk 12'"
                )

    def label_for(self, switch_names: tuple[str, ...], port_names: tuple[str, ...]) -> str:
        """The configured label of a port: ``switch_names`` (name, IP) and ``port_names``
        (ifName, ifIndex as text) are what the switch and the port go by; "" when none."""
        for p in self.ports:
            if p.switch in switch_names and p.port in port_names:
                return p.label
        return ""
