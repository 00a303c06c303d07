"""The monthly site report in the MSP console (issue 15), against a real ``outpost-home``
process on both database back ends.

One site's last calendar month arrives through home's real signed ingest from a light
appliance (simsite.harness.signed_client): four devices (router, file server, printer, PC),
a reachability poll every 15 minutes, the file server down 14:00-16:00 on the month's second
Wednesday with its alert opened and resolved, and the device records of the inventory. A
second site whose name is hostile HTML sends one day. Home runs with ``[report]`` (branding, a
firmware rule the printer's 1.52 falls below), Berlin business hours (``[notify.sites."*"]``)
and ``rollup_after_days = 400`` (the month's raw measurements stay).

Checked: anonymous requests refused (pages: redirect to the login; API: 401); a read-only user
views and downloads; the PDF starts with %PDF and its text (pdftotext) shows the site and the
headline; the HTML download is the bytes the console frames; a bad month 400 naming the
format, an unknown site 404, a month without records says so; the hostile name is text and
the file name is sanitised; concurrent requests build once (home's log), a second download of
the closed month is served from the cache (much faster), a record of that month arriving
rebuilds it and a record of another month does not. In Chromium: the report page opened from
the site page, screenshots at desktop and phone width (test-artifacts/screenshots/
console-report-*.png, copied to docs/console/), no console error, no sideways scroll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from core.report.hours import Period, previous_month
from simsite.harness.home import Home
from simsite.harness.signed_client import LightAppliance, new_identity
from tests.browser_support import browser, screenshot, wait_js, watch
from tests.uplink_support import HOME

pytestmark = pytest.mark.usefixtures("home_backend")

ZONE = "Europe/Berlin"
SITE = "Harbour Dental"
HOSTILE_SITE = "<script>alert(1)</script>"
MSP = "Harbour IT"
PASSWORD = "a long console password"
STEP_S = 900.0  # a reachability poll every 15 minutes
BATCH = 2000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# (device id, kind, name, address)
DEVICES = (
    (1, "router", "Gateway", "198.18.0.1"),
    (2, "server", "File server", "198.18.0.10"),
    (3, "printer", "Office printer", "198.18.0.20"),
    (4, "workstation", "Reception PC", "198.18.0.61"),
)
CONFIG = f"""
rollup_after_days = 400

[notify]
public_url = "https://127.0.0.1:8443"
offline_after_s = 0
backlog_warn_s = 0

[notify.channels.office]
type = "email"
host = "127.0.0.1"
port = 9
security = "none"
from = "outpost@msp.example"
to = ["help@msp.example"]

[notify.sites."*"]
timezone = "{ZONE}"
start = "08:00"
end = "18:00"
days = ["mon", "tue", "wed", "thu", "fri"]

[report]
msp_name = "{MSP}"
accent = "#0f766e"
channel = "office"

