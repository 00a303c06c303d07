"""The reachability summary (services/store/reach.py) the box's monthly report reads.

The store's writer keeps it as polls arrive (a restart in the middle changes nothing); an
upgraded store's history is summarised by the backfill and then gives the same report as
every poll read; a silence stays unknown, never up, even once the raw polls are gone; a clock
stepping back and polls written without the summary (older firmware) are caught. Real SQLite,
the real writer and migrations; the raw path (``use_summary=False``) is the reference.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.clock import FixedClock
from core.report.availability import (
    GAP_SPACINGS,
    UNKNOWN,
    UP,
    runs,
    runs_of_segments,
    segment_spacing,
    typical_spacing,
)
from core.report.build import build_report
from core.report.hours import BusinessHours, month_period
from core.report.inputs import Point, ReportInput, Segment
from core.report.model import Report
from services.store import Measurement, Store, insert_measurements, reach
from services.store.migrations import MigrationChain, migrate
from services.store.schema import CORE
from web import report_data

TZ = "Europe/Berlin"
ZONE = ZoneInfo(TZ)
HOURS = BusinessHours(TZ)
OCTOBER = month_period(2026, 10, TZ)
STEP_S = 300.0
DAY_S = 86400.0


def at(d: int, h: int = 0, mi: int = 0, month: int = 10) -> float:
    return datetime(2026, month, d, h, mi, tzinfo=ZONE).timestamp()


@pytest.fixture
def folder() -> Iterator[Path]:
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    path = Path(tempfile.mkdtemp(prefix="report-summary-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _input(db: Path, use_summary: bool, period: object = OCTOBER) -> ReportInput:
    with sqlite3.connect(db) as conn:
        return report_data.load_input(
            conn,
            site="Office",
            period=period,  # type: ignore[arg-type]
            hours=HOURS,
            gateway_ip="198.18.0.1",
            use_summary=use_summary,
        )


def _report(db: Path, use_summary: bool, period: object = OCTOBER) -> tuple[ReportInput, Report]:
    data = _input(db, use_summary, period)
    return data, build_report(data)


def _segments_table(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM reach_segments ORDER BY series, first_ts").fetchall()


# ---- the pure parts: segments give the runs the polls give


def _random_polls(rng: random.Random) -> list[Point]:
    t = rng.uniform(-4000.0, 2000.0)
    value: float | None = 1.0
    out: list[Point] = []
    for _ in range(rng.randint(1, 400)):
        r = rng.random()
        if r < 0.05:
            value = rng.choice((1.0, 0.0, None))
        out.append((t, value))
        gap = rng.random()
        if gap < 0.02:
            t += rng.uniform(800.0, 9000.0)  # a silence: the box off
        elif gap < 0.03:
            t += 0.0  # two polls with one time stamp
        else:
            t += 300.0 + rng.choice((0.0, 0.0, 0.0, rng.uniform(-4.0, 4.0)))
    return out


def _as_segments(points: list[Point], spacing: float) -> list[Segment]:
    """The store's rule (reach.summarise), then what web/report_data.py does with a segment
    holding a silence longer than the gap threshold: its polls one by one."""
    segments: list[Segment] = []
    for first, last, state, polls, _min, step_max in reach.summarise(points):
        value = None if state is None else float(state)
        if step_max is not None and step_max > spacing * GAP_SPACINGS:
            segments.extend(Segment(t, t, v) for t, v in points if first <= t <= last)
        else:
            segments.append(Segment(first, last, value, polls - 1))
    return segments


@pytest.mark.parametrize("seed", range(60))
def test_segments_give_exactly_the_runs_of_the_polls(seed: int) -> None:
    rng = random.Random(seed)
    points = _random_polls(rng)
    # Day boundaries at 0 s (the store splits segments at UTC midnight): cross some.
    start, end = rng.uniform(-3000.0, 20000.0), rng.uniform(30000.0, 200000.0)
    spacing = typical_spacing(points)
    segments = _as_segments(points, spacing)
    assert runs_of_segments(segments, spacing, start, end) == runs(points, start, end)


def test_the_spacing_of_regular_polls_is_their_median() -> None:
    points: list[Point] = [(i * 300.0, 1.0 if i % 50 else 0.0) for i in range(1000)]
    points += [(400_000.0 + i * 300.0, 1.0) for i in range(200)]  # after a silence
    segments = _as_segments(points, 300.0)
    assert len(segments) < 100
    assert segment_spacing(segments) == typical_spacing(points) == 300.0


# ---- the writer keeps it


async def _poll(store: Store, verdicts: dict[int, float | None]) -> None:
    await store.write(
        lambda tx: insert_measurements(
            tx, [Measurement(d, reach.REACHABLE_METRIC, v, "", "0/1") for d, v in verdicts.items()]
        )
    )


async def _add_devices(store: Store, ids: range, first_seen: float) -> None:
    def write(tx: object) -> None:
        for i in ids:
            tx.conn.execute(  # type: ignore[attr-defined]
                "INSERT INTO devices (id, ip, name, kind, first_seen, last_seen)"
                " VALUES (?, ?, ?, 'server', ?, ?)",
                (i, f"198.18.0.{i}", f"srv-{i}", first_seen, first_seen),
            )

    await store.write(write)


def _verdict(device: int, t: float) -> float | None:
    if device == 1 and at(14, 14) <= t < at(14, 16):
        return 0.0  # down two hours on a Wednesday afternoon
    if device == 2 and at(15, 9) <= t < at(15, 9, 30):
        return None  # nothing could be tried
    if device == 3 and at(16, 10) <= t < at(16, 11):
        return 0.0 if int(t // STEP_S) % 2 else 1.0  # flapping
    return 1.0


async def test_the_writer_keeps_the_summary_across_a_restart(folder: Path) -> None:
    db = folder / "outpost.db"
    clock = FixedClock(wall=at(13, 23))
    restart = (at(15, 9, 50), at(15, 11, 10))  # the box off 80 minutes
    store = Store(db, clock=clock)
    await store.open()
    await _add_devices(store, range(1, 4), clock.wall())
    try:
        while clock.wall() < at(17, 1):
            t = clock.wall()
            if restart[0] <= t < restart[1]:
                await store.close()  # the appliance restarts; polls resume after
                clock.advance(restart[1] - t)
                store = Store(db, clock=clock)
                await store.open()
                continue
            await _poll(store, {d: _verdict(d, t) for d in (1, 2, 3)})
            clock.advance(STEP_S)
    finally:
        await store.close()
    kept = _segments_table(db)
    assert 0 < len(kept) < 200  # 3 devices x 4 days of 5-minute polls: 3,456 polls
    # What the writer kept poll by poll is what the raw polls give, day by day.
    with sqlite3.connect(db) as conn:
        conn.execute("BEGIN")
        for (series,) in conn.execute("SELECT id FROM series").fetchall():
            for day in range(4):
                reach.rebuild_day(conn, series, reach.day_of(at(13, 12)) + day * DAY_S)
        conn.execute("COMMIT")
    assert _segments_table(db) == kept
    period = type(OCTOBER)(at(14), at(17), "14-16 October")
    raw, summary = _input(db, False, period), _input(db, True, period)
    assert summary.reach == {} and set(summary.reach_summary) == {1, 2, 3}
    assert raw.reach_summary == {} and set(raw.reach) == {1, 2, 3}
    expected, got = build_report(raw), build_report(summary)
    assert got.availability == expected.availability
    server = next(a for a in got.availability if a.device_id == 1)
    assert [(r.start_s, r.end_s) for r in server.outages] == [(at(14, 14), at(14, 16))]
    # The restart is a gap: unknown, never up, for every device.
    for a in got.availability:
        gap = next(g for g in a.gaps if g.start_s <= restart[0] + STEP_S < g.end_s)
        assert gap.state == UNKNOWN
        assert abs(gap.end_s - restart[1]) <= STEP_S
        assert a.polls == sum(1 for t, _ in raw.reach[a.device_id] if at(14) <= t < at(17))


# ---- an upgraded store: backfill


def _old_store(db: Path, jitter_s: float = 0.0) -> None:
    """A store as firmware before the summary left it (schema core.1), with October 2026 of
    six devices polled every 5 minutes (plus a day either side), written straight to SQL."""
    rng = random.Random(7)
    with sqlite3.connect(db, isolation_level=None) as conn:
        migrate(conn, [MigrationChain("core", CORE.migrations[:1])])
        conn.execute("BEGIN")
        conn.execute("INSERT INTO boots (id, boot_id) VALUES (1, 'old')")
        for i in range(1, 7):
            kind = ("router", "switch", "server", "nas", "printer", "workstation")[i - 1]
            conn.execute(
                "INSERT INTO devices (id, ip, name, kind, first_seen, last_seen)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (i, f"198.18.0.{i}", f"dev-{i}", kind, at(1) - 40 * DAY_S, at(1, month=11)),
            )
            conn.execute(
                "INSERT INTO series (id, device_id, metric, instance, unit) VALUES (?, ?, ?, '',"
                " '0/1')",
                (i, i, reach.REACHABLE_METRIC),
            )
        rows = []
        t = at(1) - DAY_S
        while t < at(1, month=11) + DAY_S:
            off = at(22, 9) <= t < at(22, 12)  # the box off three hours on a Thursday
            for i in range(1, 7):
                if off or (i == 6 and t < at(12, 15)):  # device 6 joined on the 12th
                    continue
                ts = t + (rng.uniform(-jitter_s, jitter_s) if jitter_s else 0.0)
                rows.append((i, ts, 0.0, 1, 1, _verdict(i, t)))
            t += STEP_S
        conn.executemany(
            "INSERT INTO measurements (series, ts, mono, boot, synced, value)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")


async def _upgrade(db: Path) -> int:
    """Open the store with this firmware (migration core.2), then run the backfill."""
    store = Store(db)
    await store.open()
    try:
        with sqlite3.connect(db) as conn:
            assert reach.pending(conn, OCTOBER.start_s, OCTOBER.end_s)
        # Queued, not summarised yet: the report reads every poll meanwhile.
        waiting = _input(db, True)
        assert waiting.reach_summary == {} and len(waiting.reach) == 6
        return await reach.backfill(store, rows=2000, pause_s=0.0)
    finally:
        await store.close()


async def test_a_backfilled_store_gives_the_report_of_every_poll(folder: Path) -> None:
    db = folder / "outpost.db"
    _old_store(db)
    work = await _upgrade(db)
    with sqlite3.connect(db) as conn:
        polls = conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
        assert polls <= work < polls + 1000  # every poll read once (in steps of 2,000)
        assert not reach.pending(conn, OCTOBER.start_s, OCTOBER.end_s)
        assert conn.execute("SELECT COUNT(*) FROM reach_backfill").fetchone()[0] == 0
    _, raw = _report(db, False)
    data, summary = _report(db, True)
    assert data.reach == {} and len(data.reach_summary) == 6
    assert summary.availability == raw.availability
    assert (summary.site_bh_pct, summary.site_pct) == (raw.site_bh_pct, raw.site_pct)
    assert summary.site_bh_unknown_s == raw.site_bh_unknown_s
    # And the truth: the box off 3 h is unknown for every device, never up.
    for a in summary.availability:
        assert any(g.start_s == at(22, 9) and g.end_s == at(22, 12) for g in a.gaps), a
    newcomer = next(a for a in summary.availability if a.device_id == 6)
    assert newcomer.gaps[0].start_s == OCTOBER.start_s and newcomer.gaps[0].end_s == at(12, 15)


def _assert_close(summary: Report, raw: Report, tolerance_s: float, pct: float = 0.001) -> None:
    """Outages exact (they begin and end at polls); a gap's start (one spacing after the
    last poll) within ``tolerance_s``: the summary's spacing is a median of means."""
    assert [a.device_id for a in summary.availability] == [a.device_id for a in raw.availability]
    for s, r in zip(summary.availability, raw.availability, strict=True):
        assert s.polls == r.polls
        assert s.outages == r.outages
        assert s.figures.pct is not None and r.figures.pct is not None
        assert abs(s.figures.pct - r.figures.pct) < pct
        assert len(s.gaps) == len(r.gaps)
        for g, h in zip(s.gaps, r.gaps, strict=True):
            assert abs(g.start_s - h.start_s) <= tolerance_s
            assert abs(g.end_s - h.end_s) <= tolerance_s


