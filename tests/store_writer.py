"""A process that writes through the real Store and prints each write once it is committed.

Used by the crash test: whatever this process printed before it was killed must be in the
database afterwards.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable

from services.store import Event, Measurement, Store, Tx, insert_event, insert_measurements


async def main(path: str, start: int) -> None:
    store = Store(path)
    await store.open()
    n = start
    while True:
        # Several writes in flight at once, so batches of different sizes commit together.
        batch = list(range(n, n + 20))
        n += 20

        def write(i: int) -> Awaitable[int]:
            def fn(tx: Tx) -> int:
                insert_event(tx, Event(kind="test.write", message=str(i), data={"i": i}))
                return insert_measurements(tx, [Measurement(None, "test.value", float(i))])

            return store.write(fn)

        await asyncio.gather(*(write(i) for i in batch))
        sys.stdout.write("".join(f"{i}\n" for i in batch))
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