[[report.firmware]]
vendor = "Brother"
minimum = "1.60"
reason = "a security fix"
"""
FIRMWARE_LINE = f"Office printer runs firmware 1.52, {MSP} recommends 1.60 or later"


@dataclass
class Site:
    home: Home
    tls: ssl.SSLContext
    box: LightAppliance
    hostile: LightAppliance
    period: Period
    month: str  # "YYYY-MM" of ``period``
    down: tuple[float, float]  # the file server's outage

    @property
    def appliance(self) -> str:
        return self.box.identity.appliance_id


def _cli(home: Home, *args: str) -> str:
    done = subprocess.run([*HOME, *args, *home.where()], check=True, capture_output=True,
                          text=True)  # fmt: skip
    return done.stdout


def _second_wednesday(period: Period) -> date:
    first = datetime.fromtimestamp(period.start_s, ZoneInfo(ZONE)).date()
    wednesdays = [
        first + timedelta(days=n) for n in range(14) if (first + timedelta(days=n)).weekday() == 2
    ]
    return wednesdays[1]


def _at(day: date, hour: int) -> float:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(ZONE)).timestamp()


def _device(device_id: int, kind: str, name: str, ip: str, at: float) -> dict[str, Any]:
    return {"change": "joined", "device_id": device_id, "mac": f"00:11:32:aa:bb:{device_id:02x}",
            "ip": ip, "name": name, "kind": kind, "vendor": "Acme", "model": "", "source": "snmp",
            "state": "present", "watched": True, "first_seen": at, "last_seen": at}  # fmt: skip


def _reachable(device_id: int, value: int) -> dict[str, Any]:
    return {"device_id": device_id, "metric": "device.reachable", "instance": "", "unit": "",
            "value": value}  # fmt: skip


async def _send(
    box: LightAppliance, http: aiohttp.ClientSession, home: Home, tls: ssl.SSLContext,
    records: list[tuple[float, int, str, dict[str, Any]]],
) -> None:  # fmt: skip
    """(ts, lane, kind, body) records through home's signed ingest, in batches."""
    for n in range(0, len(records), BATCH):
        chunk = records[n : n + BATCH]
        doc = box.batch([(lane, kind, body) for _ts, lane, kind, body in chunk], chunk[0][0])
        for rec, (ts, *_rest) in zip(doc["records"], chunk, strict=True):
            rec["ts"] = ts
        status, answer = await box.post(http, home.url, doc, tls)
        assert status == 200 and answer["accepted"] == len(chunk), answer


def _month_records(
    period: Period, down: tuple[float, float]
) -> list[tuple[float, int, str, dict[str, Any]]]:
    out: list[tuple[float, int, str, dict[str, Any]]] = [
        (period.start_s, 0, "device", _device(d, kind, name, ip, period.start_s))
        for d, kind, name, ip in DEVICES
    ]
    printer = out[2][3]  # judged by the [[report.firmware]] rule: older than 1.60
    printer.update(vendor="Brother", model="HL-L2350DW", version="1.52")
    ts = period.start_s
    while ts < period.end_s:
        for d, *_ in DEVICES:
            silent = d == 2 and down[0] <= ts < down[1]
            out.append((ts, 1, "measurement", _reachable(d, 0 if silent else 1)))
        ts += STEP_S
    alert = {"id": 101, "key": "device.down:2", "rule": "device.down", "device_id": 2,
             "severity": "major", "message": "File server stopped answering"}  # fmt: skip
    out.append((down[0] + STEP_S, 0, "alert", {**alert, "state": "open", "ts": down[0] + STEP_S}))
    out.append((down[1], 0, "alert", {**alert, "state": "resolved", "ts": down[1]}))
    out.sort(key=lambda r: r[0])
    return out


@contextlib.asynccontextmanager
async def _site(tmp_path: Path) -> AsyncIterator[Site]:
    (tmp_path / "home.toml").write_text(CONFIG)
    home = Home(tmp_path / "home", tmp_path / "ca", config=tmp_path / "home.toml")
    home.prepare()
    home.start()
    try:
        (tmp_path / "pw").write_text(PASSWORD + "\n")
        _cli(home, "create-user", "rita", "--role", "read-only", "--password-file",
             str(tmp_path / "pw"))  # fmt: skip
        tls = ssl.create_default_context(cafile=str(home.ca_file))
        box, hostile = LightAppliance(new_identity()), LightAppliance(new_identity())
        home.register(box.identity, site=SITE)
        home.register(hostile.identity, site=HOSTILE_SITE)
        period = previous_month(time.time(), ZONE)
        day = _second_wednesday(period)
        down = (_at(day, 14), _at(day, 16))
        async with aiohttp.ClientSession() as http:
            await _send(box, http, home, tls, _month_records(period, down))
            one_day = [(period.start_s + 3600 + n * STEP_S, 1, "measurement", _reachable(1, 1))
                       for n in range(96)]  # fmt: skip
            await _send(hostile, http, home, tls, one_day)
        month = f"{datetime.fromtimestamp(period.start_s, ZoneInfo(ZONE)):%Y-%m}"
        yield Site(home, tls, box, hostile, period, month, down)
    finally:
        home.stop()


