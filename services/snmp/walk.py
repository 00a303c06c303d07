"""Walking subtrees and tables on top of one request function, for every SNMP version.

A walk trusts nothing the agent says about order, and still reads what a sloppy agent gives:
some firewalls and printers answer GETNEXT from their internal list, so after ifDescr.13 (a
VLAN created later) comes ifDescr.4, then the rest in order. An OID lower than the previous
one is accepted when it was never seen in this walk (net-snmp's ``snmpwalk -Cc``), at most
``MAX_OUT_OF_ORDER`` times; an OID seen twice, or more disorder than that, is a loop
(SnmpWalkLoop). The number of varbinds is capped (``max_varbinds``: the walk stops there and
returns what it has) and the whole walk runs under a deadline (else SnmpWalkTimeout), so a
broken agent costs bounded time and memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from core.logs import get_log
from services.snmp import ber
from services.snmp.errors import SnmpErrorStatus, SnmpTimeout, SnmpWalkLoop, SnmpWalkTimeout
from services.snmp.values import OID, SnmpValue, Varbind, is_absent

log = get_log("snmp")

# (pdu_type, oids, max_repetitions) -> varbinds of the answer; raises SnmpError.
Request = Callable[[int, Sequence[OID], int], Awaitable[tuple[Varbind, ...]]]
Table = dict[OID, dict[OID, SnmpValue]]

# A whole walk of an office device's largest table (a 48-port switch's IF-MIB, a server's
# hrSWRun) takes a few seconds; two minutes means the agent is crawling or looping.
DEFAULT_WALK_DEADLINE_S: Final = 120.0
# Steps back to an unseen OID one walk (one column) accepts: an agent listing rows in the
# order they were created goes back once per late row; an agent that keeps going back is
# looping with new OIDs (a walk that would never end).
MAX_OUT_OF_ORDER: Final = 16


class _Order:
    """Per walk (per column): OIDs seen, steps back taken; raises SnmpWalkLoop on a loop."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.seen: set[OID] = set()
        self.back = 0

    def check(self, last: OID, oid: OID) -> None:
        if oid in self.seen or oid == last:
            raise SnmpWalkLoop(self.host, last, oid)
        if oid < last:
            self.back += 1
            if self.back > MAX_OUT_OF_ORDER:
                raise SnmpWalkLoop(self.host, last, oid)
        self.seen.add(oid)


async def _next_batch(
    request: Request, bulk: bool, oids: Sequence[OID], repetitions: int
) -> tuple[tuple[Varbind, ...], int]:
    """One GetBulk (or v1 GetNext) for ``oids``; returns (varbinds, repetitions to use next).

    tooBig halves max-repetitions (agents should truncate instead, some don't).
    """
    while True:
        try:
            if bulk:
                return await request(ber.GET_BULK_REQUEST, oids, repetitions), repetitions
            return await request(ber.GET_NEXT_REQUEST, oids, 0), repetitions
        except SnmpErrorStatus as exc:
            if exc.status == "tooBig" and bulk and repetitions > 1:
                repetitions //= 2
                continue
            raise


async def walk(
    request: Request,
    host: str,
    root: OID,
    *,
    bulk: bool,
    max_repetitions: int,
    max_varbinds: int,
    deadline_s: float,
) -> list[Varbind]:
    results: list[Varbind] = []
    last = root
    depth = len(root)
    order = _Order(host)
    repetitions = max_repetitions
    try:
        async with asyncio.timeout(deadline_s):
            while True:
                try:
                    varbinds, repetitions = await _next_batch(request, bulk, (last,), repetitions)
                except SnmpErrorStatus as exc:
                    if exc.status == "noSuchName":  # SNMPv1's way of saying "end of MIB"
                        return results
                    raise
                except SnmpTimeout as exc:
                    raise SnmpWalkTimeout(host, exc.detail or "no answer", results) from None
                if not varbinds:
                    return results
                for vb in varbinds:
                    oid = vb.oid
                    if oid[:depth] != root or is_absent(vb.value):
                        return results  # left the subtree, or endOfMibView
                    order.check(last, oid)
                    results.append(vb)
                    last = oid
                    if len(results) >= max_varbinds:
                        log.debug("snmp.walk_capped", device=host, max_varbinds=max_varbinds)
                        return results
    except TimeoutError:
        raise SnmpWalkTimeout(host, f"deadline of {deadline_s:g} s passed", results) from None


async def walk_columns(
    request: Request,
    host: str,
    columns: Sequence[OID],
    *,
    bulk: bool,
    max_repetitions: int,
    max_varbinds: int,
    deadline_s: float,
) -> Table:
    """Walk several columns of one table in one stream of requests: row index -> column -> value.

    Each request carries the last OID of every column still going; a GetBulk answer holds
    rows of those columns interleaved (RFC 3416 4.2.3), so column j's varbinds are every
    n-th one from position j. max-repetitions is shared out so an answer stays near
    ``max_repetitions`` varbinds in all (one Ethernet frame for typical columns).
    """
    unique = list(dict.fromkeys(columns))
    last = {column: column for column in unique}
    orders = {column: _Order(host) for column in unique}
    active = list(unique)
    table: Table = {}
    count = 0
    try:
        async with asyncio.timeout(deadline_s):
            while active:
                width = len(active)
                repetitions = max(1, -(-max_repetitions // width))  # ceil
                asked = [last[column] for column in active]
                try:
                    varbinds, _ = await _next_batch(request, bulk, asked, repetitions)
                except SnmpErrorStatus as exc:
                    if exc.status == "noSuchName" and 1 <= exc.index <= width:
                        del active[exc.index - 1]  # v1: that column is past the end
                        continue
                    raise
                except SnmpTimeout as exc:
                    detail = exc.detail or "no answer"
                    raise SnmpWalkTimeout(host, detail, _flatten(table)) from None
                if not varbinds:
                    break
                ended: set[OID] = set()
                for j, column in enumerate(active):
                    depth = len(column)
                    for vb in varbinds[j::width]:
                        oid = vb.oid
                        if oid[:depth] != column or is_absent(vb.value):
                            ended.add(column)
                            break
                        orders[column].check(last[column], oid)
                        last[column] = oid
                        table.setdefault(oid[depth:], {})[column] = vb.value
                        count += 1
                        if count >= max_varbinds:
                            log.debug("snmp.walk_capped", device=host, max_varbinds=max_varbinds)
                            return dict(sorted(table.items()))
                active = [column for column in active if column not in ended]
    except TimeoutError:
        detail = f"deadline of {deadline_s:g} s passed"
        raise SnmpWalkTimeout(host, detail, _flatten(table)) from None
    return dict(sorted(table.items()))


def _flatten(table: Table) -> list[Varbind]:
    return sorted(
        (
            Varbind(column + index, value)
            for index, row in table.items()
            for column, value in row.items()
        ),
        key=lambda vb: vb.oid,
    )
