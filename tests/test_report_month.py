"""The monthly report on a month of generated history (issue 15).

October 2026 of the demo office is written through the real store, polling's writer and the
alerting service (simsite/harness/report_month.py) with planted incidents whose truth is
known: the file server down two hours on a Wednesday afternoon and twenty minutes on a
Saturday night, a UPS on battery, the NAS volume filling at 0.9 points a day, the printer's
toner falling 1.3 points a day, the UPS asking for a new battery from 12 October, a switch
port's transmission errors growing all month (beside a port with a steady trickle and one with
a single burst), an unknown device joining, a technician's acknowledgement and the appliance off
for three hours (no data: unknown, not up). The report must list exactly those, with the right
times, and the page must pass the 60-second test. Screenshots:
test-artifacts/screenshots/report-*.png.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from core.clock import FixedClock
from core.config import parse_config
from core.report.build import build_report
from core.report.hours import month_period
from core.report.inputs import ReportInput
from core.report.model import Report
from core.report.words import ENGINEERING_WORDS
from services.context import AppContext
from services.store import Store
from simsite.harness.report_month import (
    CONFIG,
    END_S,
    GATEWAY_IP,
    START_S,
    TZ,
    Truth,
    build_month,
    dump_alerts,
    local,
    toner_pct,
    volume_pct,
)
from simsite.harness.status_page import serve
from tests.browser_support import browser, screenshot, watch
from web import report_data

INTERVAL_S = 300.0
DAY_S = 86400.0
KEY_DEVICES = 6  # gateway, switch, server, NAS, printer, UPS
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def month() -> Iterator[tuple[Path, Truth]]:
    # Built once for the module (about 30 s in memory-backed /dev/shm, 80 s on disk).
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    folder = Path(tempfile.mkdtemp(prefix="report-month-", dir=base))
    try:
        db = folder / "outpost.db"
        truth, _ = asyncio.run(build_month(db, interval_s=INTERVAL_S))
        yield db, truth
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report(db: Path) -> Report:
    config = parse_config(CONFIG)
    with sqlite3.connect(db) as conn:
        data = report_data.load_input(
            conn,
            site=config.site.name,
            period=month_period(2026, 10, "Europe/Berlin"),
            hours=config.site.hours(),
            gateway_ip=GATEWAY_IP,
        )
    return build_report(data)


def _first_poll_where(predicate: object, start_s: float = START_S) -> float:
    """The first poll time (the generator's grid) at which the planted level meets ``predicate``."""
    t = START_S - 2 * DAY_S
    while t < END_S:
        if t >= start_s and predicate(t):  # type: ignore[operator]
            return t
        t += INTERVAL_S
    raise AssertionError("the planted level never got there")


def _weekdays_in_october_2026() -> int:
    # Counted here, not by core.report.hours: October 1st 2026 is a Thursday.
    return sum(1 for d in range(1, 32) if date(2026, 10, d).weekday() < 5)


def test_the_report_lists_exactly_the_planted_incidents(month: tuple[Path, Truth]) -> None:
    db, truth = month
    report = _report(db)
    shown = [(p.rule, p.device) for p in report.problems]
    assert sorted(shown) == sorted(
        [
            ("device.down", "File server"),
            ("device.down", "File server"),
            ("ups.on_battery", "Server room UPS"),
            ("ups.battery_replace", "Server room UPS"),
            ("supply.low", "Front desk printer"),
            ("volume.full", "Backup NAS"),
        ]
    ), dump_alerts(db)
    downs = sorted(
        (p for p in report.problems if p.rule == "device.down"), key=lambda p: p.started_s
    )
    for problem, (start, end) in zip(downs, truth.server_down, strict=True):
        assert abs(problem.started_s - start) <= INTERVAL_S
        assert problem.duration_s is not None
        assert abs(problem.duration_s - (end - start)) <= INTERVAL_S
    afternoon, night = downs
    assert afternoon.affected_office and afternoon.acknowledged
    assert not night.affected_office and not night.acknowledged
    ups = next(p for p in report.problems if p.rule == "ups.on_battery")
    assert abs(ups.started_s - truth.on_battery[0]) <= INTERVAL_S
    assert ups.duration_s is not None
    assert abs(ups.duration_s - (truth.on_battery[1] - truth.on_battery[0])) <= INTERVAL_S
    assert not ups.affected_office  # the UPS held: nobody noticed the power cut
    toner = next(p for p in report.problems if p.rule == "supply.low")
    assert toner.started_s == _first_poll_where(lambda t: toner_pct(t) <= 10.0)
    assert toner.is_open
    volume = next(p for p in report.problems if p.rule == "volume.full")
    assert volume.started_s == _first_poll_where(lambda t: volume_pct(t) >= 80.0)
    assert volume.is_open
    # Worst first: the outage the office felt leads page one.
    assert report.problems[0] is afternoon
    assert len(report.figures) == 3
    assert report.figures[2].value == "1"  # one problem was felt at the office
    assert report.headline.startswith("Your network was up 99.8")


def test_availability_is_within_a_tenth_of_a_point_of_the_truth(
    month: tuple[Path, Truth],
) -> None:
    db, truth = month
    report = _report(db)
    business_s = _weekdays_in_october_2026() * 10 * 3600.0
    off_s = truth.box_off[1] - truth.box_off[0]  # a weekday morning: no data, not "up"
    known_s = KEY_DEVICES * (business_s - off_s)
    down_s = truth.server_down[0][1] - truth.server_down[0][0]  # the night one is outside hours
    expected = 100.0 * (known_s - down_s) / known_s
    assert report.site_bh_pct is not None
    assert abs(report.site_bh_pct - expected) < 0.1, (report.site_bh_pct, expected)
    assert report.site_bh_unknown_s == pytest.approx(KEY_DEVICES * off_s, abs=KEY_DEVICES * 600)
    server = next(a for a in report.availability if a.name == "File server")
    assert len(server.outages) == 2
    everything_s = END_S - START_S
    server_truth = 100.0 * (1 - (7200 + 1200) / (everything_s - off_s))
    assert server.figures.pct is not None
    assert abs(server.figures.pct - server_truth) < 0.1


def test_the_reachability_summary_gives_the_report_of_every_poll(
    month: tuple[Path, Truth],
) -> None:
    """The writer's summary (services/store/reach.py) against every poll read."""
    db, _ = month
    config = parse_config(CONFIG)

    def load(use_summary: bool) -> ReportInput:
        with sqlite3.connect(db) as conn:
            return report_data.load_input(
                conn,
                site=config.site.name,
                period=month_period(2026, 10, "Europe/Berlin"),
                hours=config.site.hours(),
                gateway_ip=GATEWAY_IP,
                use_summary=use_summary,
            )

    summary, raw = load(True), load(False)
    assert summary.reach == {} and len(summary.reach_summary) == len(raw.reach)
    assert build_report(summary) == build_report(raw)


def test_forecasts_land_within_two_days_of_the_planted_dates(month: tuple[Path, Truth]) -> None:
    db, truth = month
    report = _report(db)
    full = next(o for o in report.outlook if o.series and o.series[0] == "volume")
    assert full.due_s is not None
    assert abs(full.due_s - truth.volume_full_s) < 2 * DAY_S, (
        datetime.fromtimestamp(full.due_s, TZ),
        datetime.fromtimestamp(truth.volume_full_s, TZ),
    )
    empty = next(o for o in report.outlook if o.series and o.series[0] == "supply")
    assert empty.due_s is not None
    assert abs(empty.due_s - truth.toner_empty_s) < 2 * DAY_S


def test_what_is_coming_names_the_battery_and_the_worn_cable(month: tuple[Path, Truth]) -> None:
    db, truth = month
    report = _report(db)
    undated = [o.title for o in report.outlook if o.due_s is None]
    asked = datetime.fromtimestamp(truth.battery_replace_s, TZ)
    assert undated == [
        f"Server room UPS asked for a new battery on {asked.day} October",
        'Office switch: the connection "front desk" (port Gi0/12) shows more and more '
        "transmission errors",
    ]  # the steady port Gi0/1 and the one-burst port Gi0/2 are not there
    errors = next(o for o in report.outlook if "Gi0/12" in o.title)
    # The planted rate ends at 0.02 a second: 1728 errors a day.
    said = re.search(r"about ([\d,]+) errors a day", errors.detail)
    assert said is not None, errors.detail
    assert abs(float(said[1].replace(",", "")) - 1728) < 0.1 * 1728, errors.detail
    battery = next(o for o in report.outlook if "battery" in o.title)
    assert "31 October" in battery.detail  # still asking at the month's last reading
    dated = [o for o in report.outlook if o.due_s is not None]
    assert [o.series[0] for o in dated if o.series] == ["supply", "volume"]


def test_a_port_without_label_is_named_by_the_device_plugged_in(
    month: tuple[Path, Truth], tmp_path: Path
) -> None:
    db, _ = month
    copy = tmp_path / "outpost.db"
    shutil.copyfile(db, copy)

    def place(device: int, seen_s: float) -> list[str]:
        with sqlite3.connect(copy) as conn:
            conn.execute("UPDATE topology_ports SET alias = '', label = ''")
            conn.execute(
                "INSERT OR REPLACE INTO topology_placements (device_id, switch_id, if_index,"
                " port_name, via, since_ts, seen_ts) VALUES (?, 2, 12, 'Gi0/12', 'fdb', ?, ?)",
                (device, seen_s, seen_s),
            )
        return [o.title for o in _report(copy).outlook if "Gi0/12" in o.title]

    # The printer alone on the port, seen there in the last month: the port is named by it.
    assert place(5, END_S - DAY_S) == [
        "Office switch: the connection to Front desk printer (port Gi0/12) shows more and more "
        "transmission errors"
    ]
    # Last seen there before the 30 days: not named by it.
    plain = 'Office switch: the connection on port "Gi0/12" shows more and more transmission errors'
    assert place(5, START_S - 5 * DAY_S) == [plain]
    # Two devices on the port (a small switch or hub behind it): named by neither.
    place(5, END_S - DAY_S)
    assert place(100, END_S - DAY_S) == [plain]


def test_changes_and_what_the_msp_did(month: tuple[Path, Truth]) -> None:
    db, truth = month
    report = _report(db)
    assert len(report.changes) == 1
    joined = report.changes[0]
    assert joined.kind == "joined" and joined.needs_look
    assert abs(joined.ts - truth.unknown_joined_s) <= INTERVAL_S
    assert "worth a look" in joined.text
    assert len(report.actions) == 1
    assert abs(report.actions[0].ts - truth.ack_s) <= INTERVAL_S
    assert "File server stopped answering" in report.actions[0].text


# ---- the page


@pytest.fixture
async def page_base(month: tuple[Path, Truth]) -> AsyncIterator[str]:
    db, _ = month
    clock = FixedClock(wall=local(2026, 11, 2, 9, 30))  # a Monday: the default is October
    store = Store(db, clock=clock)
    await store.open()
    ctx = AppContext(config=parse_config(CONFIG), store=store, clock=clock, version="test")
    try:
        async with serve(ctx) as base:
            yield base
    finally:
        await store.close()


_OUTSIDE_APPENDIX_JS = """() => Array.from(document.querySelectorAll('body > *'))
    .filter(e => e.id !== 'appendix').map(e => e.innerText).join('\\n')"""


def _engineering_words(text: str) -> list[str]:
    found = []
    for word in ENGINEERING_WORDS:
        flags = 0 if word.isupper() or any(c.isupper() for c in word) else re.IGNORECASE
        if re.search(rf"\b{re.escape(word)}\b", text, flags):
            found.append(word)
    return found


async def test_the_sixty_second_page(page_base: str) -> None:
    async with browser() as b:
        page = await b.new_page(viewport=DESKTOP)  # type: ignore[attr-defined]
        seen = watch(page)
        answer = await page.goto(page_base + "/report")
        assert answer.status == 200
        assert "October 2026" in await page.inner_text("h1")
        headline = await page.inner_text("#page-one #headline")
        assert headline.startswith("Your network was up 99.8") and headline.endswith(".")
        figures = await page.locator("#page-one .figure").count()
        assert 1 <= figures <= 3
        assert await page.locator("#page-one .problem").count() == 5
        first = await page.inner_text("#page-one .problem >> nth=0")
        assert "File server stopped answering" in first and "2 h" in first
        assert "The office was affected" in first
        body = await page.evaluate(_OUTSIDE_APPENDIX_JS)
        assert "Demo Dental Practice" in body
        assert _engineering_words(body) == [], _engineering_words(body)
        appendix = await page.inner_text("#appendix")
        assert "device.down:3" in appendix and "storage.used_pct" in appendix
        await screenshot(page, "report-desktop")
        await page.emulate_media(media="print")
        await screenshot(page, "report-print")
        phone = await b.new_page(viewport=PHONE)  # type: ignore[attr-defined]
        await phone.goto(page_base + "/report")
        scroll_w = await phone.evaluate("() => document.documentElement.scrollWidth")
        assert scroll_w <= PHONE["width"], f"the phone page scrolls sideways ({scroll_w} px)"
        await screenshot(phone, "report-phone")
        assert seen.errors == []


async def test_month_parameter_and_a_bad_one(page_base: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(page_base + "/report?month=2026-10") as r:
            assert r.status == 200
            assert "October 2026" in await r.text()
        async with http.get(page_base + "/report?month=2026-08") as r:
            text = await r.text()
            assert r.status == 200 and "August 2026" in text
            assert "too little data" in text  # nothing was recorded: no invented figure
        async with http.get(page_base + "/report?month=October") as r:
            assert r.status == 400
            assert "YYYY-MM" in await r.text()


async def test_a_closed_month_is_cached_until_its_alerts_change(
    month: tuple[Path, Truth], page_base: str
) -> None:
    import aiohttp

    db, _ = month

    def ack(value: int) -> None:
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE alerts SET acked = ? WHERE key = 'ups.on_battery:6'", (value,))

    async with aiohttp.ClientSession() as http:

        async def page() -> str:
            async with http.get(page_base + "/report?month=2026-10") as r:
                assert r.status == 200
                return await r.text()

        first = await page()
        assert await page() == first  # served from the cache: the same bytes
        ack(1)
        try:
            changed = await page()
            assert changed != first
            assert (
                changed.count("A technician took charge.")
                == first.count("A technician took charge.") + 1
            )
        finally:
            ack(0)
        assert await page() != changed