@dataclass
class Answer:
    status: int
    headers: Any
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


class Browserless:
    """A logged-in (or anonymous) client keeping home's Secure cookie by hand."""

    def __init__(self, http: aiohttp.ClientSession, site: Site) -> None:
        self.http, self.url, self.tls = http, site.home.url, site.tls
        self.cookies: dict[str, str] = {}

    async def get(self, path: str) -> Answer:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers = {"Cookie": cookie} if cookie else {}
        async with self.http.get(self.url + path, headers=headers, ssl=self.tls,
                                 allow_redirects=False) as response:  # fmt: skip
            for name, morsel in response.cookies.items():
                self.cookies[name] = morsel.value
            return Answer(response.status, response.headers, await response.read())

    async def login(self, name: str) -> None:
        page = await self.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        async with self.http.post(
            self.url + "/console/login", ssl=self.tls, allow_redirects=False,
            data={"name": name, "password": PASSWORD, "csrf": csrf.group(1)},
            headers={"Cookie": cookie, "Origin": self.url},
        ) as response:  # fmt: skip
            assert response.status == 303, await response.text()
            for key, morsel in response.cookies.items():
                self.cookies[key] = morsel.value


def _built(home: Home, appliance: str, month: str, kind: str) -> int:
    """How many times home built this report (its log's console.report_built lines)."""
    lines = home.log_path.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if "console.report_built" in line and f"appliance={appliance}"
               in line and f"month={month}" in line and f"kind={kind}" in line)  # fmt: skip


def _words(text: str) -> str:
    """Whitespace (non-breaking spaces, pdftotext's line breaks) as single spaces."""
    return " ".join(text.replace("\ufb01", "fi").replace("\ufb02", "fl").split())


def _pdf_text(pdf: bytes, folder: Path) -> str:
    assert shutil.which("pdftotext"), "poppler-utils (pdftotext) is needed: make deps installs it"
    path = folder / "report.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True)
    return _words(done.stdout)


