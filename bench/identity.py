"""Identity benchmark: how well SNMP identity agrees with LibreNMS on recordings of real devices.

    python -m bench identity          # or: python -m bench.identity [--corpus DIR]

Serves every recording of the extended corpus (``../shared/snmp-corpus/extended``, 182 devices
with LibreNMS's own output) from ONE snmpsim process on loopback (the community picks the
recording), reads each device's identity through the real SNMP client exactly as discovery
does (services.discovery.snmp_identity.read_identity, classified by
services.discovery.classify with the SNMP evidence alone), and compares model, serial,
version and kind with LibreNMS's ``os.discovery.devices[0]``: per field, per vendor
(LibreNMS's icon names the maker), and every disagreement side by side.

Comparison (the oracle has its own naming, see the corpus README): "exact" is equal after
normalising case and blanks (and MACs written without leading zeros); "agree" is exact, or one
string contains the other, the shorter being at least 3 characters. The kind agrees when it
is one of ours that correspond to LibreNMS's type (``LIBRENMS_TYPES``). A field is counted
only where the oracle has a value.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from services.discovery.classify import classify, gather
from services.discovery.fingerprint import ClientReader
from services.discovery.snmp_identity import SnmpIdentity, read_identity
from services.snmp import SnmpClient, SnmpError
from simsite.harness.paths import CORPUS
from simsite.harness.snmp_corpus import corpus_agent, corpus_target

EXTENDED: Final = CORPUS / "extended"
FIELDS: Final = ("type", "hardware", "serial", "version")
#: Devices read at once: snmpsim is one process; more only queue up in it.
CONCURRENCY: Final = 16
#: Per-request timeout: a 15 MB snmpsim answers in milliseconds, but CI cores are shared.
TIMEOUT_S: Final = 5.0

# Our kinds that agree with each LibreNMS device type. LibreNMS "appliance" is its catch-all
# for dedicated boxes (cameras, management controllers): any non-infrastructure kind agrees.
LIBRENMS_TYPES: Final[dict[str, frozenset[str]]] = {
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


def oracle(name: str, corpus: Path = CORPUS) -> dict[str, str | None]:
    """LibreNMS's discovered device of recording ``name`` ({} when its output has none)."""
    data = json.loads((corpus / f"{name}.expected.json").read_text())
    devices = data.get("os", {}).get("discovery", {}).get("devices", [])
    dev: dict[str, str | None] = devices[0] if devices else {}
    return dev


def corpus_names(corpus: Path = CORPUS) -> list[str]:
    """Recordings that have LibreNMS output with a discovered device."""
    names = sorted(p.name[: -len(".snmprec")] for p in corpus.glob("*.snmprec"))
    return [n for n in names if (corpus / f"{n}.expected.json").exists() and oracle(n, corpus)]


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


def score(results: Mapping[str, Mapping[str, str]], corpus: Path = CORPUS) -> dict[str, FieldScore]:
    """``results``: recording -> {"type": our kind, "hardware", "serial", "version"}."""
    return score_by_vendor(results, corpus)[""]


def score_by_vendor(
    results: Mapping[str, Mapping[str, str]], corpus: Path = CORPUS
) -> dict[str, dict[str, FieldScore]]:
    """Scores overall (key "") and per maker (LibreNMS's icon name: "ubiquiti", "hpe")."""
    scores: dict[str, dict[str, FieldScore]] = defaultdict(
        lambda: {f: FieldScore() for f in FIELDS}
    )
    for name, ours in results.items():
        theirs = oracle(name, corpus)
        vendor = str(theirs.get("icon") or "?").rsplit(".", 1)[0]
        for fname in FIELDS:
            expected = theirs.get(fname)
            if not expected:
                continue
            if fname == "type":
                exact = agree = ours.get("type", "") in LIBRENMS_TYPES.get(expected, frozenset())
            else:
                exact, agree = field_agrees(ours.get(fname, ""), expected)
            for key in ("", vendor):
                s = scores[key][fname]
                s.compared += 1
                s.exact += exact
                s.agree += agree
                if not agree and key == "":
                    s.misses.append(f"{name}: ours {ours.get(fname, '')!r} vs {expected!r}")
    scores[""]
    return dict(scores)


