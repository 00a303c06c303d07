"""The reachability summary: polling's liveness verdicts as runs, kept by the store's writer.

Polling stores every poll's verdict as the measurement ``device.reachable`` (1 answered, 0
silent, None nothing could be tried; services/polling/service.py). The monthly report needs,
per device, where the verdict changed and where the polls stopped (a gap: unknown, never up);
reading every poll of a month is millions of rows (13 s for a 250-device site on the build
machine, docs/report.md). So the writer keeps, in the transaction that stores the poll
(``records.insert_measurements``), the table ``reach_segments``: one row per *segment*, a run
of consecutive polls of one series

* with the same verdict (``state`` 1 / 0 / NULL),
* within one UTC day (each day of a series can be summarised again on its own),
* whose steps stay regular: a step longer than ``SPLIT_RATIO`` times the segment's shortest
  (for its second poll: the previous segment's shortest) starts a new segment, so a silence
  (box off, polling stopped) is always a boundary between two rows.

Columns: ``series`` (series.id), ``first_ts``/``last_ts`` (wall s: its first and last poll),
``state``, ``polls``, ``step_min``/``step_max`` (s: shortest and longest step between its
polls, steps of 0 s not counted; NULL with one poll). A month of a 250-device site is about
8,000 rows instead of 2.2 M polls (5-minute polls; 11 M at polling's default of 60 s). What it
drops is the time of each poll inside a segment; the report (web/report_data.py) rebuilds from
it the very runs the polls give (core/report/availability.py ``runs_of_segments``) whenever no
step inside a segment is longer than the gap threshold, and reads the raw polls of a segment
that has one.

Kept right:

* Out of order (the wall clock stepped back): that UTC day of the series is summarised again
  from its raw polls (:func:`rebuild_day`).
* History without a summary: an upgraded box (migration ``core.2`` queues every reachability
  series), or polls written by firmware without it (a rollback and the update again: found
  when the writer sees raw polls inside a silence of the summary). Ranges of days are queued in
  ``reach_backfill`` and summarised from the raw polls, newest day first, at most
  ``BACKFILL_ROWS`` polls per write (:func:`backfill_step`, run by :class:`ReachBackfill`), so
  the writer is never held long (a few ms a step on the build machine). A report whose window
  still has days pending reads the raw polls (:func:`pending`).
* Retention: rows older than ``store.max_age_days`` go with the raw ones (:func:`prune`, from
  the storage budget's age pass). Thinning (services/uplink/budget.py) rewrites old raw polls
  as averages but leaves the summary alone: it was built from every poll.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from typing import TYPE_CHECKING, Any

from core.logs import get_log

if TYPE_CHECKING:  # db.py imports this module (through schema.py) at import time
    from services.store.db import Store

log = get_log("store")

REACHABLE_METRIC = "device.reachable"  # services/polling/service.py writes it
DAY_S = 86400.0
SPLIT_RATIO = 1.5  # a step longer than this many times the shortest starts a new segment
BACKFILL_ROWS = 2000  # raw polls read per backfill write (5-10 ms of the writer here)
BACKFILL_PAUSE_S = 0.02  # between backfill writes: the writer serves others in between
BACKFILL_CHECK_S = 600.0  # how often the backfill service looks for new work

SCHEMA = (
    # state: 1 up, 0 down, NULL nothing could be tried. WITHOUT ROWID: a series' rows are
    # stored together, in time order, so a month is one short range read a device.
    """CREATE TABLE reach_segments (
        series INTEGER NOT NULL,
        first_ts REAL NOT NULL,
        last_ts REAL NOT NULL,
        state INTEGER,
        polls INTEGER NOT NULL,
        step_min REAL,
        step_max REAL,
        PRIMARY KEY (series, first_ts)
    ) WITHOUT ROWID""",
    # Days of a series still to summarise from the raw polls: those in [from_ts, to_ts)
    # (UTC day starts; from_ts NULL: from its first poll).
    """CREATE TABLE reach_backfill (
        id INTEGER PRIMARY KEY,
        series INTEGER NOT NULL,
        from_ts REAL,
        to_ts REAL NOT NULL
    )""",
)

# [first_ts, last_ts, state, polls, step_min, step_max]: a segment being built
Seg = list[Any]


def day_of(ts: float) -> float:
    """The start of the UTC day holding ``ts`` (s)."""
    return math.floor(ts / DAY_S) * DAY_S


def state_of(value: float | None) -> int | None:
    """A poll's verdict as stored: 1 up (value >= 0.5, as core/report/availability.py reads
    it), 0 down, None unknown."""
    return None if value is None else int(value >= 0.5)


def _absorb(seg: Seg, ts: float, state: int | None, ref: float | None) -> bool:
    """Extend ``seg`` with the poll (ts, state) if it continues it; True when it did.

    ``ref``: the step (s) a segment with one poll measures its second against (the previous
    segment's shortest); None: any step continues it."""
    first, last, seg_state, polls, step_min, step_max = seg
    if day_of(ts) != day_of(first) or ts < last:
        return False
    step = ts - last
    if seg_state != state:
        if step == 0 and first == ts:
            # Polls with the same time stamp: the last one stored is the verdict (the raw
            # order; the earlier ones hold for no time at all).
            seg[2], seg[3] = state, polls + 1
            return True
        return False
    if step > 0:
        base = step_min if step_min is not None else ref
        if base is not None and step > SPLIT_RATIO * base:
            return False
        seg[4] = step if step_min is None else min(step_min, step)
        seg[5] = step if step_max is None else max(step_max, step)
    seg[1], seg[3] = ts, polls + 1
    return True


def summarise(points: Any, ref: float | None = None) -> list[Seg]:
    """Segments of ``points`` ((ts, value) in time order, one series); ``ref``: the shortest
    step of the segment before them. Pure: the rule :func:`observe` applies poll by poll."""
    segs: list[Seg] = []
    for ts, value in points:
        state = state_of(value)
        if segs:
            prev_ref = segs[-2][4] if len(segs) >= 2 else ref
            if _absorb(segs[-1], float(ts), state, prev_ref):
                continue
        segs.append([float(ts), float(ts), state, 1, None, None])
    return segs


_LAST = (
    "SELECT first_ts, last_ts, state, polls, step_min, step_max FROM reach_segments"
    " WHERE series = ? ORDER BY first_ts DESC LIMIT 1"
)
_BEFORE = (
    "SELECT step_min FROM reach_segments WHERE series = ? AND first_ts < ?"
    " ORDER BY first_ts DESC LIMIT 1"
)
_INSERT = "INSERT INTO reach_segments VALUES (?, ?, ?, ?, ?, ?, ?)"


def observe(conn: sqlite3.Connection, series: int, ts: float, value: float | None) -> None:
    """Fold one poll of a ``device.reachable`` series into the summary. Runs in the writer's
    transaction, after the raw row is inserted (an out-of-order poll re-reads its day)."""
    state = state_of(value)
    row = conn.execute(_LAST, (series,)).fetchone()
    if row is None:
        older = conn.execute(
            "SELECT MAX(ts) FROM measurements WHERE series = ? AND ts < ?", (series, ts)
        ).fetchone()[0]
        if (
            older is not None
            and not conn.execute(
                "SELECT 1 FROM reach_backfill WHERE series = ? LIMIT 1", (series,)
            ).fetchone()
        ):
            queue_range(conn, series, None, day_of(ts) + DAY_S)
        conn.execute(_INSERT, (series, ts, ts, state, 1, None, None))
        return
    seg = list(row)
    if ts < seg[1]:
        rebuild_day(conn, series, day_of(ts))
        return
    ref = None
    if seg[4] is None:
        before = conn.execute(_BEFORE, (series, seg[0])).fetchone()
        ref = None if before is None else before[0]
    if _absorb(seg, ts, state, ref):
        conn.execute(
            "UPDATE reach_segments SET last_ts = ?, state = ?, polls = ?, step_min = ?,"
            " step_max = ? WHERE series = ? AND first_ts = ?",
            (seg[1], seg[2], seg[3], seg[4], seg[5], series, seg[0]),
        )
        return
    if (
        ts - seg[1] > (seg[4] or 0.0) * SPLIT_RATIO
        and conn.execute(
            "SELECT 1 FROM measurements WHERE series = ? AND ts > ? AND ts < ? LIMIT 1",
            (series, seg[1], ts),
        ).fetchone()
    ):
        # Raw polls inside what the summary holds as a silence: written without the summary
        # (older firmware after a rollback). Summarise those days again from the raw polls.
        queue_range(conn, series, day_of(seg[1]), day_of(ts) + DAY_S)
    conn.execute(_INSERT, (series, ts, ts, state, 1, None, None))


def rebuild_day(conn: sqlite3.Connection, series: int, day: float) -> int:
    """Summarise the UTC day starting at ``day`` of ``series`` again from its raw polls;
    return how many polls were read."""
    end = day + DAY_S
    conn.execute(
        "DELETE FROM reach_segments WHERE series = ? AND first_ts >= ? AND first_ts < ?",
        (series, day, end),
    )
    before = conn.execute(_BEFORE, (series, day)).fetchone()
    rows = conn.execute(
        "SELECT ts, value FROM measurements WHERE series = ? AND ts >= ? AND ts < ?"
        " ORDER BY ts, id",
        (series, day, end),
    ).fetchall()
    segs = summarise(rows, None if before is None else before[0])
    conn.executemany(_INSERT, [(series, *s) for s in segs])
    return len(rows)


def queue_range(conn: sqlite3.Connection, series: int, from_ts: float | None, to_ts: float) -> None:
    """Queue the days of ``series`` in [from_ts, to_ts) (None: from its first poll) for
    :func:`backfill_step`."""
    conn.execute(
        "INSERT INTO reach_backfill (series, from_ts, to_ts) VALUES (?, ?, ?)",
        (series, from_ts, to_ts),
    )


def queue_all(conn: sqlite3.Connection) -> int:
    """Queue the whole history of every reachability series (the migration; a store whose
    polls were written without the writer, e.g. bench/report.py's). Returns series queued."""
    rows = conn.execute(
        "SELECT s.id, (SELECT MAX(m.ts) FROM measurements m WHERE m.series = s.id)"
        " FROM series s WHERE s.metric = ?",
        (REACHABLE_METRIC,),
    ).fetchall()
    queued = [(int(sid), day_of(float(last)) + DAY_S) for sid, last in rows if last is not None]
    for sid, to_ts in queued:
        queue_range(conn, sid, None, to_ts)
    return len(queued)


def migrate(conn: sqlite3.Connection) -> None:
    """Migration core.2: the tables, and the existing history queued for backfill (the
    backfill itself runs later, in steps, never inside the migration)."""
    for statement in SCHEMA:
        conn.execute(statement)
    queue_all(conn)


def backfill_step(conn: sqlite3.Connection, max_rows: int = BACKFILL_ROWS) -> int:
    """Summarise queued days, newest first, until about ``max_rows`` raw polls were read;
    return the work done (polls read plus ranges finished), 0 when nothing is queued."""
    done = 0
    while done < max_rows:
        row = conn.execute(
            "SELECT id, series, from_ts, to_ts FROM reach_backfill ORDER BY to_ts DESC, id LIMIT 1"
        ).fetchone()
        if row is None:
            break
        rid, series, from_ts, to_ts = row
        newest = conn.execute(
            "SELECT MAX(ts) FROM measurements WHERE series = ? AND ts < ? AND ts >= ?",
            (series, to_ts, -math.inf if from_ts is None else from_ts),
        ).fetchone()[0]
        done += 1
        if newest is None:
            conn.execute("DELETE FROM reach_backfill WHERE id = ?", (rid,))
            continue
        day = day_of(float(newest))
        done += rebuild_day(conn, series, day)
        if from_ts is not None and day <= from_ts:
            conn.execute("DELETE FROM reach_backfill WHERE id = ?", (rid,))
        else:
            conn.execute("UPDATE reach_backfill SET to_ts = ? WHERE id = ?", (day, rid))
    return done


def pending(conn: sqlite3.Connection, start_s: float, end_s: float) -> bool:
    """True when some day of a reachability series overlapping [start_s, end_s) is not
    summarised yet (the report then reads the raw polls)."""
    return (
        conn.execute(
            "SELECT 1 FROM reach_backfill b JOIN series s ON s.id = b.series"
            " WHERE s.metric = ? AND b.to_ts > ? AND (b.from_ts IS NULL OR b.from_ts < ?)"
            " LIMIT 1",
            (REACHABLE_METRIC, day_of(start_s), end_s),
        ).fetchone()
        is not None
    )


def prune(conn: sqlite3.Connection, before_s: float, limit: int) -> int:
    """Delete up to ``limit`` segments that ended before ``before_s``; return how many."""
    return conn.execute(
        "DELETE FROM reach_segments WHERE (series, first_ts) IN (SELECT series, first_ts"
        " FROM reach_segments WHERE last_ts < ? LIMIT ?)",
        (before_s, limit),
    ).rowcount


async def backfill(
    store: Store, rows: int = BACKFILL_ROWS, pause_s: float = BACKFILL_PAUSE_S
) -> int:
    """Run :func:`backfill_step` through the writer until nothing is queued; return the work
    done. Each step is one short write: polls and alerts are committed in between."""
    total = 0
    if not await store.query("SELECT 1 FROM reach_backfill LIMIT 1"):
        return 0  # nothing queued: no write (and no commit) at all
    while True:
        n = await store.write(lambda tx: backfill_step(tx.conn, rows))
        if n == 0:
            return total
        total += n
        await asyncio.sleep(pause_s)


class ReachBackfill:
    """Summarises queued history in the background (a supervised service, always on)."""

    name = "reach-summary"

    def __init__(self, store: Store, check_s: float = BACKFILL_CHECK_S) -> None:
        self.store = store
        self.check_s = check_s
        self.done = 0  # work done since start (polls read plus ranges finished)

    async def setup(self) -> None:
        pass

    async def run(self) -> None:
        while True:
            n = await backfill(self.store)
            if n:
                self.done += n
                log.info("store.reach_backfilled", polls=n)
            await asyncio.sleep(self.check_s)

    async def teardown(self) -> None:
        pass
