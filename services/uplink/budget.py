"""Bounded storage: keep the store inside its disk budget without ever stopping the appliance.

Every few seconds the keeper compares the store's live bytes (pages in use plus the WAL) with
its budget: ``store.budget_mb``, or less when the partition itself is nearly full (a reserve is
kept free so that deletes, which also need WAL space, can still commit). Over budget, it frees
space in this order, a bounded chunk per transaction so other writers are never held up long:

  1. age: rows older than ``store.max_age_days``, only while the wall clock is synchronised
     (a box that booted in 1970 must not take its fresh data for ancient);
  2. thin the oldest bulk measurements (never the newest 10%): roll them up to 5-minute, then
     1-hour resolution per series, in the outbox (so home gets a roll-up, not nothing) and in
     the local ``measurements`` table;
  3. drop the oldest bulk measurements (outbox and local);
  4. last, drop the oldest events and alerts waiting in the outbox, then old local events.

Every record removed from the outbox before home acknowledged it is counted in
``uplink_drops`` by reason (``max_age``, ``thinned``, ``budget``) and kind; the counts travel
home with each batch and heartbeat. Freed pages are reused by SQLite; a TRUNCATE checkpoint
afterwards gives WAL space back to the file system.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from typing import Any

from core.logs import get_log
from services.context import AppContext
from services.store import StoreError, Tx, reach
from services.uplink import outbox

log = get_log("budget")

MIB = 1024 * 1024
# Rows examined per trimming transaction: a trim is a write too, and its WAL (up to a page per
# row touched, the (series, ts) index being scattered) must fit in the room kept for the WAL.
CHUNK_ROWS = 2000
KEEP_NEWEST = 0.10  # thinning never touches the newest tenth of the rows
TARGET = 0.90  # trim down to this fraction of the budget (hysteresis)
RESERVE_MIN = 4 * MIB  # kept free on the partition: deletes and checkpoints need room too
RESERVE_MAX = 64 * MIB
RESERVE_FRACTION = 0.02
THIN_LEVELS_S = (300.0, 3600.0)  # roll-up resolutions, finest first
CHECK_S = 5.0
AGE_CHECK_S = 600.0  # between age-eviction passes
WAL_PAGES = 1000  # SQLite's automatic checkpoint size: the WAL grows about this far
WAL_TRUNCATE = 2 * MIB  # a WAL larger than this is truncated after a checkpoint


@dataclass(frozen=True)
class Usage:
    live: int  # bytes of database pages in use (the WAL is accounted for in the budget)
    budget: int  # what the live pages may use now
    fs_free: int
    wal: int


def measure(path: str, budget_bytes: int) -> Usage:
    """The store's live bytes and its effective budget (bounded by the partition's free space).

    The partition must always keep room for the WAL to grow to its checkpoint size plus a
    reserve: a delete is a write too, and a store with no room left for one cannot be trimmed.
    """
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    finally:
        conn.close()
    wal = 0
    with contextlib.suppress(OSError):
        wal = os.path.getsize(path + "-wal")
    file_size = os.path.getsize(path)
    st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    fs_free = st.f_bavail * st.f_frsize
    # The reserve is held by the ballast file when it exists, else kept free here.
    reserve = 0 if os.path.exists(path + ".ballast") else _reserve_bytes(path)
    wal_allowance = max(wal, WAL_PAGES * page_size)
    capacity = file_size + wal + fs_free - reserve - wal_allowance
    live = (pages - free) * page_size
    return Usage(live, min(budget_bytes, capacity), fs_free, wal)


# ---- trimming steps: each runs in one store transaction and returns rows removed ----


def _kinds(rows: list[tuple[Any, ...]], index: int) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[str(row[index])] += 1
    return dict(counts)


def drop_by_age(tx: Tx, max_age_s: float, clock_synced: bool) -> int:
    """Rows older than the maximum age; nothing at all while the clock is not synchronised."""
    if not clock_synced:
        return 0
    cutoff = tx.stamp.wall - max_age_s
    rows = tx.conn.execute(
        "SELECT seq, kind FROM outbox WHERE ts < ? AND synced = 1 ORDER BY seq LIMIT ?",
        (cutoff, CHUNK_ROWS),
    ).fetchall()
    if rows:
        tx.conn.execute(
            "DELETE FROM outbox WHERE seq IN (%s)" % ",".join("?" * len(rows)),  # noqa: UP031
            [r[0] for r in rows],
        )
        outbox.count_drops(tx.conn, "max_age", _kinds(rows, 1))
    removed = len(rows)
    removed += tx.conn.execute(
        "DELETE FROM measurements WHERE id IN (SELECT id FROM measurements"
        " WHERE ts < ? AND synced = 1 ORDER BY id LIMIT ?)",
        (cutoff, CHUNK_ROWS),
    ).rowcount
    removed += tx.conn.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? AND synced = 1"
        " ORDER BY id LIMIT ?)",
        (cutoff, CHUNK_ROWS),
    ).rowcount
    removed += reach.prune(tx.conn, cutoff, CHUNK_ROWS)  # the report's summary ages alike
    return removed


def _oldest_ids(tx: Tx, table: str, key: str, where: str = "") -> tuple[int, int] | None:
    """(first, last) key of the oldest chunk that may be thinned (the newest tenth is kept)."""
    row = tx.conn.execute(
        f"SELECT MIN({key}), MAX({key}), COUNT(*) FROM {table} {where}"
    ).fetchone()
    if not row or row[2] < 10:
        return None
    low, high, count = row
    keep_from = tx.conn.execute(
        f"SELECT {key} FROM {table} {where} ORDER BY {key} DESC LIMIT 1 OFFSET ?",
        (max(1, int(count * KEEP_NEWEST)),),
    ).fetchone()
    if keep_from is None:
        return None
    return low, min(high, int(keep_from[0]))


def thin_outbox(tx: Tx, level_s: float, start_after: int) -> tuple[int, int]:
    """Roll up a chunk of the oldest unsent bulk measurements; return (removed, last seq seen)."""
    span = _oldest_ids(tx, "outbox", "seq", "WHERE lane = 1")
    if span is None:
        return 0, start_after
    rows = tx.conn.execute(
        "SELECT seq, body, ts FROM outbox WHERE lane = 1 AND kind = ? AND seq > ? AND seq < ?"
        " ORDER BY seq LIMIT ?",
        (outbox.KIND_MEASUREMENT, start_after, span[1], CHUNK_ROWS),
    ).fetchall()
    if not rows:
        return 0, start_after
    groups: dict[tuple[Any, int], list[tuple[int, list[Any], float]]] = defaultdict(list)
    for seq, body, ts in rows:
        compact = json.loads(body)
        if not isinstance(compact, list) or compact[1] is None:
            continue
        groups[(compact[0], int(ts // level_s))].append((seq, compact, ts))
    updates: list[tuple[str, int]] = []
    deletes: list[int] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        n = sum(int(c[4]) if len(c) >= 8 else 1 for _s, c, _t in members)
        total = sum(float(c[1]) * (int(c[4]) if len(c) >= 8 else 1) for _s, c, _t in members)
        low = min(float(c[5]) if len(c) >= 8 else float(c[1]) for _s, c, _t in members)
        high = max(float(c[6]) if len(c) >= 8 else float(c[1]) for _s, c, _t in members)
        first_seq, first, first_ts = members[0]
        span_s = members[-1][2] - first_ts
        body = [first[0], total / n, first[2], first[3], n, low, high, round(span_s, 3)]
        updates.append((json.dumps(body, separators=(",", ":")), first_seq))
        deletes.extend(seq for seq, _c, _t in members[1:])
    tx.conn.executemany("UPDATE outbox SET body = ? WHERE seq = ?", updates)
    tx.conn.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in deletes])
    outbox.count_drops(tx.conn, "thinned", {outbox.KIND_MEASUREMENT: len(deletes)})
    return len(deletes), int(rows[-1][0])


def thin_measurements(tx: Tx, level_s: float, start_after: int) -> tuple[int, int]:
    """Roll up a chunk of the oldest local measurements to one averaged row per bucket."""
    span = _oldest_ids(tx, "measurements", "id")
    if span is None:
        return 0, start_after
    rows = tx.conn.execute(
        "SELECT id, series, ts, value FROM measurements WHERE id > ? AND id < ? AND value IS NOT"
        " NULL ORDER BY id LIMIT ?",
        (start_after, span[1], CHUNK_ROWS),
    ).fetchall()
    if not rows:
        return 0, start_after
    groups: dict[tuple[int, int], list[tuple[int, float]]] = defaultdict(list)
    for row_id, series, ts, value in rows:
        groups[(series, int(ts // level_s))].append((row_id, value))
    updates: list[tuple[float, int]] = []
    deletes: list[tuple[int]] = []
    for members in groups.values():
        if len(members) > 1:
            updates.append((sum(v for _i, v in members) / len(members), members[0][0]))
            deletes.extend((i,) for i, _v in members[1:])
    tx.conn.executemany("UPDATE measurements SET value = ? WHERE id = ?", updates)
    tx.conn.executemany("DELETE FROM measurements WHERE id = ?", deletes)
    return len(deletes), int(rows[-1][0])


def drop_oldest_bulk(tx: Tx) -> int:
    rows = tx.conn.execute(
        "SELECT seq, kind FROM outbox WHERE lane = 1 ORDER BY seq LIMIT ?", (CHUNK_ROWS,)
    ).fetchall()
    if rows:
        tx.conn.execute("DELETE FROM outbox WHERE lane = 1 AND seq <= ?", (rows[-1][0],))
        outbox.count_drops(tx.conn, "budget", _kinds(rows, 1))
    local = tx.conn.execute(
        "DELETE FROM measurements WHERE id IN (SELECT id FROM measurements ORDER BY id LIMIT ?)",
        (CHUNK_ROWS,),
    ).rowcount
    return len(rows) + local


def drop_oldest_priority(tx: Tx) -> int:
    rows = tx.conn.execute(
        "SELECT seq, kind FROM outbox WHERE lane = 0 ORDER BY seq LIMIT ?", (CHUNK_ROWS // 5,)
    ).fetchall()
    if rows:
        tx.conn.execute("DELETE FROM outbox WHERE lane = 0 AND seq <= ?", (rows[-1][0],))
        outbox.count_drops(tx.conn, "budget", _kinds(rows, 1))
    local = tx.conn.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?)",
        (CHUNK_ROWS // 5,),
    ).rowcount
    return len(rows) + local


def _thin_out(level_s: float, start_after: int, tx: Tx) -> tuple[int, int]:
    return thin_outbox(tx, level_s, start_after)


def _thin_local(level_s: float, start_after: int, tx: Tx) -> tuple[int, int]:
    return thin_measurements(tx, level_s, start_after)


def checkpoint(path: str) -> None:
    """Give the WAL's space back to the file system (fails harmlessly while readers hold it)."""
    conn = sqlite3.connect(path, timeout=2)
    try:
        busy, frames, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.debug("budget.checkpoint_busy", frames=frames, checkpointed=done)
    except sqlite3.Error as exc:
        log.warning("budget.checkpoint_failed", error=str(exc))
    finally:
        conn.close()


