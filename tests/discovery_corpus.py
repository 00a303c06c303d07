"""Test helpers for discovery: the snmp-corpus oracle and the per-field agreement table.

``SnmprecReader`` answers GET/walk from a recording in memory. It is used only to iterate on
extraction rules quickly and to show which rule reads which OID; the acceptance test
(tests/test_discovery_site.py) reads the same recordings through real snmpsim agents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

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

# Our kinds that agree with each LibreNMS device type. LibreNMS "appliance" is its catch-all
# for dedicated boxes (cameras, management controllers): any non-infrastructure kind agrees.
LIBRENMS_TYPES: dict[str, frozenset[str]] = {
    "network": frozenset({"router", "switch"}),
    "firewall": frozenset({"router"}),
    "wireless": frozenset({"ap"}),
    "storage": frozenset({"nas"}),
    "printer": frozenset({"printer"}),
    "power": frozenset({"ups"}),
    # LibreNMS types every Windows machine "server", XP and 7 desktops included.
    "server": frozenset({"server", "workstation"}),
    "workstation": frozenset({"workstation"}),
    "appliance": frozenset({"camera", "server", "iot", "media", "phone"}),
    "video": frozenset({"camera"}),
    # Projectors and video bars (LibreNMS "collaboration"): room equipment, not infrastructure.
    "collaboration": frozenset({"media", "camera", "phone", "iot"}),
}


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


def oracle(name: str, corpus: Path = CORPUS) -> dict[str, str | None]:
    """LibreNMS's discovered device of recording ``name`` ({} when its output has none)."""
    data = json.loads((corpus / f"{name}.expected.json").read_text())
    devices = data.get("os", {}).get("discovery", {}).get("devices", [])
    dev: dict[str, str | None] = devices[0] if devices else {}
    return dev


def corpus_names(corpus: Path = CORPUS) -> list[str]:
    return sorted(p.name[: -len(".snmprec")] for p in corpus.glob("*.snmprec"))


def _norm(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip().lower()


def _mac(value: str) -> int | None:
    parts = value.split(":")
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-f]{1,2}", p) for p in parts):
        return None
    return int("".join(p.zfill(2) for p in parts), 16)


def field_agrees(ours: str, theirs: str) -> tuple[bool, bool]:
    """(exact, agree): equal after normalising case and blanks; or one contains the other
    (ours is often the shorter form: "CBS250-24P-4X" for "CBS250-24P-4X V03"), the shorter
    being at least 3 characters so that a stray digit never counts."""
    a, b = _norm(ours), _norm(theirs)
    if not a:
        return False, False
    if a == b or (_mac(a) is not None and _mac(a) == _mac(b)):
        # LibreNMS writes MACs without leading zeros ("b8:a4:4f:2:fe:1"): the same address.
        return True, True
    short, long_ = sorted((a, b), key=len)
    return False, len(short) >= 3 and short in long_


@dataclass
class FieldScore:
    compared: int = 0
    exact: int = 0
    agree: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.agree / self.compared if self.compared else 1.0


def score(results: dict[str, dict[str, str]], corpus: Path = CORPUS) -> dict[str, FieldScore]:
    """``results``: corpus name -> {"type": our kind, "hardware", "serial", "version"}."""
    scores = {f: FieldScore() for f in ("type", "hardware", "serial", "version")}
    for name, ours in results.items():
        theirs = oracle(name, corpus)
        for fname, s in scores.items():
            expected = theirs.get(fname)
            if not expected:
                continue
            s.compared += 1
            if fname == "type":
                ok = ours.get("type", "") in LIBRENMS_TYPES.get(expected, frozenset())
                exact = agree = ok
            else:
                exact, agree = field_agrees(ours.get(fname, ""), expected)
            s.exact += exact
            s.agree += agree
            if not agree:
                s.misses.append(f"{name}: ours {ours.get(fname, '')!r} vs {expected!r}")
    return scores


def table(scores: dict[str, FieldScore]) -> str:
    lines = ["| field | compared | exact | agree | agreement |", "| --- | --- | --- | --- | --- |"]
    for fname, s in scores.items():
        lines.append(f"| {fname} | {s.compared} | {s.exact} | {s.agree} | {s.ratio:.0%} |")
    return "\n".join(lines)
