"""Waiting for a condition with a deadline; a timeout names what was awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

POLL_S: Final = 0.05


async def wait_for(
    predicate: Callable[[], object], timeout_s: float = 20.0, what: str = "condition"
) -> None:
    """Call ``predicate`` (in a thread: it may read a database) until it is truthy.

    Raises AssertionError after ``timeout_s`` seconds, naming ``what``.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate):
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
