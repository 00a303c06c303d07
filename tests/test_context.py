"""LiveStatus: waiters wake on a change, time out otherwise, and can always be cancelled."""

from __future__ import annotations

import asyncio

import pytest

from core.status import LiveStatus, StatusKey


async def test_wait_changed_wakes_on_publish_and_times_out() -> None:
    status = LiveStatus()
    waiter = asyncio.create_task(status.wait_changed(5.0))
    await asyncio.sleep(0)
    status.publish(StatusKey.UPLINK_STATE, "connected")
    assert await asyncio.wait_for(waiter, 1.0) is True
    assert await status.wait_changed(0.05) is False
    status.publish(StatusKey.UPLINK_STATE, "connected")  # same value: not a change
    assert status.version == 1


async def test_wait_changed_is_cancellable_even_as_the_event_fires() -> None:
    status = LiveStatus()
    for _ in range(50):
        waiter = asyncio.create_task(status.wait_changed(5.0))
        await asyncio.sleep(0)
        # The change and the cancellation arrive in the same loop turn.
        status.publish(StatusKey.PHASE, object())
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