def _reserve_bytes(path: str) -> int:
    """Room kept aside: at least a full WAL's worth, so a checkpoint can always complete."""
    st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    fraction = int(st.f_blocks * st.f_frsize * RESERVE_FRACTION)
    return min(RESERVE_MAX, max(RESERVE_MIN, fraction))


class Ballast:
    """A file holding the reserve: when the disk is full anyway, deleting it makes room to trim.

    Trimming is writing (SQLite deletes go through the WAL), so a completely full partition
    cannot be trimmed by itself. The ballast is that room, kept aside in advance.
    """

    def __init__(self, store_path: str) -> None:
        self.path = store_path + ".ballast"

    def ensure(self) -> None:
        size = _reserve_bytes(self.path)
        with contextlib.suppress(OSError):
            if os.path.exists(self.path) and os.path.getsize(self.path) >= size:
                return
            st = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
            if st.f_bavail * st.f_frsize < 2 * size:
                return  # not now: the store needs the room more; retried after the next trim
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, size)
            finally:
                os.close(fd)

    def release(self) -> bool:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return False
        log.warning("budget.ballast_released", path=self.path)
        return True


class BudgetKeeper:
    """Keeps the store inside its budget (a supervised service, always on)."""

    name = "storage-budget"

    def __init__(self, ctx: AppContext, check_s: float = CHECK_S) -> None:
        self.ctx = ctx
        self.check_s = check_s
        self.budget_bytes = ctx.config.store.budget_mb * MIB
        self.max_age_s = ctx.config.store.max_age_days * 86400.0
        self.trims = 0
        self.removed: dict[str, int] = defaultdict(int)
        self.ballast = Ballast(ctx.store.path)
        self._aged_at = -AGE_CHECK_S

    async def setup(self) -> None:
        await asyncio.to_thread(self.ballast.ensure)

    async def teardown(self) -> None:
        pass

    async def run(self) -> None:
        while True:
            try:
                await self.keep()
            except StoreError as exc:
                # Even a trim could not commit: the partition is completely full. Release the
                # ballast, give the WAL's space back, and trim again at once.
                log.error("budget.trim_failed", error=str(exc))
                await asyncio.to_thread(self.ballast.release)
                await asyncio.to_thread(checkpoint, self.ctx.store.path)
                with contextlib.suppress(StoreError):
                    await self.keep()
            await asyncio.to_thread(self.ballast.ensure)
            await asyncio.sleep(self.check_s)

    async def usage(self) -> Usage:
        return await asyncio.to_thread(measure, self.ctx.store.path, self.budget_bytes)

    async def keep(self) -> bool:
        """Trim until under the target; return True when anything was removed."""
        store = self.ctx.store
        usage = await self.usage()
        if usage.wal > WAL_TRUNCATE:
            await asyncio.to_thread(checkpoint, store.path)
        removed_any = False
        # Age eviction scans whole tables: every few minutes is plenty for a limit in days.
        now = self.ctx.clock.monotonic()
        if self.ctx.clock.clock_synced() and now - self._aged_at >= AGE_CHECK_S:
            self._aged_at = now
            max_age = self.max_age_s
            while (n := await store.write(lambda tx: drop_by_age(tx, max_age, True))) > 0:
                self.removed["max_age"] += n
                removed_any = True
        usage = await self.usage()
        if usage.live <= usage.budget:
            return removed_any
        log.warning("budget.over", live_mb=usage.live / MIB, budget_mb=usage.budget / MIB)
        return await self._trim(usage) or removed_any

    async def _trim(self, usage: Usage) -> bool:
        store = self.ctx.store
        target = int(usage.budget * TARGET)
        removed_any = False
        steps = [("thinned", level) for level in THIN_LEVELS_S]
        steps += [("bulk", 0.0), ("priority", 0.0)]
        for step, level in steps:
            cursors = (0, 0)  # thinning walks both tables from their oldest row
            while True:
                if step == "thinned":
                    out_c, local_c = cursors
                    a, out_c = await store.write(partial(_thin_out, level, out_c))
                    b, local_c = await store.write(partial(_thin_local, level, local_c))
                    n = a + b
                    done = (out_c, local_c) == cursors  # both walked to the newest tenth
                    cursors = (out_c, local_c)
                elif step == "bulk":
                    n = await store.write(drop_oldest_bulk)
                    done = n == 0
                else:
                    n = await store.write(drop_oldest_priority)
                    done = n == 0
                self.removed[step] += n
                removed_any = removed_any or n > 0
                if n:
                    await asyncio.to_thread(checkpoint, store.path)
                    usage = await self.usage()
                    if usage.live <= target:
                        self.trims += 1
                        log.info("budget.trimmed", live_mb=usage.live / MIB, **self.removed)
                        return True
                if done:
                    break
        self.trims += 1
        log.error("budget.still_over", live_mb=usage.live / MIB, budget_mb=usage.budget / MIB)
        return removed_any


def budget_factory(ctx: AppContext) -> BudgetKeeper:
    return BudgetKeeper(ctx, ctx.config.uplink.storage_check_s)
