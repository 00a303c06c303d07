"""The monthly site report in the console: a page per site listing its months, the report
shown inside the console, and HTML and PDF downloads (docs/report.md, docs/console.md).

Routes (any logged-in role; every handler declares :data:`Role.READ_ONLY`):

* ``GET /console/sites/{appliance}/report[?month=YYYY-MM]``: the months home holds records of
  that site (newest first; default the last calendar month in the site's time zone) and the
  chosen month's report in a frame of the standalone HTML;
* ``GET /console/sites/{appliance}/report/{YYYY-MM}.html`` and ``.pdf``: the downloads
  (``Content-Disposition: attachment``, file name ``SITE-YYYY-MM-report.EXT`` with the site name
  reduced to ASCII letters, digits and dashes); ``?view=1`` serves the same HTML bytes inline,
  for the frame;
* ``GET /api/v1/console/sites/{appliance}/reports`` (the months) and
  ``.../reports/{YYYY-MM}`` (the report's model as JSON, with the download links), listed in
  the API's OpenAPI document through :data:`API_ROUTES`.

Errors: a month not written ``YYYY-MM`` answers 400 naming the format; an unknown site 404; a
month without any record of the site 404 on the downloads and the API, and the page says so.

The HTML is self-contained (the report's stylesheet as a ``data:`` URI, the MSP's logo inline):
it opens from a mail or a disk as it shows in the console. It is white-labelled and judges
firmware with ``[report]`` of home's configuration (:data:`REPORT_CONFIG_KEY`, set by
home/server.py), as the monthly mail does, and uses the site's business hours and time zone
in force (``[notify.sites]``, or a version saved in the console; UTC 08:00-18:00 Monday to
Friday without).

Building costs seconds of CPU and, for a big site, hundreds of megabytes (docs/report.md:
reading a 250-device month 13.9 s, building 1.5 s, the PDF 7.8 s, 410 MB). So: the month is read
through a database handle of its own (SQLite: a second connection, so ingest's single writer
thread is never held for seconds; PostgreSQL: its own connections), the model, HTML and PDF are
made in worker threads, at most :data:`MAX_BUILDS` builds run at a time, and concurrent requests
for the same report share one build. A closed month's model, HTML and PDF are cached per (site,
month) for :data:`CACHE_TTL_S` or until a record of that month arrives (checked on each request
by the site's record count, then the new rows' times), at most :data:`CACHE_ENTRIES` reports.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web

from core.logs import get_log
from core.report import STYLESHEET
from core.report.build import build_report
from core.report.hours import Period, month_period, previous_month
from core.report.inputs import FirmwareRule
from core.report.model import Report
from home.console.guard import CSP, needs
from home.console.pages import render as render_page
from home.console.roles import Role
from home.console.settings import notifier_of
from home.console.state import CONSOLE_KEY, Console
from home.db import HomeDB
from home.notify.config import DEFAULT_HOURS, Hours
from home.report import render, source
from home.report.monthly import ReportConfig, business_hours, month_key

log = get_log("home.console")

REPORT_CONFIG_KEY = web.AppKey("report.config", ReportConfig)

CACHE_TTL_S = 3600.0  # a closed month's report is rebuilt at least hourly (console acks, ...)
CACHE_ENTRIES = 24  # reports kept (each: the model, ~100 KiB of HTML, ~100 KiB of PDF)
MAX_BUILDS = 1  # builds at a time: a 250-device month holds ~400 MB while it is read
MAX_MONTHS = 36  # months listed, newest first
_MARGIN_S = 3600.0  # records this long before the month count toward it (source.py reads them)
RECORD_KINDS = ("measurement", "alert", "event", "device")  # the kinds the report reads
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII digits only, as the months' keys
FIRST_YEAR, LAST_YEAR = 1970, 9998  # a month's period must end inside datetime's years
MONTH_FORMAT = "write the month as YYYY-MM, e.g. 2026-10"

Kind = Literal["html", "pdf"]


class ReportError(Exception):
    """A request the report cannot answer: ``status`` and a message naming the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_month(text: str) -> tuple[int, int]:
    """(year, month) of "YYYY-MM" (ASCII digits, years :data:`FIRST_YEAR` to
    :data:`LAST_YEAR`); ReportError 400 naming the format otherwise."""
    m = _MONTH.fullmatch(text)
    if m is None or not 1 <= int(m[2]) <= 12 or not FIRST_YEAR <= int(m[1]) <= LAST_YEAR:
        raise ReportError(
            400, f"month {text[:20]!r} is not a month; {MONTH_FORMAT}"
            f" (years {FIRST_YEAR} to {LAST_YEAR})",
        )  # fmt: skip
    return int(m[1]), int(m[2])


