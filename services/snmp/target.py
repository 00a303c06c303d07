"""Where and how to ask: a device address with its credential and timing."""

from __future__ import annotations

from dataclasses import dataclass

from core.settings.snmp_credentials import SnmpCredential

# The default credential (community "public", v2c); frozen, so one shared instance is safe.
DEFAULT_CREDENTIAL = SnmpCredential()


@dataclass(frozen=True)
class Target:
    host: str  # an IP address (v4 or v6) or a host name
    port: int = 161
    credential: SnmpCredential = DEFAULT_CREDENTIAL
    timeout_s: float = 2.0  # per try
    retries: int = 1  # tries after the first

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is not a UDP port (1..65535)")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be greater than 0, got {self.timeout_s}")
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, got {self.retries}")
