"""Settings of polling ([polling] in the configuration).

Intervals and timeouts carry their unit in the key name. Devices the discovery cannot see (a
server in another VLAN, a printer with ICMP filtered) can be added by hand as
``[[polling.devices]]``; they are upserted into the inventory with source 'config'.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.schema import between, each, ip_address, port, positive, setting
from core.vocabulary import DEVICE_KINDS

KINDS = DEVICE_KINDS


def _kind(value: str) -> str | None:
    return None if value in KINDS else f"{value!r} is not a device kind; use one of {KINDS}"


def _kind_ports(value: str) -> str | None:
    # "printer=9100,631": a kind, then the TCP ports checked on every device of that kind.
    kind, sep, ports = value.partition("=")
    if not sep or _kind(kind.strip()):
        return f"{value!r}: write it like 'printer=9100,631' with a device kind before '='"
    try:
        numbers = [int(p) for p in ports.split(",") if p.strip()]
    except ValueError:
        return f"{value!r}: ports after '=' must be numbers separated by commas"
    bad = [n for n in numbers if port(n)]
    return f"{value!r}: {bad} are not TCP ports" if bad else None


@dataclass(frozen=True)
class ConfiguredDevice:
    """A device added by hand: polled like a discovered one."""

    name: str = setting("", help="a name for the status page, e.g. 'File server'")
    ip: str = setting("", check=ip_address, help="its IPv4 address, e.g. '192.168.1.10'")
    kind: str = setting("unknown", check=_kind, help="router, switch, nas, printer, ups, ...")
    snmp_credential: str = setting(
        "", help="name of an [[snmp.credentials]] entry; empty: no SNMP for this device"
    )
    tcp_ports: tuple[int, ...] = setting((), check=each(port), help="TCP ports to check")
    interval_s: float = setting(
        0.0, check=between(0, 86400), help="seconds between its polls; 0: [polling] interval_s"
    )
    monitored: bool | None = setting(
        None,
        help="true: alert when it goes down whatever its kind (a laptop a technician relies "
        "on, say); false: never a 'down' alert, only left/returned events, even for a server "
        "or a switch (a lab machine switched off at night); unset: by its kind ([alerting] "
        "down_alert_kinds). The site's gateway is always watched",
    )


@dataclass(frozen=True)
class PollingSettings:
    enabled: bool = setting(True, help="poll discovered and configured devices")
    interval_s: float = setting(60.0, check=positive, help="seconds between polls of a device")
    jitter_frac: float = setting(
        0.1, check=between(0, 0.5), help="spread each device's polls by up to this fraction"
    )
    concurrency: int = setting(32, check=positive, help="devices polled at the same time, at most")
    icmp: bool = setting(True, help="ping every device (needs CAP_NET_RAW or ping sockets)")
    icmp_count: int = setting(3, check=between(1, 20), help="echo requests per device per poll")
    icmp_spacing_ms: float = setting(
        200.0, check=between(1, 5000), help="milliseconds between a device's echo requests"
    )
    icmp_timeout_s: float = setting(
        1.0, check=between(0.05, 10), help="seconds to wait for the last echo reply"
    )
    tcp_timeout_s: float = setting(2.0, check=between(0.05, 30), help="seconds per TCP connect")
    arp: bool = setting(
        True,
        help="ask on-link devices by ARP at each poll (an ARP reply proves the host is there "
        "even when it ignores pings; needs CAP_NET_RAW)",
    )
    arp_timeout_s: float = setting(
        1.0, check=between(0.05, 10), help="seconds to wait for an ARP reply"
    )
    probe_tcp_ports: tuple[int, ...] = setting(
        (80, 443),
        check=each(port),
        help="TCP ports tried when nothing else of a device answered in a poll: an accepted "
        "or a refused connection (RST) both prove the host is there; [] to never try",
    )
    kind_tcp_ports: tuple[str, ...] = setting(
        ("printer=9100", "nas=445"),
        check=each(_kind_ports),
        help="TCP ports checked per device kind, e.g. ['printer=9100,631', 'nas=445']",
    )
    snmp: bool = setting(True, help="poll devices with an SNMP credential")
    snmp_timeout_s: float = setting(
        2.0, check=between(0.1, 30), help="seconds to wait for one SNMP answer"
    )
    snmp_retries: int = setting(1, check=between(0, 5), help="SNMP retransmissions per request")
    snmp_budget_s: float = setting(
        20.0, check=between(1, 300), help="most seconds one device's SNMP poll may take"
    )
    backoff_max_s: float = setting(
        600.0, check=positive, help="longest wait between polls of a device that stopped answering"
    )
    devices: tuple[ConfiguredDevice, ...] = setting((), help="devices added by hand")

    def __post_init__(self) -> None:
        for index, dev in enumerate(self.devices):
            if not dev.ip:
                raise ValueError(
                    f"devices[{index}] ({dev.name or 'no name'}) needs an ip, "
                    "e.g. ip = '192.168.1.10'"
                )

    def tcp_ports_for(self, kind: str) -> tuple[int, ...]:
        ports: list[int] = []
        for entry in self.kind_tcp_ports:
            name, _, numbers = entry.partition("=")
            if name.strip() == kind:
                ports.extend(int(p) for p in numbers.split(",") if p.strip())
        return tuple(ports)