async def test_backfill_with_jittered_polls_stays_within_seconds(folder: Path) -> None:
    db = folder / "outpost.db"
    _old_store(db, jitter_s=3.0)
    await _upgrade(db)
    _assert_close(_report(db, True)[1], _report(db, False)[1], 6.0)


# ---- silences, thinning, clock steps, older firmware


def _state_at(a: object, t: float) -> str:
    runs_ = [*a.outages, *a.gaps]  # type: ignore[attr-defined]
    return next((r.state for r in runs_ if r.start_s <= t < r.end_s), UP)


async def test_a_silence_stays_unknown_when_the_raw_polls_are_gone(folder: Path) -> None:
    db = folder / "outpost.db"
    clock = FixedClock(wall=at(5, 6))
    store = Store(db, clock=clock)
    await store.open()
    try:
        await _add_devices(store, range(1, 2), clock.wall())
        # The series' first poll, then 70 minutes of silence before regular polls: nothing
        # to measure that second step against, so the silence sits inside one segment.
        await _poll(store, {1: 1.0})
        clock.advance(4200.0)
        while clock.wall() < at(5, 12):
            await _poll(store, {1: 1.0})
            clock.advance(STEP_S)
        clock.advance(3600.0)  # the box off an hour: a boundary between two segments
        while clock.wall() < at(5, 18):
            await _poll(store, {1: 1.0})
            clock.advance(STEP_S)
    finally:
        await store.close()
    period = type(OCTOBER)(at(5), at(6), "5 October")
    expected = build_report(_input(db, False, period)).availability
    assert build_report(_input(db, True, period)).availability == expected
    (a,) = expected
    silences = [(g.start_s, g.end_s) for g in a.gaps if at(5) < g.start_s < at(5, 17)]
    assert silences == [(at(5, 6, 5), at(5, 7, 10)), (at(5, 12), at(5, 13))]
    # The storage budget dropped the raw polls: the summary still knows the day, and both
    # silences stay unknown, never up, though the polls that showed them are gone. Where
    # the first one lay inside its segment is lost with them: that segment is unknown.
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM measurements")
    data = _input(db, True, period)
    assert data.reach == {}
    (b,) = build_report(data).availability
    assert _state_at(b, at(5, 6, 30)) == UNKNOWN
    assert _state_at(b, at(5, 12, 30)) == UNKNOWN
    assert _state_at(b, at(5, 15)) == UP
    # 13:00 to 18:00 as every poll said, and one spacing from each end of the segment lost.
    assert b.figures.up_s == pytest.approx(5 * 3600.0 + 2 * STEP_S)
    assert b.figures.pct == 100.0


