"""core/report on hand-made inputs: business hours across DST and holidays, gaps as unknown,
a storm as one line, forecasts only when the fit means something, plain words."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from core.report.availability import DOWN, UNKNOWN, UP, availability, runs
from core.report.build import build_report
from core.report.forecast import DAY_S, forecast
from core.report.hours import BusinessHours, HoursError, business_hours, month_period
from core.report.inputs import Alert, Device, ReportInput
from core.report.words import duration, title

BERLIN = ZoneInfo("Europe/Berlin")


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN).timestamp()


def test_business_hours_are_local_across_dst_and_skip_holidays() -> None:
    hours = business_hours("Europe/Berlin", "08:00", "18:00", ("mon", "tue"), ("2026-10-27",))
    # Monday 26 October 2026 is the first day after the DST change (25 Oct, Sunday).
    spans = hours.intervals(at(2026, 10, 19), at(2026, 11, 1))
    assert [datetime.fromtimestamp(a, BERLIN).strftime("%a %d %H:%M") for a, _ in spans] == [
        "Mon 19 08:00",
        "Tue 20 08:00",
        "Mon 26 08:00",  # 27 is a holiday
    ]
    assert all(b - a == 10 * 3600 for a, b in spans)
    assert hours.describe() == "Monday, Tuesday, 08:00 to 18:00 (Europe/Berlin)"
    assert BusinessHours().describe() == "Monday to Friday, 08:00 to 18:00 (UTC)"


@pytest.mark.parametrize(
    ("args", "fix"),
    [
        (("Mars/Base", "08:00", "18:00", (), ()), "IANA"),
        (("UTC", "8am", "18:00", (), ()), "HH:MM"),
        (("UTC", "18:00", "08:00", (), ()), "not after start"),
        (("UTC", "08:00", "18:00", ("monday",), ()), "one of mon"),
        (("UTC", "08:00", "18:00", (), ("25/12/2026",)), "YYYY-MM-DD"),
    ],
)
def test_bad_hours_name_the_fix(args: tuple, fix: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(HoursError, match=fix):
        business_hours(*args)


def test_a_month_is_local_midnight_to_midnight() -> None:
    p = month_period(2026, 10, "Europe/Berlin")
    assert p.label == "October 2026"
    assert p.end_s - p.start_s == 31 * DAY_S + 3600  # the night the clocks went back


def test_gaps_are_unknown_never_up() -> None:
    polls = [(float(t), 1.0) for t in range(0, 3600, 60)]
    polls += [(float(t), 0.0) for t in range(3600, 3900, 60)]  # five silent polls
    polls += [(float(t), 1.0) for t in range(3900, 5000, 60)]
    polls += [(float(t), 1.0) for t in range(9000, 10800, 60)]  # after a 4000 s silence
    run_list = runs(polls, 0.0, 10800.0)
    assert [(r.state, r.start_s, r.end_s) for r in run_list] == [
        (UP, 0.0, 3600.0),
        (DOWN, 3600.0, 3900.0),
        (UP, 3900.0, 5040.0),  # the last poll before the silence counts one spacing
        (UNKNOWN, 5040.0, 9000.0),
        (UP, 9000.0, 10800.0),
    ]
    a = availability(run_list, [(0.0, 10800.0)])
    assert a.unknown_s == 3960.0
    assert a.pct == pytest.approx(100 * (10800 - 3960 - 300) / (10800 - 3960))
    # A poll that could not be tried (None) is unknown too.
    assert runs([(0.0, None), (60.0, None)], 0.0, 120.0)[0].state == UNKNOWN


def test_no_data_at_all_gives_no_figure() -> None:
    assert availability(runs([], 0.0, 100.0), [(0.0, 100.0)]).pct is None


def _input(alerts: list[Alert], reach: dict | None = None) -> ReportInput:  # type: ignore[type-arg]
    period = month_period(2026, 10, "Europe/Berlin")
    return ReportInput(
        site="Office",
        period=period,
        hours=BusinessHours("Europe/Berlin", time(8), time(18), frozenset(range(5)), frozenset()),
        devices=[Device(1, "Front desk switch", "switch", "198.18.0.2")],
        reach=reach or {},
        volumes={},
        supplies={},
        alerts=alerts,
        happenings=[],
    )


def test_a_storm_is_one_line() -> None:
    start = at(2026, 10, 6, 9)
    flaps = [
        Alert(i, "if.down:1:port 7", "if.down", 1, "minor", "port down", start + i * 600,
              start + i * 600 + 120)
        for i in range(20)
    ]  # fmt: skip
    later = Alert(99, "if.down:1:port 7", "if.down", 1, "minor", "", at(2026, 10, 20, 9),
                  at(2026, 10, 20, 9, 5))  # fmt: skip
    report = build_report(_input([*flaps, later]))
    assert [(p.occurrences, p.started_s) for p in report.problems] == [
        (20, start),
        (1, at(2026, 10, 20, 9)),
    ]
    assert report.problems[0].title == "Front desk switch: a network connection went down"
    assert report.problems[0].ended_s == start + 19 * 600 + 120


def test_warnings_and_info_are_not_problems() -> None:
    t = at(2026, 10, 6, 9)
    report = build_report(
        _input(
            [
                Alert(1, "icmp.latency:1", "icmp.latency", 1, "warning", "", t, t + 60),
                Alert(2, "device.new:1", "device.new", 1, "info", "", t, None),
            ]
        )
    )
    assert report.problems == ()
    assert len(report.appendix_alerts) == 2
    assert report.headline.startswith("We have too little data")


def _line(start_pct: float, per_day: float, noise: float = 0.0) -> list[tuple[float, float]]:
    end = at(2026, 11, 1)
    return [
        (end - 30 * DAY_S + h * 3600, start_pct + per_day * h / 24 + noise * math.sin(h * 1.7))
        for h in range(30 * 24)
    ]


def test_forecast_only_when_the_fit_means_something() -> None:
    end = at(2026, 11, 1)
    f = forecast(_line(70.0, 0.5), end, 100.0)
    assert f is not None
    assert f.days_from(end) == pytest.approx(30.0, abs=0.1)  # 85 % now, 0.5 a day
    assert forecast(_line(70.0, 0.0), end, 100.0) is None  # flat: never fills
    assert forecast(_line(70.0, -0.5), end, 100.0) is None  # emptying
    assert forecast(_line(70.0, 0.1, noise=8.0), end, 100.0) is None  # noise: R^2 too low
    assert forecast(_line(70.0, 0.5)[-20:], end, 100.0) is None  # under a day of data
    assert forecast(_line(40.0, -1.0), end, 0.0) is not None  # a supply running out


def test_plain_words() -> None:
    assert (
        duration(7200) == "2 h" and duration(1200) == "20 min" and duration(3 * DAY_S) == ("3 days")
    )
    assert title("volume.full", "volume:4:/volume1", "Backup NAS") == (
        'Backup NAS: the disk "/volume1" was filling up'
    )
    assert title("ups.on_battery", "ups.on_battery:6", "UPS") == "UPS ran on battery (a power cut)"
    assert date(2026, 10, 1).weekday() == 3


def test_the_template_escapes_every_name_on_the_box_and_at_home() -> None:
    from core.report import ASSETS, TEMPLATE
    from home.report import render as home_render
    from web import report_page

    source = re.sub(r"\{#.*?#\}", "", (ASSETS / TEMPLATE).read_text(), flags=re.S)  # comments
    for unsafe in ("|safe", "| safe", "autoescape false", "Markup"):
        assert unsafe not in source, unsafe
    hostile = '<script>alert("x")</script>'
    t = at(2026, 10, 6, 9)
    data = _input([Alert(1, "device.down:1", "device.down", 1, "major", hostile, t, t + 600)])
    data = ReportInput(
        **{**data.__dict__, "site": hostile,
           "devices": [Device(1, hostile, "switch", "198.18.0.2")]},
    )  # fmt: skip
    report = build_report(data)
    for page in (report_page.render(data, report), home_render.html(data, report)):
        assert hostile not in page
        assert "&lt;script&gt;" in page
