"""The client against scripted agents on 127.0.0.1 that misbehave in every way we know of.

Each case must cost bounded time and end in the right exception (or the right value).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable

import pytest

from core.schema import Secret
from services.snmp import (
    OID,
    Counter32,
    EndOfMibView,
    Integer,
    NoSuchInstance,
    NoSuchObject,
    OctetString,
    SnmpClient,
    SnmpCredential,
    SnmpDecodeError,
    SnmpError,
    SnmpErrorStatus,
    SnmpSettings,
    SnmpTimeout,
    SnmpValue,
    SnmpWalkLoop,
    SnmpWalkTimeout,
    Target,
    Varbind,
    ber,
)
from services.snmp.message import Message, encode_message
from tests.snmp_helpers import FakeAgent, response

SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
IF_TABLE = (1, 3, 6, 1, 2, 1, 2, 2)
TIMEOUT_S = 0.2
V2C = SnmpCredential(community=Secret("t0p-secret"))
V1 = SnmpCredential(name="v1", version="1", community=Secret("t0p-secret"))


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    async with SnmpClient() as snmp:
        yield snmp


def target(agent: FakeAgent, credential: SnmpCredential = V2C, retries: int = 1) -> Target:
    return Target("127.0.0.1", agent.port, credential, timeout_s=TIMEOUT_S, retries=retries)


def silent(request: Message) -> Iterable[bytes]:
    return []


def echo_values(request: Message) -> Iterable[bytes]:
    """A good agent: every OID has the value OctetString(b"ok")."""
    yield response(request, [Varbind(vb.oid, OctetString(b"ok")) for vb in request.varbinds])


# ---- no answer, wrong answers ----


async def test_silent_agent_times_out_after_retries(client: SnmpClient) -> None:
    async with FakeAgent(silent) as agent:
        started = time.monotonic()
        with pytest.raises(SnmpTimeout) as caught:
            await client.get(target(agent, retries=2), [SYS_DESCR])
        elapsed = time.monotonic() - started
    assert 3 * TIMEOUT_S <= elapsed < 3 * TIMEOUT_S + 0.5
    assert len(agent.requests) == 3
    assert len({r.request_id for r in agent.requests}) == 1  # a retry repeats the request-id
    assert caught.value.host == "127.0.0.1"
    assert client.stats.timeouts == 1 and client.stats.retries == 2 and client.stats.requests == 1


async def test_garbage_answers_end_in_a_decode_error_and_are_counted(client: SnmpClient) -> None:
    async with FakeAgent(lambda request: [b"\x00garbage\xff" * 3]) as agent:
        started = time.monotonic()
        with pytest.raises(SnmpDecodeError, match="only undecodable answers"):
            await client.get(target(agent), [SYS_DESCR])
    assert time.monotonic() - started < 2 * TIMEOUT_S + 0.5
    assert client.stats.decode_errors == 2  # one per try


async def test_truncated_answer_fails_the_request_at_once(client: SnmpClient) -> None:
    def truncated(request: Message) -> Iterable[bytes]:
        yield response(request, [Varbind(SYS_DESCR, OctetString(b"x" * 80))])[:-30]

    async with FakeAgent(truncated) as agent:
        started = time.monotonic()
        with pytest.raises(SnmpDecodeError, match="runs"):
            await client.get(target(agent), [SYS_DESCR])
    assert time.monotonic() - started < TIMEOUT_S  # no need to wait for the timeout
    assert client.stats.decode_errors == 1


@pytest.mark.parametrize(
    ("value_tlv", "reason"),
    [
        (b"\x40\x03\x0a\x00\x01", "IpAddress of 3 bytes"),
        (b"\x05\x02\x00\x00", "must be empty"),
        (b"\x41\x0c" + b"\x7f" * 12, "too long"),
        (b"\x49\x00", "unknown value type"),
        (b"\x04\x84\x7f\xff\xff\xff", "runs"),  # giant length
    ],
)
async def test_wrong_types_and_giant_lengths(
    client: SnmpClient, value_tlv: bytes, reason: str
) -> None:
    def bad_value(request: Message) -> Iterable[bytes]:
        good = response(request, [Varbind(SYS_DESCR, OctetString(b"\xaa\xbb"))])
        varbind = ber.tlv(
            ber.SEQUENCE, ber.tlv(ber.OBJECT_IDENTIFIER, ber.encode_oid(SYS_DESCR)) + value_tlv
        )
        yield _replace_varbinds(good, varbind)

    async with FakeAgent(bad_value) as agent:
        with pytest.raises(SnmpDecodeError, match=reason):
            await client.get(target(agent), [SYS_DESCR])


def _replace_varbinds(message: bytes, varbinds: bytes) -> bytes:
    """Rebuild ``message`` (a Response) with raw varbind bytes."""
    pos = 2 if message[1] < 0x80 else 2 + (message[1] & 0x7F)
    _, _, pos = ber.decode_header(message, pos, len(message))  # version
    _, cstart, pos = ber.decode_header(message, pos, len(message))  # community
    community = message[cstart:pos]
    _, pdu_start, _ = ber.decode_header(message, pos, len(message))
    _, _, after_id = ber.decode_header(message, pdu_start, len(message))
    request_id = message[pdu_start:after_id]
    pdu = request_id + b"\x02\x01\x00\x02\x01\x00" + ber.tlv(ber.SEQUENCE, varbinds)
    body = b"\x02\x01\x01" + ber.tlv(ber.OCTET_STRING, community) + ber.tlv(ber.RESPONSE, pdu)
    return ber.tlv(ber.SEQUENCE, body)


async def test_wrong_request_id_is_ignored(client: SnmpClient) -> None:
    def wrong_id(request: Message) -> Iterable[bytes]:
        yield response(
            request, [Varbind(SYS_DESCR, OctetString(b"evil"))], request_id=request.request_id + 1
        )

    async with FakeAgent(wrong_id) as agent:
        with pytest.raises(SnmpTimeout):
            await client.get(target(agent), [SYS_DESCR])
    assert client.stats.ignored == 2


async def test_wrong_community_is_ignored(client: SnmpClient) -> None:
    def wrong_community(request: Message) -> Iterable[bytes]:
        yield response(request, [Varbind(SYS_DESCR, OctetString(b"evil"))], community=b"public")

    async with FakeAgent(wrong_community) as agent:
        with pytest.raises(SnmpTimeout):
            await client.get(target(agent, retries=0), [SYS_DESCR])
    assert client.stats.ignored == 1


@pytest.mark.parametrize(
    ("host", "reply_from"),
    [("127.0.0.1", "127.0.0.1"), ("127.0.0.2", "127.0.0.3")],
    ids=["other-port", "other-address"],
)
async def test_answer_from_another_source_is_ignored(
    client: SnmpClient, host: str, reply_from: str
) -> None:
    async with FakeAgent(echo_values, host=host, reply_from=reply_from) as agent:
        tgt = Target(host, agent.port, V2C, timeout_s=TIMEOUT_S, retries=0)
        with pytest.raises(SnmpTimeout):
            await client.get(tgt, [SYS_DESCR])
    assert len(agent.requests) == 1
    assert client.stats.ignored == 1


async def test_an_answer_that_is_a_request_is_ignored(client: SnmpClient) -> None:
    def reflect(request: Message) -> Iterable[bytes]:
        yield encode_message(request)  # a GetRequest back, same id and community

    async with FakeAgent(reflect) as agent:
        with pytest.raises(SnmpTimeout):
            await client.get(target(agent, retries=0), [SYS_DESCR])
    assert client.stats.ignored == 1


async def test_answers_out_of_order_are_matched_by_request_id(client: SnmpClient) -> None:
    held: list[Message] = []
    count = 30

    def answer_in_reverse(request: Message) -> Iterable[bytes]:
        held.append(request)
        if len(held) < count:
            return []
        # A stray answer first (unknown id), then every answer in reverse order.
        stray = response(request, [], request_id=(request.request_id + 10_000) % 2**31)
        return [stray] + [
            response(r, [Varbind(vb.oid, Integer(vb.oid[-1])) for vb in r.varbinds])
            for r in reversed(held)
        ]

    async with FakeAgent(answer_in_reverse) as agent:
        tgt = Target("127.0.0.1", agent.port, V2C, timeout_s=2, retries=0)
        results = await asyncio.gather(
            *(client.get(tgt, [(1, 3, 6, 1, 9, i)]) for i in range(count))
        )
    assert [r[0].value for r in results] == [Integer(i) for i in range(count)]
    assert client.stats.ignored == 1


async def test_wrong_number_of_varbinds_is_an_error(client: SnmpClient) -> None:
    def one_short(request: Message) -> Iterable[bytes]:
        yield response(request, [Varbind(request.varbinds[0].oid, Integer(1))])

    async with FakeAgent(one_short) as agent:
        with pytest.raises(SnmpDecodeError, match="answered 1 varbinds to 2 OIDs"):
            await client.get(target(agent), [SYS_DESCR, SYS_NAME])


async def test_closing_the_client_fails_waiting_requests(client: SnmpClient) -> None:
    async with FakeAgent(silent) as agent:
        tgt = Target("127.0.0.1", agent.port, V2C, timeout_s=5, retries=0)
        task = asyncio.create_task(client.get(tgt, [SYS_DESCR]))
        await asyncio.sleep(0.05)
        await client.close()
        with pytest.raises(SnmpError, match="closed"):
            await asyncio.wait_for(task, 1)


async def test_cancelled_request_leaves_nothing_behind(client: SnmpClient) -> None:
    async with FakeAgent(silent) as agent:
        tgt = Target("127.0.0.1", agent.port, V2C, timeout_s=5, retries=0)
        task = asyncio.create_task(client.get(tgt, [SYS_DESCR]))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # White box: a cancelled request must leave no entry in the dispatcher's pending table.
    assert client._dispatcher._pending == {}  # noqa: SLF001


# ---- exceptions and error-status ----


async def test_v2_exceptions_come_back_as_singletons(client: SnmpClient) -> None:
    def exceptions(request: Message) -> Iterable[bytes]:
        values: list[SnmpValue] = [NoSuchObject, NoSuchInstance, Counter32(5)]
        yield response(
            request, [Varbind(vb.oid, v) for vb, v in zip(request.varbinds, values, strict=True)]
        )

    async with FakeAgent(exceptions) as agent:
        result = await client.get(target(agent), [SYS_DESCR, SYS_NAME, (1, 3, 6, 1, 2, 1, 1, 3, 0)])
    assert [vb.value for vb in result] == [NoSuchObject, NoSuchInstance, Counter32(5)]
    assert [vb.absent for vb in result] == [True, True, False]


async def test_error_status_raises_with_name_and_oid(client: SnmpClient) -> None:
    def gen_err(request: Message) -> Iterable[bytes]:
        yield response(request, request.varbinds, error_status=5, error_index=2)

    async with FakeAgent(gen_err) as agent:
        with pytest.raises(SnmpErrorStatus) as caught:
            await client.get(target(agent), [SYS_DESCR, SYS_NAME])
    assert (caught.value.status, caught.value.index, caught.value.oid) == ("genErr", 2, SYS_NAME)


def v1_agent(values: dict[tuple[int, ...], int]) -> FakeAgent:
    """An SNMPv1 agent over ``values``: noSuchName for the first OID it cannot answer."""
    ordered = sorted(values)

    def handle(request: Message) -> Iterable[bytes]:
        assert request.version == 0
        out = []
        for index, vb in enumerate(request.varbinds, start=1):
            if request.pdu_type == ber.GET_REQUEST:
                found = vb.oid if vb.oid in values else None
            else:
                found = next((o for o in ordered if o > vb.oid), None)
            if found is None:
                yield response(request, request.varbinds, error_status=2, error_index=index)
                return
            out.append(Varbind(found, Integer(values[found])))
        yield response(request, out)

    return FakeAgent(handle)


async def test_v1_no_such_name_reads_as_absent_and_the_rest_is_asked_again(
    client: SnmpClient,
) -> None:
    async with v1_agent({SYS_DESCR: 1, SYS_NAME: 5}) as agent:
        missing = (1, 3, 6, 1, 2, 1, 1, 4, 0)
        result = await client.get(target(agent, V1), [SYS_DESCR, missing, SYS_NAME])
        assert [vb.value for vb in result] == [Integer(1), NoSuchInstance, Integer(5)]
        assert len(agent.requests) == 2
        nxt = await client.get_next(target(agent, V1), [SYS_DESCR, SYS_NAME])
        assert [vb.value for vb in nxt] == [Integer(5), EndOfMibView]


async def test_v1_walk_uses_getnext_and_ends_on_no_such_name(client: SnmpClient) -> None:
    table: dict[OID, int] = {
        (*IF_TABLE, 1, col, row): col * 100 + row for col in (1, 2) for row in (1, 2, 3)
    }
    table[(1, 3, 6, 1, 2, 1, 2, 3, 0)] = 9  # after the table: the walk must stop before it
    async with v1_agent(table) as agent:
        walked = await client.walk(target(agent, V1), IF_TABLE)
        assert [vb.oid for vb in walked] == sorted(o for o in table if o[:8] == IF_TABLE)
        assert all(r.pdu_type == ber.GET_NEXT_REQUEST for r in agent.requests)
        columns = await client.walk_columns(
            target(agent, V1), [(*IF_TABLE, 1, 2), (*IF_TABLE, 1, 1)]
        )
        assert columns == {
            (row,): {(*IF_TABLE, 1, 1): Integer(100 + row), (*IF_TABLE, 1, 2): Integer(200 + row)}
            for row in (1, 2, 3)
        }
        end = await client.walk(target(agent, V1), (1, 3, 6, 1, 2, 1, 2, 3, 0))
        assert end == []  # noSuchName past the last OID: an empty walk


async def test_too_big_splits_a_get_in_halves(client: SnmpClient) -> None:
    def small_buffer(request: Message) -> Iterable[bytes]:
        if len(request.varbinds) > 2:
            yield response(request, request.varbinds, error_status=1)
        else:
            yield from echo_values(request)

    async with FakeAgent(small_buffer) as agent:
        oids = [(1, 3, 6, 1, 9, i) for i in range(7)]
        result = await client.get(target(agent), oids)
    assert [vb.oid for vb in result] == oids
    assert all(vb.value == OctetString(b"ok") for vb in result)


# ---- walks that never end well ----


def bulk_agent(next_oids: Callable[[OID], OID]) -> FakeAgent:
    """GetBulk answers of ``max_repetitions`` OIDs, each produced by next_oids(previous)."""

    def handle(request: Message) -> Iterable[bytes]:
        oid = request.varbinds[0].oid
        out = []
        for _ in range(request.error_index):
            oid = next_oids(oid)
            out.append(Varbind(oid, Integer(len(oid))))
        yield response(request, out)

    return FakeAgent(handle)


def successor(oid: OID) -> OID:
    """An endless, strictly increasing walk under any root of 4 to 8 arcs."""
    return (*oid[:-1], oid[-1] + 1) if len(oid) > 8 else (*oid, *(1,) * (9 - len(oid)))


async def test_walk_that_goes_backwards_raises_walk_loop(client: SnmpClient) -> None:
    async with bulk_agent(
        lambda oid: (*IF_TABLE, 1, 1, 5) if oid[-1] == 9 else (*IF_TABLE, 1, 1, 9)
    ) as agent:
        with pytest.raises(SnmpWalkLoop) as caught:
            await client.walk(target(agent), IF_TABLE)
    # Going back once to an OID never seen is accepted (agents that list rows in creation
    # order, net-snmp's -Cc); coming back to .9, already seen, is the loop.
    assert caught.value.asked == (*IF_TABLE, 1, 1, 5)
    assert caught.value.got == (*IF_TABLE, 1, 1, 9)


async def test_walk_that_repeats_an_oid_raises_walk_loop(client: SnmpClient) -> None:
    async with bulk_agent(lambda oid: (*IF_TABLE, 1, 1, 1)) as agent:
        with pytest.raises(SnmpWalkLoop):
            await client.walk(target(agent), IF_TABLE)
        with pytest.raises(SnmpWalkLoop):
            await client.walk_columns(target(agent), [(*IF_TABLE, 1, 1)])


async def test_endless_increasing_walk_stops_at_max_varbinds(client: SnmpClient) -> None:
    async with bulk_agent(successor) as agent:
        started = time.monotonic()
        walked = await client.walk(target(agent), IF_TABLE, max_varbinds=500)
        assert len(walked) == 500
        assert walked[-1].oid == (*IF_TABLE, 500)
        table = await client.walk_columns(target(agent), [IF_TABLE], max_varbinds=300)
        assert len(table) == 300
    assert time.monotonic() - started < 5
    assert len(agent.requests) == 20 + 12  # 25 per answer: no request past the cap


async def test_slow_endless_walk_stops_at_its_deadline(client: SnmpClient) -> None:
    def slow(request: Message) -> Iterable[bytes]:
        yield response(request, [Varbind(successor(request.varbinds[0].oid), Integer(1))])

    async with FakeAgent(slow, delay_s=0.05) as agent:
        started = time.monotonic()
        with pytest.raises(SnmpWalkTimeout, match="deadline") as caught:
            await client.walk(target(agent), (1, 3, 6, 1), deadline_s=0.5)
    assert time.monotonic() - started < 1.0
    assert 3 <= len(caught.value.partial) <= 10


async def test_walk_stops_on_end_of_mib_view_and_at_the_subtree_end(client: SnmpClient) -> None:
    def short_table(request: Message) -> Iterable[bytes]:
        oid = request.varbinds[0].oid
        if oid < (*IF_TABLE, 1, 1, 3):
            rows = [
                Varbind((*IF_TABLE, 1, 1, r), Integer(r))
                for r in (1, 2, 3)
                if (*IF_TABLE, 1, 1, r) > oid
            ]
            yield response(request, [*rows, Varbind((1, 3, 6, 1, 2, 1, 3, 1), Integer(0))])
        else:
            yield response(request, [Varbind(oid, EndOfMibView)] * request.error_index)

    async with FakeAgent(short_table) as agent:
        walked = await client.walk(target(agent), IF_TABLE)
        assert [vb.value for vb in walked] == [Integer(1), Integer(2), Integer(3)]
        past = await client.walk(target(agent), (*IF_TABLE, 1, 1, 3))
        assert past == []


async def test_bulk_too_big_halves_max_repetitions(client: SnmpClient) -> None:
    def limited(request: Message) -> Iterable[bytes]:
        if request.error_index > 6:
            yield response(request, request.varbinds, error_status=1)
            return
        oid = request.varbinds[0].oid
        if oid[-1] >= 20:
            yield response(request, [Varbind(oid, EndOfMibView)])
            return
        yield response(
            request, [Varbind((*IF_TABLE, 1, 1, oid[-1] + 1 if len(oid) > 8 else 1), Integer(0))]
        )

    async with FakeAgent(limited) as agent:
        walked = await client.walk(target(agent), IF_TABLE, max_repetitions=25)
    assert len(walked) == 20
    assert [r.error_index for r in agent.requests[:3]] == [25, 12, 6]


async def test_walk_columns_interleaves_columns_and_handles_ragged_ends(client: SnmpClient) -> None:
    # Column 2 has rows 1..3, column 3 rows 1..10; one request carries both columns.
    data = {(*IF_TABLE, 1, 2, r): r for r in (1, 2, 3)} | {
        (*IF_TABLE, 1, 3, r): 30 + r for r in range(1, 11)
    }
    ordered = sorted(data)

    def handle(request: Message) -> Iterable[bytes]:
        out: list[Varbind] = []
        cursors = [vb.oid for vb in request.varbinds]
        for _ in range(request.error_index):
            for i, oid in enumerate(cursors):
                found = next((o for o in ordered if o > oid), None)
                cursors[i] = found or oid
                out.append(
                    Varbind(found, Integer(data[found])) if found else Varbind(oid, EndOfMibView)
                )
        yield response(request, out)

    async with FakeAgent(handle) as agent:
        table = await client.walk_columns(
            target(agent), [(*IF_TABLE, 1, 2), (*IF_TABLE, 1, 3)], max_repetitions=8
        )
    assert list(table) == [(r,) for r in range(1, 11)]
    assert table[(2,)] == {(*IF_TABLE, 1, 2): Integer(2), (*IF_TABLE, 1, 3): Integer(32)}
    assert table[(7,)] == {(*IF_TABLE, 1, 3): Integer(37)}
    assert len(agent.requests[0].varbinds) == 2 and agent.requests[0].error_index == 4
    assert len(agent.requests[-1].varbinds) == 1  # column 2 ended: only column 3 asked on


async def test_client_must_be_started() -> None:
    snmp = SnmpClient()
    with pytest.raises(SnmpError, match="not started"):
        await snmp.get(Target("127.0.0.1"), [SYS_DESCR])


async def test_ipv6_loopback_and_host_names_work(client: SnmpClient) -> None:
    async with FakeAgent(echo_values, host="::1") as agent:
        got = await client.get(Target("::1", agent.port, V2C, timeout_s=1), [SYS_DESCR])
    assert got == [Varbind(SYS_DESCR, OctetString(b"ok"))]
    first = socket.getaddrinfo("localhost", None, type=socket.SOCK_DGRAM)[0][4][0]
    async with FakeAgent(echo_values, host=str(first)) as agent:
        got = await client.get(Target("localhost", agent.port, V2C, timeout_s=1), [SYS_DESCR])
    assert got == [Varbind(SYS_DESCR, OctetString(b"ok"))]


async def test_walks_default_to_the_configured_max_repetitions() -> None:
    async with SnmpClient(SnmpSettings(max_repetitions=7)) as snmp, bulk_agent(successor) as agent:
        await snmp.walk(target(agent), IF_TABLE, max_varbinds=5)
        await snmp.walk(target(agent), IF_TABLE, max_repetitions=3, max_varbinds=3)
        await snmp.walk_columns(target(agent), [IF_TABLE], max_varbinds=5)
    assert [r.error_index for r in agent.requests] == [7, 3, 7]
    with pytest.raises(ValueError, match="max_repetitions"):
        await SnmpClient().walk(target(agent), IF_TABLE, max_repetitions=0)