async def test_a_clock_stepping_back_rebuilds_the_day(folder: Path) -> None:
    db = folder / "outpost.db"
    clock = FixedClock(wall=at(6, 8))
    store = Store(db, clock=clock)
    await store.open()
    try:
        await _add_devices(store, range(1, 2), clock.wall())
        for i in range(60):
            await _poll(store, {1: 0.0 if 20 <= i < 24 else 1.0})
            clock.advance(STEP_S)
        clock.set_wall(clock.wall() - 2 * 3600.0 - 150.0)  # NTP steps the clock back 2 h
        for _ in range(30):
            await _poll(store, {1: 1.0})
            clock.advance(STEP_S)
    finally:
        await store.close()
    kept = _segments_table(db)
    with sqlite3.connect(db) as conn:
        conn.execute("BEGIN")
        reach.rebuild_day(conn, 1, reach.day_of(at(6, 12)))
        conn.execute("COMMIT")
    assert _segments_table(db) == kept  # the same as summarising the day's raw polls
    period = type(OCTOBER)(at(6), at(7), "6 October")
    summary = build_report(_input(db, True, period))
    raw = build_report(_input(db, False, period))
    # Polls now 150 s apart where the two clocks overlap: the spacing is a median of means.
    _assert_close(summary, raw, STEP_S, pct=0.05)
    (a,) = summary.availability
    assert [(r.start_s, r.end_s) for r in a.outages] == [(at(6, 9, 40), at(6, 10))]


