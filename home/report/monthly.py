"""The monthly report by email: on each site's first business day, once per site and month.

Configured in home's TOML file (``outpost-home run --config``)::

    [report]
    msp_name = "Harbour IT"          # white label: the MSP's name, colour and logo
    accent = "#0f766e"
    logo_file = "/etc/outpost-home/logo.png"
    channel = "office-mail"          # an email channel of [notify.channels] (its SMTP server)
    [report.sites."Demo Dental Practice"]
    to = ["owner@dental.example"]    # the client's contacts
    [[report.firmware]]              # firmware the MSP flags as outdated (core/report/firmware.py)
    vendor = "Brother"
    model = "HL-L2350*"
    minimum = "1.60"
    reason = "fixes a flaw in the printer's web page"

A site's business hours are home/notify's (``[notify.sites]``): the mail goes at the first
business-hours start of the month (the 1st at 08:00, or the Monday after a weekend, a holiday
skipped), with the last month's report as a PDF. Once: ``report_sends`` (home/report/schema.py)
holds one row per (appliance, month), inserted by the instance that sends it, so a restart or
a second home instance never sends it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

from core.logs import get_log
from core.report.build import build_report
from core.report.firmware import FirmwareRuleError, parse_rules
from core.report.hours import BusinessHours, Period, previous_month
from core.report.inputs import FirmwareRule
from core.report.model import Report
from home.db import HomeDB
from home.notify.channels import SendError, send_email_message
from home.notify.config import EmailChannel, Hours, NotifyConfig
from home.notify.hours import next_start
from home.report import render, source

log = get_log("home")

CHECK_EVERY_S = 300.0
LEASE_S = 900.0  # a claim older than this, never marked, is taken over (its instance died)
MAX_ATTEMPTS = 5


class ReportConfigError(ValueError):
    """The [report] table cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class ReportConfig:
    channel: EmailChannel
    contacts: Mapping[str, tuple[str, ...]]  # site name -> the client's addresses
    branding: render.Branding = field(default_factory=render.Branding)
    check_every_s: float = CHECK_EVERY_S
    firmware_rules: tuple[FirmwareRule, ...] = ()


