"""Small pieces of the uplink: back-off, Retry-After, answers, record checks, outbox ack rules."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from core.clock import FixedClock
from core.wire.protocol import ProtocolError, decode, encode, parse_answer, parse_retry_after
from home.db import check_record
from services.store import Measurement, Store, insert_measurements
from services.uplink import outbox
from services.uplink.service import OutboxForwarder, full_jitter


def test_full_jitter_is_capped_and_grows() -> None:
    rng = random.Random(1)
    first = [full_jitter(1, 1.0, 300.0, rng) for _ in range(200)]
    late = [full_jitter(30, 1.0, 300.0, rng) for _ in range(200)]
    assert all(0.0 <= d <= 1.0 for d in first)
    assert all(0.0 <= d <= 300.0 for d in late) and max(late) > 200.0


def test_retry_after_and_answers() -> None:
    assert parse_retry_after("7", 1.0) == 7.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", 3.0) == 3.0
    assert parse_retry_after(None, 2.0) == 2.0
    answer = parse_answer({"ok": True, "acked": {"0": 3, "1": 9}, "slow_down_s": 2})
    assert answer.acked == {0: 3, 1: 9} and answer.slow_down_s == 2.0
    for bad in ({"ok": False}, {"ok": True, "acked": {"0": -1}}, {"ok": True, "acked": []}):
        with pytest.raises(ProtocolError):
            parse_answer(bad)


def test_decode_refuses_bombs_and_non_objects() -> None:
    assert decode(encode({"a": 1})) == {"a": 1}
    with pytest.raises(ProtocolError, match="inflates"):
        decode(encode({"x": "0" * 100_000}), limit=10_000)
    with pytest.raises(ProtocolError):
        decode(b"not gzip")
    with pytest.raises(ProtocolError, match="object"):
        decode(encode([1, 2]))  # type: ignore[arg-type]


def test_record_checks() -> None:
    good = {"kind": "measurement", "ts": 1.0, "body": {"value": 1.5}}
    assert check_record(good) is None
    assert "finite" in (check_record({**good, "body": {"value": float("nan")}}) or "")
    assert check_record({**good, "kind": "Bad Kind"}) is not None
    assert check_record({**good, "body": {"value": "x"}}) is not None
    assert check_record({**good, "body": {"s": "x" * 5000}}) is not None


async def test_ack_is_capped_to_what_was_sent_and_never_goes_back(tmp_path: Path) -> None:
    store = Store(
        tmp_path / "s.db",
        chains=[outbox.UPLINK_CHAIN],
        clock=FixedClock(),
        forward=OutboxForwarder(),
    )
    await store.open()
    try:
        items = [Measurement(None, "m", float(i)) for i in range(10)]
        await store.write(lambda tx: insert_measurements(tx, items))
        # Home claims more than was sent: only what was sent is acknowledged.
        await store.write(lambda tx: outbox.apply_ack(tx, {1: 99}, {1: 4}))
        assert (await store.read(outbox.read_acked))[1] == 4
        left = await store.query("SELECT seq FROM outbox ORDER BY seq")
        assert [r["seq"] for r in left] == list(range(5, 11))
        # An older ack (a late answer) does not move the pointer back.
        await store.write(lambda tx: outbox.apply_ack(tx, {1: 2}, {1: 10}))
        assert (await store.read(outbox.read_acked))[1] == 4
        # Expanded wire records carry the full measurement.
        rows = await store.read(lambda c: outbox.read_pending(c, 3, 10**6))
        records = await store.read(lambda c: outbox.Expander().records(c, rows))
        assert [r["body"]["value"] for r in records] == [4.0, 5.0, 6.0]
        assert records[0]["body"]["metric"] == "m" and records[0]["body"]["boot_id"] == "test-boot"
    finally:
        await store.close()


def test_identity_made_once_when_two_processes_race_at_first_start(tmp_path: Path) -> None:
    """Two processes creating the identity at the same moment end with one key, the same id."""
    import subprocess
    import sys

    from tests.conftest import REPO

    directory = tmp_path / "identity"
    script = (
        "import sys; from provisioning.identity import load_or_create; "
        "print(load_or_create(sys.argv[1]).appliance_id)"
    )
    for attempt in range(5):
        target = directory / str(attempt)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(target)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        results = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err for _, err in results]
        ids = {out.strip() for out, _ in results}
        assert len(ids) == 1, f"racing first starts made {len(ids)} identities"
        assert sorted(f.name for f in target.iterdir()) == sorted(
            f.name for f in target.iterdir() if not f.name.startswith(".")
        ), "no temporary files left behind"
