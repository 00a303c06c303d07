"""Settings of discovery ([discovery] in the configuration)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from core.schema import between, each, positive, setting, subnet

#: Largest subnet swept without ``allow_large_subnets``: a /22 is 1022 hosts, a few seconds.
MAX_PREFIX_WITHOUT_CONSENT = 22


@dataclass(frozen=True)
class DiscoverySettings:
    enabled: bool = setting(True, help="discover devices on the LAN")
    # Safety: the appliance must never start sweeping a developer's machine by surprise.
    # Empty subnets mean "the subnets of the appliance's own interfaces" only when
    # auto_subnets is true (the installed appliance's config sets it).
    subnets: tuple[str, ...] = setting((), check=each(subnet), help="subnets to sweep")
    auto_subnets: bool = setting(
        False, help="with no subnets set, sweep the subnets of the appliance's own interfaces"
    )
    exclude: tuple[str, ...] = setting(
        (), check=each(subnet), help="subnets to skip; a single host as '192.168.1.9/32'"
    )
    allow_large_subnets: bool = setting(
        False, help="allow sweeping subnets larger than a /22 (slow, and loud on the LAN)"
    )
    sweep_interval_s: float = setting(300.0, check=positive, help="seconds between ARP sweeps")
    arp_rate_pps: float = setting(
        500.0, check=between(1, 20000), help="ARP requests sent per second during a sweep"
    )
    arp_timeout_s: float = setting(
        0.5, check=between(0.05, 10), help="seconds to wait for ARP replies after each pass"
    )
    arp_attempts: int = setting(
        2, check=between(1, 5), help="requests per silent address in one sweep"
    )
    passive_arp: bool = setting(True, help="learn from ARP traffic between sweeps")
    leave_after_s: float = setting(
        3600.0, check=positive, help="seconds unseen before a device counts as gone"
    )
    # The mDNS browse runs continuously; answers are merged every few seconds.
    mdns: bool = setting(True, help="browse mDNS/DNS-SD announcements")
    snmp: bool = setting(True, help="read SNMP identity of devices that answer")
    snmp_timeout_s: float = setting(
        1.0, check=between(0.1, 30), help="seconds per SNMP request when fingerprinting"
    )
    snmp_refresh_s: float = setting(
        86400.0, check=positive, help="seconds before a device's SNMP identity is read again"
    )

    def __post_init__(self) -> None:
        if self.allow_large_subnets:
            return
        for text in self.subnets:
            net = ipaddress.ip_network(text, strict=False)
            if net.version == 4 and net.prefixlen < MAX_PREFIX_WITHOUT_CONSENT:
                raise ValueError(
                    f"discovery.subnets: {text} is larger than a /{MAX_PREFIX_WITHOUT_CONSENT} "
                    f"({net.num_addresses} addresses); split it, or set "
                    "discovery.allow_large_subnets = true"
                )
