"""The SNMP client: one per process, shared by discovery and polling.

    async with SnmpClient() as snmp:
        target = Target("198.18.0.20", credential=SnmpCredential(community=Secret("public")))
        [descr] = await snmp.get(target, ["1.3.6.1.2.1.1.1.0"])
        table = await snmp.walk_columns(target, [IF_DESCR, IF_HC_IN_OCTETS])

v1 and v2c go through our own codec on shared sockets (services.snmp.community), v3 through
pysnmp (services.snmp.usm); both return the same typed values (services.snmp.values).

Absent values: v2c/v3 agents say noSuchObject/noSuchInstance per varbind. A v1 agent fails the
whole request with errorStatus noSuchName instead; get() then answers NoSuchInstance for that
OID (get_next(): EndOfMibView) and asks again for the others, so callers handle one model.
Every other errorStatus raises SnmpErrorStatus.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from core.settings.snmp import SnmpSettings
from core.settings.snmp_credentials import SnmpCredential
from services.snmp import ber
from services.snmp.community import CommunityBackend
from services.snmp.errors import SnmpDecodeError, SnmpError, SnmpErrorStatus
from services.snmp.stats import SnmpStats
from services.snmp.target import Target
from services.snmp.transport import Dispatcher
from services.snmp.usm import UsmBackend
from services.snmp.values import (
    OID,
    EndOfMibView,
    NoSuchInstance,
    OIDLike,
    SnmpValue,
    Varbind,
    to_oid,
)
from services.snmp.walk import DEFAULT_WALK_DEADLINE_S, Table
from services.snmp.walk import walk as _walk
from services.snmp.walk import walk_columns as _walk_columns

__all__ = ["SnmpClient", "Target"]

# Beyond this GetBulk asks for more than fits a UDP datagram for ordinary columns.
MAX_REPETITIONS_LIMIT = 1000
DEFAULT_WALK_MAX_VARBINDS = 10_000
# Tables are walked by columns: an ARP table of 2,000 hosts x 3 columns must fit.
DEFAULT_COLUMNS_MAX_VARBINDS = 50_000


class SnmpClient:
    def __init__(self, settings: SnmpSettings | None = None) -> None:
        self.settings = settings or SnmpSettings()
        self.stats = SnmpStats()
        self._dispatcher = Dispatcher(self.stats)
        self._community = CommunityBackend(self._dispatcher, self.stats)
        self._usm = UsmBackend(self.stats)
        self._started = False

    async def start(self) -> None:
        await self._dispatcher.start()
        self._started = True

    async def close(self) -> None:
        self._started = False
        await self._dispatcher.close()
        await self._usm.close()

    async def __aenter__(self) -> SnmpClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def target(
        self, host: str, credential: SnmpCredential | None = None, port: int = 161
    ) -> Target:
        """A Target with this client's configured timeout and retries."""
        return Target(
            host,
            port,
            credential or self.settings.credentials[0],
            timeout_s=self.settings.timeout_s,
            retries=self.settings.retries,
        )

    # ---- requests ----

    async def _request(
        self, target: Target, pdu_type: int, oids: Sequence[OID], max_repetitions: int = 0
    ) -> tuple[Varbind, ...]:
        if not self._started:
            raise SnmpError("SnmpClient is not started: use 'async with' or 'await start()'")
        if target.credential.version == "3":
            return await self._usm.send(target, pdu_type, oids, max_repetitions)
        return await self._community.send(target, pdu_type, oids, max_repetitions)

    async def get(self, target: Target, oids: Sequence[OIDLike]) -> list[Varbind]:
        """One varbind per OID, in order; absent ones carry NoSuchObject/NoSuchInstance."""
        return await self._get_like(target, ber.GET_REQUEST, [to_oid(o) for o in oids])

    async def get_next(self, target: Target, oids: Sequence[OIDLike]) -> list[Varbind]:
        """The successor of each OID, in order; EndOfMibView past the last one."""
        return await self._get_like(target, ber.GET_NEXT_REQUEST, [to_oid(o) for o in oids])

    async def _get_like(self, target: Target, pdu_type: int, oids: list[OID]) -> list[Varbind]:
        absent: SnmpValue = NoSuchInstance if pdu_type == ber.GET_REQUEST else EndOfMibView
        results: dict[int, Varbind] = {}
        remaining = list(enumerate(oids))
        while remaining:
            asked = [oid for _, oid in remaining]
            try:
                varbinds = await self._request(target, pdu_type, asked)
            except SnmpErrorStatus as exc:
                if exc.status == "noSuchName" and 1 <= exc.index <= len(remaining):
                    index, oid = remaining.pop(exc.index - 1)
                    results[index] = Varbind(oid, absent)
                    continue
                if exc.status == "tooBig" and len(remaining) > 1:
                    # Too many OIDs for the agent's buffer: ask in two halves.
                    half = len(remaining) // 2
                    first = await self._get_like(target, pdu_type, asked[:half])
                    second = await self._get_like(target, pdu_type, asked[half:])
                    varbinds = (*first, *second)
                else:
                    raise
            if len(varbinds) != len(remaining):
                raise SnmpDecodeError(
                    f"{target.host} answered {len(varbinds)} varbinds to {len(remaining)} OIDs"
                )
            for (index, _), vb in zip(remaining, varbinds, strict=True):
                results[index] = vb
            break
        return [results[i] for i in range(len(oids))]

    # ---- walks ----

    async def walk(
        self,
        target: Target,
        root: OIDLike,
        *,
        max_repetitions: int | None = None,
        max_varbinds: int = DEFAULT_WALK_MAX_VARBINDS,
        deadline_s: float = DEFAULT_WALK_DEADLINE_S,
    ) -> list[Varbind]:
        """Every varbind strictly under ``root``, in OID order (GetBulk; GetNext for v1).

        ``max_repetitions`` defaults to the configured [snmp] max_repetitions (25).

        Stops at the end of the subtree, at endOfMibView, or after ``max_varbinds`` varbinds
        (a cap, not an error: the result is then exactly that long). Raises SnmpWalkLoop
        when the agent goes backwards and SnmpWalkTimeout past ``deadline_s``.
        A root that is itself a leaf (a scalar's .0 instance) yields nothing: use get().
        """
        repetitions = _check_walk_args(max_repetitions, self.settings, max_varbinds, deadline_s)

        async def request(pdu_type: int, oids: Sequence[OID], reps: int) -> tuple[Varbind, ...]:
            return await self._request(target, pdu_type, oids, reps)

        return await _walk(
            request,
            target.host,
            to_oid(root),
            bulk=target.credential.version != "1",
            max_repetitions=repetitions,
            max_varbinds=max_varbinds,
            deadline_s=deadline_s,
        )

    async def walk_columns(
        self,
        target: Target,
        columns: Sequence[OIDLike],
        *,
        max_repetitions: int | None = None,
        max_varbinds: int = DEFAULT_COLUMNS_MAX_VARBINDS,
        deadline_s: float = DEFAULT_WALK_DEADLINE_S,
    ) -> Table:
        """A table fetched by the named columns only: {row index: {column OID: value}}.

        Rows come sorted by index; a row lacks the columns the agent has no value for.
        At most ``max_varbinds`` cells are fetched (the table is then cut short); raises
        SnmpWalkLoop when a column goes backwards and SnmpWalkTimeout past ``deadline_s``.
        """
        repetitions = _check_walk_args(max_repetitions, self.settings, max_varbinds, deadline_s)

        async def request(pdu_type: int, oids: Sequence[OID], reps: int) -> tuple[Varbind, ...]:
            return await self._request(target, pdu_type, oids, reps)

        return await _walk_columns(
            request,
            target.host,
            [to_oid(c) for c in columns],
            bulk=target.credential.version != "1",
            max_repetitions=repetitions,
            max_varbinds=max_varbinds,
            deadline_s=deadline_s,
        )


def _check_walk_args(
    max_repetitions: int | None, settings: SnmpSettings, max_varbinds: int, deadline_s: float
) -> int:
    """The max-repetitions to use (None: the configured one), after checking every limit."""
    repetitions = settings.max_repetitions if max_repetitions is None else max_repetitions
    if not 1 <= repetitions <= MAX_REPETITIONS_LIMIT:
        raise ValueError(f"max_repetitions must be 1..{MAX_REPETITIONS_LIMIT}")
    if max_varbinds < 1:
        raise ValueError("max_varbinds must be at least 1")
    if not deadline_s > 0:
        raise ValueError("deadline_s must be greater than 0")
    return repetitions