def file_name(site: str, month: str, ext: str) -> str:
    """``SITE-YYYY-MM-report.EXT``: the site name as ASCII letters, digits and single dashes
    (accents dropped; a header-safe name whatever the box called its site; "site" when nothing
    is left)."""
    letters = unicodedata.normalize("NFKD", site)  # "ü" -> "u" + a combining mark, dropped
    safe = "".join(
        c if c.isascii() and c.isalnum() else "-" for c in letters if not unicodedata.combining(c)
    )
    safe = re.sub(r"-{2,}", "-", safe).strip("-")[:60].strip("-") or "site"
    return f"{safe}-{month}-report.{ext}"


@dataclass(frozen=True)
class Month:
    """One month of a site with records: "2026-10", "October 2026", its period, closed or not."""

    key: str
    label: str
    period: Period
    closed: bool  # ended before now: its report no longer changes but for late records

    def as_json(self, appliance: str) -> dict[str, Any]:
        base = f"/console/sites/{appliance}/report/{self.key}"
        return {
            "month": self.key,
            "label": self.label,
            "start_s": self.period.start_s,
            "end_s": self.period.end_s,
            "closed": self.closed,
            "page": f"/console/sites/{appliance}/report?month={self.key}",
            "html": base + ".html",
            "pdf": base + ".pdf",
            "json": f"/api/v1/console/sites/{appliance}/reports/{self.key}",
        }


@dataclass(frozen=True)
class SiteMonths:
    appliance: str
    site: str
    hours: Hours
    months: tuple[Month, ...]  # newest first
    default: str  # the last calendar month, "YYYY-MM"


@dataclass
class Built:
    """A built report: the model, its standalone HTML, the PDF once asked for."""

    report: Report
    html: str
    stamp: tuple[int, int]  # (the site's record count, the highest record id) before reading
    closed: bool
    built_at: float  # time.monotonic()
    pdf: bytes | None = None


def _stamp_sync(db: HomeDB, appliance: str) -> tuple[int, int]:
    conn = db.conn
    row = conn.execute("SELECT records FROM appliances WHERE id = ?", (appliance,)).fetchone()
    top = conn.execute("SELECT MAX(id) FROM records").fetchone()
    return int(row[0] if row else 0), int(top[0] if top and top[0] is not None else 0)


def _new_rows_in_sync(
    db: HomeDB, appliance: str, since_id: int, period: Period
) -> tuple[bool, tuple[int, int]]:
    """(whether a record of ``period`` arrived after ``since_id``, the stamp now)."""
    stamp = _stamp_sync(db, appliance)
    row = db.conn.execute(
        "SELECT COUNT(*) FROM records WHERE id > ? AND appliance = ? AND ts >= ? AND ts < ?",
        (since_id, appliance, period.start_s - _MARGIN_S, period.end_s),
    ).fetchone()
    return bool(row and int(row[0])), stamp


def _has_records_sync(db: HomeDB, appliance: str, start_s: float, end_s: float) -> bool:
    conn = db.conn
    for kind in RECORD_KINDS:  # one probe of the (appliance, kind, ts) index each
        if conn.execute(
            "SELECT 1 FROM records WHERE appliance = ? AND kind = ? AND ts >= ? AND ts < ? LIMIT 1",
            (appliance, kind, start_s, end_s),
        ).fetchone():
            return True
    return False


def _span_sync(db: HomeDB, appliance: str) -> tuple[float, float] | None:
    """(first, last) record time of the site over the kinds the report reads, or None."""
    lows, highs = [], []
    for kind in RECORD_KINDS:
        # Two statements: SQLite reads a lone MIN or MAX from the index's end, not both.
        (low,) = db.conn.execute(
            "SELECT MIN(ts) FROM records WHERE appliance = ? AND kind = ?", (appliance, kind)
        ).fetchone()
        (high,) = db.conn.execute(
            "SELECT MAX(ts) FROM records WHERE appliance = ? AND kind = ?", (appliance, kind)
        ).fetchone()
        if low is not None:
            lows.append(float(low))
            highs.append(float(high))
    return (min(lows), max(highs)) if lows else None


