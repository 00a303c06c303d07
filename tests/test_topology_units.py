"""Placement (which port each device plugs into, uplinks) and the rules that say where,
on hand-built switch tables: fast, no root, no network."""

from __future__ import annotations

from core.vocabulary import Severity
from services.alerting.rules import (
    Condition,
    annotate_where,
    port_link_conditions,
    port_speed_conditions,
    remember_links,
)
from services.polling.placement import KnownDevice, SwitchView, place
from services.polling.profiles import Reading
from services.polling.results import PollResult
from services.polling.topology import FdbEntry, Neighbour, Port, SwitchTables
from services.polling.topology_results import PlacedDevice, PortSnapshot, TopologyUpdate

GIG = 1e9


def _port(i: int, speed: float = GIG, up: bool = True) -> Port:
    return Port(i, f"g{i}", f"port {i}", "", 6, speed, True, up, "full", 10, 0, 0, i)


def _mac(n: int) -> str:
    return f"00:11:22:00:00:{n:02x}"


def _neigh(if_index: int, name: str, chassis: str, caps: tuple[str, ...]) -> Neighbour:
    return Neighbour("lldp", if_index, f"g{if_index}", name, "gi0/1", "", chassis, "", "", "",
                     caps)  # fmt: skip


DEVICES = [
    KnownDevice(1, _mac(1), "10.0.0.1", "gateway", "router"),
    KnownDevice(2, _mac(2), "10.0.0.2", "sw-floor1", "switch"),
    KnownDevice(3, _mac(3), "10.0.0.3", "sw-floor2", "switch"),
    KnownDevice(10, _mac(10), "10.0.0.10", "reception-pc", "workstation"),
    KnownDevice(11, _mac(11), "10.0.0.11", "printer", "printer"),
    KnownDevice(12, _mac(12), "10.0.0.12", "phone", "phone"),
    KnownDevice(13, _mac(13), "10.0.0.13", "desk-pc", "workstation"),
    KnownDevice(20, _mac(20), "10.0.0.20", "nas", "nas"),
]


def _site() -> list[SwitchView]:
    # sw-floor1: g1 to the gateway (LLDP router), g2 to sw-floor2 (its MAC learned there),
    # g5 reception PC, g6 printer, g8 a phone with a PC behind it.
    far = [20, 3]  # learned through g2: the NAS behind sw-floor2, and sw-floor2 itself
    fdb1 = [FdbEntry(_mac(1), 1, 1, 10)] + [FdbEntry(_mac(n), 2, 2, 10) for n in far]
    fdb1 += [FdbEntry(_mac(10), 5, 5, 10), FdbEntry(_mac(11), 6, 6, 10)]
    fdb1 += [FdbEntry(_mac(12), 8, 8, 20), FdbEntry(_mac(13), 8, 8, 10)]
    sw1 = SwitchTables(
        tuple(_port(i) for i in range(1, 9)), tuple(fdb1),
        (_neigh(1, "gateway", _mac(1), ("router",)),),
    )  # fmt: skip
    # sw-floor2: g1 up to sw-floor1 (LLDP bridge), g3 the NAS; g1 learns everything else.
    fdb2 = [FdbEntry(_mac(n), 1, 1, 10) for n in (1, 2, 10, 11, 12, 13)]
    fdb2 += [FdbEntry(_mac(20), 3, 3, 10)]
    sw2 = SwitchTables(
        tuple(_port(i) for i in range(1, 5)), tuple(fdb2),
        (_neigh(1, "sw-floor1.office.lan", "aa:aa:aa:aa:aa:aa", ("bridge",)),),
    )  # fmt: skip
    return [
        SwitchView(2, "sw-floor1", "10.0.0.2", _mac(2), sw1),
        SwitchView(3, "sw-floor2", "10.0.0.3", _mac(3), sw2),
    ]


def test_every_end_device_is_placed_on_its_access_port_not_on_uplinks() -> None:
    topo = place(_site(), DEVICES)
    where = {d: (p.switch_id, p.port_name) for d, p in topo.placements.items()}
    assert where[10] == (2, "g5") and where[11] == (2, "g6")
    assert where[20] == (3, "g3")  # not sw-floor1's g2, which learns it too
    # The gateway is sw-floor1's LLDP neighbour on g1; sw-floor1 is sw-floor2's on g1.
    assert where[1] == (2, "g1") and topo.placements[1].via == "lldp"
    assert where[2] == (3, "g1")
    roles = topo.roles
    assert roles[(2, 1)].uplink and "LLDP neighbour gateway" in roles[(2, 1)].why
    assert roles[(2, 2)].uplink and roles[(2, 2)].why == "faces switch sw-floor2"
    assert roles[(3, 1)].uplink and "bridge" in roles[(3, 1)].why
    assert not roles[(2, 5)].uplink