async def test_report_in_the_console(tmp_path: Path) -> None:
    async with _site(tmp_path) as site, aiohttp.ClientSession() as http:
        a, month = site.appliance, site.month
        page_path = f"/console/sites/{a}/report"
        pdf_path, html_path = f"{page_path}/{month}.pdf", f"{page_path}/{month}.html"

        # Anonymous: pages and downloads send to the login, the API answers 401.
        anon = Browserless(http, site)
        for path in (page_path, pdf_path, html_path):
            answer = await anon.get(path)
            assert answer.status == 303 and "/console/login" in answer.headers["Location"], path
        answer = await anon.get(f"/api/v1/console/sites/{a}/reports")
        assert answer.status == 401

        rita = Browserless(http, site)  # read-only
        await rita.login("rita")
        site_page = await rita.get(f"/console/sites/{a}")
        assert site_page.status == 200 and f'href="{page_path}"' in site_page.text

        # The months: last month (the default), nothing else.
        listed = await rita.get(f"/api/v1/console/sites/{a}/reports")
        assert listed.status == 200, listed.text
        doc = json.loads(listed.body)
        assert doc["default"] == month and [m["month"] for m in doc["months"]] == [month], doc
        assert doc["months"][0]["closed"] is True and doc["months"][0]["pdf"] == pdf_path

        # Concurrent first requests: one build of the HTML, one of the PDF. Meanwhile the site's
        # page (home's database thread, the event loop) answers before the build is done.
        started = time.monotonic()
        burst = asyncio.gather(*(rita.get(p) for p in (pdf_path, pdf_path, html_path,
                                                        pdf_path, html_path)))  # fmt: skip
        await asyncio.sleep(0.3)
        beside_started = time.monotonic()
        beside = await rita.get(f"/console/sites/{a}")
        beside_s = time.monotonic() - beside_started
        assert beside.status == 200 and not burst.done(), "the site page waited for the build"
        answers = await burst
        first_s = time.monotonic() - started
        print(f"site page during the build: {beside_s * 1000:.0f} ms")
        assert all(x.status == 200 for x in answers), [x.status for x in answers]
        pdfs = {x.body for x in answers if x.headers["Content-Type"] == "application/pdf"}
        assert len(pdfs) == 1
        pdf = pdfs.pop()
        assert pdf.startswith(b"%PDF")
        assert _built(site.home, a, month, "html") == 1 and _built(site.home, a, month, "pdf") == 1
        # The second download of the closed month comes from the cache.
        started = time.monotonic()
        again = await rita.get(pdf_path)
        cached_s = time.monotonic() - started
        assert again.body == pdf and _built(site.home, a, month, "pdf") == 1
        assert cached_s < first_s / 5, (first_s, cached_s)
        print(f"report PDF: first {first_s * 1000:.0f} ms (built), then {cached_s * 1000:.1f} ms")

        safe = "Harbour-Dental"
        assert again.headers["Content-Disposition"] == (
            f'attachment; filename="{safe}-{month}-report.pdf"'
        )
        model = await rita.get(f"/api/v1/console/sites/{a}/reports/{month}")
        assert model.status == 200, model.text
        report = json.loads(model.body)
        assert report["pdf"] == pdf_path and report["report"]["site"] == SITE
        assert report["report"]["msp_name"] == MSP
        coming = [o["title"] for o in report["report"]["outlook"]]
        assert coming == [FIRMWARE_LINE], coming  # [report]'s rules, as in the monthly mail
        headline = _words(report["report"]["headline"])
        down = [p for p in report["report"]["problems"] if p["rule"] == "device.down"]
        assert len(down) == 1 and down[0]["affected_office"], report["report"]["problems"]
        assert abs(down[0]["started_s"] - site.down[0]) <= STEP_S
        assert abs(down[0]["ended_s"] - site.down[1]) <= STEP_S
        text = _pdf_text(pdf, tmp_path)
        assert SITE in text and headline in text and MSP in text, (headline, text[:600])

        # The page frames the same HTML that is downloaded.
        page = await rita.get(page_path)
        assert page.status == 200 and f'data-month="{month}"' in page.text
        frame = re.search(r'<iframe[^>]* src="([^"]+)"', page.text)
        assert frame and frame.group(1) == f"{html_path}?view=1", page.text
        shown, download = await rita.get(frame.group(1)), await rita.get(html_path)
        assert shown.body == download.body and headline in download.text
        assert download.headers["Content-Disposition"] == (
            f'attachment; filename="{safe}-{month}-report.html"'
        )
        assert "script-src" not in shown.headers["Content-Security-Policy"]  # none may run
        assert "frame-ancestors 'self'" in shown.headers["Content-Security-Policy"]
        assert _built(site.home, a, month, "html") == 1

        # Errors: a bad month names the format, an unknown site, a month without records.
        for path in (f"{page_path}?month=2026-13", f"{page_path}/october.pdf",
                     f"{page_path}/2026-1.html"):  # fmt: skip
            answer = await rita.get(path)
            assert answer.status == 400 and "YYYY-MM" in answer.text, (path, answer.text)
        answer = await rita.get(f"/api/v1/console/sites/{a}/reports/2026-00")
        assert answer.status == 400 and "YYYY-MM" in answer.text
        nobody = "/console/sites/op-nobody/report"
        for path in (nobody, f"{nobody}/{month}.pdf", "/api/v1/console/sites/op-nobody/reports"):
            assert (await rita.get(path)).status == 404, path
        before = previous_month(site.period.start_s + 3600, ZONE)
        empty = f"{datetime.fromtimestamp(before.start_s, ZoneInfo(ZONE)):%Y-%m}"
        answer = await rita.get(f"{page_path}?month={empty}")
        assert (
            answer.status == 200 and 'id="no-data"' in answer.text and "<iframe" not in answer.text
        )
        assert f"no record of this site in {before.label}" in answer.text
        answer = await rita.get(f"{page_path}/{empty}.pdf")
        assert answer.status == 404 and "no record" in answer.text

        # The hostile site's name is text everywhere; its file name is sanitised.
        h = site.hostile.identity.appliance_id
        page = await rita.get(f"/console/sites/{h}/report?month={month}")
        assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
        hostile_pdf = await rita.get(f"/console/sites/{h}/report/{month}.pdf")
        assert hostile_pdf.headers["Content-Disposition"] == (
            f'attachment; filename="script-alert-1-script-{month}-report.pdf"'
        )
        assert HOSTILE_SITE in _pdf_text(hostile_pdf.body, tmp_path)
        hostile_html = await rita.get(f"/console/sites/{h}/report/{month}.html")
        assert "<script>alert" not in hostile_html.text and "&lt;script&gt;" in hostile_html.text

        # A record of another month leaves the cache alone; a late record of this one rebuilds.
        now = time.time()
        await _send(site.box, http, site.home, site.tls,
                    [(now, 1, "measurement", _reachable(1, 1))])  # fmt: skip
        assert (await rita.get(pdf_path)).body == pdf and _built(site.home, a, month, "html") == 1
        late = site.period.end_s - 60
        await _send(site.box, http, site.home, site.tls,
                    [(late, 1, "measurement", _reachable(4, 1))])  # fmt: skip
        rebuilt = await rita.get(pdf_path)
        assert rebuilt.status == 200 and rebuilt.body.startswith(b"%PDF")
        assert _built(site.home, a, month, "html") == 2 and _built(site.home, a, month, "pdf") == 2


