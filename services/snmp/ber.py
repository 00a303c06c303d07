"""BER primitives for SNMP (X.690 as profiled by RFC 3417): tags, lengths, integers, OIDs.

Only the subset SNMP uses: single-byte tags, definite lengths of at most 4 length bytes.
Decoders take ``(data, start, end)`` positions instead of slices so a message is decoded
without copying; every malformed input raises :class:`SnmpDecodeError` naming the offset.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from services.snmp.errors import SnmpDecodeError

# Universal tags
INTEGER: Final = 0x02
OCTET_STRING: Final = 0x04
NULL: Final = 0x05
OBJECT_IDENTIFIER: Final = 0x06
SEQUENCE: Final = 0x30
# Application tags (RFC 2578 / RFC 3416)
IP_ADDRESS: Final = 0x40
COUNTER32: Final = 0x41
GAUGE32: Final = 0x42
TIMETICKS: Final = 0x43
OPAQUE: Final = 0x44
COUNTER64: Final = 0x46
UINTEGER32: Final = 0x47  # obsolete SNMPv2 draft type; net-snmp reads it as Unsigned32 too
# Context-specific primitive tags of the v2 exceptions
NO_SUCH_OBJECT: Final = 0x80
NO_SUCH_INSTANCE: Final = 0x81
END_OF_MIB_VIEW: Final = 0x82
# PDU tags (context-specific constructed)
GET_REQUEST: Final = 0xA0
GET_NEXT_REQUEST: Final = 0xA1
RESPONSE: Final = 0xA2
SET_REQUEST: Final = 0xA3
GET_BULK_REQUEST: Final = 0xA5
INFORM_REQUEST: Final = 0xA6
TRAP_V2: Final = 0xA7
REPORT: Final = 0xA8

# Longest integer content accepted: 9 bytes holds any 64-bit unsigned with its sign byte
# (net-snmp accepts the same on 64-bit hosts); anything longer is hostile or broken.
MAX_INTEGER_BYTES: Final = 9
# A length field of more than 4 bytes cannot describe anything that fits in a UDP datagram.
MAX_LENGTH_BYTES: Final = 4
# RFC 2578: at most 128 sub-identifiers, each < 2^32.
MAX_OID_ARCS: Final = 128
MAX_SUBID: Final = 0xFFFFFFFF
# 2^32-1 takes 5 base-128 digits: at most 4 continuation bytes before the last one (a longer
# run is either padding with 0x80 or an attack on the integer arithmetic).
MAX_CONTINUATION_BYTES: Final = 4
_CONTINUATION_RUN: Final = re.compile(rb"[\x80-\xff]+")


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    return bytes((tag,)) + encode_length(length) + content


def encode_signed(value: int) -> bytes:
    """Minimal two's complement content of an INTEGER."""
    return value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)


def encode_unsigned(value: int) -> bytes:
    """Minimal content of a non-negative integer (leading zero byte when the high bit is set)."""
    if value < 0:
        raise ValueError(f"unsigned SNMP value cannot be negative: {value}")
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def _base128(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def encode_oid(oid: Sequence[int]) -> bytes:
    """Content octets of an OBJECT IDENTIFIER.

    A one-arc OID ``(1,)`` is sent as ``1.0``, as net-snmp does: BER cannot express one arc,
    and ``1.0`` sorts right after ``1`` so a walk from ``.1`` still starts at the beginning.
    """
    first = oid[0] * 40 + (oid[1] if len(oid) > 1 else 0)
    rest = tuple(oid[2:])
    if first < 0x80 and (not rest or max(rest) < 0x80):
        return bytes((first, *rest))
    return b"".join(_base128(arc) for arc in (first, *rest))


def decode_header(data: bytes, pos: int, limit: int) -> tuple[int, int, int]:
    """Read the tag and length at ``pos``; return ``(tag, content_start, content_end)``.

    The content must end at or before ``limit`` (the end of the enclosing element).
    """
    if pos + 2 > limit:
        raise SnmpDecodeError("truncated: a tag and length were expected", pos)
    tag = data[pos]
    length = data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise SnmpDecodeError(f"multi-byte tag 0x{tag:02x} is not used by SNMP", pos)
    start = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0:
            raise SnmpDecodeError("indefinite length is not allowed in SNMP", pos)
        if count > MAX_LENGTH_BYTES:
            raise SnmpDecodeError(f"length field of {count} bytes", pos)
        if start + count > limit:
            raise SnmpDecodeError("truncated inside a length field", pos)
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > limit:
        raise SnmpDecodeError(
            f"element of {length} bytes runs {end - limit} bytes past its container", pos
        )
    return tag, start, end


def decode_integer(data: bytes, start: int, end: int) -> int:
    """A signed INTEGER's content (1 to MAX_INTEGER_BYTES bytes)."""
    size = end - start
    if size == 0:
        raise SnmpDecodeError("integer with no content bytes", start)
    if size > MAX_INTEGER_BYTES:
        raise SnmpDecodeError(f"integer of {size} bytes is too long", start)
    return int.from_bytes(data[start:end], "big", signed=True)


def decode_oid(data: bytes, start: int, end: int) -> tuple[int, ...]:
    """An OBJECT IDENTIFIER's content as a tuple of arcs."""
    if start == end:
        raise SnmpDecodeError("object identifier with no content bytes", start)
    raw = data[start:end]
    if raw.isascii():
        # Fast path: every sub-identifier fits in one byte (the common case by far).
        if end - start >= MAX_OID_ARCS:
            raise SnmpDecodeError(f"object identifier longer than {MAX_OID_ARCS} arcs", start)
        first = raw[0]
        head = (first // 40, first % 40) if first < 80 else (2, first - 80)
        return head + tuple(raw[1:])
    # Slow path: copy the one-byte sub-identifiers in slices and assemble only the runs of
    # continuation bytes (an IP address in an index has a few of them, not many).
    arcs: list[int] = []
    last = 0
    size = len(raw)
    for run in _CONTINUATION_RUN.finditer(raw):
        run_start, run_end = run.span()
        if run_end >= size:
            raise SnmpDecodeError("object identifier ends inside a sub-identifier", end - 1)
        if run_end - run_start > MAX_CONTINUATION_BYTES:
            raise SnmpDecodeError("object identifier sub-identifier above 2^32-1", start)
        arcs.extend(raw[last:run_start])
        value = 0
        for byte in raw[run_start:run_end]:
            value = (value << 7) | (byte & 0x7F)
        value = (value << 7) | raw[run_end]
        if value > MAX_SUBID:
            raise SnmpDecodeError("object identifier sub-identifier above 2^32-1", start)
        arcs.append(value)
        last = run_end + 1
    arcs.extend(raw[last:])
    first = arcs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    arcs[0:1] = head
    if len(arcs) > MAX_OID_ARCS:
        raise SnmpDecodeError(f"object identifier longer than {MAX_OID_ARCS} arcs", start)
    return tuple(arcs)
