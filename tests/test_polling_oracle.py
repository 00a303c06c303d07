"""What the poller reads from every corpus recording, against what LibreNMS read (the oracle).

Served by snmpsim on 127.0.0.1, fetched by the real client through the real profiles. Prints
the agreement per metric family (the table in docs/polling.md) and fails below 95 %.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.snmp import SnmpClient
from tests.polling_support import CORPUS, CORPUS_KINDS, Tally, compare, corpus_agent, poll_recording

MIN_AGREEMENT_PCT = 95.0


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/snmp-corpus is not present")
async def test_poller_agrees_with_the_oracle(tmp_path: Path) -> None:
    tallies: dict[str, Tally] = {}
    with corpus_agent(tmp_path) as port:
        async with SnmpClient() as client:
            for name in CORPUS_KINDS:
                readings, _ = await poll_recording(client, port, name)
                assert readings, f"{name}: no readings at all"
                compare(name, readings, tallies)
    print("\n| metric family | agree | compared | agreement |")
    print("| --- | ---: | ---: | ---: |")
    for family, t in sorted(tallies.items()):
        print(f"| {family} | {t.agree} | {t.total} | {t.pct:.1f} % |")
    for family, t in tallies.items():
        print(f"{family} misses: {t.misses[:10]}") if t.misses else None
    compared = [f for f in tallies if "skipped" not in f]
    assert {
        "storage size",
        "storage used",
        "supply level",
        "supply capacity",
        "port names",
        "port speeds",
        "ups charge",
        "ups runtime",
    } <= set(compared)
    low = {f: round(t.pct, 1) for f, t in tallies.items() if t.pct < MIN_AGREEMENT_PCT}
    assert not low, f"agreement below {MIN_AGREEMENT_PCT} %: {low}"