def parse_report_config(table: Mapping[str, Any], notify: NotifyConfig | None) -> ReportConfig:
    """``[report]`` of home's TOML file; ``notify``: its parsed [notify] (the channels)."""
    known = {"msp_name", "accent", "logo_file", "channel", "sites", "check_every_s", "firmware"}
    unknown = set(table) - known
    if unknown:
        raise ReportConfigError(f"report: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    name = table.get("channel", "")
    channel = notify.channels.get(str(name)) if notify is not None else None
    if not isinstance(channel, EmailChannel):
        raise ReportConfigError(
            f"report.channel: {name!r} is not an email channel of [notify.channels]; "
            "name one (the report goes through its SMTP server)"
        )
    contacts: dict[str, tuple[str, ...]] = {}
    for site, entry in dict(table.get("sites", {})).items():
        to = entry.get("to") if isinstance(entry, dict) else None
        good = isinstance(to, list) and to and all(isinstance(a, str) and "@" in a for a in to)
        if not good:
            raise ReportConfigError(
                f'report.sites.{site!r}.to: a list of email addresses, e.g. ["owner@example.com"]'
            )
        contacts[str(site)] = tuple(to or ())
    try:
        branding = render.Branding.load(
            str(table.get("msp_name", "")), str(table.get("accent", "")),
            str(table.get("logo_file", "")),
        )  # fmt: skip
    except render.BrandingError as exc:
        raise ReportConfigError(str(exc)) from None
    every = table.get("check_every_s", CHECK_EVERY_S)
    if not isinstance(every, int | float) or every <= 0:
        raise ReportConfigError("report.check_every_s: a positive number of seconds")
    try:
        rules = parse_rules(table.get("firmware"))
    except FirmwareRuleError as exc:
        raise ReportConfigError(str(exc)) from None
    return ReportConfig(channel, contacts, branding, float(every), rules)


def business_hours(hours: Hours) -> BusinessHours:
    """home/notify's hours as the report computes with them."""
    return BusinessHours(hours.zone.key, hours.start, hours.end, hours.days, hours.holidays)


def month_key(period: Period, timezone: str) -> str:
    """ "2026-10": the month's name in report_sends."""
    return f"{datetime.fromtimestamp(period.start_s, ZoneInfo(timezone)):%Y-%m}"


def claim_sync(db: HomeDB, appliance: str, month: str, now: float) -> bool:
    """Take the (appliance, month) mail: True when this caller is to send it."""
    conn = db.conn
    fresh = conn.execute(
        "INSERT INTO report_sends (appliance, month, state, claimed_at, attempts)"
        " VALUES (?, ?, 'sending', ?, 1) ON CONFLICT (appliance, month) DO NOTHING",
        (appliance, month, now),
    )
    if fresh.rowcount == 1:
        return True
    # Taken before: only a claim whose instance died (never marked), or a failed send whose
    # back-off is over, is taken again.
    again = conn.execute(
        "UPDATE report_sends SET state = 'sending', claimed_at = ?, attempts = attempts + 1"
        " WHERE appliance = ? AND month = ? AND state IN ('sending', 'failed')"
        " AND claimed_at < ? AND attempts < ?",
        (now, appliance, month, now - LEASE_S, MAX_ATTEMPTS),
    )
    return again.rowcount == 1


def mark_sync(
    db: HomeDB, key: tuple[str, str], now: float, recipients: str, error: str = ""
) -> None:
    """Record the outcome of the (appliance, month) mail: sent, or failed with ``error``."""
    appliance, month = key
    db.conn.execute(
        "UPDATE report_sends SET state = ?, sent_at = ?, recipients = ?, error = ?"
        " WHERE appliance = ? AND month = ?",
        ("failed" if error else "sent", None if error else now, recipients, error[:500],
         appliance, month),
    )  # fmt: skip


def sends_sync(db: HomeDB) -> list[tuple[str, str, str, int]]:
    """(appliance, month, state, attempts) of every report mail, for the CLI and tests."""
    return [
        (str(a), str(m), str(s), int(n))
        for a, m, s, n in db.conn.execute(
            "SELECT appliance, month, state, attempts FROM report_sends ORDER BY month, appliance"
        )
    ]


def _appliances_sync(db: HomeDB) -> list[tuple[str, str, float]]:
    return [
        (str(i), str(site), float(at))
        for i, site, at in db.conn.execute(
            "SELECT id, site, registered_at FROM appliances WHERE site != '' ORDER BY id"
        )
    ]


def mail_text(report: Report) -> str:
    lines = [report.headline, ""]
    if report.problems:
        lines.append("Problems we caught:")
        lines += [f"- {p.title}" for p in report.page_one_problems]
        lines.append("")
    if report.outlook:
        lines.append("What is coming:")
        lines += [f"- {o.title}" for o in report.outlook[:5]]
        lines.append("")
    lines.append("The full report is attached (PDF).")
    if report.msp_name:
        lines += ["", report.msp_name]
    return "\n".join(lines)


def build_mail(
    channel: EmailChannel, to: tuple[str, ...], report: Report, pdf: bytes, month: str
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = channel.sender
    mail["To"] = ", ".join(to)
    mail["Subject"] = f"{report.site}: your network in {report.period_label}"
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid("report", channel.sender.rpartition("@")[2] or None)
    mail["X-Outpost-Report"] = month
    mail.set_content(mail_text(report))
    safe_site = "".join(c if c.isalnum() else "-" for c in report.site).strip("-") or "site"
    mail.add_attachment(
        pdf, maintype="application", subtype="pdf", filename=f"{safe_site}-{month}-report.pdf"
    )
    return mail


class MonthlyMailer:
    """Sends each configured site its last month's report on its first business day."""

    def __init__(
        self,
        db: HomeDB,
        config: ReportConfig,
        hours_for: Callable[[str], Hours],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.config = config
        self.hours_for = hours_for
        self.clock = clock

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("report.mail_check_failed")
            await asyncio.sleep(self.config.check_every_s)

    async def run_once(self) -> list[tuple[str, str]]:
        """Send what is due now; returns the (appliance, month) mails sent."""
        sent = []
        for appliance, site, registered_at in await self.db.call(_appliances_sync, self.db):
            to = self.config.contacts.get(site)
            if not to:
                continue
            hours = self.hours_for(site)
            now = self.clock()
            period = previous_month(now, hours.zone.key)
            if registered_at >= period.end_s:
                continue  # the site was not monitored that month
            if now < next_start(hours, period.end_s):
                continue  # not yet the first business day's opening
            month = month_key(period, hours.zone.key)
            if not await self.db.call(claim_sync, self.db, appliance, month, now):
                continue
            error = await self._send(
                appliance, site=site, to=to, hours=hours, period=period, month=month
            )
            await self.db.call(
                mark_sync, self.db, (appliance, month), self.clock(), ", ".join(to), error
            )
            if not error:
                sent.append((appliance, month))
        return sent

    async def _send(
        self,
        appliance: str,
        *,
        site: str,
        to: tuple[str, ...],
        hours: Hours,
        period: Period,
        month: str,
    ) -> str:
        """Build and send one report; returns the error text ('' when sent)."""
        try:
            data = await self.db.call(
                lambda: source.load_input_sync(
                    self.db,
                    appliance,
                    period=period,
                    hours=business_hours(hours),
                    msp_name=self.config.branding.msp_name,
                    firmware_rules=self.config.firmware_rules,
                )
            )
            report = await asyncio.to_thread(build_report, data)
            page = render.html(data, report, self.config.branding)
            pdf = await asyncio.to_thread(render.pdf, page)
            mail = build_mail(self.config.channel, to, report, pdf, month)
            await send_email_message(self.config.channel, mail)
        except SendError as exc:
            log.warning("report.mail_failed", appliance=appliance, month=month, error=str(exc))
            return str(exc)
        log.info("report.mailed", appliance=appliance, site=site, month=month, to=len(to))
        return ""


async def run_mailer(
    database: str, config: ReportConfig, hours_for: Callable[[str], Hours]
) -> None:
    """The mailer beside home's server (``outpost-home run`` with [report]): its own database
    handle, checking every ``check_every_s`` until cancelled."""
    db = HomeDB(database)
    await db.open()
    try:
        await MonthlyMailer(db, config, hours_for).run()
    finally:
        await db.close()
