"""A small typed in-process publish/subscribe bus between services.

Publishers hand over frozen dataclasses (a committed ``Event``, a ``PollResult`` ...);
subscribers get an asyncio queue of the types they asked for. A slow subscriber never blocks
a publisher: its queue is bounded and, when full, the oldest item is dropped and counted,
because a missed live update is better than a stalled poller (the store has the full record).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

QUEUE_LIMIT = 10_000


class Subscription:
    def __init__(self, types: tuple[type, ...], limit: int) -> None:
        self.types = types
        self.queue: asyncio.Queue[Any] = asyncio.Queue(limit)
        self.dropped = 0

    async def get(self) -> Any:
        return await self.queue.get()


class Bus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []

    def subscribe(self, *types: type, limit: int = QUEUE_LIMIT) -> Subscription:
        sub = Subscription(types, limit)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subs.remove(sub)

    def dropped_by_types(self) -> dict[str, int]:
        """Items dropped so far, summed per subscribed type list (``"Event,PollResult"``)."""
        dropped: dict[str, int] = {}
        for sub in self._subs:
            name = ",".join(t.__name__ for t in sub.types)
            dropped[name] = dropped.get(name, 0) + sub.dropped
        return dropped

    def publish(self, item: object) -> None:
        for sub in self._subs:
            if isinstance(item, sub.types):
                if sub.queue.full():
                    sub.queue.get_nowait()
                    sub.dropped += 1
                sub.queue.put_nowait(item)