def _months_sync(
    db: HomeDB, appliance: str, timezone: str, now: float
) -> tuple[str, list[Month]] | None:
    """(site name, its months with records, newest first), None for an unknown site."""
    row = db.conn.execute(
        "SELECT site FROM appliances WHERE id = ? AND state = 'registered'", (appliance,)
    ).fetchone()
    if row is None:
        return None
    span = _span_sync(db, appliance)
    out: list[Month] = []
    if span is not None:
        zone = ZoneInfo(timezone)
        # A box with a broken clock may have sent a record dated long before 1970: no month
        # before then can be asked for (parse_month), so none is probed (nor overflows).
        first = datetime.fromtimestamp(max(span[0], 0.0), zone)
        last = datetime.fromtimestamp(max(min(span[1], now), 0.0), zone)
        year, month = last.year, last.month
        while (year, month) >= (first.year, first.month) and year >= FIRST_YEAR:
            if len(out) >= MAX_MONTHS:
                break
            period = month_period(year, month, timezone)
            if _has_records_sync(db, appliance, period.start_s, period.end_s):
                out.append(Month(f"{year:04d}-{month:02d}", period.label, period,
                                 period.end_s <= now))  # fmt: skip
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return str(row[0] or ""), out


class Reports:
    """Builds and caches reports for one home process (one per application)."""

    def __init__(self, console: Console, app: web.Application) -> None:
        self.console = console
        self.app = app
        self.cache: OrderedDict[tuple[str, str], Built] = OrderedDict()
        self.inflight: dict[tuple[str, str, str], asyncio.Future[Built]] = {}
        self.builds = asyncio.Semaphore(MAX_BUILDS)
        self._reader: HomeDB | None = None
        self._opening: asyncio.Lock = asyncio.Lock()

    async def reader(self) -> HomeDB:
        """The report's own database handle, opened on first use."""
        async with self._opening:
            if self._reader is None:
                db = HomeDB(self.console.db.target.location)
                await db.open()
                self._reader = db
        return self._reader

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None

    def hours(self, site: str) -> Hours:
        notifier = notifier_of(self.app)
        return notifier.config.hours_for(site) if notifier is not None else DEFAULT_HOURS

    def branding(self) -> render.Branding:
        config = self.app.get(REPORT_CONFIG_KEY)
        return config.branding if config is not None else render.Branding()

    def firmware_rules(self) -> tuple[FirmwareRule, ...]:
        config = self.app.get(REPORT_CONFIG_KEY)
        return config.firmware_rules if config is not None else ()

    async def months(self, appliance: str) -> SiteMonths:
        """The site's months with records; ReportError 404 for an unknown site."""
        db = self.console.db
        now = self.console.clock()
        site = await db.call(source.site_of, db, appliance)
        hours = self.hours(site)
        found = await db.call(_months_sync, db, appliance, hours.zone.key, now)
        if found is None:
            raise ReportError(404, f"no claimed box {appliance}; see the console's sites")
        name, months = found
        default = month_key(previous_month(now, hours.zone.key), hours.zone.key)
        return SiteMonths(appliance, name, hours, tuple(months), default)

    async def month(self, appliance: str, text: str) -> tuple[SiteMonths, Month | None]:
        """The site's months and the one named ``text`` (None: no record that month)."""
        parse_month(text)
        listed = await self.months(appliance)
        return listed, next((m for m in listed.months if m.key == text), None)

    async def _shared(
        self, key: tuple[str, str, str], make: Callable[[], Awaitable[Built]]
    ) -> Built:
        """``make()`` once for concurrent callers of the same ``key``. It runs as a task of its
        own: a caller that goes away (a closed browser tab) does not cancel the others' build,
        and the result still reaches the cache."""
        task = self.inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(make())
            self.inflight[key] = task

            def done(finished: asyncio.Future[Built], key: tuple[str, str, str] = key) -> None:
                self.inflight.pop(key, None)
                if not finished.cancelled():
                    finished.exception()  # retrieved, also when every caller went away

            task.add_done_callback(done)
        return await asyncio.shield(task)

    async def _fresh(self, appliance: str, month: Month) -> Built | None:
        entry = self.cache.get((appliance, month.key))
        if entry is None:
            return None
        if not entry.closed or time.monotonic() - entry.built_at > CACHE_TTL_S:
            self.cache.pop((appliance, month.key), None)
            return None
        db = await self.reader()
        stamp = await db.call(_stamp_sync, db, appliance)
        if stamp[0] != entry.stamp[0]:  # the site sent something: of that month?
            late, stamp = await db.call(_new_rows_in_sync, db, appliance, entry.stamp[1],
                                        month.period)  # fmt: skip
            if late:
                self.cache.pop((appliance, month.key), None)
                return None
            entry.stamp = stamp
        self.cache.move_to_end((appliance, month.key))
        return entry

    async def page(self, listed: SiteMonths, month: Month) -> Built:
        """The month's model and HTML, from the cache or built (off the event loop)."""
        entry = await self._fresh(listed.appliance, month)
        if entry is not None:
            return entry
        return await self._shared(
            (listed.appliance, month.key, "html"), lambda: self._build(listed, month)
        )

    async def pdf(self, listed: SiteMonths, month: Month) -> bytes:
        built = await self.page(listed, month)
        if built.pdf is None:

            async def make() -> Built:
                if built.pdf is None:
                    started = time.monotonic()
                    async with self.builds:
                        built.pdf = await asyncio.to_thread(render.pdf, built.html)
                    log.info("console.report_built", appliance=listed.appliance,
                             month=month.key, kind="pdf", bytes=len(built.pdf),
                             seconds=round(time.monotonic() - started, 3))  # fmt: skip
                return built

            # Keyed by this build: a rebuilt report's PDF is made from its own HTML.
            await self._shared((listed.appliance, month.key, f"pdf:{id(built)}"), make)
        assert built.pdf is not None
        return built.pdf

    async def _build(self, listed: SiteMonths, month: Month) -> Built:
        started = time.monotonic()
        branding, rules = self.branding(), self.firmware_rules()
        async with self.builds:
            db = await self.reader()
            stamp = await db.call(_stamp_sync, db, listed.appliance)
            data = await db.call(
                lambda: source.load_input_sync(
                    db, listed.appliance, period=month.period,
                    hours=business_hours(listed.hours), msp_name=branding.msp_name,
                    firmware_rules=rules,
                )
            )  # fmt: skip
            report = await asyncio.to_thread(build_report, data)
            html = await asyncio.to_thread(render.html, data, report, branding, stylesheet_uri())
            del data  # the month's points: the biggest thing here, not kept
        if branding.msp_name and not report.msp_name:
            report = replace(report, msp_name=branding.msp_name)
        built = Built(report, html, stamp, month.closed, time.monotonic())
        log.info("console.report_built", appliance=listed.appliance, month=month.key,
                 kind="html", bytes=len(html),
                 seconds=round(time.monotonic() - started, 3))  # fmt: skip
        if month.closed:
            self.cache[(listed.appliance, month.key)] = built
            while len(self.cache) > CACHE_ENTRIES:
                self.cache.popitem(last=False)
        return built