def table(scores: Mapping[str, FieldScore]) -> str:
    lines = ["| field | compared | exact | agree | agreement |", "| --- | --- | --- | --- | --- |"]
    for fname, s in scores.items():
        lines.append(f"| {fname} | {s.compared} | {s.exact} | {s.agree} | {s.ratio:.0%} |")
    return "\n".join(lines)


def vendor_table(by_vendor: Mapping[str, Mapping[str, FieldScore]]) -> str:
    """One row a maker: agree/compared per field ("-" where the oracle has nothing)."""
    lines = ["| vendor | devices | type | hardware | serial | version |", "| --- " * 6 + "|"]
    for vendor in sorted(v for v in by_vendor if v):
        row = by_vendor[vendor]
        cells = [f"{s.agree}/{s.compared}" if s.compared else "-" for s in (row[f] for f in FIELDS)]
        lines.append(f"| {vendor} | {row['type'].compared} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---- measuring through real agents ----


@dataclass(frozen=True)
class Measurement:
    """What one run read: our fields per recording, the identities, and how long it took."""

    results: dict[str, dict[str, str]]
    identities: dict[str, SnmpIdentity | None]
    read_s: float  # identity reads of every device, snmpsim already up
    start_s: float  # snmpsim start (indexes every recording on first start)


def _fields(identity: SnmpIdentity | None) -> dict[str, str]:
    if identity is None:
        return {"type": "", "hardware": "", "serial": "", "version": ""}
    evidence = gather(snmp=identity, mdns=(), vendor="", local_mac=False, is_gateway=False)
    kind, _weight = classify(evidence)
    return {
        "type": kind,
        "hardware": identity.model,
        "serial": identity.serial,
        "version": identity.version,
    }


async def _read_all(port: int, names: list[str]) -> dict[str, SnmpIdentity | None]:
    limit = asyncio.Semaphore(CONCURRENCY)
    out: dict[str, SnmpIdentity | None] = {}
    async with SnmpClient() as client:

        async def one(name: str) -> None:
            async with limit:
                reader = ClientReader(client, corpus_target(port, name, TIMEOUT_S))
                try:
                    out[name] = await read_identity(reader)
                except SnmpError:
                    out[name] = None

        await asyncio.gather(*(one(name) for name in names))
    return out


def measure(corpus: Path = EXTENDED, workdir: Path | None = None) -> Measurement:
    """Serve ``corpus`` with one snmpsim, read every device, classify. Raises
    FileNotFoundError when the corpus is absent, RuntimeError when snmpsim does not start."""
    names = corpus_names(corpus)
    with tempfile.TemporaryDirectory(prefix="outpost-identity-") as tmp:
        began = time.monotonic()
        with corpus_agent(workdir or Path(tmp), names, corpus) as port:
            started = time.monotonic()
            identities = asyncio.run(_read_all(port, names))
            done = time.monotonic()
    results = {name: _fields(identities[name]) for name in names}
    return Measurement(results, identities, done - started, started - began)


def report(m: Measurement, corpus: Path = EXTENDED) -> Iterator[str]:
    by_vendor = score_by_vendor(m.results, corpus)
    answered = sum(1 for i in m.identities.values() if i is not None)
    yield (
        f"{len(m.results)} recordings, {answered} answered; snmpsim start {m.start_s:.1f} s, "
        f"identities read in {m.read_s:.1f} s"
    )
    yield from table(by_vendor[""]).splitlines()
    yield ""
    yield from vendor_table(by_vendor).splitlines()
    yield ""
    yield "disagreements (ours vs LibreNMS):"
    for fname, s in by_vendor[""].items():
        for miss in s.misses:
            yield f"  {fname}  {miss}"


def run() -> Iterator[str]:
    """For ``python -m bench``."""
    yield from report(measure())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=EXTENDED)
    args = parser.parse_args(argv)
    for line in report(measure(args.corpus), args.corpus):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
