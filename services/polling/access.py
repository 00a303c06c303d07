"""The SNMP operations a profile may use, bound to one device.

Profiles see only this small protocol (a GET of a few OIDs, a walk of a few table columns), so
they read like the MIB they implement and can be driven by the real client against a real
agent in tests. :class:`ClientAccess` binds :class:`services.snmp.SnmpClient` to a target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from services.snmp.values import OID, SnmpValue

# Rows of a walked table: {row index: {column OID: value}}.
Rows = dict[OID, dict[OID, SnmpValue]]
# Most OIDs in one GET: keeps every request well under a 1472-byte Ethernet datagram answer.
GET_BATCH = 24


class SnmpAccess(Protocol):
    async def get(self, oids: Sequence[OID]) -> dict[OID, SnmpValue]: ...

    async def walk_columns(self, columns: Sequence[OID]) -> Rows: ...


class ClientAccess:
    """:class:`SnmpAccess` over the shared SNMP client for one target; counts varbinds."""

    def __init__(self, client: Any, target: Any) -> None:
        self.client = client
        self.target = target
        self.varbinds = 0

    async def get(self, oids: Sequence[OID]) -> dict[OID, SnmpValue]:
        out: dict[OID, SnmpValue] = {}
        for start in range(0, len(oids), GET_BATCH):
            chunk = list(oids[start : start + GET_BATCH])
            answer = await self.client.get(self.target, chunk)
            for item in answer:
                out[tuple(item.oid)] = item.value
        self.varbinds += len(out)
        return out

    async def walk_columns(self, columns: Sequence[OID]) -> Rows:
        rows = await self.client.walk_columns(self.target, list(columns))
        out: Rows = {}
        for index, values in rows.items():
            cells = {tuple(col): value for col, value in values.items()}
            out[tuple(index)] = cells
            self.varbinds += len(cells)
        return out
