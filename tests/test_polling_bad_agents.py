"""Misbehaving SNMP agents cost the poller a bounded time and leave a clear per-device error."""

from __future__ import annotations

import time

import pytest

from core.settings.polling import PollingSettings
from services.polling.inventory import PollTarget
from services.polling.poller import DevicePoller
from services.polling.profiles import (
    HR_ST_DESCR,
    HR_ST_SIZE,
    HR_ST_TYPE,
    HR_ST_UNITS,
    HR_ST_USED,
    IF_DESCR,
    IF_IN_OCTETS,
    IF_OPER,
    IF_TYPE,
    SYS_UPTIME,
)
from services.polling.results import PollResult
from services.snmp import (
    Counter32,
    Integer,
    IpAddress,
    ObjectIdentifier,
    OctetString,
    SnmpClient,
    SnmpCredential,
    TimeTicks,
)
from services.snmp.values import OID, SnmpValue
from tests.polling_agents import Mode, TableAgent

# SNMP alone decides here: no TCP last-resort probe (127.0.0.1 would answer it with RST).
SETTINGS = PollingSettings(
    icmp=False, snmp_timeout_s=0.3, snmp_retries=1, snmp_budget_s=3.0, probe_tcp_ports=()
)
# One timeout with its retry, plus scheduling slack: what a dead agent may cost at most.
BOUND_S = SETTINGS.snmp_budget_s + 1.0

GOOD: dict[OID, SnmpValue] = {
    SYS_UPTIME: TimeTicks(12345),
    (*IF_DESCR, 1): OctetString(b"eth0"),
    (*IF_TYPE, 1): Integer(6),
    (*IF_OPER, 1): Integer(1),
    (*IF_IN_OCTETS, 1): Counter32(10),
    (*HR_ST_TYPE, 1): ObjectIdentifier((1, 3, 6, 1, 2, 1, 25, 2, 1, 4)),
    (*HR_ST_DESCR, 1): OctetString(b"/data"),
    (*HR_ST_UNITS, 1): Integer(4096),
    (*HR_ST_SIZE, 1): Integer(1000),
    (*HR_ST_USED, 1): Integer(500),
}
WRONG_TYPES: dict[OID, SnmpValue] = {
    SYS_UPTIME: OctetString(b"yesterday"),
    (*IF_DESCR, 1): Integer(7),
    (*IF_TYPE, 1): OctetString(b"ethernet"),
    (*IF_OPER, 1): OctetString(b"up"),
    (*IF_IN_OCTETS, 1): OctetString(b"many"),
    (*HR_ST_TYPE, 1): ObjectIdentifier((1, 3, 6, 1, 2, 1, 25, 2, 1, 4)),
    (*HR_ST_DESCR, 1): OctetString(b"/data"),
    (*HR_ST_UNITS, 1): IpAddress("1.2.3.4"),
    (*HR_ST_SIZE, 1): OctetString(b"\xff\xfe"),
    (*HR_ST_USED, 1): Integer(500),
}


async def _poll(values: dict[OID, SnmpValue], mode: Mode) -> tuple[PollResult, float]:
    async with TableAgent(values, mode) as agent, SnmpClient() as client:
        credential = SnmpCredential()
        poller = DevicePoller(SETTINGS, None, client, {credential.name: credential}, agent.port)
        target = PollTarget(1, "127.0.0.1", "nas", "nas", credential.name, "", ())
        state = poller.state_for(target, None)
        started = time.monotonic()
        result = await poller.poll(target, state, time.time())
        return result, time.monotonic() - started


def _snmp_error(result: PollResult) -> str:
    (check,) = [c for c in result.checks if c.check == "snmp"]
    return check.error


async def test_a_good_agent_gives_readings_and_no_error() -> None:
    result, _ = await _poll(GOOD, "ok")
    assert result.reachable is True
    assert _snmp_error(result) == ""
    assert result.value("storage.used_pct", "/data") == 50.0


@pytest.mark.parametrize(
    ("mode", "values", "reachable", "words"),
    [
        ("silent", GOOD, False, "no answer from 127.0.0.1"),
        # Undecodable, but an answer: something on the host is there (liveness), no data.
        ("garbage", GOOD, True, "undecodable"),
        ("truncated", GOOD, True, "undecodable"),
        ("backwards", GOOD, True, "went backwards"),
        ("nosuchobject", GOOD, True, "sysUpTime missing"),
        ("ok", {}, True, "sysUpTime missing"),  # an empty MIB view: endOfMibView at once
        ("ok", WRONG_TYPES, True, "sysUpTime missing or not TimeTicks"),
    ],
)
async def test_bad_agent_is_bounded_and_explained(
    mode: Mode, values: dict[OID, SnmpValue], reachable: bool, words: str
) -> None:
    result, elapsed = await _poll(values, mode)
    print(f"{mode}: {elapsed:.2f} s, error: {_snmp_error(result)!r}")
    assert elapsed < BOUND_S
    assert result.reachable is reachable
    assert words in _snmp_error(result)
    if mode in ("silent", "garbage", "truncated"):
        (snmp,) = [c for c in result.checks if c.check == "snmp"]
        assert snmp.ok is False  # no data: the check fails whatever liveness says
    # Whatever came back, no reading is a made-up number from a wrong type.
    for r in result.readings:
        assert r.value is None or r.value == r.value  # never NaN
    if values is WRONG_TYPES:
        assert result.value("storage.used_pct", "/data") is None
        assert all(r.metric != "if.in_bps" for r in result.readings)