def test_two_devices_on_one_access_port_share_it_with_their_vlans() -> None:
    topo = place(_site(), DEVICES)
    phone, pc = topo.placements[12], topo.placements[13]
    assert (phone.port_name, pc.port_name) == ("g8", "g8")
    assert phone.shared and pc.shared and not topo.placements[10].shared
    assert (phone.vlan, pc.vlan) == (20, 10)


def test_a_port_that_learns_many_macs_is_an_uplink() -> None:
    unknown = [FdbEntry(f"02:00:00:00:00:{n:02x}", 4, 4, 1) for n in range(12)]
    tables = SwitchTables(
        tuple(_port(i) for i in range(1, 6)),
        (*unknown, FdbEntry(_mac(10), 4, 4, 1), FdbEntry(_mac(11), 5, 5, 1)),
        (),
    )
    topo = place([SwitchView(2, "sw", "10.0.0.2", _mac(2), tables)], DEVICES, 10)
    assert topo.roles[(2, 4)].uplink and topo.roles[(2, 4)].why == "learns 13 MACs"
    assert 10 not in topo.placements and topo.placements[11].port_name == "g5"
    assert len(topo.roles[(2, 4)].unknown_macs) == 12


def test_a_phone_announcing_lldp_does_not_make_its_port_an_uplink() -> None:
    tables = SwitchTables(
        (_port(3),),
        (FdbEntry(_mac(12), 3, 3, 20), FdbEntry(_mac(13), 3, 3, 10)),
        (_neigh(3, "SEP001122", _mac(12), ("bridge", "telephone")),),
    )
    topo = place([SwitchView(2, "sw", "10.0.0.2", _mac(2), tables)], DEVICES)
    assert not topo.roles[(2, 3)].uplink
    assert topo.placements[13].port_name == "g3"


def _update(oper_up: bool = True, speed: float = GIG) -> TopologyUpdate:
    port = PortSnapshot(2, "sw-floor1", 6, "g6", "desk 12", speed, "full", oper_up, True, False)
    placed = PlacedDevice(11, "printer (10.0.0.11)", "printer", 2, 6, 10, "fdb", False, True)
    return TopologyUpdate((port,), (placed,), 0.0)


def _switch_poll(oper: float) -> PollResult:
    return PollResult(
        2, "10.0.0.2", "sw-floor1", "switch", 0.0, 0.0, True,
        (Reading("if.oper_up", oper, "g6"), Reading("if.admin_up", 1.0, "g6")),
        (), 0.1,
    )  # fmt: skip


def test_a_port_going_down_names_what_was_behind_it() -> None:
    (c,) = port_link_conditions(_switch_poll(0.0), _update())
    assert c.key == "port.down:2:g6" and c.severity == "minor"
    assert c.message == "sw-floor1 port g6 (desk 12) has no link: printer (10.0.0.11) was behind it"
    (c,) = port_link_conditions(_switch_poll(1.0), _update())
    assert c.severity is None


def test_a_device_down_says_its_port_and_whether_the_port_lost_link() -> None:
    down = Condition(
        "device.down:11", "device.down", 11, Severity.MAJOR, "printer is down: no answer"
    )
    links: dict[tuple[int, str], bool] = {}
    remember_links(_switch_poll(0.0), links)
    (c,) = annotate_where([down], _switch_poll(0.0), _update(), links)
    assert c.message.endswith(
        "it was on sw-floor1 port g6 (desk 12), which lost link (cable unplugged or the "
        "device is off)"
    )
    assert c.data["port_link"] is False
    remember_links(_switch_poll(1.0), links)
    (c,) = annotate_where([down], _switch_poll(1.0), _update(), links)
    assert "which still has link (the device hangs" in c.message


def test_a_port_that_slows_down_is_a_warning_until_its_speed_is_back() -> None:
    fastest: dict[tuple[int, int], float] = {}
    (c,) = port_speed_conditions(_update(speed=GIG), fastest)
    assert c.severity is None
    (c,) = port_speed_conditions(_update(speed=1e8), fastest)
    assert c.severity == "warning" and c.key == "port.speed:2:g6"
    assert "runs at 100 Mbit/s, was 1 Gbit/s: printer (10.0.0.11) behind it" in c.message
    (c,) = port_speed_conditions(_update(speed=GIG), fastest)
    assert c.severity is None


def test_errors_on_a_switch_port_name_the_device_behind_it() -> None:
    errors = Condition(
        "if.errors:2:g6",
        "if.errors",
        2,
        Severity.WARNING,
        "sw-floor1: interface g6 has 3.0 errors/s",
    )
    (c,) = annotate_where([errors], _switch_poll(1.0), _update(), {})
    assert c.message.endswith("sw-floor1 port g6 (desk 12), printer (10.0.0.11) behind it "
                              "(a bad cable?)")  # fmt: skip
