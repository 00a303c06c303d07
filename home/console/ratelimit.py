"""Login rate limit: failed logins counted per client address and per user name.

At most ``MAX_FAILURES`` failures in any ``WINDOW_S`` for either key; beyond, the login is
answered 429 with Retry-After without checking the password (so guessing costs the guesser
time, not home CPU). In memory per home process: a restart forgets, which only helps a guesser
by restarting home, which they cannot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_S = 60.0
MAX_FAILURES = 5
MAX_KEYS = 10_000  # bound memory under a spray of addresses or names


@dataclass
class LoginLimiter:
    clock: Callable[[], float]
    max_failures: int = MAX_FAILURES
    window_s: float = WINDOW_S
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after_s(self, *keys: str) -> float:
        """0 when every key may try now, else the seconds until all may."""
        wait = 0.0
        for key in keys:
            window = self._window(key)
            if len(window) >= self.max_failures:
                wait = max(wait, window[0] + self.window_s - self.clock())
        return max(0.0, wait)

    def failed(self, *keys: str) -> None:
        if len(self._failures) > MAX_KEYS:
            self._failures.clear()
        for key in keys:
            self._window(key).append(self.clock())

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)

    def _window(self, key: str) -> deque[float]:
        window = self._failures.setdefault(key, deque())
        horizon = self.clock() - self.window_s
        while window and window[0] < horizon:
            window.popleft()
        return window
