"""Making strings that came off the network safe to keep: bounded, valid text, no controls.

Everything a device says about itself (mDNS instance names, TXT records, SNMP sysDescr, DHCP
host names) is hostile input until proven otherwise: it may be megabytes long, invalid UTF-8,
full of control characters that forge log lines or terminal escapes, or markup meant for the
status page. This module is the one place that turns such input into text that can be stored,
logged and shown. Markup is *kept* as text here (the page escapes on output); what goes is
whatever text cannot represent safely.

Shared helper: other components (polling, web) use it for their own hostile strings.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Final

from services.snmp.values import decode_text

#: Default bound for one network string. sysDescr of real gear stays well under 512 chars.
MAX_TEXT_CHARS: Final = 512
#: Bound for names (host names, instance names): DNS labels are 63 bytes, names 255.
MAX_NAME_CHARS: Final = 255
#: Marker appended when a string was cut, so a reader knows it is not the whole value.
ELLIPSIS: Final = "…"
#: Bytes looked at before decoding: 4 bytes per character is the UTF-8 maximum.
_BYTES_PER_CHAR: Final = 4

_WHITESPACE = re.compile(r"[\t\n\r\v\f\u2028\u2029]+")
_SPACES = re.compile(r" {2,}")


def _drop_char(ch: str) -> bool:
    """Control, format (bidi overrides, zero-width), surrogate, private-use, unassigned."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn")


def clean_text(value: str | bytes | None, max_chars: int = MAX_TEXT_CHARS) -> str:
    """``value`` as safe text: valid Unicode, no control/format characters, at most ``max_chars``.

    Bytes are decoded as UTF-8 where valid, else as Windows-1252 (legacy agents send the code
    page the string was typed in; services.snmp.values.decode_text); tabs and line breaks
    become single spaces; runs of spaces collapse; NULs and other controls are dropped;
    surrounding blanks are stripped. A cut string ends with "…" (counted in ``max_chars``).
    Never raises for any input of these types.
    """
    if value is None or max_chars <= 0:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        limit = (max_chars + 1) * _BYTES_PER_CHAR
        raw = bytes(value[:limit])
        text = decode_text(raw, cut=len(value) > limit)
    else:
        # Lone surrogates (from os.fsdecode or a careless decoder) are not valid text either.
        text = value[: (max_chars + 1) * _BYTES_PER_CHAR]
        text = text.encode("utf-8", "replace").decode("utf-8", "replace")
    text = _WHITESPACE.sub(" ", text)
    text = "".join(ch for ch in text if not _drop_char(ch))
    text = _SPACES.sub(" ", text).strip()
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + ELLIPSIS
    return text


def clean_name(value: str | bytes | None) -> str:
    """A host, instance or device name: :func:`clean_text` bounded to a DNS name's length."""
    return clean_text(value, MAX_NAME_CHARS)


def clean_mapping(
    items: Mapping[str | bytes, str | bytes | None],
    *,
    max_items: int = 64,
    max_key_chars: int = 64,
    max_value_chars: int = MAX_TEXT_CHARS,
) -> dict[str, str]:
    """A dict of hostile key/value pairs (TXT records) made safe: bounded count and lengths.

    Keys are case-folded (DNS-SD keys are case-insensitive, RFC 6763 section 6.4); an empty key
    is dropped; the first occurrence of a key wins, as the RFC says.
    """
    out: dict[str, str] = {}
    for raw_key, raw_value in items.items():
        if len(out) >= max_items:
            break
        key = clean_text(raw_key, max_key_chars).lower()
        if not key or key in out:
            continue
        out[key] = clean_text(raw_value, max_value_chars)
    return out
