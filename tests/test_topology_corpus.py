"""Port tables, forwarding tables and LLDP neighbours against LibreNMS's own output.

Every recording of the shared corpus (and ``extended/``) whose LibreNMS output has ports, an
FDB or discovery-protocol links is served by one snmpsim on loopback and read through the real
SNMP client as the topology service reads a switch (bench.topology). Floors sit a little under
what was measured on 2026-11-30 (docs/discovery.md, "Where each device plugs in"), so a change
that makes the reading worse on real devices fails here; misses are printed side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.topology import EXTENDED, Measurement, measure, report, scores_of
from simsite.harness.paths import CORPUS, corpus_missing_reason

#: Measured: ifName/label 99.6 %, speed 98.4 %, oper 98.4 %, admin 99.6 %, duplex 88.2 %,
#: VLAN 95.4 %, links 9/9 on every field, FDB 741/741 (MAC, port and VLAN).
FLOORS = {
    "port ifName": 0.99,
    "port ifAlias": 0.99,
    "port ifSpeed": 0.97,
    "port ifOperStatus": 0.97,
    "port ifAdminStatus": 0.99,
    "port ifDuplex": 0.85,
    "port ifVlan": 0.93,
    "link local port": 1.0,
    "link remote name": 1.0,
    "link remote port": 1.0,
    "fdb MAC on port": 1.0,
    "fdb VLAN": 1.0,
}

_missing = corpus_missing_reason(EXTENDED) or corpus_missing_reason(CORPUS)
if _missing:
    print(f"SKIP test_topology_corpus: {_missing}")
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")


@pytest.fixture(scope="module")
def measured() -> Iterator[tuple[Measurement, dict[str, Path]]]:
    yield measure()


def test_tables_agree_with_librenms(measured: tuple[Measurement, dict[str, Path]]) -> None:
    m, files = measured
    print()
    for line in report(m, files):
        print(line)
    scores = scores_of(m, files)
    for name, s in scores.items():
        for miss in s.misses[:5]:
            print(f"  miss {name}: {miss}")
    assert set(FLOORS) <= set(scores), f"nothing compared for {set(FLOORS) - set(scores)}"
    low = {f: f"{scores[f].ratio:.1%}" for f in FLOORS if scores[f].ratio < FLOORS[f]}
    assert not low, f"below the floor {FLOORS}: {low}"
    # Enough of each to mean something.
    assert scores["port ifName"].compared >= 1000
    assert scores["fdb MAC on port"].compared >= 700
    assert scores["link remote name"].compared >= 9
    # Windows Server 2019's recording stops snmpsim at its first value (bench.polling notes it).
    assert set(m.errors) <= {"windows_svr_2019_1809"}, m.errors


def test_neighbours_name_the_local_port_and_the_remote_end(
    measured: tuple[Measurement, dict[str, Path]],
) -> None:
    m, _ = measured
    aruba = m.tables["arubaos-cx_10.10"]
    assert aruba is not None
    gw = next(n for n in aruba.neighbours if n.remote_name == "XXgw01")
    assert (gw.local_port, gw.remote_port, gw.remote_chassis) == (
        "1/1/14",
        "GE0/0/1",
        "20:4c:03:81:00:00",
    )
    assert gw.remote_descr.startswith("Model:Aruba9004")
    dlink = m.tables["dlink_des-3526"]
    assert dlink is not None
    by_port = {n.local_port: n for n in dlink.neighbours}
    # A port id of subtype macAddress is shown as a MAC.
    assert by_port["1/26"].remote_port == "18:0f:76:0c:ba:f9"
    # The procurve's FDB: MAC -> ifIndex with the VLAN named through dot1qVlanFdbId.
    procurve = m.tables["procurve_2520"]
    assert procurve is not None
    entry = next(e for e in procurve.fdb if e.mac == "00:0e:84:e8:e3:8f")
    assert (entry.if_index, entry.vlan) == (3, 95)
    port = procurve.port(3)
    assert port is not None and port.duplex == "full" and port.pvid == 95
