"""core/report on hand-made inputs: business hours across DST and holidays, gaps as unknown,
a storm as one line, forecasts only when the fit means something, plain words."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from core.report import firmware, port_errors, ups
from core.report.availability import DOWN, UNKNOWN, UP, availability, runs
from core.report.build import build_report
from core.report.forecast import DAY_S, forecast
from core.report.hours import BusinessHours, HoursError, business_hours, month_period
from core.report.inputs import Alert, Device, DeviceFirmware, Point, ReportInput
from core.report.words import ENGINEERING_WORDS, duration, title

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


# ---- "what is coming": UPS batteries, growing transmission errors, outdated firmware ----

END = at(2026, 11, 1)  # the end of October 2026 (Berlin)


def _coming(**fields: object) -> ReportInput:
    base = _input([])
    devices = [
        Device(1, "Front desk switch", "switch", "198.18.0.2"),
        Device(2, "Rack UPS", "ups", "198.18.0.3"),
        Device(3, "Office printer", "printer", "198.18.0.4"),
    ]
    return replace(base, **{"devices": devices, "msp_name": "Harbour IT", **fields})  # type: ignore[arg-type]


def _hourly(value_at: Callable[[float], float | None], days: float = 30.0) -> list[Point]:
    """One reading an hour over the ``days`` before END; value_at(days before END)."""
    n = int(days * 24)
    return [(END - (n - h) * 3600.0, value_at((n - h) / 24)) for h in range(n)]


def _plain(texts: list[str]) -> None:
    for text in texts:
        for word in ENGINEERING_WORDS:
            flags = 0 if any(c.isupper() for c in word) else re.IGNORECASE
            assert not re.search(rf"\b{re.escape(word)}\b", text, flags), (word, text)


def test_a_ups_asking_for_a_new_battery_is_dated_and_said_plainly() -> None:
    asked = at(2026, 10, 12, 14)
    flag: list[Point] = [(ts, 1.0 if ts >= asked else 0.0) for ts, _ in _hourly(lambda d: 0.0)]
    flag[-5:] = [(ts, None) for ts, _ in flag[-5:]]  # the last readings got no answer
    report = build_report(_coming(ups_replace={(2, ""): flag}))
    [line] = report.outlook
    assert line.title == "Rack UPS asked for a new battery on 12 October"
    assert line.detail.startswith("still asking when last checked on 31 October")
    assert line.due_s is None and "ups.battery_replace = 1" in line.technical
    _plain([line.title, line.detail])
    # Replaced on the 20th (the flag back to 0): nothing is coming.
    fixed = [(ts, 1.0 if asked <= ts < at(2026, 10, 20) else 0.0) for ts, _ in flag]
    assert build_report(_coming(ups_replace={(2, ""): fixed})).outlook == ()
    # Asked before the 30 days and still asking: dated by the window's first reading.
    always = ups.still_flagged([(END - 40 * DAY_S, 1.0), *_hourly(lambda d: 1.0)], END, 1.0)
    assert always is not None and always.since_s == END - 30 * DAY_S
    assert always.last_s == END - 3600.0 and always.readings == 720


def test_a_failed_self_test_is_a_line_until_a_test_passes() -> None:
    failed = at(2026, 10, 3, 2)
    result = [(ts, 0.0 if ts >= failed else 1.0) for ts, _ in _hourly(lambda d: 1.0)]
    alert = Alert(7, "ups.selftest:2", "ups.selftest", 2, "major", "", failed + 60, None)
    report = build_report(_coming(ups_selftest={(2, ""): result}, alerts=[alert]))
    # The UPS's readings and its open alert say the same: one line, with the readings' dates.
    assert [o.title for o in report.outlook] == [
        "Rack UPS: the battery failed its self-test on 3 October"
    ]
    assert "31 October" in report.outlook[0].detail
    _plain([report.outlook[0].title, report.outlook[0].detail])
    passed = [*result, (END - 60.0, 1.0)]
    assert build_report(_coming(ups_selftest={(2, ""): passed})).outlook == ()
    # No readings at all (home's older records): the open alert still makes a line.
    only_alert = build_report(_coming(alerts=[alert]))
    assert [o.title for o in only_alert.outlook] == ["Rack UPS: the battery failed its self-test"]


def _errors(rate_at: Callable[[float], float]) -> dict[tuple[int, str], list[Point]]:
    return {(1, "Gi0/12"): _hourly(rate_at)}


def test_flat_errors_or_one_burst_are_no_trend() -> None:
    # A steady trickle: 0.01 errors a second (864 a day) all month long.
    assert port_errors.growing([_hourly(lambda d: 0.01)], END) is None
    # One burst: 5 errors a second for a day, ten days ago; nothing else.
    burst = _hourly(lambda d: 5.0 if 10 <= d < 11 else 0.0)
    assert port_errors.growing([burst], END) is None
    # Bursts on three days near the end (a cable knocked about during a move): still no trend.
    moves = _hourly(lambda d: 3.0 if d < 3 else 0.0)
    assert port_errors.growing([moves], END) is None
    # Growing, but tiny (under 100 errors a day at the end): not worth a line.
    tiny = _hourly(lambda d: 0.001 * (30 - d) / 30)
    assert port_errors.growing([tiny], END) is None
    # Growing only on four days of data: too little to call.
    short = _hourly(lambda d: 0.05 * (4 - d), days=4)
    assert port_errors.growing([short], END) is None
    report = build_report(_coming(port_in_errors=_errors(lambda d: 0.01)))
    assert report.outlook == ()


def test_steadily_growing_errors_name_the_port_in_the_clients_words() -> None:
    # From ~0 to 0.02 errors a second (1728 a day) over the month, inbound; some outbound too.
    grow_in = _errors(lambda d: 0.02 * (30 - d) / 30 + 0.002 * math.sin(d * 7.0) ** 2)
    grow_out = _errors(lambda d: 0.002 * (30 - d) / 30)
    g = port_errors.growing([grow_in[(1, "Gi0/12")], grow_out[(1, "Gi0/12")]], END)
    assert g is not None
    assert g.per_day_now == pytest.approx(1.1 * 1728 + 0.002 * DAY_S / 2, rel=0.1)
    assert g.per_day_then < g.per_day_now / 10 and g.days == 30
    report = build_report(
        _coming(
            port_in_errors=grow_in,
            port_out_errors=grow_out,
            port_labels={(1, "Gi0/12"): "front desk"},
        )
    )
    [line] = report.outlook
    assert line.title == (
        'Front desk switch: the connection "front desk" (port Gi0/12) shows more and more '
        "transmission errors"
    )
    assert "errors a day at the end of the month" in line.detail
    assert "R^2" in line.technical and "if.in_errors_ps" in line.technical
    _plain([line.title, line.detail])
    # No label, but the one device plugged into the port is known: named by it.
    plugged = build_report(_coming(port_in_errors=grow_in, port_devices={(1, "Gi0/12"): 3}))
    assert plugged.outlook[0].title == (
        "Front desk switch: the connection to Office printer (port Gi0/12) shows more and more "
        "transmission errors"
    )
    # Without a label: the port's own name.
    bare = build_report(_coming(port_in_errors=grow_in)).outlook[0].title
    assert bare == (
        'Front desk switch: the connection on port "Gi0/12" shows more and more transmission errors'
    )
    # Daily means (what the sources hand over for error rates) give the same answer.
    daily = {
        k: [(END - (day + 0.5) * DAY_S, v / DAY_S) for day, v in sorted(
            port_errors.daily_errors([pts], END).items(), reverse=True)]
        for k, pts in grow_in.items()
    }  # fmt: skip
    g2 = port_errors.growing([daily[(1, "Gi0/12")]], END)
    g1 = port_errors.growing([grow_in[(1, "Gi0/12")]], END)
    assert g1 is not None and g2 is not None
    assert g2.per_day_now == pytest.approx(g1.per_day_now)


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.2", "2.0"),
        ("2.9", "2.10"),
        ("V2.10.3", "V2.10.3 build 7"),
        ("V2.10.3 build 7", "2.10.10"),
        ("1.2", "1.2a"),
        ("1.2a", "1.2b"),
        ("1.2a", "1.2.1"),
        ("1.2rc1", "1.2"),
        ("1.2beta", "1.2rc1"),
        ("Firmware Ver. 1.04", "version 1.10"),
        ("20190703", "20210115"),
    ],
)
def test_versions_compare_as_people_read_them(older: str, newer: str) -> None:
    assert firmware.older_than(older, newer)
    assert not firmware.older_than(newer, older)


def test_odd_versions() -> None:
    assert firmware.version_key("1.2.0") == firmware.version_key("1.2")
    assert firmware.same_version("V2.10.3 build 7", "2.10.3 Build 7")
    assert firmware.version_key("unknown") is None
    assert not firmware.older_than("unknown", "2.0")  # no digit: never judged older
    assert not firmware.older_than("2.0", "2.0")


def test_firmware_rules_flag_matching_devices_only() -> None:
    rules = firmware.parse_rules(
        [
            {"vendor": "brother", "model": "HL-L2350*", "flagged": ["1.52"],
             "reason": "a fault that stops printing after sleep."},
            {"vendor": "Brother", "model": "HL-*", "minimum": "2.0"},
        ]
    )  # fmt: skip
    rows = [
        DeviceFirmware(3, "Ver.1.52", "Brother", "HL-L2350DW series"),  # flagged exactly
        DeviceFirmware(1, "1.2", "Brother", "HL-L8360CDW"),  # below the minimum
        DeviceFirmware(2, "2.0.1", "Brother", "HL-L8360CDW"),  # new enough
        DeviceFirmware(4, "1.0", "Canon", "HL-1"),  # another maker: no rule
        DeviceFirmware(5, "", "Brother", "HL-L8360CDW"),  # version unknown
    ]
    found = [firmware.check(r, rules) for r in rows]
    assert [(f.device_id, f.flagged) for f in found if f] == [(3, True), (1, False)]
    report = build_report(
        _coming(
            devices=[Device(1, "Back office printer", "printer"), Device(3, "Office printer",
                                                                         "printer")],
            firmware=rows,
            firmware_rules=rules,
        )
    )  # fmt: skip
    assert [o.title for o in report.outlook] == [
        "Back office printer runs firmware 1.2, Harbour IT recommends 2.0 or later",
        "Office printer runs firmware Ver.1.52, which Harbour IT advises replacing",
    ]
    assert report.outlook[1].detail == "a fault that stops printing after sleep"
    _plain([t for o in report.outlook for t in (o.title, o.detail)])
    # Without rules nothing is judged, whatever the versions.
    assert build_report(_coming(firmware=rows)).outlook == ()


@pytest.mark.parametrize(
    ("table", "fix"),
    [
        ({"vendor": "Brother"}, "not a list|a list of rules"),
        (["HL-L2350"], r"\[0\]: a table"),
        ([{"vendor": "Brother", "minimun": "2.0"}], r"unknown keys \['minimun'\]"),
        ([{"vendor": "Brother"}], "give a minimum"),
        ([{"vendor": "Brother", "minimum": "latest"}], "no number to compare"),
        ([{"vendor": "Brother", "flagged": "1.52"}], r"flagged: a list of version texts"),
        ([{"vendor": "Brother", "flagged": [1.52]}], r"flagged: a list of version texts"),
        ([{"minimum": "2.0"}], "name the vendor and/or model"),
        ([{"model": "x", "minimum": "1"}, {"vendor": 3, "minimum": "1"}], r"\[1\]\.vendor: a text"),
    ],
)
def test_bad_firmware_rules_name_the_fix(table: object, fix: str) -> None:
    with pytest.raises(firmware.FirmwareRuleError, match=fix):
        firmware.parse_rules(table)
