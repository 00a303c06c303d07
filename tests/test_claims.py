"""Claim codes and home's claim records: unguessable, single use, expiring, one identity per box."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.clock import FixedClock
from core.wire.claim_codes import ALPHABET, code_hash, normalize
from home import claims
from home.db import HomeDB, Refused
from provisioning.claim import ClaimStore, new_code

# The same tests against both home database back ends (SQLite and PostgreSQL).
pytestmark = pytest.mark.usefixtures("home_backend")


MSP_KEY = "k" * 43


def _db(location: str) -> HomeDB:
    db = HomeDB(location)
    db.open_sync()
    return db


def _hello(db: HomeDB, appliance: str, code: str, expires: float, nonce: str) -> str:
    doc = {"claim_code_sha256": code_hash(code), "code_expires_at": expires, "version": "1.0.0"}
    answer = claims.hello_sync(db, appliance, f"key-{appliance}", nonce, doc)
    return str(answer["state"])


def test_codes_are_random_readable_and_normalised() -> None:
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert len(code) == 19 and code.count("-") == 3
        assert set(code.replace("-", "")) <= set(ALPHABET)
    code = next(iter(codes))
    assert normalize(code.lower().replace("-", " ")) == code
    assert code_hash(code.lower()) == code_hash(code)


def test_box_keeps_its_code_until_it_expires_and_makes_a_new_one_after_release(
    tmp_path: Path,
) -> None:
    clock = FixedClock()  # virtual time: the code's 60 s pass without waiting
    store = ClaimStore(tmp_path, ttl_s=60.0, clock=clock)
    first = store.load()
    assert first.code_expires_at == clock.wall() + 60.0
    clock.advance(59.0)
    assert store.load() == first and not first.claimed
    clock.advance(2.0)
    later = store.load()
    assert later.code != first.code  # expired: replaced
    claimed = store.mark_claimed("Dentist", MSP_KEY)
    assert claimed.claimed and claimed.claimed_at == clock.wall()
    clock.advance(10_000.0)
    assert store.load().claimed  # no expiry once claimed
    released = store.release()
    assert not released.claimed and released.code != claimed.code and released.msp_key == ""


def test_repeated_hello_is_one_identity_and_claim_is_single_use(home_database: str) -> None:
    db = _db(home_database)
    try:
        code, expires = new_code(), time.time() + 600
        for n in range(5):  # retries and reboots
            assert _hello(db, "op-box1", code, expires, f"n{n}") == "pending"
        assert len(claims.pending_sync(db)) == 1
        assert claims.claim_sync(db, code, "Dentist", MSP_KEY) == "op-box1"
        assert db.appliance_sync("op-box1") is not None  # registered: its uplink is accepted
        with pytest.raises(claims.ClaimError, match="already claimed for site 'Dentist'"):
            claims.claim_sync(db, code, "Other", MSP_KEY)
        assert _hello(db, "op-box1", code, expires, "n9") == "claimed"
        # Released by the MSP: the old code is spent, even before the box makes a new one.
        claims.release_sync(db, "op-box1")
        row = db.appliance_sync("op-box1")
        assert row is not None and row.state == "released"
        with pytest.raises(claims.ClaimError, match="this code is spent"):
            claims.claim_sync(db, code, "Other", MSP_KEY)
        new = new_code()
        assert _hello(db, "op-box1", new, expires, "n10") == "pending"
        assert claims.claim_sync(db, new, "Other", MSP_KEY) == "op-box1"
        row = db.appliance_sync("op-box1")
        assert row is not None and row.state == "registered" and row.site == "Other"
    finally:
        db.close_sync()


def test_expired_code_and_unknown_code_are_refused(home_database: str) -> None:
    db = _db(home_database)
    try:
        code = new_code()
        _hello(db, "op-box2", code, time.time() + 1.0, "a")
        with pytest.raises(claims.ClaimError, match="has expired"):
            claims.claim_sync(db, code, "Dentist", MSP_KEY, now=time.time() + 5.0)
        with pytest.raises(claims.ClaimError, match="no box has phoned home"):
            claims.claim_sync(db, new_code(), "Dentist", MSP_KEY)
        with pytest.raises(claims.ClaimError, match="name the site"):
            claims.claim_sync(db, code, " ", MSP_KEY)
    finally:
        db.close_sync()


def test_replayed_hello_is_refused(home_database: str) -> None:
    db = _db(home_database)
    try:
        code = new_code()
        _hello(db, "op-box3", code, time.time() + 60, "same")
        with pytest.raises(Refused, match="replayed request"):
            _hello(db, "op-box3", code, time.time() + 60, "same")
    finally:
        db.close_sync()


def test_claim_state_belongs_to_one_identity(tmp_path: Path) -> None:
    store = ClaimStore(tmp_path, ttl_s=600.0)
    store.load("op-old")
    claimed = store.mark_claimed("Dentist", MSP_KEY, "op-old")
    assert store.load("op-old") == claimed
    # After a factory reset the box has a new key: it starts unclaimed, with a new code.
    fresh = store.load("op-new")
    assert not fresh.claimed and fresh.code != claimed.code and fresh.appliance == "op-new"


def test_status_summary_shows_the_code_until_claimed(tmp_path: Path) -> None:
    from provisioning.claim import claim_summary

    assert claim_summary(tmp_path)["provisioning"].startswith("not started")
    store = ClaimStore(tmp_path, ttl_s=600.0)
    code = store.load("op-a").code
    assert claim_summary(tmp_path) == {"provisioning": "unclaimed", "claim_code": code}
    store.mark_claimed("Dentist", MSP_KEY, "op-a")
    assert claim_summary(tmp_path) == {"provisioning": "claimed", "site": "Dentist"}