async def test_polls_written_without_the_summary_are_caught(folder: Path) -> None:
    """Firmware rolled back (no summary kept) and updated again: the writer finds raw polls
    inside what its summary holds as a silence and queues those days for the backfill."""
    db = folder / "outpost.db"
    clock = FixedClock(wall=at(8, 8))
    store = Store(db, clock=clock)
    await store.open()
    try:
        await _add_devices(store, range(1, 2), clock.wall())
        for _ in range(12):
            await _poll(store, {1: 1.0})
            clock.advance(STEP_S)
        with sqlite3.connect(db) as conn:  # the older firmware's polls: raw rows only
            conn.executemany(
                "INSERT INTO measurements (series, ts, mono, boot, synced, value)"
                " VALUES (1, ?, 0, 1, 1, ?)",
                [(clock.wall() + i * STEP_S, 0.0 if i < 10 else 1.0) for i in range(40)],
            )
        clock.advance(40 * STEP_S)
        await _poll(store, {1: 1.0})
        period = type(OCTOBER)(at(8), at(9), "8 October")
        with sqlite3.connect(db) as conn:
            assert reach.pending(conn, period.start_s, period.end_s)
        assert _input(db, True, period).reach_summary == {}  # the raw polls meanwhile
        await reach.backfill(store, pause_s=0.0)
    finally:
        await store.close()
    data = _input(db, True, period)
    assert data.reach == {}
    got = build_report(data).availability
    assert got == build_report(_input(db, False, period)).availability
    (a,) = got
    assert [(r.start_s, r.end_s) for r in a.outages] == [
        (at(8, 9), at(8, 9) + 10 * STEP_S)  # the down polls only the older firmware stored
    ]


