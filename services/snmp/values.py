"""Typed SNMP values (the SMI types of RFC 2578 and the v2 exceptions of RFC 3416).

Each value is a small frozen object with one ``value`` field whose Python type is fixed, so a
consumer can tell a Counter32 from a Gauge32 (rates vs levels) and never has to guess. The
three exceptions (noSuchObject, noSuchInstance, endOfMibView) are singletons: test them with
``is`` or with :func:`is_absent`.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

OID: TypeAlias = tuple[int, ...]
OIDLike: TypeAlias = str | Sequence[int]

# RFC 2578 section 3.5: at most 128 sub-identifiers, each at most 2^32-1.
MAX_OID_ARCS: Final = 128
MAX_SUBID: Final = 0xFFFFFFFF
# .text() bound: device strings go to logs and pages; sysDescr is the longest one we expect.
DEFAULT_TEXT_CHARS: Final = 1024

_OID_TEXT = re.compile(r"\.?\d+(\.\d+)*")
# C0 controls other than the whitespace that .text() turns into spaces, DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACE = re.compile(r"[\t\n\r]")


def oid_from_str(text: str) -> OID:
    """``'1.3.6.1.2.1.1.1.0'`` (a leading dot is allowed) to ``(1, 3, 6, 1, 2, 1, 1, 1, 0)``."""
    text = text.strip()
    if not _OID_TEXT.fullmatch(text):
        raise ValueError(f"{text[:80]!r} is not a numeric OID; write it like '1.3.6.1.2.1.1.1.0'")
    oid = tuple(int(arc) for arc in text.lstrip(".").split("."))
    _check_oid(oid)
    return oid


def oid_to_str(oid: Sequence[int]) -> str:
    """``(1, 3, 6, 1)`` to ``'1.3.6.1'`` (no leading dot)."""
    return ".".join(map(str, oid))


def to_oid(oid: OIDLike) -> OID:
    """An OID given as text or as a sequence of ints, checked, as a tuple."""
    if isinstance(oid, str):
        return oid_from_str(oid)
    result = tuple(oid)
    if not all(isinstance(arc, int) and not isinstance(arc, bool) for arc in result):
        raise ValueError(f"an OID is a sequence of ints, got {result[:8]!r}")
    _check_oid(result)
    return result


def _check_oid(oid: OID) -> None:
    if not oid:
        raise ValueError("an OID needs at least one sub-identifier")
    if len(oid) > MAX_OID_ARCS:
        raise ValueError(f"an OID has at most {MAX_OID_ARCS} sub-identifiers, got {len(oid)}")
    if any(arc < 0 or arc > MAX_SUBID for arc in oid):
        raise ValueError(f"OID sub-identifiers are 0..{MAX_SUBID}: {oid_to_str(oid[:20])}")
    if oid[0] > 2 or (len(oid) > 1 and oid[0] < 2 and oid[1] >= 40):
        raise ValueError(f"{oid_to_str(oid[:20])} is not encodable (first arcs 0..2, then <40)")


def oid_startswith(oid: OID, root: OID) -> bool:
    """True when ``oid`` is ``root`` or lies in its subtree."""
    return oid[: len(root)] == root


@dataclass(frozen=True, slots=True)
class Integer:
    """INTEGER / Integer32 (signed 32 bits); enumerations arrive as this."""

    value: int

    def __int__(self) -> int:
        return self.value


Integer32 = Integer


def decode_text(raw: bytes, cut: bool = False) -> str:
    """Device bytes as text: UTF-8 where they are valid UTF-8, any other byte as Windows-1252.

    Agents send whatever code page the string was typed in: "B\\xfcro" is Latin-1/Windows-1252
    for "Büro" and is not UTF-8; a string mixing both keeps its UTF-8 characters. ``cut``:
    the caller cut ``raw`` from a longer string, so a UTF-8 sequence broken at the very end
    is dropped rather than read as Windows-1252. The five bytes Windows-1252 leaves undefined
    decode as their Latin-1 code points (C1 controls, which callers drop). Never raises and
    never yields U+FFFD.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("_cp1252_fallback")
    return decoder.decode(raw, final=not cut)


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: the undecodable bytes read as Windows-1252 (else Latin-1)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = bytes(error.object[error.start : error.end])
    return "".join(_cp1252_char(b) for b in bad), error.end


