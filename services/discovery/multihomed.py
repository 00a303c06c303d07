"""Telling an IP conflict from one host that answers ARP for several of its addresses.

A Linux host with two network cards on one LAN (a docked laptop, a NAS with both ports
cabled, a Pi on Ethernet and Wi-Fi) with the default ``arp_ignore=0`` answers ARP for *both*
of its addresses on *both* cards, each card with its own MAC. A sweep then sees two MACs on
each address: a naive reading reports two IP conflicts where there is one host. The same
shape comes from a host with more cards or more addresses per card (every address answered
by every card).

The sign is symmetry: the same set of MACs answers the same set of addresses, and those
MACs answer nothing else. Two devices claiming one address do not look like that: the
intruder answers for the stolen address, and the owner (and usually the intruder too) for
addresses of its own that the other does not answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class MultiHomed:
    """One host seen through several cards: its MACs and the addresses each answers for."""

    macs: frozenset[str]
    ips: frozenset[str]


def split_conflicts(
    answers: Mapping[str, frozenset[str]],
) -> tuple[dict[str, frozenset[str]], list[MultiHomed]]:
    """(real conflicts: ip -> MACs, multi-homed hosts) from one sweep's ip -> MACs answers."""
    by_mac: dict[str, set[str]] = defaultdict(set)
    for ip, macs in answers.items():
        for mac in macs:
            by_mac[mac].add(ip)
    groups: dict[frozenset[str], set[str]] = defaultdict(set)
    for ip, macs in answers.items():
        if len(macs) > 1:
            groups[frozenset(macs)].add(ip)
    conflicts: dict[str, frozenset[str]] = {}
    hosts: list[MultiHomed] = []
    for macs, ips in groups.items():
        symmetric = len(ips) >= 2 and all(by_mac[mac] == ips for mac in macs)
        if symmetric:
            hosts.append(MultiHomed(macs, frozenset(ips)))
        else:
            conflicts.update({ip: macs for ip in ips})
    return conflicts, sorted(hosts, key=lambda h: sorted(h.ips))
