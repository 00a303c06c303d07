"""Build the :class:`~core.report.model.Report` from a :class:`~core.report.inputs.ReportInput`.

Incidents: alerts with the same key (rule, device, thing) that open again within
``STORM_GAP_S`` of the previous one closing are one incident (a port flapping twenty times is
one line, "20 times"). A down incident's start and end come from the reachability runs (the
first silent poll to the first answer), not the alert (which waits for a second silent poll).
Problems shown: minor or worse, plus anything that took a key device down; worst first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from core.report import firmware as fw
from core.report import forecast as fc
from core.report import port_errors, ups, words
from core.report.availability import (
    DOWN,
    UNKNOWN,
    Availability,
    availability,
    runs,
    runs_of_segments,
)
from core.report.hours import overlap
from core.report.inputs import KEY_KINDS, Alert, Device, ReportInput
from core.report.model import (
    Action,
    AppendixAlert,
    Change,
    DeviceAvailability,
    Figure,
    Outlook,
    Problem,
    Report,
)

STORM_GAP_S = 3600.0
SUPPLY_LOW_PCT = 10.0
_SEVERITY_RANK = {"critical": 4, "major": 3, "minor": 2, "warning": 1, "info": 0}
_PROBLEM_MIN_RANK = 2  # minor or worse
_DOWN_RULES = frozenset({"device.down"})
_CHANGE_WORDS = {"device.joined": "joined", "device.left": "left", "device.ip_changed": "address"}


def device_name(device: Device | None) -> str:
    if device is None:
        return "the network"
    return device.name or f"the {words.kind_word(device.kind)} at {device.ip}"


def is_key(device: Device) -> bool:
    return device.is_gateway or device.kind in KEY_KINDS


def _group(alerts: Sequence[Alert]) -> list[list[Alert]]:
    by_key: dict[str, list[Alert]] = defaultdict(list)
    for a in sorted(alerts, key=lambda a: (a.opened_ts, a.id)):
        by_key[a.key].append(a)
    groups: list[list[Alert]] = []
    for items in by_key.values():
        current = [items[0]]
        for a in items[1:]:
            last_end = current[-1].resolved_ts
            if last_end is not None and a.opened_ts - last_end <= STORM_GAP_S:
                current.append(a)
            else:
                groups.append(current)
                current = [a]
        groups.append(current)
    return groups


def _down_span(
    group: list[Alert], downs: Sequence[tuple[float, float]]
) -> tuple[float, float | None]:
    """From the first silent poll (the start of the down run the first alert opened in; the
    alert itself waits for a second silent poll) to the first answer (the last resolution)."""
    start = group[0].opened_ts
    for a, b in downs:
        if a <= start <= b:
            start = a
            break
    return start, group[-1].resolved_ts


def _problems(
    data: ReportInput,
    devices: dict[int, Device],
    down_runs: dict[int, list[tuple[float, float]]],
    business: Sequence[tuple[float, float]],
) -> list[Problem]:
    start_s, end_s = data.period.start_s, data.period.end_s
    seen = [
        a
        for a in data.alerts
        if a.opened_ts < end_s and (a.resolved_ts is None or a.resolved_ts >= start_s)
    ]
    out: list[Problem] = []
    for group in _group(seen):
        first, last = group[0], group[-1]
        device = devices.get(first.device_id) if first.device_id is not None else None
        rank = max(_SEVERITY_RANK.get(a.severity, 0) for a in group)
        began, ended = first.opened_ts, last.resolved_ts
        if first.rule in _DOWN_RULES and first.device_id is not None:
            began, ended = _down_span(group, down_runs.get(first.device_id, []))
        if ended is not None and ended > end_s:
            ended = None  # still going at the end of the period
        affected = (
            first.rule in _DOWN_RULES
            and device is not None
            and is_key(device)
            and overlap((began, ended if ended is not None else end_s), business) > 0
        )
        if rank < _PROBLEM_MIN_RANK and not affected:
            continue
        name = device_name(device)
        worst = max(group, key=lambda a: _SEVERITY_RANK.get(a.severity, 0))
        out.append(
            Problem(
                title=words.title(first.rule, first.key, name),
                device=name,
                started_s=began,
                ended_s=ended,
                duration_s=None if ended is None else ended - began,
                occurrences=len(group),
                affected_office=affected,
                severity=worst.severity,
                acknowledged=any(a.acked for a in group),
                alert_ids=tuple(a.id for a in group),
                rule=first.rule,
                key=first.key,
            )
        )
    out.sort(
        key=lambda p: (
            -p.affected_office,
            -_SEVERITY_RANK.get(p.severity, 0),
            -(p.duration_s or (end_s - p.started_s)),
        )
    )
    return out


def _date(ts: float, tz: str) -> str:
    return f"{datetime.fromtimestamp(ts, ZoneInfo(tz)):%A %d %B %Y}"


def _outlook(data: ReportInput, devices: dict[int, Device]) -> list[Outlook]:
    end_s = data.period.end_s
    tz = data.hours.timezone
    out: list[Outlook] = []
    for (device_id, volume), points in sorted(data.volumes.items()):
        f = fc.forecast(points, end_s, 100.0)
        if f is None:
            continue
        name = device_name(devices.get(device_id))
        t = f.trend
        out.append(
            Outlook(
                title=f'{name}: the disk "{volume}" will be full around {_date(f.at_s, tz)}',
                device=name,
                due_s=f.at_s,
                detail=(
                    f"{t.level_now:.0f} % full now, growing {t.slope_per_day:.2f} points a day "
                    f"over the last {t.span_days:.0f} days: "
                    f"about {f.days_from(end_s):.0f} days left"
                ),
                technical=(
                    f"storage.used_pct {volume}: least squares over {t.points} points, "
                    f"slope {t.slope_per_day:+.3f} %/day, R^2 {t.r2:.3f}"
                ),
                series=("volume", device_id, volume),
            )
        )
    for (device_id, supply), points in sorted(data.supplies.items()):
        name = device_name(devices.get(device_id))
        thing = supply.replace("_", " ")
        f = fc.forecast(points, end_s, 0.0)
        last = next((v for _, v in reversed(points) if v is not None), None)
        if f is not None:
            t = f.trend
            out.append(
                Outlook(
                    title=f"{name}: {thing} will run out around {_date(f.at_s, tz)}",
                    device=name,
                    due_s=f.at_s,
                    detail=(
                        f"{t.level_now:.0f} % left, falling {-t.slope_per_day:.1f} points a day: "
                        f"order a replacement now"
                        if t.level_now <= SUPPLY_LOW_PCT * 2
                        else f"{t.level_now:.0f} % left, falling {-t.slope_per_day:.1f} "
                        "points a day"
                    ),
                    technical=(
                        f"supply.level_pct {supply}: least squares over {t.points} points, "
                        f"slope {t.slope_per_day:+.3f} %/day, R^2 {t.r2:.3f}"
                    ),
                    series=("supply", device_id, supply),
                )
            )
        elif last is not None and last <= SUPPLY_LOW_PCT:
            out.append(
                Outlook(
                    title=f"{name}: {thing} is nearly empty ({last:.0f} % left)",
                    device=name,
                    due_s=None,
                    detail="replace it at the next visit",
                    technical=f"supply.level_pct {supply}: last value {last:.1f} %",
                )
            )
    flagged_ups = _ups_outlook(data, devices)
    out += [o for _, o in flagged_ups]
    said = {key for key, _ in flagged_ups}
    for a in data.alerts:
        if a.resolved_ts is None and a.rule in _UPS_RULES:
            if (a.device_id, _UPS_RULES[a.rule]) in said:
                continue  # the UPS's own readings already say so, with dates
            name = device_name(devices.get(a.device_id) if a.device_id is not None else None)
            out.append(
                Outlook(
                    title=words.title(a.rule, a.key, name),
                    device=name,
                    due_s=None,
                    detail="the battery keeps the equipment running in a power cut",
                    technical=f"alert {a.id} {a.key} open since {a.opened_ts:.0f}",
                )
            )
    out += _port_outlook(data, devices)
    out += _firmware_outlook(data, devices)
    out.sort(key=lambda o: o.due_s if o.due_s is not None else 0.0)
    return out


_UPS_RULES = {"ups.battery_replace": "battery_replace", "ups.selftest": "selftest"}


def _day(ts: float, tz: str) -> str:
    """ "12 October" """
    d = datetime.fromtimestamp(ts, ZoneInfo(tz))
    return f"{d.day} {d:%B}"


def _ups_outlook(
    data: ReportInput, devices: dict[int, Device]
) -> list[tuple[tuple[int, str], Outlook]]:
    """A UPS still asking for a new battery, or whose last self-test failed (core/report/ups.py);
    each with its (device id, "battery_replace" | "selftest")."""
    end_s, tz = data.period.end_s, data.hours.timezone
    out: list[tuple[tuple[int, str], Outlook]] = []
    for what, series, bad in (
        ("battery_replace", data.ups_replace, 1.0),
        ("selftest", data.ups_selftest, 0.0),
    ):
        for (device_id, _instance), points in sorted(series.items()):
            flag = ups.still_flagged(points, end_s, bad)
            if flag is None:
                continue
            name = device_name(devices.get(device_id))
            since, last = _day(flag.since_s, tz), _day(flag.last_s, tz)
            if what == "battery_replace":
                title = f"{name} asked for a new battery on {since}"
                detail = (
                    f"still asking when last checked on {last}: in a power cut a worn battery "
                    "may not keep the equipment running"
                )
            else:
                title = f"{name}: the battery failed its self-test on {since}"
                detail = (
                    f"still failed when last checked on {last}: the battery may not keep the "
                    "equipment running in a power cut; replace it or test it again"
                )
            metric = "ups.battery_replace" if what == "battery_replace" else "ups.selftest_ok"
            line = Outlook(
                title=title[0].upper() + title[1:],
                device=name,
                due_s=None,
                detail=detail,
                technical=(
                    f"{metric} = {bad:.0f} on {flag.readings} readings from "
                    f"{flag.since_s:.0f} to {flag.last_s:.0f} (the last known value)"
                ),
            )
            out.append(((device_id, what), line))
    return out


def _port_outlook(data: ReportInput, devices: dict[int, Device]) -> list[Outlook]:
    """Ports whose transmission errors grow over the month (core/report/port_errors.py)."""
    end_s = data.period.end_s
    out: list[Outlook] = []
    for key in sorted({*data.port_in_errors, *data.port_out_errors}):
        g = port_errors.growing(
            (data.port_in_errors.get(key, ()), data.port_out_errors.get(key, ())), end_s
        )
        if g is None:
            continue
        device_id, instance = key
        name = device_name(devices.get(device_id))
        label = data.port_labels.get(key, "").strip()
        plugged = devices.get(data.port_devices.get(key, -1))
        if label and label != instance:
            where = f'the connection "{label}" (port {instance})'
        elif plugged is not None:
            where = f"the connection to {device_name(plugged)} (port {instance})"
        else:
            where = f'the connection on port "{instance}"'
        t = g.trend
        out.append(
            Outlook(
                title=f"{name}: {where} shows more and more transmission errors",
                device=name,
                due_s=None,
                detail=(
                    f"about {g.per_day_now:,.0f} errors a day at the end of the month, up from "
                    f"about {g.per_day_then:,.0f} a day {t.span_days:.0f} days earlier, with "
                    f"errors on {g.error_days} of {g.days} days: often a worn cable or a loose "
                    "plug, worth checking before the connection fails"
                ),
                technical=(
                    f"if.in_errors_ps + if.out_errors_ps {instance}: daily mean rate x 86400 s, "
                    f"least squares over {t.points} days, slope {t.slope_per_day:+.1f} "
                    f"errors/day per day, R^2 {t.r2:.3f}, {g.error_days} days >= "
                    f"{port_errors.MIN_DAILY_ERRORS:.0f} errors"
                ),
            )
        )
    return out


def _firmware_outlook(data: ReportInput, devices: dict[int, Device]) -> list[Outlook]:
    """Devices running firmware the MSP flagged as outdated (core/report/firmware.py)."""
    if not data.firmware_rules:
        return []
    who = data.msp_name or "your IT team"
    out: list[Outlook] = []
    for row in sorted(data.firmware, key=lambda r: r.device_id):
        found = fw.check(row, data.firmware_rules)
        if found is None:
            continue
        name = device_name(devices.get(row.device_id))
        rule = found.rule
        if found.flagged:
            title = f"{name} runs firmware {row.version}, which {who} advises replacing"
        else:
            title = f"{name} runs firmware {row.version}, {who} recommends {rule.minimum} or later"
        out.append(
            Outlook(
                title=title[0].upper() + title[1:],
                device=name,
                due_s=None,
                # The page ends each detail with a full stop.
                detail=rule.reason.rstrip(". ") or "an update from the maker brings its fixes",
                technical=(
                    f"firmware {row.version!r} ({row.vendor} {row.model}) against rule vendor "
                    f"{rule.vendor!r} model {rule.model!r}: "
                    + (f"flagged {list(rule.flagged)}" if found.flagged
                       else f"minimum {rule.minimum!r}")
                ),
            )
        )  # fmt: skip
    return out


def _changes(data: ReportInput, devices: dict[int, Device]) -> list[Change]:
    out: list[Change] = []
    # A device seen again after "left" (a laptop going home for the night) did not leave.
    returned: dict[int, float] = {}
    for h in data.happenings:
        if h.kind == "device.returned" and h.device_id is not None:
            returned[h.device_id] = max(returned.get(h.device_id, 0.0), h.ts)
    for h in data.happenings:
        what = _CHANGE_WORDS.get(h.kind)
        if what is None or not data.period.start_s <= h.ts < data.period.end_s:
            continue
        if what == "left" and returned.get(h.device_id or -1, 0.0) > h.ts:
            continue
        device = devices.get(h.device_id) if h.device_id is not None else None
        name = device_name(device)
        unknown = device is not None and device.kind == "unknown" and not device.name
        if what == "joined":
            vendor = str(h.data.get("vendor") or (device.vendor if device else "") or "")
            made = f" (made by {vendor})" if vendor else " (maker unknown)"
            text = f"{name} joined the network{made}"
            if unknown:
                text += ": not identified, worth a look"
        elif what == "left":
            text = f"{name} left the network"
        else:
            text = (
                f"{name} changed address from {h.data.get('old_ip', '?')} "
                f"to {h.data.get('new_ip', '?')}"
            )
        text = text[0].upper() + text[1:]
        out.append(Change(what, name, h.ts, text, what == "joined" and unknown))
    return out


def _actions(
    data: ReportInput, alerts: dict[int, Alert], devices: dict[int, Device]
) -> list[Action]:
    out: list[Action] = []
    for h in data.happenings:
        if not data.period.start_s <= h.ts < data.period.end_s:
            continue
        if h.kind == "alert.acked":
            alert = alerts.get(int(h.data.get("alert_id", 0) or 0))
            who = str(h.data.get("by") or "a technician")
            if alert is not None:
                name = device_name(
                    devices.get(alert.device_id) if alert.device_id is not None else None
                )
                what = words.title(alert.rule, alert.key, name)
                out.append(Action(h.ts, f"{who[0].upper()}{who[1:]} took charge of: {what}"))
            else:
                out.append(Action(h.ts, f"{who[0].upper()}{who[1:]} took charge of a problem"))
        elif h.kind == "config.applied":
            out.append(Action(h.ts, "The monitoring settings were updated remotely"))
        elif h.kind == "command.done":
            out.append(Action(h.ts, f"Remote work: {h.message or 'a command was run'}"))
        elif h.kind == "update.done":
            out.append(Action(h.ts, "The monitoring appliance was updated"))
    out.sort(key=lambda a: a.ts)
    return out


def _headline(site: str, bh_pct: float | None, problems: Sequence[Problem], reached: int) -> str:
    caught = len(problems) - reached
    if bh_pct is None:
        up = "We have too little data this month to say how available your network was"
    else:
        up = f"Your network was up {words.pct(bh_pct)} of business hours"
    if not problems:
        return f"{up}, and nothing needed fixing."
    plural = "problem" if caught == 1 else "problems"
    text = f"{up}; we caught {caught} {plural} before they stopped you"
    if reached:
        text += f", and {reached} {'was' if reached == 1 else 'were'} felt at the office"
    return text + "."


METHODS = (
    "Availability: every device is checked every few minutes; each answer (or silence) counts "
    "from that check to the next. A silence longer than 2.5 check intervals (appliance off, "
    "data thinned) is unknown, never counted as up. Percentage = up / (up + down) over the known "
    "time, in business hours and in all hours; the site figure adds up the key devices "
    "(gateway, switches, Wi-Fi, servers, NAS, printers, UPS).",
    "Problems: each alert of minor severity or worse in the month, and every time a key device "
    "stopped answering in business hours. Alerts with the same key that open again within an "
    "hour of closing are one line (a storm). A down problem lasts from the first silent check "
    "to the first answer.",
    "Forecasts: least-squares line over the last 30 days of storage.used_pct / "
    "supply.level_pct; shown only with >= 10 points over >= 7 days, R^2 >= 0.6 and a slope of "
    "at least 0.05 points a day in the right direction, within a year.",
    "UPS batteries: the UPS's own yes/no readings ups.battery_replace (1: replace the "
    "battery) and ups.selftest_ok (0: the last self-test failed) over the last 30 days; a line "
    "when the last known reading is the bad one, dated by the first bad reading after the last "
    "good one. No UPS we read gives its battery's age, so none is shown.",
    "Growing transmission errors: per port, if.in_errors_ps + if.out_errors_ps over the last "
    "30 days, each day's mean rate x 86 400 s; a line when >= 10 days have readings, >= 7 of "
    "them show >= 10 errors (one burst is no trend), the least-squares line through the daily "
    "counts rises with R^2 >= 0.5, and it ends at >= 100 errors a day and at least twice its "
    "value at the first day.",
    "Firmware: each device's version as it reports it, against the MSP's list (vendor/model "
    "pattern, minimum version, flagged versions); numbers compare as numbers, leading words "
    "and 'build' are ignored, a letter suffix is a later patch, rc/beta a pre-release.",
    "Changes: the inventory's device.joined, device.left and device.ip_changed events; a device "
    "joined without a name and of unknown kind is flagged.",
)


def build_report(data: ReportInput) -> Report:
    start_s, end_s = data.period.start_s, data.period.end_s
    business = data.hours.intervals(start_s, end_s)
    devices = {d.id: d for d in data.devices}
    per_device: list[DeviceAvailability] = []
    down_runs: dict[int, list[tuple[float, float]]] = {}
    totals = [0.0] * 6
    for d in data.devices:
        summary = data.reach_summary.get(d.id)
        if summary is not None:
            if not summary.segments:
                continue
            run_list = runs_of_segments(summary.segments, summary.spacing_s, start_s, end_s)
            polls = summary.polls
        else:
            points = data.reach.get(d.id, ())
            if not points:
                continue
            run_list = runs(points, start_s, end_s)
            polls = sum(1 for ts, _ in points if start_s <= ts < end_s)
        figures = availability(run_list, business)
        outages = tuple(r for r in run_list if r.state == DOWN)
        down_runs[d.id] = [(r.start_s, r.end_s) for r in outages]
        key = is_key(d)
        per_device.append(
            DeviceAvailability(
                d.id,
                device_name(d),
                d.kind,
                d.ip,
                key,
                figures,
                outages,
                polls,
                tuple(r for r in run_list if r.state == UNKNOWN),
            )
        )
        if key:
            for i, v in enumerate(
                (figures.up_s, figures.down_s, figures.unknown_s, figures.bh_up_s,
                 figures.bh_down_s, figures.bh_unknown_s)
            ):  # fmt: skip
                totals[i] += v
    site = Availability(*totals)
    per_device.sort(key=lambda a: (not a.key, a.figures.bh_pct or 100.0, a.name))
    problems = _problems(data, devices, down_runs, business)
    reached = sum(1 for p in problems if p.affected_office)
    headline_figures = [
        Figure(words.pct(site.bh_pct), "key devices up in business hours"),
        Figure(str(len(problems) - reached), "problems caught before they stopped you"),
    ]
    if reached:
        headline_figures.append(Figure(str(reached), "problems felt at the office"))
    alerts = {a.id: a for a in data.alerts}
    appendix = tuple(
        AppendixAlert(
            a.id, a.key, a.rule, a.severity,
            device_name(devices.get(a.device_id) if a.device_id is not None else None),
            a.opened_ts, a.resolved_ts, a.message,
        )
        for a in sorted(data.alerts, key=lambda a: a.opened_ts)
        if a.opened_ts < end_s and (a.resolved_ts is None or a.resolved_ts >= start_s)
    )  # fmt: skip
    return Report(
        site=data.site or "Your site",
        msp_name=data.msp_name,
        period_label=data.period.label,
        period_start_s=start_s,
        period_end_s=end_s,
        timezone=data.hours.timezone,
        hours_text=data.hours.describe(),
        headline=_headline(data.site, site.bh_pct, problems, reached),
        figures=tuple(headline_figures[:3]),
        problems=tuple(problems),
        outlook=tuple(_outlook(data, devices)),
        availability=tuple(per_device),
        site_bh_pct=site.bh_pct,
        site_pct=site.pct,
        site_bh_unknown_s=site.bh_unknown_s,
        changes=tuple(_changes(data, devices)),
        actions=tuple(_actions(data, alerts, devices)),
        appendix_alerts=appendix,
        methods=METHODS,
        source=data.source,
    )