async def test_report_page_in_chromium(tmp_path: Path) -> None:
    async with _site(tmp_path) as site, browser() as b:
        a = site.appliance
        context = await b.new_context(viewport=DESKTOP, ignore_https_errors=True)  # type: ignore[attr-defined]
        page = await context.new_page()
        seen = watch(page)
        await page.goto(site.home.url + f"/console/sites/{a}")
        assert "/console/login" in page.url
        await page.fill("input[name=name]", "rita")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(site.home.url + f"/console/sites/{a}")
        await page.click("#site-report")
        await page.wait_for_selector("#report-frame")
        assert f"month={site.month}" in await page.get_attribute("#months a.active", "href")

        async def framed(p: Any) -> Any:
            element = await p.wait_for_selector("#report-frame")
            frame = await element.content_frame()
            await frame.wait_for_selector("#headline")
            return frame

        frame = await framed(page)
        headline = await frame.inner_text("#headline")
        assert headline.startswith("Your network was up"), headline
        assert SITE in await frame.inner_text(".rhead") and MSP in await frame.inner_text(".rhead")
        # The report's stylesheet applies inside the frame (a data: URI the frame's policy allows).
        accent = await frame.evaluate(
            "getComputedStyle(document.documentElement).getPropertyValue('--accent')"
        )
        assert accent.strip() == "#0f766e", accent
        await screenshot(page, "console-report-desktop")

        phone = await context.new_page()
        seen_phone = watch(phone)
        await phone.set_viewport_size(PHONE)
        await phone.goto(site.home.url + f"/console/sites/{a}/report")
        frame = await framed(phone)
        await wait_js(phone, "document.readyState === 'complete'")
        await screenshot(phone, "console-report-phone")
        wide = await phone.evaluate("document.documentElement.scrollWidth")
        assert wide <= PHONE["width"] + 1, f"the report page is {wide} px wide on a phone"
        inner = await frame.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert inner[0] <= inner[1] + 1, f"the framed report scrolls sideways: {inner}"
        await context.close()
        assert seen.errors == [] and seen_phone.errors == [], (seen.errors, seen_phone.errors)
