"""The v1/v2c codec: known encodings, round trips, agreement with pyasn1, hostile datagrams."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time

import pytest
from pyasn1.codec.ber import decoder as pyasn1_decoder
from pyasn1.codec.ber import encoder as pyasn1_encoder
from pysnmp.proto import api as pysnmp_api

from services.snmp import ber
from services.snmp.errors import SnmpDecodeError
from services.snmp.message import (
    Message,
    decode_message,
    encode_message,
    encode_request,
    peek_header,
)
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
    SnmpValue,
    TimeTicks,
    Varbind,
    oid_from_str,
    oid_to_str,
    to_oid,
)

SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)

EVERY_TYPE: list[SnmpValue] = [
    Integer(0),
    Integer(-1),
    Integer(2**31 - 1),
    Integer(-(2**31)),
    OctetString(b""),
    OctetString(b"\x00\xff" * 300),  # long form length
    Null,
    ObjectIdentifier((1, 3, 6, 1, 4, 1, 2**32 - 1, 0)),
    ObjectIdentifier((2, 999, 3)),
    IpAddress("192.0.2.255"),
    Counter32(2**32 - 1),
    Gauge32(0),
    TimeTicks(592757166),
    Opaque(b"\x9f\x78\x04\x42\xf6\x00\x00"),
    Counter64(2**64 - 1),
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
]


def response_with(values: list[SnmpValue], request_id: int = 42) -> Message:
    varbinds = tuple(Varbind((*SYS_DESCR[:-1], i), v) for i, v in enumerate(values))
    return Message(1, b"public", ber.RESPONSE, request_id, 0, 0, varbinds)


# ---- known encodings ----


@pytest.mark.skipif(not shutil.which("snmpbulkget"), reason="net-snmp tools not installed")
@pytest.mark.parametrize(
    ("tool", "args", "pdu_type", "repetitions"),
    [
        ("snmpget", [], ber.GET_REQUEST, 0),
        ("snmpgetnext", [], ber.GET_NEXT_REQUEST, 0),
        ("snmpbulkget", ["-Cn0", "-Cr25"], ber.GET_BULK_REQUEST, 25),
    ],
)
def test_requests_are_byte_identical_to_net_snmps(
    tool: str, args: list[str], pdu_type: int, repetitions: int
) -> None:
    oids = [SYS_DESCR, (1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 100000), (1, 3, 6, 1, 4, 1, 2**31)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        port = sock.getsockname()[1]
        argv = [tool, "-v2c", "-c", "s3cret", "-r0", "-t1", *args, f"127.0.0.1:{port}"]
        with subprocess.Popen(
            [*argv, *(oid_to_str(o) for o in oids)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as tool_process:
            captured, _ = sock.recvfrom(65535)
            tool_process.wait(10)
    theirs = decode_message(captured)
    ours = encode_request(
        1, b"s3cret", pdu_type, theirs.request_id, oids, max_repetitions=repetitions
    )
    assert ours == captured


def test_one_arc_oid_is_sent_as_arc_dot_zero_like_net_snmp() -> None:
    assert ber.encode_oid((1,)) == b"\x28"
    assert ber.encode_oid((1, 3)) == b"\x2b"


@pytest.mark.parametrize("value", EVERY_TYPE, ids=repr)
def test_every_type_round_trips(value: SnmpValue) -> None:
    message = response_with([value])
    assert decode_message(encode_message(message)) == message


@pytest.mark.parametrize("value", EVERY_TYPE, ids=repr)
def test_our_encoding_decodes_with_pysnmp_to_the_same_value(value: SnmpValue) -> None:
    data = encode_message(response_with([value]))
    decoded, rest = pyasn1_decoder.decode(data, asn1Spec=pysnmp_api.v2c.Message())
    assert rest == b""
    pdu = pysnmp_api.v2c.apiMessage.get_pdu(decoded)
    [(name, theirs)] = pysnmp_api.v2c.apiPDU.get_varbinds(pdu)
    assert tuple(name) == (*SYS_DESCR[:-1], 0)
    assert pyasn1_encoder.encode(theirs) == data[-len(pyasn1_encoder.encode(theirs)) :]


def test_pysnmp_encoding_decodes_with_ours() -> None:
    v2c = pysnmp_api.v2c
    pdu = v2c.GetResponsePDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, 77)
    v2c.apiPDU.set_varbinds(
        pdu,
        [
            ((1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1), v2c.Counter32(123456)),
            ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1), v2c.Counter64(2**40)),
            ((1, 3, 6, 1, 2, 1, 4, 20, 1, 1, 10, 0, 0, 1), v2c.IpAddress("10.0.0.1")),
            ((1, 3, 6, 1, 2, 1, 1, 3, 0), v2c.TimeTicks(100)),
            ((1, 3, 6, 1, 2, 1, 1, 5, 0), v2c.OctetString(b"sw\x00")),
            ((1, 3, 6, 1, 2, 1, 2, 2, 1, 5, 1), v2c.Gauge32(10**9)),
            ((1, 3, 6, 1, 2, 1, 2, 2, 1, 3, 1), v2c.Integer(-3)),
            ((1, 3, 6, 1, 2, 1, 1, 9, 0), v2c.NoSuchInstance()),
        ],
    )
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    v2c.apiMessage.set_community(message, "c0mm")
    v2c.apiMessage.set_pdu(message, pdu)
    decoded = decode_message(pyasn1_encoder.encode(message))
    assert decoded.request_id == 77
    assert decoded.community == b"c0mm"
    assert [vb.value for vb in decoded.varbinds] == [
        Counter32(123456),
        Counter64(2**40),
        IpAddress("10.0.0.1"),
        TimeTicks(100),
        OctetString(b"sw\x00"),
        Gauge32(10**9),
        Integer(-3),
        NoSuchInstance,
    ]


def test_unsigned_values_sent_as_negative_are_read_like_net_snmp() -> None:
    # A buggy agent encodes Counter32 4294967295 as 0xFF (one byte, "negative").
    assert decode_message(_with_value(b"\x41\x01\xff")).varbinds[0].value == Counter32(2**32 - 1)
    assert decode_message(_with_value(b"\x46\x01\xfe")).varbinds[0].value == Counter64(2**64 - 2)


def test_integer_of_five_bytes_wraps_to_32_bits_like_net_snmp() -> None:
    data = _with_value(b"\x02\x05\x00\xff\xff\xff\xff")
    assert decode_message(data).varbinds[0].value == Integer(-1)


def test_uinteger32_of_old_agents_reads_as_gauge32() -> None:
    assert decode_message(_with_value(b"\x47\x01\x05")).varbinds[0].value == Gauge32(5)


def _with_value(tlv: bytes) -> bytes:
    """A v2c Response whose single varbind (1.3.6) carries the raw value TLV ``tlv``."""
    varbind = ber.tlv(ber.SEQUENCE, ber.tlv(ber.OBJECT_IDENTIFIER, b"\x2b\x06") + tlv)
    pdu = (
        ber.tlv(ber.INTEGER, b"\x01")
        + ber.tlv(ber.INTEGER, b"\x00") * 2
        + ber.tlv(ber.SEQUENCE, varbind)
    )
    body = ber.tlv(ber.INTEGER, b"\x01") + ber.tlv(ber.OCTET_STRING, b"p") + ber.tlv(0xA2, pdu)
    return ber.tlv(ber.SEQUENCE, body)


# ---- OIDs and text ----


def test_oid_text_helpers() -> None:
    assert oid_from_str(".1.3.6.1.2.1") == (1, 3, 6, 1, 2, 1)
    assert oid_from_str("1.3.6") == (1, 3, 6)
    assert oid_to_str((1, 3, 6, 1)) == "1.3.6.1"
    assert to_oid([1, 3, 6]) == (1, 3, 6)
    for bad in ("", "1..3", "1.3.x", "3.1", "1.40", "1.3." + "1." * 130 + "1", f"1.3.{2**32}"):
        with pytest.raises(ValueError):
            oid_from_str(bad)
    with pytest.raises(ValueError):
        to_oid([1, True])


def test_octet_string_text_is_safe_for_logs() -> None:
    assert OctetString(b"ProCurve J9019B\x00\x00").text() == "ProCurve J9019B"
    assert OctetString(b"line1\r\nline2\x1b[31m").text() == "line1  line2[31m"
    # UTF-8 where valid, a stray byte as Windows-1252 (legacy code pages), never U+FFFD.
    assert OctetString(b"caf\xc3\xa9 \xff").text() == "café ÿ"
    assert OctetString(b"B\xfcro 2. OG").text() == "Büro 2. OG"
    assert len(OctetString(b"x" * 100_000).text()) == 1024
    assert OctetString(b"x" * 100).text(max_chars=10) == "x" * 10
    assert OctetString(bytes.fromhex("0050569d990a")).hex() == "00:50:56:9d:99:0a"


# ---- hostile datagrams ----

GOOD = encode_message(response_with(EVERY_TYPE))


def test_every_truncation_is_a_decode_error() -> None:
    for cut in range(len(GOOD)):
        with pytest.raises(SnmpDecodeError):
            decode_message(GOOD[:cut])


def test_trailing_bytes_are_a_decode_error() -> None:
    with pytest.raises(SnmpDecodeError, match="after the end"):
        decode_message(GOOD + b"\x00")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"GET / HTTP/1.1\r\n\r\n", "runs 53 bytes past"),
        (b"\x04\x00", "expected tag 0x30"),
        (b"\x30\x84\x7f\xff\xff\xff" + b"\x00" * 10, "runs"),  # giant length
        (b"\x30\x85\x01\x00\x00\x00\x00", "length field of 5 bytes"),
        (b"\x30\x80\x02\x01\x01\x00\x00", "indefinite"),
        (b"\x1f\x01\x00", "multi-byte tag"),
        (b"\x30\x03\x02\x01\x03", "version 3"),
        (b"\x30\x05\x02\x01\x01\x02\x00", "expected tag 0x04"),
        (b"\x30\x0a\x02\x01\x01\x04\x01x\xa4\x02\x30\x00", "unsupported PDU"),
    ],
)
def test_malformed_headers(data: bytes, reason: str) -> None:
    with pytest.raises(SnmpDecodeError, match=reason):
        decode_message(data)


@pytest.mark.parametrize(
    ("value_tlv", "reason"),
    [
        (b"\x40\x05\x01\x02\x03\x04\x05", "IpAddress of 5 bytes"),
        (b"\x02\x00", "no content"),
        (b"\x41\x0a" + b"\x01" * 10, "too long"),
        (b"\x05\x01\x00", "must be empty"),
        (b"\x82\x01\x00", "must be empty"),
        (b"\x06\x00", "no content"),
        (b"\x06\x02\x2b\x86", "ends inside"),
        (b"\x06\x07\x2b\x8f\xff\xff\xff\xff\x7f", "above 2"),
        (b"\x06\x81\x90" + b"\x01" * 144, "longer than 128"),
        (b"\x45\x00", "unknown value type"),
        (b"\x30\x00", "unknown value type"),
    ],
)
def test_wrong_value_encodings(value_tlv: bytes, reason: str) -> None:
    with pytest.raises(SnmpDecodeError, match=reason):
        decode_message(_with_value(value_tlv))


def test_a_deep_oid_with_multibyte_arcs_decodes() -> None:
    oid = (1, 3) + (2**31,) * 126
    message = Message(1, b"p", ber.RESPONSE, 1, 0, 0, (Varbind(oid, Null),))
    assert decode_message(encode_message(message)).varbinds[0].oid == oid


def test_random_garbage_and_mutations_only_raise_decode_errors() -> None:
    rng = random.Random(20261122)
    started = time.monotonic()
    samples = 0
    for _ in range(20_000):
        kind = rng.random()
        if kind < 0.3:
            data = rng.randbytes(rng.randrange(0, 200))
        else:
            mutated = bytearray(GOOD)
            for _ in range(rng.randrange(1, 6)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            if kind > 0.8:
                mutated = mutated[: rng.randrange(len(mutated))]
            data = bytes(mutated)
        with contextlib.suppress(SnmpDecodeError):
            decode_message(data)
        peek_header(data)
        samples += 1
    # Never slow on hostile input: 20,000 datagrams well within a few seconds.
    assert time.monotonic() - started < 10
    assert samples == 20_000


def test_peek_header_reads_request_id_of_a_truncated_answer() -> None:
    data = encode_message(response_with([OctetString(b"x" * 50)], request_id=991))
    assert peek_header(data[:-20]) == (b"public", 991)
    assert peek_header(b"\x00garbage") is None


def test_oversized_datagram_is_refused() -> None:
    with pytest.raises(SnmpDecodeError, match="larger than any UDP"):
        decode_message(b"\x30\x83\x01\x00\x00" + b"\x00" * 65536)
