"""The client against real recordings served by snmpsim on 127.0.0.1, checked against net-snmp.

Every recording of the shared corpus is walked whole by our client and by net-snmp's
``snmpbulkwalk``; every varbind must be identical (OID, type and value). GETs of a sample of
each recording (and of OIDs it lacks) are compared with ``snmpget`` the same way.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from core.schema import Secret
from services.snmp import (
    NoSuchInstance,
    SnmpClient,
    SnmpCredential,
    SnmpTimeout,
    SnmpWalkTimeout,
    Target,
    Varbind,
    oid_to_str,
)
from simsite.local_agents import Snmpsim, corpus_dir
from tests.snmp_helpers import NETSNMP_FORMAT, netsnmp_line, normalise_netsnmp

CORPUS = corpus_dir()
RECORDINGS = sorted(CORPUS.glob("*.snmprec")) if CORPUS else []
NAMES = [r.stem for r in RECORDINGS]
TOOL_TIMEOUT_S = 120
# One recording (windows_svr_2019_1809) has OIDs snmpsim cannot serve ("10.xx.xx.100"): it
# stops answering there, for net-snmp and for us alike. Both must then agree up to that point.
TIMEOUT_S = 2
IF_DESCR = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
IF_TYPE = (1, 3, 6, 1, 2, 1, 2, 2, 1, 3)
IF_HC_IN_OCTETS = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6)
IF_ALIAS = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18)

pytestmark = [
    pytest.mark.skipif(CORPUS is None, reason="the shared SNMP corpus (../shared) is absent"),
    pytest.mark.skipif(
        shutil.which("snmpbulkwalk") is None, reason="net-snmp tools (Debian 'snmp') missing"
    ),
]


@pytest.fixture(scope="module")
def snmpsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpsim]:
    agent = Snmpsim(RECORDINGS, tmp_path_factory.mktemp("snmpsim"))
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    async with SnmpClient() as snmp:
        yield snmp


def target(agent: Snmpsim, community: str, version: str = "2c") -> Target:
    credential = SnmpCredential(name=community, version=version, community=Secret(community))  # type: ignore[arg-type]
    return Target(agent.host, agent.port, credential, timeout_s=TIMEOUT_S, retries=1)


def net_snmp(tool: str, agent: Snmpsim, community: str, args: list[str]) -> tuple[list[str], bool]:
    """(lines printed by a net-snmp tool, normalised for netsnmp_line(), whether it timed out).

    ``args`` are the tool's options then its OIDs; "-v2c" is the default version.
    """
    version = [] if any(a.startswith("-v") for a in args) else ["-v2c"]
    options = [a for a in args if a.startswith("-")]
    oids = [a for a in args if not a.startswith("-")]
    argv = [tool, *version, "-c", community, "-t", str(TIMEOUT_S), "-r", "1", *NETSNMP_FORMAT]
    argv += [*options, f"{agent.host}:{agent.port}", *oids]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    timed_out = "Timeout" in done.stderr
    assert done.returncode == 0 or timed_out, done.stderr
    return normalise_netsnmp(done.stdout.splitlines()), timed_out


# Whole walks by community, kept for the GET tests (snmpsim takes ~1 s per 5,000 varbinds).
_WALKS: dict[str, tuple[list[Varbind], bool]] = {}


async def walk_all(client: SnmpClient, tgt: Target) -> tuple[list[Varbind], bool]:
    """(varbinds, whether the agent stopped answering half-way) of a whole walk."""
    community = tgt.credential.community.reveal()
    if community not in _WALKS:
        try:
            _WALKS[community] = await client.walk(tgt, "1", max_varbinds=100_000), False
        except SnmpWalkTimeout as exc:
            _WALKS[community] = list(exc.partial), True
    return _WALKS[community]


def assert_same(ours: list[Varbind], theirs: list[str]) -> None:
    mine = [netsnmp_line(vb) for vb in ours]
    # Report the first difference rather than two 5,000-line lists.
    for index, (a, b) in enumerate(zip(mine, theirs, strict=False)):
        assert a == b, f"varbind {index} differs"
    assert len(mine) == len(theirs)


@pytest.mark.parametrize("name", NAMES)
async def test_whole_recording_walk_matches_snmpbulkwalk(
    snmpsim: Snmpsim, client: SnmpClient, name: str
) -> None:
    _WALKS.pop(name, None)  # this test is the one that walks
    ours, we_timed_out = await walk_all(client, target(snmpsim, name))
    theirs, they_timed_out = net_snmp("snmpbulkwalk", snmpsim, name, ["-Cr25", ".1"])
    assert len(ours) > 50
    assert we_timed_out == they_timed_out
    assert_same(ours, theirs)


@pytest.mark.parametrize("name", NAMES)
async def test_get_of_a_sample_matches_snmpget(
    snmpsim: Snmpsim, client: SnmpClient, name: str
) -> None:
    tgt = target(snmpsim, name)
    everything, _ = await walk_all(client, tgt)
    step = max(1, len(everything) // 30)
    oids = [vb.oid for vb in everything[::step]][:30]
    oids += [(*oids[0], 0), (1, 3, 6, 1, 2, 1, 99, 1, 0), (1, 3, 6, 1, 4, 1, 99999, 1)]
    theirs, they_timed_out = net_snmp("snmpget", snmpsim, name, [oid_to_str(o) for o in oids])
    try:
        ours = await client.get(tgt, oids)
    except SnmpTimeout:
        # snmpsim fails on that recording's broken OIDs: it must have failed net-snmp too.
        assert they_timed_out
        return
    assert not they_timed_out
    assert_same(ours, theirs)
    assert [vb.value for vb in ours[:-3]] == [vb.value for vb in everything[::step][:30]]


@pytest.mark.parametrize("name", ["procurve_2520", "ciscosb_cbs250-24p-4x-v3", "dsm"])
async def test_walk_columns_equals_walking_each_column(
    snmpsim: Snmpsim, client: SnmpClient, name: str
) -> None:
    tgt = target(snmpsim, name)
    columns = [IF_DESCR, IF_TYPE, IF_HC_IN_OCTETS, IF_ALIAS]
    table = await client.walk_columns(tgt, columns, max_repetitions=10)
    expected: dict[tuple[int, ...], dict[tuple[int, ...], object]] = {}
    for column in columns:
        for vb in await client.walk(tgt, column):
            expected.setdefault(vb.oid[len(column) :], {})[column] = vb.value
    assert table == dict(sorted(expected.items()))
    assert len(table) >= 5


@pytest.mark.parametrize("name", ["linux", "cyberpower", "brother"])
async def test_v1_walk_matches_snmpwalk_v1(snmpsim: Snmpsim, client: SnmpClient, name: str) -> None:
    tgt = target(snmpsim, name, version="1")
    ours = await client.walk(tgt, "1.3.6.1.2.1")
    theirs, timed_out = net_snmp("snmpwalk", snmpsim, name, ["-v1", ".1.3.6.1.2.1"])
    assert not timed_out
    assert_same(ours, theirs)
    absent = (1, 3, 6, 1, 2, 1, 99, 1, 0)
    got = await client.get(tgt, [ours[0].oid, absent])
    assert got == [ours[0], Varbind(absent, NoSuchInstance)]


async def test_unknown_community_times_out(snmpsim: Snmpsim, client: SnmpClient) -> None:
    tgt = Target(snmpsim.host, snmpsim.port, SnmpCredential(community=Secret("nope")), 0.3, 0)
    with pytest.raises(SnmpTimeout):
        await client.get(tgt, ["1.3.6.1.2.1.1.1.0"])


def test_recordings_are_the_shared_corpus() -> None:
    assert CORPUS is not None and len(RECORDINGS) >= 20
    assert all(isinstance(r, Path) and r.stat().st_size > 0 for r in RECORDINGS)
