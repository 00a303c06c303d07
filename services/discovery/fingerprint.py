"""Which credential a device answers, and its SNMP identity (services/snmp underneath).

Credentials are tried in the configured order, the one that worked before first, so a known
device costs one round trip to confirm. A device that answers none costs
``len(credentials) x timeout``; discovery runs these concurrently, bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

from core.logs import get_log
from services.discovery.snmp_identity import (
    SYSTEM_GROUP,
    SnmpIdentity,
    has_system_group,
    read_identity,
)
from services.snmp import SnmpClient, SnmpCredential, SnmpError, SnmpSettings, Target
from services.snmp.values import SnmpValue, oid_to_str

log = get_log("discovery")

#: Devices fingerprinted at once: each is a few datagrams; 32 keeps a sweep's worth quick.
MAX_CONCURRENT: Final = 32
#: Fingerprinting uses one try per request: a device that drops one datagram is retried on
#: the next sweep, and a silent host must not cost credentials x retries x timeout.
RETRIES: Final = 0


@dataclass(frozen=True)
class Fingerprint:
    credential: str  # the SnmpCredential.name that answered
    identity: SnmpIdentity


class ClientReader:
    """:class:`SnmpReader` over the shared SnmpClient for one target."""

    def __init__(self, client: SnmpClient, target: Target) -> None:
        self.client = client
        self.target = target

    async def get(self, oids: Sequence[str]) -> dict[str, SnmpValue]:
        varbinds = await self.client.get(self.target, list(oids))
        return {oid: vb.value for oid, vb in zip(oids, varbinds, strict=True)}

    async def walk(self, root: str, max_rows: int) -> list[tuple[str, SnmpValue]]:
        varbinds = await self.client.walk(
            self.target, root, max_repetitions=min(max_rows, 25), max_varbinds=max_rows
        )
        return [(oid_to_str(vb.oid), vb.value) for vb in varbinds[:max_rows]]


class Fingerprinter:
    def __init__(
        self,
        credentials: Sequence[SnmpCredential],
        *,
        timeout_s: float = 1.0,
        port: int = 161,
        client: SnmpClient | None = None,
    ) -> None:
        self.credentials = tuple(credentials)
        self.timeout_s = timeout_s
        self.port = port
        self._own_client = client is None
        self.client = client or SnmpClient()
        self._limit = asyncio.Semaphore(MAX_CONCURRENT)

    @classmethod
    def from_config(
        cls, config: Any, timeout_s: float = 1.0, client: SnmpClient | None = None
    ) -> Fingerprinter:
        """From the [snmp] section when the configuration has one (defaults otherwise);
        ``client``: the process's shared SnmpClient (None: the fingerprinter owns one)."""
        settings = getattr(config, "snmp", None) if config is not None else None
        if not isinstance(settings, SnmpSettings):
            settings = SnmpSettings()
        return cls(settings.credentials, timeout_s=timeout_s, client=client)

    async def __aenter__(self) -> Fingerprinter:
        if self._own_client:
            await self.client.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._own_client:
            await self.client.close()

    def _ordered(self, preferred: str) -> list[SnmpCredential]:
        first = [c for c in self.credentials if c.name == preferred]
        return first + [c for c in self.credentials if c.name != preferred]

    async def identify(self, ip: str, preferred: str = "") -> Fingerprint | None:
        """The identity read with the first credential that answers, or None."""
        async with self._limit:
            for credential in self._ordered(preferred):
                target = Target(
                    ip, self.port, credential, timeout_s=self.timeout_s, retries=RETRIES
                )
                reader = ClientReader(self.client, target)
                try:
                    system = await reader.get(SYSTEM_GROUP)
                except SnmpError as exc:
                    log.debug("snmp.no_answer", device=ip, credential=credential.name,
                              error=str(exc))  # fmt: skip
                    continue
                if not has_system_group(system):
                    continue
                try:
                    identity = await read_identity(reader, system)
                except SnmpError as exc:
                    log.info("snmp.identity_partial", device=ip, error=str(exc))
                    continue
                return Fingerprint(credential.name, identity)
        return None
