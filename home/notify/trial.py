"""Send a test message on one configured channel: ``outpost-home notify test`` and, for the
console, the same call. Nothing is written to the outbox: a test is not a notification."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from home.notify.channels import SendError, send
from home.notify.config import NotifyConfig
from home.notify.messages import trial_message


@dataclass(frozen=True)
class TrialResult:
    channel: str
    ok: bool
    error: str  # '' when ok; never contains a secret (channels.SendError's contract)
    latency_ms: float


async def send_trial(
    config: NotifyConfig, name: str, clock: Callable[[], float] = time.time
) -> TrialResult:
    """Send the test message on channel ``name``. KeyError when no such channel exists."""
    channel = config.channels[name]
    rendered = trial_message(name, clock())
    started = time.perf_counter()  # a duration, not a time of day
    try:
        await send(channel, rendered, str(rendered.payload["id"]), "")
    except SendError as exc:
        return TrialResult(name, False, str(exc), (time.perf_counter() - started) * 1000.0)
    return TrialResult(name, True, "", (time.perf_counter() - started) * 1000.0)