REPORTS_KEY = web.AppKey("console.reports", Reports)
_STYLESHEET_URI: list[str] = []


def stylesheet_uri() -> str:
    """The report's stylesheet as a ``data:`` URI: the HTML needs nothing from home to show."""
    if not _STYLESHEET_URI:
        raw = STYLESHEET.read_bytes()
        _STYLESHEET_URI.append("data:text/css;base64," + base64.b64encode(raw).decode())
    return _STYLESHEET_URI[0]


def report_json(report: Report) -> dict[str, Any]:
    """The model as JSON: every field of core/report/model.py's dataclasses, nested."""
    doc = asdict(report)
    doc["page_one_problems"] = len(report.page_one_problems)
    return doc


# ---- handlers ----


def _reports(request: web.Request) -> Reports:
    return request.app[REPORTS_KEY]


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, content_type="text/plain")


def _frame_csp(html: str) -> str:
    """The framed report's policy: no script at all, its data: stylesheet, its one inline
    style block (the MSP's colour) by hash, images from data: (the logo), framed only here."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    )
    return (
        f"default-src 'none'; style-src data: {hashes}; img-src data:; "
        "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
    ).replace("  ", " ")


@needs(Role.READ_ONLY)
async def report_page(request: web.Request) -> web.Response:
    reports = _reports(request)
    appliance = request.match_info["appliance"]
    chosen = request.query.get("month", "")
    try:
        if chosen:
            parse_month(chosen)
        listed = await reports.months(appliance)
    except ReportError as exc:
        title = "No such site" if exc.status == 404 else "Not a month"
        return render_page(request, "message.html", status=exc.status, title=title,
                           message=str(exc))  # fmt: skip
    key = chosen or listed.default
    month = next((m for m in listed.months if m.key == key), None)
    label = month.label if month else _label(key, listed.hours.zone.key)
    response = render_page(
        request, "site_report.html", active="sites", listed=listed, key=key, month=month,
        label=label, title=f"Report {label}",
    )  # fmt: skip
    # The report shows in a frame of its own standalone HTML (same origin).
    response.headers["Content-Security-Policy"] = CSP + "; frame-src 'self'"
    return response


def _label(key: str, timezone: str) -> str:
    year, month = parse_month(key)
    return month_period(year, month, timezone).label


async def _download(request: web.Request, kind: Kind) -> web.Response:
    reports = _reports(request)
    appliance = request.match_info["appliance"]
    key = request.match_info["month"]
    try:
        listed, month = await reports.month(appliance, key)
        if month is None:
            raise ReportError(
                404, f"home holds no record of this site in {_label(key, listed.hours.zone.key)}:"
                " there is no report for that month",
            )  # fmt: skip
        if kind == "pdf":
            body: bytes = await reports.pdf(listed, month)
            content_type = "application/pdf"
        else:
            body = (await reports.page(listed, month)).html.encode()
            content_type = "text/html"
    except ReportError as exc:
        return _text(exc.status, str(exc))
    name = file_name(listed.site, key, kind)
    response = web.Response(body=body, content_type=content_type,
                            charset="utf-8" if kind == "html" else None)  # fmt: skip
    if kind == "html" and request.query.get("view") == "1":
        response.headers["Content-Disposition"] = f'inline; filename="{name}"'
        response.headers["Content-Security-Policy"] = _frame_csp(body.decode())
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    else:
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        if kind == "html":  # opened from home by mistake: still no script, nothing fetched
            response.headers["Content-Security-Policy"] = _frame_csp(body.decode())
    return response


@needs(Role.READ_ONLY)
async def download_html(request: web.Request) -> web.Response:
    return await _download(request, "html")


@needs(Role.READ_ONLY)
async def download_pdf(request: web.Request) -> web.Response:
    return await _download(request, "pdf")


def _api_error(exc: ReportError) -> web.Response:
    return web.json_response({"ok": False, "error": str(exc), "problems": []}, status=exc.status)


@needs(Role.READ_ONLY)
async def api_months(request: web.Request) -> web.Response:
    appliance = request.match_info["appliance"]
    try:
        listed = await _reports(request).months(appliance)
    except ReportError as exc:
        return _api_error(exc)
    return web.json_response({
        "appliance": appliance, "site": listed.site, "timezone": listed.hours.zone.key,
        "default": listed.default, "months": [m.as_json(appliance) for m in listed.months],
    })  # fmt: skip


@needs(Role.READ_ONLY)
async def api_report(request: web.Request) -> web.Response:
    reports = _reports(request)
    appliance = request.match_info["appliance"]
    key = request.match_info["month"]
    try:
        listed, month = await reports.month(appliance, key)
        if month is None:
            raise ReportError(404, f"home holds no record of this site in {key}: no report")
        built = await reports.page(listed, month)
    except ReportError as exc:
        return _api_error(exc)
    return web.json_response({**month.as_json(appliance), "appliance": appliance,
                              "report": report_json(built.report)})  # fmt: skip


# (method, path under /api/v1/console, handler, summary, request body fields): api.py's table.
API_ROUTES: tuple[tuple[str, str, Any, str, tuple[str, ...]], ...] = (
    ("GET", "/sites/{appliance}/reports", api_months,
     "the months with a report for a site (newest first), with their page, HTML and PDF links",
     ()),
    ("GET", "/sites/{appliance}/reports/{month}", api_report,
     "one month's report (YYYY-MM) as its model (core/report/model.py), with the PDF link; "
     "400 for a bad month, 404 for a month without records", ()),
)  # fmt: skip


async def _close(app: web.Application) -> None:
    await app[REPORTS_KEY].close()


def add_routes(app: web.Application) -> None:
    """The report's console pages and downloads (the API routes come with api.ROUTES)."""
    app[REPORTS_KEY] = Reports(app[CONSOLE_KEY], app)
    app.on_cleanup.append(_close)
    r = app.router
    r.add_get("/console/sites/{appliance}/report", report_page)
    r.add_get("/console/sites/{appliance}/report/{month}.html", download_html)
    r.add_get("/console/sites/{appliance}/report/{month}.pdf", download_pdf)
