"""SNMPv1/v2c messages: encoding and a strict, fast decoder.

Why our own codec: pysnmp decodes through generic pyasn1 schema objects and costs about four
times what net-snmp's C library costs per varbind; a walk of a switch's IF-MIB every minute on
a Raspberry Pi cannot afford that. This decoder walks the datagram once with integer offsets,
builds the typed values directly, and rejects anything malformed with SnmpDecodeError.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from services.snmp import ber
from services.snmp.ber import decode_header, decode_integer, decode_oid, tlv
from services.snmp.errors import SnmpDecodeError
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
)

VERSION_1: Final = 0
VERSION_2C: Final = 1
# The largest UDP payload; anything bigger did not come from a UDP socket.
MAX_MESSAGE_BYTES: Final = 65535

_PDU_TAGS: Final = frozenset(
    (
        ber.GET_REQUEST,
        ber.GET_NEXT_REQUEST,
        ber.RESPONSE,
        ber.SET_REQUEST,
        ber.GET_BULK_REQUEST,
        ber.INFORM_REQUEST,
        ber.TRAP_V2,
        ber.REPORT,
    )
)
_U32: Final = 0xFFFFFFFF
_U64: Final = 0xFFFFFFFFFFFFFFFF
_NULL_TLV: Final = b"\x05\x00"


@dataclass(frozen=True, slots=True)
class Message:
    """One v1/v2c message. In a GetBulkRequest ``error_status`` holds non-repeaters and
    ``error_index`` max-repetitions (same wire positions, RFC 3416 section 3)."""

    version: int
    community: bytes = field(repr=False)  # a secret: never in a repr
    pdu_type: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: tuple[Varbind, ...]


# ---- encoding ----


def encode_value(value: SnmpValue) -> bytes:
    """The TLV of one value (used for responses in tests and by agents built on this codec)."""
    if isinstance(value, Integer):
        return tlv(ber.INTEGER, ber.encode_signed(value.value))
    if isinstance(value, OctetString):
        return tlv(ber.OCTET_STRING, value.value)
    if isinstance(value, ObjectIdentifier):
        return tlv(ber.OBJECT_IDENTIFIER, ber.encode_oid(value.value))
    if isinstance(value, IpAddress):
        return tlv(ber.IP_ADDRESS, bytes(int(part) for part in value.value.split(".")))
    if isinstance(value, Counter32 | Gauge32 | TimeTicks | Counter64):
        return tlv(_UNSIGNED_TAGS[type(value)], ber.encode_unsigned(value.value))
    if isinstance(value, Opaque):
        return tlv(ber.OPAQUE, value.value)
    if value is Null:
        return _NULL_TLV
    if value is NoSuchObject:
        return b"\x80\x00"
    if value is NoSuchInstance:
        return b"\x81\x00"
    if value is EndOfMibView:
        return b"\x82\x00"
    raise TypeError(f"not an SNMP value: {value!r}")


_UNSIGNED_TAGS: Final[dict[type, int]] = {
    Counter32: ber.COUNTER32,
    Gauge32: ber.GAUGE32,
    TimeTicks: ber.TIMETICKS,
    Counter64: ber.COUNTER64,
}


def _envelope(
    header: tuple[int, bytes, int, int, int, int], varbind_tlvs: Iterable[bytes]
) -> bytes:
    """Wrap varbind TLVs: header = (version, community, pdu_type, request_id, field1, field2)."""
    version, community, pdu_type, request_id, field1, field2 = header
    pdu = (
        tlv(ber.INTEGER, ber.encode_signed(request_id))
        + tlv(ber.INTEGER, ber.encode_signed(field1))
        + tlv(ber.INTEGER, ber.encode_signed(field2))
        + tlv(ber.SEQUENCE, b"".join(varbind_tlvs))
    )
    body = (
        tlv(ber.INTEGER, ber.encode_signed(version))
        + tlv(ber.OCTET_STRING, community)
        + tlv(pdu_type, pdu)
    )
    return tlv(ber.SEQUENCE, body)


def encode_request(
    version: int,
    community: bytes,
    pdu_type: int,
    request_id: int,
    oids: Sequence[Sequence[int]],
    *,
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    """A Get/GetNext/GetBulk request: every varbind carries NULL."""
    vbs = (
        tlv(ber.SEQUENCE, tlv(ber.OBJECT_IDENTIFIER, ber.encode_oid(o)) + _NULL_TLV) for o in oids
    )
    return _envelope(
        (version, community, pdu_type, request_id, non_repeaters, max_repetitions), vbs
    )


def encode_message(message: Message) -> bytes:
    vbs = (
        tlv(
            ber.SEQUENCE,
            tlv(ber.OBJECT_IDENTIFIER, ber.encode_oid(vb.oid)) + encode_value(vb.value),
        )
        for vb in message.varbinds
    )
    header = (
        message.version,
        message.community,
        message.pdu_type,
        message.request_id,
        message.error_status,
        message.error_index,
    )
    return _envelope(header, vbs)


# ---- decoding ----


def _expect(tag: int, want: int, what: str, pos: int) -> None:
    if tag != want:
        raise SnmpDecodeError(f"{what}: expected tag 0x{want:02x}, got 0x{tag:02x}", pos)


def decode_value(data: bytes, tag: int, start: int, end: int) -> SnmpValue:
    """The value whose tag and content positions were read by :func:`ber.decode_header`."""
    # Ordered by how often each type appears in real walks (IF-MIB, HOST-RESOURCES).
    if tag == ber.INTEGER:
        value = decode_integer(data, start, end)
        if not -0x80000000 <= value <= 0x7FFFFFFF:
            # Wrap like net-snmp: agents that encode 0xFFFFFFFF as a 5-byte INTEGER mean -1.
            value = ((value + 0x80000000) & _U32) - 0x80000000
        return Integer(value)
    if tag == ber.OCTET_STRING:
        return OctetString(data[start:end])
    if tag == ber.COUNTER32:
        # Masked to 32 bits like net-snmp: some agents send counters as negative INTEGERs.
        return Counter32(decode_integer(data, start, end) & _U32)
    if tag in (ber.GAUGE32, ber.UINTEGER32):
        return Gauge32(decode_integer(data, start, end) & _U32)
    if tag == ber.COUNTER64:
        return Counter64(decode_integer(data, start, end) & _U64)
    if tag == ber.OBJECT_IDENTIFIER:
        return ObjectIdentifier(decode_oid(data, start, end))
    if tag == ber.TIMETICKS:
        return TimeTicks(decode_integer(data, start, end) & _U32)
    if tag == ber.IP_ADDRESS:
        if end - start != 4:
            raise SnmpDecodeError(f"IpAddress of {end - start} bytes (must be 4)", start)
        return IpAddress(".".join(map(str, data[start:end])))
    if tag in _EMPTY_VALUES:
        if end != start:
            raise SnmpDecodeError(f"value with tag 0x{tag:02x} must be empty", start)
        return _EMPTY_VALUES[tag]
    if tag == ber.OPAQUE:
        return Opaque(data[start:end])
    raise SnmpDecodeError(f"unknown value type tag 0x{tag:02x}", start)


_EMPTY_VALUES: Final[dict[int, SnmpValue]] = {
    ber.NULL: Null,
    ber.NO_SUCH_OBJECT: NoSuchObject,
    ber.NO_SUCH_INSTANCE: NoSuchInstance,
    ber.END_OF_MIB_VIEW: EndOfMibView,
}


def decode_message(data: bytes) -> Message:
    """Decode one datagram; raise SnmpDecodeError on anything that is not a clean message."""
    size = len(data)
    if size > MAX_MESSAGE_BYTES:
        raise SnmpDecodeError(f"datagram of {size} bytes is larger than any UDP payload")
    tag, pos, end = decode_header(data, 0, size)
    _expect(tag, ber.SEQUENCE, "message", 0)
    if end != size:
        raise SnmpDecodeError(f"{size - end} bytes after the end of the message", end)
    tag, start, stop = decode_header(data, pos, end)
    _expect(tag, ber.INTEGER, "version", pos)
    version = decode_integer(data, start, stop)
    if version not in (VERSION_1, VERSION_2C):
        raise SnmpDecodeError(f"message version {version} is not v1 or v2c", start)
    tag, start, pos = decode_header(data, stop, end)
    _expect(tag, ber.OCTET_STRING, "community", stop)
    community = data[start:pos]
    pdu_type, pos, end_pdu = decode_header(data, pos, end)
    if pdu_type not in _PDU_TAGS:
        raise SnmpDecodeError(f"unsupported PDU type 0x{pdu_type:02x}", pos)
    if end_pdu != end:
        raise SnmpDecodeError("bytes after the PDU", end_pdu)
    fields = []
    for what in ("request-id", "error-status", "error-index"):
        tag, start, stop = decode_header(data, pos, end)
        _expect(tag, ber.INTEGER, what, pos)
        fields.append(decode_integer(data, start, stop))
        pos = stop
    tag, pos, end_list = decode_header(data, pos, end)
    _expect(tag, ber.SEQUENCE, "varbind list", pos)
    if end_list != end:
        raise SnmpDecodeError("bytes after the varbind list", end_list)
    varbinds = _decode_varbinds(data, pos, end)
    return Message(version, community, pdu_type, fields[0], fields[1], fields[2], varbinds)


def _decode_varbinds(data: bytes, pos: int, end: int) -> tuple[Varbind, ...]:
    out: list[Varbind] = []
    append = out.append
    while pos < end:
        # Fast path, taken by nearly every varbind: short-form lengths for the varbind, its
        # name and its value, all inside their containers. Anything else goes through the
        # general (and precise about errors) decode_header.
        if (
            pos + 4 <= end
            and data[pos] == 0x30
            and data[pos + 2] == 0x06
            and (vb_end := pos + 2 + data[pos + 1]) <= end
            and data[pos + 1] < 0x80
            and data[pos + 3] < 0x80
            and (stop := pos + 4 + data[pos + 3]) + 2 <= vb_end
            and data[stop + 1] < 0x80
            and stop + 2 + data[stop + 1] == vb_end
        ):
            oid = decode_oid(data, pos + 4, stop)
            append(Varbind(oid, decode_value(data, data[stop], stop + 2, vb_end)))
            pos = vb_end
            continue
        tag, start, vb_end = decode_header(data, pos, end)
        _expect(tag, ber.SEQUENCE, "varbind", pos)
        tag, start, stop = decode_header(data, start, vb_end)
        _expect(tag, ber.OBJECT_IDENTIFIER, "varbind name", start)
        oid = decode_oid(data, start, stop)
        tag, start, stop = decode_header(data, stop, vb_end)
        if stop != vb_end:
            raise SnmpDecodeError("bytes after a varbind's value", stop)
        append(Varbind(oid, decode_value(data, tag, start, stop)))
        pos = vb_end
    return tuple(out)


def peek_header(data: bytes) -> tuple[bytes, int] | None:
    """``(community, request_id)`` of a datagram that failed to decode, when readable.

    Lets the transport fail at once the one request an agent answered with a broken body
    (truncated, wrong types) instead of making it wait for its timeout.
    """
    limit = len(data)
    loose = limit + MAX_MESSAGE_BYTES  # the outer lengths may run past a truncated datagram
    try:
        tag, pos, _ = decode_header(data, 0, loose)
        if tag != ber.SEQUENCE:
            return None
        tag, _, pos = decode_header(data, pos, limit)
        if tag != ber.INTEGER:
            return None
        tag, start, pos = decode_header(data, pos, limit)
        if tag != ber.OCTET_STRING:
            return None
        community = data[start:pos]
        tag, pos, _ = decode_header(data, pos, loose)
        if tag not in _PDU_TAGS:
            return None
        tag, start, stop = decode_header(data, pos, limit)
        if tag != ber.INTEGER:
            return None
        return community, decode_integer(data, start, stop)
    except (SnmpDecodeError, IndexError):
        return None
