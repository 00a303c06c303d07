"""Counters of the SNMP client, for the status page and for tests that check a bad agent."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class SnmpStats:
    requests: int = 0  # request PDUs asked for (a retry of one is counted in ``retries``)
    retries: int = 0  # datagrams sent again after a timeout
    timeouts: int = 0  # requests that got no valid answer after every retry
    decode_errors: int = 0  # datagrams that were not a well-formed SNMP message
    ignored: int = 0  # well-formed datagrams of no waiting request (source, id, community)
    varbinds: int = 0  # varbinds received in answers

    def snapshot(self) -> dict[str, int]:
        return asdict(self)
