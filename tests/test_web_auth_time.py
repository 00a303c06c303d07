"""Login throttling and session expiry on virtual time (the injected clock), not real waits."""

from __future__ import annotations

from core.clock import FixedClock
from web.auth import LOGIN_WINDOW_S, LoginLimiter, Sessions


def test_failed_logins_are_counted_in_a_sliding_60_s_window() -> None:
    clock = FixedClock()
    limiter = LoginLimiter(3, clock=clock)
    for _ in range(3):
        assert limiter.retry_after_s("198.18.0.5") == 0.0
        limiter.failed("198.18.0.5")
        clock.advance(10.0)
    # Three failures at t=0, 10, 20; now t=30: the first leaves the window at t=60.
    assert limiter.retry_after_s("198.18.0.5") == LOGIN_WINDOW_S - 30.0
    assert limiter.retry_after_s("198.18.0.6") == 0.0  # another client is not held back
    clock.advance(31.0)  # t=61: the failure of t=0 has left the window
    assert limiter.retry_after_s("198.18.0.5") == 0.0
    # The wall clock stepping (an NTP sync) moves nothing: the window is monotonic time.
    clock.set_wall(clock.wall() - 86_400.0)
    limiter.failed("198.18.0.5")
    assert limiter.retry_after_s("198.18.0.5") > 0.0


def test_a_session_expires_after_its_ttl_unless_used() -> None:
    clock = FixedClock()
    sessions = Sessions(600.0, clock=clock)
    token, _ = sessions.create("198.18.0.5")
    clock.advance(500.0)
    assert sessions.get(token) is not None  # used: pushed 600 s further
    clock.advance(599.0)
    assert sessions.get(token) is not None
    clock.advance(601.0)
    assert sessions.get(token) is None
    assert sessions.get(token) is None  # and it stays gone