def _cp1252_char(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)  # 0x81, 0x8D, 0x8F, 0x90, 0x9D: undefined in Windows-1252


codecs.register_error("_cp1252_fallback", _cp1252_fallback)


@dataclass(frozen=True, slots=True)
class OctetString:
    """OCTET STRING: raw bytes (DisplayString, PhysAddress, BITS, opaque blobs alike)."""

    value: bytes

    def text(self, max_chars: int = DEFAULT_TEXT_CHARS) -> str:
        """The bytes as text safe for logs and pages.

        Bytes are UTF-8 where valid, else Windows-1252 (:func:`decode_text`); tabs and line
        breaks become spaces, other control characters are dropped, trailing NULs (C agents
        often count them) and surrounding blanks are stripped, and the result is cut at
        ``max_chars``.
        """
        limit = max_chars * 4
        text = decode_text(self.value[:limit], cut=len(self.value) > limit)
        text = _CONTROL.sub("", _SPACE.sub(" ", text))
        return text.strip()[:max_chars]

    def hex(self, sep: str = ":") -> str:
        """``'00:50:56:9d:99:0a'``: MAC addresses and other binary strings."""
        return self.value.hex(sep) if sep else self.value.hex()


@dataclass(frozen=True, slots=True)
class ObjectIdentifier:
    value: OID

    def __str__(self) -> str:
        return oid_to_str(self.value)


@dataclass(frozen=True, slots=True)
class IpAddress:
    """IpAddress: always 4 octets (IPv4), kept in dotted-quad text."""

    value: str


@dataclass(frozen=True, slots=True)
class Counter32:
    """A wrapping 32-bit counter: only differences between polls mean anything."""

    value: int

    def __int__(self) -> int:
        return self.value


@dataclass(frozen=True, slots=True)
class Gauge32:
    """Gauge32 / Unsigned32: a level (speed, size, temperature), not a counter."""

    value: int

    def __int__(self) -> int:
        return self.value


Unsigned32 = Gauge32


@dataclass(frozen=True, slots=True)
class TimeTicks:
    """Hundredths of a second (sysUpTime)."""

    value: int

    def __int__(self) -> int:
        return self.value

    @property
    def seconds(self) -> float:
        return self.value / 100


@dataclass(frozen=True, slots=True)
class Counter64:
    value: int

    def __int__(self) -> int:
        return self.value


@dataclass(frozen=True, slots=True)
class Opaque:
    """Opaque: BER bytes of another type wrapped in an OCTET STRING, kept undecoded."""

    value: bytes


class _Singleton:
    """A value with no content: Null and the three v2 exceptions."""

    __slots__ = ()
    _name = ""

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name


class _NullType(_Singleton):
    _name = "Null"


class _NoSuchObjectType(_Singleton):
    _name = "NoSuchObject"


class _NoSuchInstanceType(_Singleton):
    _name = "NoSuchInstance"


class _EndOfMibViewType(_Singleton):
    _name = "EndOfMibView"


Null: Final = _NullType()
NoSuchObject: Final = _NoSuchObjectType()
NoSuchInstance: Final = _NoSuchInstanceType()
EndOfMibView: Final = _EndOfMibViewType()

SnmpValue: TypeAlias = (
    Integer
    | OctetString
    | ObjectIdentifier
    | IpAddress
    | Counter32
    | Gauge32
    | TimeTicks
    | Counter64
    | Opaque
    | _NullType
    | _NoSuchObjectType
    | _NoSuchInstanceType
    | _EndOfMibViewType
)


def is_absent(value: SnmpValue) -> bool:
    """True for noSuchObject, noSuchInstance and endOfMibView: the agent has no such value."""
    return value is NoSuchObject or value is NoSuchInstance or value is EndOfMibView


@dataclass(frozen=True, slots=True)
class Varbind:
    oid: OID
    value: SnmpValue

    @property
    def absent(self) -> bool:
        return is_absent(self.value)
