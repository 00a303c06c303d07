"""ICMP echo without shelling out: wire format, statistics, and real pings on loopback."""

from __future__ import annotations

import struct

import pytest

from services.polling.icmp import (
    ICMP_ECHO_REQUEST,
    IcmpUnavailable,
    Pinger,
    PingStats,
    checksum,
    echo_request,
)


def test_echo_request_checksums_to_zero() -> None:
    packet = echo_request(0x1234, 7)
    kind, code, _, ident, seq = struct.unpack("!BBHHH", packet[:8])
    assert (kind, code, ident, seq) == (ICMP_ECHO_REQUEST, 0, 0x1234, 7)
    assert checksum(packet) == 0  # a correct Internet checksum sums to zero


def test_stats_loss_latency_jitter() -> None:
    stats = PingStats("198.18.0.9", 4, 3, (1.0, 3.0, 2.0))
    assert stats.loss_pct == 25.0
    assert stats.rtt_ms == 2.0
    assert stats.jitter_ms == 1.5  # |3-1| and |2-3|, averaged
    silent = PingStats("198.18.0.10", 3, 0, ())
    assert silent.loss_pct == 100.0 and silent.rtt_ms is None and silent.jitter_ms is None


async def test_ping_loopback() -> None:
    pinger = Pinger()
    try:
        pinger.open()
    except IcmpUnavailable as exc:
        pytest.skip(f"no ICMP socket here: {exc}")
    try:
        got = await pinger.ping_many(["127.0.0.1", "127.0.0.2"], 3, 0.01, 1.0)
    finally:
        pinger.close()
    for address in ("127.0.0.1", "127.0.0.2"):
        stats = got[address]
        assert stats.received == 3, stats
        assert stats.rtt_ms is not None and 0 <= stats.rtt_ms < 100
