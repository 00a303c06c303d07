"""Counter rates: 32-bit wraps, device reboots and resets never give negative or absurd rates."""

from __future__ import annotations

from services.polling.access import ClientAccess
from services.polling.profiles import (
    IF_ADMIN,
    IF_DESCR,
    IF_IN_OCTETS,
    IF_OPER,
    IF_OUT_OCTETS,
    IF_SPEED,
    IF_TYPE,
    SYS_UPTIME,
    InterfacesProfile,
    PollContext,
    Reading,
    SystemProfile,
)
from services.polling.rates import WRAP_32, CounterReading, RateTracker, counter_rate
from services.snmp import (
    Counter32,
    Gauge32,
    Integer,
    OctetString,
    SnmpClient,
    SnmpCredential,
    Target,
    TimeTicks,
)
from services.snmp.values import OID, SnmpValue
from tests.polling_agents import TableAgent


def test_32bit_wrap_gives_the_true_rate() -> None:
    prev = CounterReading(WRAP_32 - 1000, 32, 0.0, 100.0)
    cur = CounterReading(500, 32, 10.0, 110.0)
    assert counter_rate(prev, cur) == 150.0


def test_reboot_gives_no_rate() -> None:
    prev = CounterReading(3_000_000_000, 32, 0.0, 5000.0)
    cur = CounterReading(1_000, 32, 60.0, 30.0)  # sysUpTime went back: counters restarted
    assert counter_rate(prev, cur) is None


def test_64bit_going_backwards_is_a_reset_not_a_wrap() -> None:
    assert counter_rate(CounterReading(10**12, 64, 0.0), CounterReading(5, 64, 10.0)) is None


def test_reset_that_looks_like_a_wrap_is_refused_when_the_rate_is_impossible() -> None:
    # 100 Mbit/s link = 12.5 MB/s: a "wrap" from 1e9 to 100 in 10 s would be 330 MB/s.
    prev, cur = CounterReading(1_000_000_000, 32, 0.0), CounterReading(100, 32, 10.0)
    assert counter_rate(prev, cur, max_per_s=12.5e6 * 4) is None


def test_readings_too_close_or_switching_width_give_no_rate() -> None:
    assert counter_rate(CounterReading(1, 32, 0.0), CounterReading(2, 32, 0.1)) is None
    assert counter_rate(CounterReading(1, 32, 0.0), CounterReading(2, 64, 10.0)) is None


def test_tracker_first_reading_has_no_rate_then_rates_follow() -> None:
    tracker = RateTracker()
    assert tracker.update(("x",), CounterReading(0, 64, 0.0)) is None
    assert tracker.update(("x",), CounterReading(1000, 64, 10.0)) == 100.0


IF1: OID = (1,)


def _agent_values(in_octets: int, out_octets: int, uptime_ticks: int) -> dict[OID, SnmpValue]:
    return {
        SYS_UPTIME: TimeTicks(uptime_ticks),
        IF_DESCR + IF1: OctetString(b"eth0"),
        IF_TYPE + IF1: Integer(6),
        IF_SPEED + IF1: Gauge32(100_000_000),
        IF_ADMIN + IF1: Integer(1),
        IF_OPER + IF1: Integer(1),
        IF_IN_OCTETS + IF1: Counter32(in_octets),
        IF_OUT_OCTETS + IF1: Counter32(out_octets),
    }


async def _poll(
    access: ClientAccess, profiles: list[SystemProfile | InterfacesProfile], ctx: PollContext
) -> list[Reading]:
    out: list[Reading] = []
    for p in profiles:
        out.extend(await p.poll(access, ctx))
    return out


async def test_interface_rates_through_a_wrap_and_a_reboot_against_an_agent() -> None:
    """The real client against a real (tiny) agent: a 32-bit counter wraps, then the device
    reboots with its counters back near zero; every rate is non-negative and plausible."""
    tracker = RateTracker()
    profiles: list[SystemProfile | InterfacesProfile] = [SystemProfile(), InterfacesProfile()]
    near_top = WRAP_32 - 5_000_000
    steps = [
        # (seconds, in octets, out octets, sysUpTime ticks)
        (0.0, near_top, 1_000, 100_000),
        (10.0, 7_500_000, 2_000, 101_000),  # in wrapped: 12.5 MB in 10 s = 10 Mbit/s
        (20.0, 20_000_000, 3_000, 102_000),
        (30.0, 400, 50, 500),  # rebooted: uptime and counters restarted
        (40.0, 1_250_400, 1_050, 1_500),
    ]
    rates: list[tuple[float, dict[str, float | None]]] = []
    async with TableAgent(_agent_values(near_top, 1_000, 100_000)) as agent:
        target = Target("127.0.0.1", agent.port, SnmpCredential(), timeout_s=1.0, retries=0)
        async with SnmpClient() as client:
            for at_s, in_o, out_o, ticks in steps:
                agent.values.update(_agent_values(in_o, out_o, ticks))
                ctx = PollContext(at_s=at_s, rates=tracker)
                readings = await _poll(ClientAccess(client, target), profiles, ctx)
                rates.append(
                    (
                        at_s,
                        {
                            r.metric: r.value
                            for r in readings
                            if r.metric in ("if.in_bps", "if.out_bps")
                        },
                    )
                )
    by_time = dict(rates)
    assert by_time[0.0] == {}  # first poll: nothing to difference against
    assert by_time[10.0]["if.in_bps"] == 12_500_000 * 8 / 10
    assert by_time[20.0]["if.in_bps"] == 12_500_000 * 8 / 10
    assert by_time[30.0] == {}  # the reboot poll gives no rate rather than a wrong one
    assert by_time[40.0]["if.in_bps"] == 1_250_000 * 8 / 10
    for _, values in rates:
        for value in values.values():
            assert value is not None and 0 <= value <= 4 * 100_000_000
