"""The wire protocol between an appliance and home (version 1), shared by both ends.

Documented for other implementers in docs/uplink.md. Bodies are JSON, gzip-compressed
(``Content-Encoding: gzip``), and every request is signed (provisioning/identity.py). Answers are
a JSON envelope that also has room for what home wants the appliance to do (``commands``,
``config``), so claiming and remote configuration can ride on the same exchange later.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 1
INGEST_PATH = "/api/v1/ingest"
HEARTBEAT_PATH = "/api/v1/heartbeat"
FLEET_PATH = "/api/v1/fleet"
# Home refuses bodies larger than these: a bound on memory for a hostile or broken client.
MAX_WIRE_BYTES = 8 * 1024 * 1024
MAX_JSON_BYTES = 64 * 1024 * 1024
GZIP_LEVEL = 6  # level 6: ~95% of level 9's ratio at a third of the CPU on a Pi


class ProtocolError(Exception):
    """A body or answer does not follow the protocol."""


def encode(doc: dict[str, Any]) -> bytes:
    return gzip.compress(
        json.dumps(doc, separators=(",", ":")).encode("utf-8"), compresslevel=GZIP_LEVEL
    )


def decode(data: bytes, encoding: str = "gzip", limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """Decode a (possibly gzip) JSON object, refusing decompression bombs over ``limit`` bytes."""
    raw = data
    if encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(data, limit + 1)
        except zlib.error as exc:
            raise ProtocolError(f"body is not valid gzip: {exc}") from None
        if len(raw) > limit or inflater.unconsumed_tail:
            raise ProtocolError(f"body inflates beyond {limit} bytes")
    elif encoding not in ("", "identity"):
        raise ProtocolError(f"unsupported Content-Encoding {encoding!r}; use gzip")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ProtocolError("body must be a JSON object")
    return doc


def lanes_map(value: Any) -> dict[int, int]:
    """``{"0": 12, "1": 40}`` -> ``{0: 12, 1: 40}``; refuses anything else."""
    if not isinstance(value, dict):
        raise ProtocolError("'acked' must be an object of lane -> seq")
    out: dict[int, int] = {}
    for key, seq in value.items():
        if not (isinstance(key, str) and key.isdigit()) or type(seq) is not int or seq < 0:
            raise ProtocolError(f"bad acked entry {key!r}: {seq!r}")
        out[int(key)] = seq
    return out


@dataclass(frozen=True)
class Answer:
    """Home's answer to an ingest or heartbeat request."""

    acked: dict[int, int]
    stream: str
    slow_down_s: float = 0.0  # home asks the appliance to pause sending this long
    commands: list[Any] = field(default_factory=list)  # reserved for claiming/remote config


def parse_answer(doc: dict[str, Any]) -> Answer:
    if doc.get("ok") is not True:
        raise ProtocolError("answer lacks 'ok': true")
    slow = doc.get("slow_down_s", 0)
    if not isinstance(slow, int | float) or isinstance(slow, bool) or slow < 0:
        raise ProtocolError(f"bad slow_down_s {slow!r}")
    commands = doc.get("commands", [])
    if not isinstance(commands, list):
        raise ProtocolError("'commands' must be a list")
    return Answer(
        acked=lanes_map(doc.get("acked", {})),
        stream=str(doc.get("stream", "")),
        slow_down_s=float(slow),
        commands=commands,
    )


def parse_retry_after(value: str | None, default_s: float) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds form; dates use the default)."""
    if not value:
        return default_s
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return default_s