def test_the_polling_service_writes_the_metric_the_summary_reads() -> None:
    from services.polling.service import REACHABLE_METRIC

    assert reach.REACHABLE_METRIC == REACHABLE_METRIC == report_data.REACHABLE_METRIC


def test_segments_split_where_a_poll_is_late() -> None:
    points: list[Point] = [(float(t), 1.0) for t in range(0, 3000, 300)]
    points += [(3160.0, 1.0), (3460.0, 1.0)]  # one step of 1.53 x the spacing: late, no gap
    segs = reach.summarise(points)
    assert [(s[0], s[1], s[3]) for s in segs] == [(0.0, 2700.0, 10), (3160.0, 3460.0, 2)]
    assert runs_of_segments(_as_segments(points, 300.0), 300.0, 0.0, 4000.0) == runs(
        points, 0.0, 4000.0
    )
    assert runs(points, 0.0, 4000.0)[0].state == UP


async def test_the_summary_ages_out_with_the_raw_polls(folder: Path) -> None:
    """The storage budget's age pass (store.max_age_days) prunes segments with the rows."""
    from services.uplink.budget import drop_by_age

    db = folder / "outpost.db"
    clock = FixedClock(wall=at(1, 8))
    store = Store(db, clock=clock)
    await store.open()
    try:
        await _add_devices(store, range(1, 2), clock.wall())
        for day in range(3):  # three mornings of polls, one UTC day each
            clock.set_wall(at(1 + day, 8))
            for _ in range(12):
                await _poll(store, {1: 1.0})
                clock.advance(STEP_S)
        assert len(_segments_table(db)) == 3
        clock.set_wall(at(3, 12))
        # Older than 1.5 days at noon on the 3rd: the 1st's polls and segment go.
        while await store.write(lambda tx: drop_by_age(tx, 1.5 * DAY_S, True)):
            pass
    finally:
        await store.close()
    assert [row[1] for row in _segments_table(db)] == [at(2, 8), at(3, 8)]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT MIN(ts) FROM measurements").fetchone()[0] == at(2, 8)
