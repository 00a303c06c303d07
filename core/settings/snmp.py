"""Settings of the SNMP client ([snmp] and [[snmp.credentials]] in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from core.schema import between, setting
from core.settings.snmp_credentials import SnmpCredential

# Beyond 10 s an office device is down, not slow; the poller has other devices to reach.
MAX_TIMEOUT_S: Final = 10.0
MAX_RETRIES: Final = 5
# 25 varbinds of a typical IF-MIB column fit a 1500-byte Ethernet frame; a larger number
# makes IP fragments, which some firewalls drop.
MAX_MAX_REPETITIONS: Final = 100


def _credentials(values: tuple[SnmpCredential, ...]) -> str | None:
    if not values:
        return "needs at least one [[snmp.credentials]] table"
    names = [c.name for c in values]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        return f"credential names must be unique; {', '.join(map(repr, twice))} appear twice"
    return None


@dataclass(frozen=True)
class SnmpSettings:
    credentials: tuple[SnmpCredential, ...] = setting(
        (SnmpCredential(),),
        check=_credentials,
        help="credentials tried in order on a new device ([[snmp.credentials]] tables)",
    )
    timeout_s: float = setting(
        2.0, check=between(0.1, MAX_TIMEOUT_S), help="seconds to wait for each answer, e.g. 2"
    )
    retries: int = setting(
        1, check=between(0, MAX_RETRIES), help="times a request is sent again, e.g. 1"
    )
    max_repetitions: int = setting(
        25,
        check=between(1, MAX_MAX_REPETITIONS),
        help="varbinds asked per GetBulk request, e.g. 25",
    )
