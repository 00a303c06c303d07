"""Test helpers for discovery: recordings read in memory, and the corpus oracle (bench.identity).

``SnmprecReader`` answers GET/walk from a recording in memory. It is used only to iterate on
extraction rules quickly and to show which rule reads which OID; the acceptance test
(tests/test_discovery_site.py) reads the same recordings through real snmpsim agents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from bench.identity import (  # one definition of the oracle comparison, shared with the bench
    LIBRENMS_TYPES,
    FieldScore,
    corpus_names,
    field_agrees,
    oracle,
    score,
    score_by_vendor,
    table,
)
from services.snmp.values import (
    Counter32,
    Counter64,
    Gauge32,
    Integer,
    IpAddress,
    NoSuchObject,
    ObjectIdentifier,
    OctetString,
    SnmpValue,
    TimeTicks,
    oid_from_str,
)
from simsite.harness.paths import CORPUS

#: 182 further recordings (with LibreNMS's output) for measuring how the rules generalise.
EXTENDED = CORPUS / "extended"


def _value(tag: str, raw: str) -> SnmpValue:
    if tag == "4x":
        return OctetString(bytes.fromhex(raw))
    if tag == "4":
        return OctetString(raw.encode())
    if tag == "2":
        return Integer(int(raw))
    if tag == "6":
        return ObjectIdentifier(oid_from_str(raw))
    if tag == "64":
        return IpAddress(raw)
    if tag == "65":
        return Counter32(int(raw))
    if tag == "66":
        return Gauge32(int(raw))
    if tag == "67":
        return TimeTicks(int(raw))
    if tag == "70":
        return Counter64(int(raw))
    return OctetString(raw.encode())


def load_snmprec(path: Path) -> dict[str, SnmpValue]:
    out: dict[str, SnmpValue] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("|", 2)
        if len(parts) == 3 and re.fullmatch(r"[0-9.]+", parts[0]):
            try:
                out[parts[0]] = _value(parts[1], parts[2])
            except ValueError:
                continue
    return out


def _key(oid: str) -> tuple[int, ...]:
    return tuple(int(a) for a in oid.split("."))


class SnmprecReader:
    def __init__(self, path: Path) -> None:
        self.values = load_snmprec(path)
        self.order = sorted(self.values, key=_key)
        self.requests = 0

    async def get(self, oids: Sequence[str]) -> dict[str, SnmpValue]:
        self.requests += 1
        return {oid: self.values.get(oid, NoSuchObject) for oid in oids}

    async def walk(self, root: str, max_rows: int) -> list[tuple[str, SnmpValue]]:
        self.requests += 1
        prefix = root + "."
        rows = [(o, self.values[o]) for o in self.order if o.startswith(prefix)]
        return rows[:max_rows]


__all__ = [
    "CORPUS",
    "EXTENDED",
    "LIBRENMS_TYPES",
    "FieldScore",
    "SnmprecReader",
    "corpus_names",
    "field_agrees",
    "load_snmprec",
    "oracle",
    "score",
    "score_by_vendor",
    "table",
]
