"""The monthly report at home (issue 15): the same month as tests/test_report_month.py, sent
through the box's outbox to home's real ingest (records, device inventory), plus what the MSP
did at home (a console acknowledgement, a configuration the box applied); the report from
home's data as HTML and a WeasyPrint PDF of at most four pages before the appendix, whose page
images (pdftoppm) are saved under test-artifacts/screenshots/report-pdf-*.png."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import time as dtime
from pathlib import Path

import pytest

from core.config import parse_config
from core.report.build import build_report
from core.report.hours import month_period
from core.report.inputs import ReportInput
from core.report.model import Report
from core.report.words import ENGINEERING_WORDS
from home.db import HomeDB
from home.notify.config import EmailChannel, Hours, parse
from home.remote import sync_sync
from home.report import render, source
from home.report.monthly import (
    MonthlyMailer,
    ReportConfig,
    ReportConfigError,
    claim_sync,
    parse_report_config,
    sends_sync,
)
from simsite.harness.paths import REPO
from simsite.harness.report_month import (
    CONFIG,
    GATEWAY_IP,
    Truth,
    build_month,
    local,
    send_to_home,
)
from tests.notify_support import BERLIN, FakeClock, SmtpSink
from web import report_data

APPLIANCE = "box-demo"
SITE = "Demo Dental Practice"
SHOTS = REPO / "test-artifacts" / "screenshots"
INTERVAL_S = 300.0
CONSOLE_ACK_S = local(2026, 10, 20, 10, 5)  # the UPS on battery, taken in the console
CONFIG_PUSH_S = local(2026, 10, 21, 11, 0)


@pytest.fixture(scope="module")
def home_month() -> Iterator[tuple[HomeDB, Path, Truth]]:
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    folder = Path(tempfile.mkdtemp(prefix="report-home-", dir=base))
    db = HomeDB(folder / "home.db")
    try:
        box_db = folder / "outpost.db"
        truth, _ = asyncio.run(build_month(box_db, interval_s=INTERVAL_S, forward=True))
        db.open_sync()
        db.register_sync(APPLIANCE, "test-key", SITE)
        assert send_to_home(box_db, db, APPLIANCE) > 100_000
        # What home/console/actions.acknowledge writes when a technician takes an alert
        # (autocommit: one statement).
        db.conn.execute(
            "INSERT INTO console_alert_state (appliance, key, acked_by, acked_at)"
            " VALUES (?, 'ups.on_battery:6', 'Sam', ?)",
            (APPLIANCE, CONSOLE_ACK_S),
        )
        # The box reports a pushed configuration as applied (its signed /sync call).
        sync_sync(
            db,
            APPLIANCE,
            "nonce-config-applied",
            {
                "config_reports": [
                    {"version": 2, "outcome": "applied", "reason": "changed: polling",
                     "at": CONFIG_PUSH_S}
                ],
                "command_results": [],
                "config_version": 2,
            },
        )  # fmt: skip
        yield db, box_db, truth
    finally:
        db.close_sync()
        shutil.rmtree(folder, ignore_errors=True)


def _home_report(db: HomeDB) -> tuple[ReportInput, Report]:
    config = parse_config(CONFIG)
    data = source.load_input_sync(
        db,
        APPLIANCE,
        period=month_period(2026, 10, "Europe/Berlin"),
        hours=config.site.hours(),
        msp_name="Harbour IT",
    )
    return data, build_report(data)


def _box_report(box_db: Path) -> Report:
    config = parse_config(CONFIG)
    with sqlite3.connect(box_db) as conn:
        data = report_data.load_input(
            conn,
            site=config.site.name,
            period=month_period(2026, 10, "Europe/Berlin"),
            hours=config.site.hours(),
            gateway_ip=GATEWAY_IP,
        )
    return build_report(data)


def test_home_reports_what_the_box_reports(home_month: tuple[HomeDB, Path, Truth]) -> None:
    db, box_db, truth = home_month
    _, home = _home_report(db)
    box = _box_report(box_db)
    assert home.site == SITE and home.msp_name == "Harbour IT"
    assert [(p.title, p.started_s, p.ended_s) for p in home.problems] == [
        (p.title, p.started_s, p.ended_s) for p in box.problems
    ]
    assert len(home.problems) == 6
    assert home.site_bh_pct == pytest.approx(box.site_bh_pct, abs=1e-9)
    assert [o.due_s for o in home.outlook] == [o.due_s for o in box.outlook]
    # The same things coming (the UPS battery, the growing errors, the forecasts); home holds
    # no port labels (the box's topology), so it names the port as the switch does.
    assert len(home.outlook) == 4
    assert [o.title for o in home.outlook] == [
        o.title.replace('connection "front desk" (port Gi0/12)', 'connection on port "Gi0/12"')
        for o in box.outlook
    ]
    assert [o.detail for o in home.outlook] == [o.detail for o in box.outlook]
    joined = [c for c in home.changes if c.kind == "joined"]
    assert len(joined) == 1 and joined[0].needs_look
    assert abs(joined[0].ts - truth.unknown_joined_s) <= INTERVAL_S
    # What the MSP did: the box-page ack, the console ack and the configuration push.
    texts = [(a.ts, a.text) for a in home.actions]
    assert [t for _, t in texts] == [
        "A technician took charge of: File server stopped answering",
        "Sam took charge of: Server room UPS ran on battery (a power cut)",
        "The monitoring settings were updated remotely",
    ], texts
    assert texts[1][0] == CONSOLE_ACK_S and texts[2][0] == CONFIG_PUSH_S
    ups = next(p for p in home.problems if p.rule == "ups.on_battery")
    assert ups.acknowledged


def _engineering_words(text: str) -> list[str]:
    found = []
    for word in ENGINEERING_WORDS:
        flags = 0 if any(c.isupper() for c in word) else re.IGNORECASE
        if re.search(rf"\b{re.escape(word)}\b", text, flags):
            found.append(word)
    return found


def test_pdf_is_short_plain_and_saved_as_images(home_month: tuple[HomeDB, Path, Truth]) -> None:
    db, _, _ = home_month
    data, report = _home_report(db)
    branding = render.Branding.load("Harbour IT", "#0f766e")
    page_html = render.html(data, report, branding)
    assert "--accent: #0f766e" in page_html
    before, total = render.pdf_pages_before_appendix(page_html)
    pdf = render.pdf(page_html)
    assert pdf.startswith(b"%PDF")
    if shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils is not installed (make deps installs it): no page images")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("report-pdf-*.png"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.pdf"
        path.write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-png", "-r", "60", str(path), str(SHOTS / "report-pdf")], check=True
        )
        pages = [
            subprocess.run(
                ["pdftotext", "-f", str(n), "-l", str(n), str(path), "-"],
                check=True, capture_output=True, text=True,
            ).stdout
            for n in range(1, total + 1)
        ]  # fmt: skip
    images = sorted(SHOTS.glob("report-pdf-*.png"))
    assert 1 <= before <= 4, (before, total)  # after the images: a failure can be looked at
    assert len(images) == total
    assert "Your network was up 99.8" in pages[0]
    assert "Harbour IT" in pages[0]
    for number, text in enumerate(pages[:before], start=1):
        assert _engineering_words(text) == [], (number, _engineering_words(text))
    assert "Technical appendix" in pages[before]


# ---- the monthly email


async def test_monthly_email_once_per_site_and_month_across_restarts(
    home_month: tuple[HomeDB, Path, Truth],
) -> None:
    db, _, _ = home_month
    # The box was registered in September (the fixture registered it at the real time).
    db.conn.execute(
        "UPDATE appliances SET registered_at = ? WHERE id = ?", (local(2026, 9, 1), APPLIANCE)
    )
    sink = SmtpSink()
    sink.start()
    try:
        channel = EmailChannel(
            name="office-mail", host="127.0.0.1", port=sink.port, security="none",
            sender="reports@harbour.example", to=("noc@harbour.example",),
        )  # fmt: skip
        config = ReportConfig(
            channel, {SITE: ("owner@dental.example",)}, render.Branding.load("Harbour IT")
        )
        hours = Hours(BERLIN, dtime(8), dtime(18), frozenset(range(5)), frozenset())
        clock = FakeClock(local(2026, 11, 1, 9, 0))  # Sunday 1 November: not a business day

        def mailer(database: HomeDB) -> MonthlyMailer:
            return MonthlyMailer(database, config, lambda _site: hours, clock)

        first = mailer(db)
        assert await first.run_once() == []
        clock.now_s = local(2026, 11, 2, 7, 59)  # Monday, a minute before opening
        assert await first.run_once() == []
        # A home instance claims the mail at 08:00 and dies before sending it.
        clock.now_s = local(2026, 11, 2, 8, 0)
        assert claim_sync(db, APPLIANCE, "2026-10", clock())
        # Restarted (a new database handle and mailer): the claim is held for the lease.
        again = HomeDB(db.target.location)
        again.open_sync()
        try:
            restarted = mailer(again)
            clock.now_s = local(2026, 11, 2, 8, 5)
            assert await restarted.run_once() == []
            assert sink.messages == []
            clock.now_s = local(2026, 11, 2, 8, 16)  # the dead claim's lease is over
            assert await restarted.run_once() == [(APPLIANCE, "2026-10")]
            assert await restarted.run_once() == []
            clock.now_s = local(2026, 11, 2, 14, 0)
            assert await mailer(again).run_once() == []  # a third start: still once
        finally:
            again.close_sync()
        assert await first.run_once() == []
        assert sends_sync(db) == [(APPLIANCE, "2026-10", "sent", 2)]
        assert len(sink.messages) == 1
        mail = sink.messages[0]
        assert mail["To"] == "owner@dental.example"
        assert mail["Subject"] == f"{SITE}: your network in October 2026"
        body = mail.get_body(("plain",))
        assert body is not None
        assert "Your network was up 99.8" in body.get_content()
        (pdf,) = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
        assert pdf.get_filename() == "Demo-Dental-Practice-2026-10-report.pdf"
        assert pdf.get_content().startswith(b"%PDF")
    finally:
        sink.stop()


def test_cli_writes_a_sites_pdf_and_lists_the_mails(
    home_month: tuple[HomeDB, Path, Truth], tmp_path: Path
) -> None:
    db, _, _ = home_month
    out = tmp_path / "october.pdf"
    base = [sys.executable, "-m", "home.cli", "report"]
    where = ["--database", db.target.location, "--data-dir", str(tmp_path)]
    done = subprocess.run(
        [*base, "pdf", APPLIANCE, "--month", "2026-10", "--out", str(out), *where],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"%PDF")
    assert "October 2026: Your network was up" in done.stdout
    bad = subprocess.run(
        [*base, "html", APPLIANCE, "--month", "October", "--out", str(out), *where],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr
    sends = subprocess.run(
        [*base, "sends", *where], capture_output=True, text=True, cwd=REPO, check=True
    )
    rows = [json.loads(line) for line in sends.stdout.splitlines()]
    assert all(r["appliance"] == APPLIANCE for r in rows)


def test_report_settings_name_the_fix() -> None:
    notify = parse(
        {"channels": {"office-mail": {"type": "email", "host": "127.0.0.1", "port": 25,
                                      "security": "none", "from": "r@msp.example",
                                      "to": ["noc@msp.example"]}}},
        REPO,
    )  # fmt: skip
    good = parse_report_config(
        {"channel": "office-mail", "msp_name": "Harbour IT", "accent": "#0f766e",
         "sites": {SITE: {"to": ["owner@dental.example"]}}},
        notify,
    )  # fmt: skip
    assert good.contacts == {SITE: ("owner@dental.example",)}
    assert good.firmware_rules == ()
    rules = parse_report_config(
        {"channel": "office-mail",
         "firmware": [{"vendor": "Brother", "minimum": "1.60", "reason": "a security fix"}]},
        notify,
    ).firmware_rules  # fmt: skip
    assert [(r.vendor, r.model, r.minimum, r.reason) for r in rules] == [
        ("Brother", "*", "1.60", "a security fix")
    ]
    for table, fix in (
        (
            {"channel": "office-mail", "firmware": [{"vendor": "Brother", "minimum": "latest"}]},
            r"report\.firmware\[0\]\.minimum: 'latest' has no number",
        ),
        ({"channel": "office-mail", "firmware": {"vendor": "Brother"}}, "a list of rules"),
        ({"channel": "pager"}, "not an email channel"),
        ({"channel": "office-mail", "sites": {SITE: {"to": "owner"}}}, "a list of email"),
        ({"channel": "office-mail", "accent": "teal"}, "not a colour"),
        ({"channel": "office-mail", "logo_file": "/nonexistent/logo.png"}, "cannot read"),
        ({"channel": "office-mail", "colour": "#000000"}, "unknown keys"),
    ):
        with pytest.raises(ReportConfigError, match=fix):
            parse_report_config(table, notify)
