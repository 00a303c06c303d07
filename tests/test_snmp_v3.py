"""SNMPv3 (USM) through pysnmp against net-snmp's snmpd on 127.0.0.1, checked against snmpget.

One snmpd serves a user per protocol pair; each user reads the same static objects through
our client and through net-snmp's tools, and the varbinds must be identical.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from core.schema import Secret
from services.snmp import (
    NoSuchObject,
    OctetString,
    SnmpClient,
    SnmpCredential,
    SnmpTimeout,
    SnmpV3Error,
    Target,
    oid_to_str,
)
from simsite.local_agents import PROBE_COMMUNITY, NetSnmpd, V3User
from tests.snmp_helpers import NETSNMP_FORMAT, netsnmp_line, normalise_netsnmp

AUTH_KEY = "auth-Passphrase-1"
PRIV_KEY = "priv-Passphrase-2"
NET_SNMP_NAMES = {"SHA224": "SHA-224", "SHA256": "SHA-256", "SHA384": "SHA-384"}
NET_SNMP_NAMES |= {"SHA512": "SHA-512", "AES192": "AES-192", "AES256": "AES-256"}
# (user, auth, priv): every auth and every priv protocol at least once.
USERS = [
    ("md5des", "MD5", "DES"),
    ("shaaes", "SHA", "AES"),
    ("sha224", "SHA224", "none"),
    ("sha256aes192", "SHA256", "AES192"),
    ("sha384aes256", "SHA384", "AES256"),
    ("sha512aes", "SHA512", "AES"),
]
SYSTEM = [f"1.3.6.1.2.1.1.{n}.0" for n in (1, 2, 4, 5, 6)] + ["1.3.6.1.2.1.1.99.0"]
SYS_OR_TABLE = "1.3.6.1.2.1.1.9"  # static: the MIB modules snmpd implements
IF_DESCR, IF_TYPE, IF_MTU = (f"1.3.6.1.2.1.2.2.1.{c}" for c in (2, 3, 4))

pytestmark = pytest.mark.skipif(
    shutil.which("snmpd") is None or shutil.which("snmpget") is None,
    reason="net-snmp snmpd/snmp (Debian packages) are not installed",
)


def credential(user: str, auth: str, priv: str) -> SnmpCredential:
    return SnmpCredential(
        name=user,
        version="3",
        user=user,
        auth_protocol=auth,  # type: ignore[arg-type]
        auth_key=Secret(AUTH_KEY),
        priv_protocol=priv,  # type: ignore[arg-type]
        priv_key=Secret(PRIV_KEY if priv != "none" else ""),
    )


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetSnmpd]:
    users = [
        V3User(
            name,
            NET_SNMP_NAMES.get(auth, auth),
            AUTH_KEY,
            "" if priv == "none" else NET_SNMP_NAMES.get(priv, priv),
            PRIV_KEY,
        )
        for name, auth, priv in USERS
    ]
    extra = ["sysName outpost-v3-test", "sysLocation rack 3", "sysContact ops@example.invalid"]
    agent = NetSnmpd(users, tmp_path_factory.mktemp("snmpd"), extra_conf=extra)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    async with SnmpClient() as snmp:
        yield snmp


def target(agent: NetSnmpd, cred: SnmpCredential, timeout_s: float = 2.0) -> Target:
    return Target(agent.host, agent.port, cred, timeout_s=timeout_s, retries=1)


def net_snmp(tool: str, agent: NetSnmpd, user: str, auth: str, priv: str, *args: str) -> list[str]:
    level = "authNoPriv" if priv == "none" else "authPriv"
    argv = [tool, "-v3", "-l", level, "-u", user, "-a", NET_SNMP_NAMES.get(auth, auth)]
    argv += ["-A", AUTH_KEY]
    if priv != "none":
        argv += ["-x", NET_SNMP_NAMES.get(priv, priv), "-X", PRIV_KEY]
    argv += [*NETSNMP_FORMAT, "-t", "2", "-r", "1", f"{agent.host}:{agent.port}", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return normalise_netsnmp(done.stdout.splitlines())


@pytest.mark.parametrize(("user", "auth", "priv"), USERS, ids=[u[0] for u in USERS])
async def test_get_and_walk_match_net_snmp(
    snmpd: NetSnmpd, client: SnmpClient, user: str, auth: str, priv: str
) -> None:
    tgt = target(snmpd, credential(user, auth, priv))
    got = await client.get(tgt, SYSTEM)
    assert [netsnmp_line(vb) for vb in got] == net_snmp("snmpget", snmpd, user, auth, priv, *SYSTEM)
    assert got[3].value == OctetString(b"outpost-v3-test")
    assert got[-1].value is NoSuchObject
    walked = await client.walk(tgt, SYS_OR_TABLE)
    assert len(walked) > 5
    assert [netsnmp_line(vb) for vb in walked] == net_snmp(
        "snmpbulkwalk", snmpd, user, auth, priv, "-Cr25", SYS_OR_TABLE
    )


async def test_walk_columns_over_v3_equals_column_walks(
    snmpd: NetSnmpd, client: SnmpClient
) -> None:
    tgt = target(snmpd, credential("sha256aes192", "SHA256", "AES192"))
    table = await client.walk_columns(tgt, [IF_DESCR, IF_TYPE, IF_MTU])
    descr = await client.walk(tgt, IF_DESCR)
    assert list(table) == [vb.oid[10:] for vb in descr]
    lo = next(
        row
        for row in table.values()
        if row.get((1, 3, 6, 1, 2, 1, 2, 2, 1, 2)) == OctetString(b"lo")
    )
    assert len(lo) == 3


async def test_wrong_auth_key_is_a_v3_error_that_names_no_secret(
    snmpd: NetSnmpd, client: SnmpClient
) -> None:
    wrong = SnmpCredential(
        name="wrong",
        version="3",
        user="shaaes",
        auth_protocol="SHA",
        auth_key=Secret("not-the-auth-key"),
        priv_protocol="AES",
        priv_key=Secret(PRIV_KEY),
    )
    started = time.monotonic()
    with pytest.raises(SnmpV3Error) as caught:
        await client.get(target(snmpd, wrong), SYSTEM[:1])
    assert time.monotonic() - started < 5
    text = f"{caught.value} {caught.value!r} {wrong!r} {target(snmpd, wrong)!r}"
    assert "not-the-auth-key" not in text and PRIV_KEY not in text
    assert "digest" in str(caught.value).lower()


async def test_unknown_user_is_a_v3_error(snmpd: NetSnmpd, client: SnmpClient) -> None:
    stranger = credential("nobody", "SHA", "AES")
    with pytest.raises(SnmpV3Error, match=r"(?i)unknown"):
        await client.get(target(snmpd, stranger), SYSTEM[:1])


async def test_wrong_priv_key_fails_in_bounded_time(snmpd: NetSnmpd, client: SnmpClient) -> None:
    wrong = SnmpCredential(
        name="wrong-priv",
        version="3",
        user="shaaes",
        auth_protocol="SHA",
        auth_key=Secret(AUTH_KEY),
        priv_protocol="AES",
        priv_key=Secret("not-the-priv-key"),
    )
    started = time.monotonic()
    # snmpd cannot decrypt the request and drops it: to us that is a timeout.
    with pytest.raises((SnmpV3Error, SnmpTimeout)):
        await client.get(target(snmpd, wrong, timeout_s=0.5), SYSTEM[:1])
    assert time.monotonic() - started < 5


async def test_v2c_and_v3_share_one_client(snmpd: NetSnmpd, client: SnmpClient) -> None:
    v2c = SnmpCredential(name="probe", community=Secret(PROBE_COMMUNITY))
    v3 = credential("md5des", "MD5", "DES")
    a, b = (
        await client.get(target(snmpd, v2c), SYSTEM[:2]),
        await client.get(target(snmpd, v3), SYSTEM[:2]),
    )
    assert a == b
    assert oid_to_str(a[0].oid) == SYSTEM[0]


async def test_a_whole_v3_walk_from_dot_one(snmpd: NetSnmpd, client: SnmpClient) -> None:
    tgt = target(snmpd, credential("shaaes", "SHA", "AES"))
    walked = await client.walk(tgt, "1", max_varbinds=300)
    assert len(walked) == 300
    assert walked[0].oid[:3] == (1, 3, 6)
    assert all(a.oid < b.oid for a, b in itertools.pairwise(walked))
