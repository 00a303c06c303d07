"""``outpost-home report pdf|html``: one site's report for one month, written to a file, and
``outpost-home report sends``: the monthly mails sent so far (the report_sends rows)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from core.report.build import build_report
from core.report.firmware import FirmwareRuleError, parse_rules
from core.report.hours import month_period
from home.db import HomeDB, database_location
from home.notify.config import DEFAULT_HOURS, Hours, NotifyConfigError, parse
from home.report import render, source
from home.report.monthly import business_hours, sends_sync

EXIT_USAGE = 2
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _open(args: argparse.Namespace) -> HomeDB:
    db = HomeDB(database_location(args.data_dir, args.database or ""))
    db.open_sync()
    return db


def _settings(path: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """([report], [notify]) of home's TOML file; empty without one."""
    if not path:
        return {}, {}
    with open(path, "rb") as handle:
        table = tomllib.load(handle)
    return dict(table.get("report", {})), dict(table.get("notify", {}))


def cmd_write(args: argparse.Namespace) -> int:
    m = _MONTH.match(args.month)
    if m is None or not 1 <= int(m[2]) <= 12:
        print(f"outpost-home: --month {args.month!r}: write YYYY-MM, e.g. 2026-10", file=sys.stderr)
        return EXIT_USAGE
    report_table, notify_table = _settings(args.config)
    try:
        branding = render.Branding.load(
            str(report_table.get("msp_name", "")), str(report_table.get("accent", "")),
            str(report_table.get("logo_file", "")),
        )  # fmt: skip
        base = Path(args.config or ".").parent
        hours_for = parse(notify_table, base).hours_for if notify_table else None
        rules = parse_rules(report_table.get("firmware"))
    except (render.BrandingError, NotifyConfigError, FirmwareRuleError) as exc:
        print(f"outpost-home: {args.config}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    db = _open(args)
    try:
        site = source.site_of(db, args.appliance)
        if not site and db.appliance_sync(args.appliance) is None:
            print(f"outpost-home: no appliance {args.appliance!r}; see the console's boxes",
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        hours: Hours = hours_for(site) if hours_for else DEFAULT_HOURS
        period = month_period(int(m[1]), int(m[2]), hours.zone.key)
        data = source.load_input_sync(
            db, args.appliance, period=period, hours=business_hours(hours),
            msp_name=branding.msp_name, firmware_rules=rules,
        )  # fmt: skip
    finally:
        db.close_sync()
    report = build_report(data)
    page = render.html(data, report, branding)
    out = Path(args.out)
    if args.format == "pdf":
        out.write_bytes(render.pdf(page))
    else:
        out.write_text(page)
    print(f"{out}: {report.site}, {report.period_label}: {report.headline}")
    return 0


def cmd_sends(args: argparse.Namespace) -> int:
    db = _open(args)
    try:
        for appliance, month, state, attempts in sends_sync(db):
            print(json.dumps({"appliance": appliance, "month": month, "state": state,
                              "attempts": attempts}))  # fmt: skip
    finally:
        db.close_sync()
    return 0


def add_commands(sub: Any, default_data_dir: str) -> None:
    report = sub.add_parser("report", help="the monthly site report: write one, list the mails")
    rsub = report.add_subparsers(dest="report_command", required=True)
    for fmt in ("pdf", "html"):
        w = rsub.add_parser(fmt, help=f"write one site's report for one month as {fmt.upper()}")
        w.add_argument("appliance", help="the appliance id of the site")
        w.add_argument("--month", required=True, help="YYYY-MM")
        w.add_argument("--out", required=True, help="the file to write")
        w.add_argument("--config", help="home's TOML file ([report] branding, [notify] hours)")
        w.add_argument("--data-dir", default=default_data_dir)
        w.add_argument("--database", help="SQLite file or postgresql:// URL")
        w.set_defaults(func=cmd_write, format=fmt)
    sends = rsub.add_parser("sends", help="the monthly report mails sent (JSON lines)")
    sends.add_argument("--data-dir", default=default_data_dir)
    sends.add_argument("--database", help="SQLite file or postgresql:// URL")
    sends.set_defaults(func=cmd_sends)
