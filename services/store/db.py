"""The local SQLite store: one writer thread with group commit, readers off the event loop.

Writes are functions queued to a single writer thread. The thread runs the writes it holds in
one transaction, each inside its own savepoint, so a failing write rolls back alone while the
others commit; one fsync then covers the whole group. A caller learns exactly when its write
is durable: its future resolves after COMMIT.

When a group commits (flash wear; docs/polling.md "Writes and flash wear"):

* ``write(fn)``: at once. Whatever the thread holds joins the same transaction. For writes
  that must survive a power cut the moment they return: alert transitions, events, inventory
  and configuration changes, the uplink's acknowledgements, console actions, deletions.
* ``write(fn, defer=True)``: within ``commit_window_s`` of being asked for. The writer holds
  deferred writes until the oldest has waited the window, ``batch_max_ops`` are held, a
  write that cannot wait arrives, or the store closes (``close()`` commits all of them). For
  measurements (a poll's result, the box's own figures): a power cut or a SIGKILL loses at
  most the last window of them, and 241 polls a minute become a few commits instead of 241.

Held writes wait in memory, not in an open transaction: nothing runs until the group commits,
so readers, the budget keeper's checkpoints and other connections never wait for the window.
Writes run in the order they were asked for, so a deferred write is committed no later than
any write asked for after it (an alert is never durable without the poll that raised it).
The window is measured on the store's clock (``clock.monotonic()``): with a virtual clock, a
test advances it and calls :meth:`Store.wake` to make the writer look again.

WAL mode with ``synchronous=FULL``: a committed transaction survives a SIGKILL and a power cut.
Reads run on a small thread pool, each thread with its own read-only connection; WAL lets them
proceed while the writer commits, and they only ever see committed data (so the uplink never
sends a record a power cut could still take back).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from core.clock import Clock, Stamp
from core.logs import get_log
from services.store.migrations import MigrationChain, migrate
from services.store.schema import CORE

T = TypeVar("T")
log = get_log("store")

READER_THREADS = 2
BUSY_TIMEOUT_MS = 5000
_STOP = object()
_WAKE = object()  # no write: the writer only looks at its clock again

# forward(tx, kind, body, lane): append a record bound for home in the caller's transaction.
Forwarder = Callable[["Tx", str, dict[str, Any], int], None]


class StoreError(Exception):
    """A store operation failed; the message says what to do."""


class StoreFull(StoreError):
    """The disk (or the store's partition) is full; the write was not committed."""


class StoreClosed(StoreError):
    """The store is closed (the appliance is stopping)."""


@dataclass
class Tx:
    """What a write function gets: the connection inside a transaction, and helpers."""

    conn: sqlite3.Connection
    stamp: Stamp  # when this write was asked for (Store.write called), not when it committed
    boot: int  # boots.id of stamp.boot_id
    _forward: Forwarder | None = field(default=None, repr=False)

    def forward(self, kind: str, body: dict[str, Any], lane: int = 1) -> None:
        """Queue ``body`` for the uplink in this same transaction (no-op without an uplink)."""
        if self._forward is not None:
            self._forward(self, kind, body, lane)


@dataclass
class _Op:
    fn: Callable[[Tx], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    stamp: Stamp  # when it was asked for: measurements are stamped then, not at commit
    due: float | None  # clock.monotonic() by which it must be committed; None: at once


def _connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def _is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "full" in str(exc) or getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    )


class Store:
    """The appliance's only SQLite writer. ``await open()`` before use, ``await close()`` after."""

    def __init__(
        self,
        path: str | Path,
        *,
        chains: Sequence[MigrationChain] = (),
        clock: Clock | None = None,
        forward: Forwarder | None = None,
        batch_max_ops: int = 1000,
        commit_window_s: float = 0.0,
    ) -> None:
        """``commit_window_s``: longest a deferred write waits for others to commit with it,
        in seconds of ``clock`` (0: it commits with whatever is already queued, at once).
        ``batch_max_ops``: most writes in one transaction. Raises ValueError for bad values."""
        if not commit_window_s >= 0.0:
            raise ValueError(
                f"commit_window_s = {commit_window_s!r}: the group commit window must be 0 or "
                "more seconds (store.commit_window_s)"
            )
        if batch_max_ops < 1:
            raise ValueError(
                f"batch_max_ops = {batch_max_ops!r}: at least 1 write per commit "
                "(store.batch_max_ops)"
            )
        self.path = str(path)
        self.chains: tuple[MigrationChain, ...] = (CORE, *chains)
        self.clock = clock or Clock()
        self.forward = forward
        self.batch_max_ops = batch_max_ops
        self.commit_window_s = float(commit_window_s)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._reader_conns: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._boots: dict[str, int] = {}
        self._closed = True
        self.commits = 0  # transactions committed (each covers one batch)
        self.ops = 0  # write operations committed
        self.held = 0  # deferred writes the writer holds, not yet committed (approximate)

    @property
    def queue_depth(self) -> int:
        """Write operations waiting for the writer thread (approximate, for /metrics)."""
        return self._queue.qsize()

    # ---- lifecycle ----

    async def open(self) -> None:
        await asyncio.to_thread(self._open_sync)
        self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="store-read")
        self._writer = threading.Thread(target=self._write_loop, name="store-write", daemon=True)
        self._closed = False
        self._writer.start()

    def _open_sync(self) -> None:
        directory = os.path.dirname(self.path) or "."
        conn: sqlite3.Connection | None = None
        try:
            os.makedirs(directory, exist_ok=True)
            conn = _connect(self.path)
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: each commit is fsynced, so a committed batch survives a power cut.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn, self.chains, self.clock)
        except BaseException as exc:  # noqa: BLE001 - closed, then re-raised (or named) below
            if conn is not None:
                conn.close()
            self._raise_open_error(exc)
        self._conn = conn

    def _raise_open_error(self, exc: BaseException) -> NoReturn:
        if isinstance(exc, sqlite3.DatabaseError):
            raise StoreError(
                f"cannot open the store at {self.path}: {exc}. If the file is damaged, move it "
                "aside (the appliance starts a new one) and send it to the MSP for recovery"
            ) from exc
        if isinstance(exc, PermissionError):
            raise StoreError(
                f"cannot open the store at {self.path}: permission denied; the data directory "
                "must be writable by the user running outpost"
            ) from exc
        raise exc

    async def close(self) -> None:
        """Commit what is queued, then stop the writer and close every connection."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)
        if self._readers is not None:
            self._readers.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()
        self._reader_conns.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ---- writing ----

    def submit(self, fn: Callable[[Tx], T], *, defer: bool = False) -> asyncio.Future[T]:
        """Queue ``fn`` for the writer thread now; the future resolves once it is committed.

        Synchronous, so a caller can queue its write and then tell others (the bus) knowing
        that any write they ask for afterwards commits in the same transaction or a later one.
        ``defer``: see :meth:`write`. Raises StoreClosed once ``close()`` has begun; must be
        called from a running event loop.
        """
        if self._closed:
            raise StoreClosed("the store is closed; the appliance is stopping")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        due = self.clock.monotonic() + self.commit_window_s if defer else None
        self._queue.put(_Op(fn, future, loop, self.clock.now(), due))
        return future

    async def write(self, fn: Callable[[Tx], T], *, defer: bool = False) -> T:
        """Run ``fn`` in the writer thread inside a transaction; return once it is committed.

        ``defer=False``: committed at once (with everything the writer holds). ``defer=True``:
        the write may wait up to ``commit_window_s`` for others to share its commit; until
        then a power cut or a kill loses it. ``fn``'s result or exception is returned/raised
        here; StoreFull when the disk is full, StoreClosed when the store is closing.
        """
        return await self.submit(fn, defer=defer)

    async def flush(self) -> None:
        """Commit every write queued or held so far; return once they are durable."""
        await self.write(lambda tx: None)

    def wake(self) -> None:
        """Make the writer look at its clock now (tests that advance a virtual clock)."""
        self._queue.put(_WAKE)

    def _boot_row(self, conn: sqlite3.Connection, boot_id: str) -> int:
        if boot_id not in self._boots:
            conn.execute("INSERT OR IGNORE INTO boots (boot_id) VALUES (?)", (boot_id,))
            row = conn.execute("SELECT id FROM boots WHERE boot_id = ?", (boot_id,)).fetchone()
            self._boots[boot_id] = int(row[0])
        return self._boots[boot_id]

    def _write_loop(self) -> None:
        assert self._conn is not None
        conn = self._conn
        held: list[_Op] = []  # in the order asked for
        due: float | None = None  # the earliest commit deadline among ``held``
        stopping = False
        while not stopping:
            # Sleep until a write arrives or the oldest held write's window ends. The wait is
            # in real seconds, the deadline in the clock's: equal on the real clock; a virtual
            # clock that is not advanced never reaches it (its tests call wake()).
            item: Any = _WAKE
            with contextlib.suppress(queue.Empty):
                if due is None:
                    item = self._queue.get()
                else:
                    wait = due - self.clock.monotonic()
                    item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            urgent = False
            while True:  # take everything already waiting (up to a full batch)
                if item is _STOP:
                    stopping = True
                elif isinstance(item, _Op):
                    held.append(item)
                    if item.due is None:
                        urgent = True
                    elif due is None or item.due < due:
                        due = item.due
                if len(held) >= self.batch_max_ops:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            full = len(held) >= self.batch_max_ops
            if held and (
                urgent or stopping or full or (due is not None and self.clock.monotonic() >= due)
            ):
                batch, held, due = held, [], None
                self.held = 0
                self._run_batch(conn, batch)
            else:
                self.held = len(held)

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        outcomes: list[tuple[_Op, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in batch:
                # The boots row outside the savepoint: an op rolled back must not take it along.
                tx = Tx(conn, op.stamp, self._boot_row(conn, op.stamp.boot_id), self.forward)
                conn.execute("SAVEPOINT op")
                try:
                    result = op.fn(tx)
                except Exception as exc:  # this op alone is undone; the batch goes on
                    if not conn.in_transaction:
                        # SQLite rolled the whole transaction back itself (disk full, I/O
                        # error): nothing in the batch survives, so every op fails.
                        raise
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((op, None, exc))
                    continue
                conn.execute("RELEASE op")
                outcomes.append((op, result, None))
            conn.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - every waiter of the batch gets the error
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._boots.clear()  # a rolled-back boots row must be inserted again
            error: BaseException = exc
            if _is_disk_full(exc):
                error = StoreFull(
                    f"the disk holding {self.path} is full; nothing in this batch was stored. "
                    "Free space on the data partition or lower store.budget_mb"
                )
            log.error("store.commit_failed", ops=len(batch), error=str(error))
            outcomes = [(op, None, error) for op in batch]
        else:
            self.commits += 1
            self.ops += sum(1 for _, _, err in outcomes if err is None)
        for op, result, err in outcomes:
            # A caller whose event loop has closed meanwhile (a held write outlived it) is
            # gone: its write is committed all the same, and the writer must go on.
            with contextlib.suppress(RuntimeError):
                op.loop.call_soon_threadsafe(_settle, op.future, result, err)

    # ---- reading ----

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, readonly=True)
            with self._lock:
                self._reader_conns.append(conn)
            self._local.conn = conn
        return conn

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` with a read-only connection on a reader thread (never on the loop)."""
        if self._closed or self._readers is None:
            raise StoreClosed("the store is closed; the appliance is stopping")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader()))

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query as dicts."""

        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cursor = conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        return await self.read(run)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
