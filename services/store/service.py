"""The store as a supervised service: opened first, closed last."""

from __future__ import annotations

import asyncio

from services.store.db import Store


class StoreService:
    name = "store"

    def __init__(self, store: Store) -> None:
        self.store = store

    async def setup(self) -> None:
        await self.store.open()

    async def run(self) -> None:
        # The store's work happens in its writer thread; this task only keeps its place.
        await asyncio.Event().wait()

    async def teardown(self) -> None:
        await self.store.close()
