"""Property-based tests of the v1/v2c codec (hypothesis): round trips and hostile input.

The deterministic hostile-input tests are in test_snmp_codec.py; these explore further when
hypothesis is installed (it is a dev dependency) and skip with a reason when it is not.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from services.snmp import ber
from services.snmp.errors import SnmpDecodeError
from services.snmp.message import Message, decode_message, encode_message, peek_header
from services.snmp.values import (
    Counter32,
    Counter64,
    EndOfMibView,
    Gauge32,
    Integer,
    IpAddress,
    NoSuchInstance,
    NoSuchObject,
    Null,
    ObjectIdentifier,
    OctetString,
    Opaque,
    TimeTicks,
    Varbind,
)

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed")
st = hypothesis.strategies

_arcs = st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=20)
_oids = st.builds(
    lambda first, second, rest: (first, second, *rest),
    st.integers(0, 1),
    st.integers(0, 39),
    _arcs,
) | st.builds(lambda second, rest: (2, second, *rest), st.integers(0, 2**32 - 81), _arcs)
_values = st.one_of(
    st.builds(Integer, st.integers(-(2**31), 2**31 - 1)),
    st.builds(OctetString, st.binary(max_size=300)),
    st.builds(ObjectIdentifier, _oids),
    st.builds(
        IpAddress, st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
    ),
    st.builds(Counter32, st.integers(0, 2**32 - 1)),
    st.builds(Gauge32, st.integers(0, 2**32 - 1)),
    st.builds(TimeTicks, st.integers(0, 2**32 - 1)),
    st.builds(Counter64, st.integers(0, 2**64 - 1)),
    st.builds(Opaque, st.binary(max_size=20)),
    st.sampled_from([Null, NoSuchObject, NoSuchInstance, EndOfMibView]),
)
_messages = st.builds(
    Message,
    version=st.sampled_from([0, 1]),
    community=st.binary(max_size=40),
    pdu_type=st.sampled_from([ber.GET_REQUEST, ber.GET_NEXT_REQUEST, ber.RESPONSE, 0xA5]),
    request_id=st.integers(-(2**31), 2**31 - 1),
    error_status=st.integers(0, 18),
    error_index=st.integers(0, 200),
    varbinds=st.lists(st.builds(Varbind, _oids, _values), max_size=30).map(tuple),
)


@hypothesis.given(_messages)
@hypothesis.settings(max_examples=300, deadline=None)
def test_property_round_trip(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


@hypothesis.given(_messages, st.data())
@hypothesis.settings(max_examples=300, deadline=None)
def test_property_mutated_messages_decode_or_raise_decode_error(
    message: Message, data: Any
) -> None:
    raw = bytearray(encode_message(message))
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    for candidate in (bytes(raw), bytes(raw[:cut])):
        with contextlib.suppress(SnmpDecodeError):
            decode_message(candidate)


@hypothesis.given(st.binary(max_size=400))
@hypothesis.settings(max_examples=500, deadline=None)
def test_property_garbage_never_crashes(data: bytes) -> None:
    with contextlib.suppress(SnmpDecodeError):
        decode_message(data)
    peek_header(data)
