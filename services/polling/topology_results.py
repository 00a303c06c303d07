"""What the topology service tells the rest of the process after each read (bus message).

Alerting keeps the latest :class:`TopologyUpdate` to say where things are: a port going down
names what was behind it, a device that drops off is reported with its port and whether the
port lost link, a port that slowed down is a warning.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PortSnapshot:
    switch_id: int
    switch_name: str
    if_index: int
    name: str  # ifName (the interfaces profile's instance name for most agents)
    label: str  # the technician's [[topology.ports]] label, else ifAlias, else ""
    speed_bps: float | None
    duplex: str
    oper_up: bool | None
    admin_up: bool | None
    uplink: bool

    @property
    def title(self) -> str:
        """ "sw-floor1 port g7 (desk 12)"."""
        extra = f" ({self.label})" if self.label and self.label != self.name else ""
        return f"{self.switch_name} port {self.name}{extra}"


@dataclass(frozen=True)
class PlacedDevice:
    device_id: int
    label: str  # "printer (198.18.0.30)"
    kind: str
    switch_id: int
    if_index: int
    vlan: int | None
    via: str
    shared: bool
    present: bool  # learned on the port at the last read (False: last known place)


@dataclass(frozen=True)
class TopologyUpdate:
    ports: tuple[PortSnapshot, ...]
    placed: tuple[PlacedDevice, ...]
    wall_s: float

    def port(self, switch_id: int, if_index: int) -> PortSnapshot | None:
        return next(
            (p for p in self.ports if p.switch_id == switch_id and p.if_index == if_index), None
        )

    def port_named(self, switch_id: int, name: str) -> PortSnapshot | None:
        return next((p for p in self.ports if p.switch_id == switch_id and p.name == name), None)

    def behind(self, switch_id: int, if_index: int) -> list[PlacedDevice]:
        return [d for d in self.placed if d.switch_id == switch_id and d.if_index == if_index]

    def where(self, device_id: int) -> PlacedDevice | None:
        return next((d for d in self.placed if d.device_id == device_id), None)
