"""Hostile input against what the console gained last: the notification settings editor, the
site report pages and downloads, and firmware versions in the report's comparison.

One real home application (home.server.create_app on loopback, SQLite under a temporary
folder) for the module, with a [notify] table of an SMTP channel that logs in with a password
file and a webhook whose URL carries a token. Each test names the defect it pins:

* a month of year 9999 or written in non-ASCII digits answered 500 or "no record";
* a record dated long before 1970 (a box with a broken clock) broke the site's report page and
  API (500), or made each request probe every month since (seconds of SQL);
* a deeply nested TOML document made the settings save fail with a RecursionError (500);
* a kept SMTP password placeholder followed an edit of the host, so "send test" would log in
  to the admin's server with home's stored password;
* a secret file named in the editor could be any file home reads (its CA key), sent as the
  SMTP password to the admin's server;
* a refusal ("cannot read /path") named the stored secret file the editor hides, in the 422
  and the audit log;
* a version string of 10,000 digits made the firmware comparison raise.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from core.report import firmware
from core.report.hours import previous_month
from core.report.inputs import DeviceFirmware
from home.console.api import PREFIX
from home.console.roles import Role
from home.notify import stored
from home.notify.config import parse
from home.notify.worker import Notifier
from home.report.monthly import month_key
from tests.console_support import Client, Served, client, seed_site, served

SMTP_PASSWORD = "smtp-pw-breakit-4417"
HOOK_SECRET = "hook-secret-breakit-9921"
URL_TOKEN = "url-token-breakit-3306"
NOTIFY = f"""
[notify]
fallback = "mail"
[notify.channels.mail]
type = "email"
host = "127.0.0.1"
port = 9
security = "starttls"
username = "outpost"
password_file = "smtp.password"
from = "outpost@msp.example"
to = ["helpdesk@msp.example"]
[notify.channels.psa]
type = "webhook"
url = "http://127.0.0.1:9/psa?token={URL_TOKEN}"
secret_file = "hook.secret"
"""
MODULE = pytest.mark.asyncio(loop_scope="module")
SLOW_MONTHS_S = 2.0  # listing the months of a site: 0.2 s here; 4 s when 1900 months were probed


@dataclass
class Home:
    served: Served
    admin: Client
    reader: Client
    month: str  # the last calendar month (UTC), which every seeded site has a record of


def _measurement(seq: int, ts: float) -> dict[str, Any]:
    body = {"device_id": 1, "metric": "device.reachable", "instance": "", "unit": "", "value": 1}
    return {"seq": seq, "lane": 0, "kind": "measurement", "ts": ts, "body": body}


async def _site(s: Served, appliance: str, records: list[dict[str, Any]]) -> None:
    await seed_site(s, appliance, f"Site {appliance}", heartbeat_age_s=10.0)
    doc = {"stream": "s", "records": records}
    answer = await s.db.call(s.db.ingest_sync, appliance, f"nonce-{appliance}", doc)
    assert answer["accepted"] == len(records), answer


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def home(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Home]:
    tmp = tmp_path_factory.mktemp("breakit")
    (tmp / "smtp.password").write_text(SMTP_PASSWORD + "\n")
    (tmp / "hook.secret").write_text(HOOK_SECRET + "\n")
    table = tomllib.loads(NOTIFY)["notify"]
    notifier = Notifier(parse(table, tmp), b"k" * 32, time.time, stored.Source(table, tmp))
    period = previous_month(time.time(), "UTC")
    async with served(tmp, notifier=notifier) as s:
        await _site(s, "box-ok", [_measurement(1, period.start_s + 60.0)])
        # A box whose clock was wrong once: one record dated 315,000 years before 1970.
        await _site(s, "box-bc", [_measurement(1, -1e13), _measurement(2, period.start_s + 60.0)])
        # ... and one whose stray record is from year 68: 1900 months before this one.
        await _site(s, "box-68", [_measurement(1, -6e10), _measurement(2, period.start_s + 60.0)])
        await s.user("ann", Role.ADMIN)
        await s.user("rita", Role.READ_ONLY)
        async with client(s.url) as admin, client(s.url) as reader:
            assert await admin.login("ann") == 303
            assert await reader.login("rita") == 303
            yield Home(s, admin, reader, month_key(period, "UTC"))


async def _put(c: Client, toml: str, base: int) -> tuple[int, dict[str, Any]]:
    headers = {"Origin": c.url, "X-CSRF-Token": c.csrf,
               "Cookie": "; ".join(f"{k}={v}" for k, v in c.cookies.items())}  # fmt: skip
    body = {"toml": toml, "base_version": base}
    async with c.http.put(c.url + PREFIX + "/settings/notify", json=body, headers=headers) as r:
        return r.status, dict(await r.json())


async def _editor(c: Client) -> tuple[str, int]:
    status, body, _ = await c.get(PREFIX + "/settings/notify")
    assert status == 200, body
    doc = json.loads(body)
    return str(doc["document"]), int(doc["version"])


def _no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (SMTP_PASSWORD, HOOK_SECRET, URL_TOKEN, "smtp.password", "hook.secret"):
            assert secret not in text, secret


@MODULE
async def test_months_out_of_range_or_in_other_digits_are_refused_with_400(home: Home) -> None:
    c = home.reader
    status, _, _ = await c.get(f"/console/sites/box-ok/report?month={home.month}")
    assert status == 200
    arabic = "".join(chr(0x660 + int(d)) if d.isdigit() else d for d in home.month)
    for month in ("9999-12", "9999-01", "1969-12", "0000-00", arabic, home.month + "\n"):
        quoted = month.encode().hex()
        quoted = "".join(f"%{quoted[i : i + 2]}" for i in range(0, len(quoted), 2))
        status, page, _ = await c.get(f"/console/sites/box-ok/report?month={quoted}")
        assert status == 400 and "YYYY-MM" in page, (month, status, page[:300])
        for ext in ("html", "pdf"):
            status, text, _ = await c.get(f"/console/sites/box-ok/report/{quoted}.{ext}")
            assert status == 400 and "YYYY-MM" in text, (month, ext, status, text[:300])
        status, text, _ = await c.get(f"{PREFIX}/sites/box-ok/reports/{quoted}")
        assert status == 400 and "YYYY-MM" in text, (month, status, text[:300])


@MODULE
async def test_a_record_dated_before_1970_does_not_break_the_sites_report(home: Home) -> None:
    for appliance in ("box-bc", "box-68"):
        started = time.perf_counter()
        status, body, _ = await home.reader.get(f"{PREFIX}/sites/{appliance}/reports")
        took = time.perf_counter() - started
        assert status == 200, body[:500]
        assert '"month": "' + home.month + '"' in body
        assert took < SLOW_MONTHS_S, (appliance, took)
        status, page, _ = await home.reader.get(f"/console/sites/{appliance}/report")
        assert status == 200 and 'id="report-frame"' in page, page[:500]


@MODULE
async def test_deeply_nested_toml_is_refused_with_a_message(home: Home) -> None:
    text, base = await _editor(home.admin)
    nested = {
        "arrays": text + "\n[notify.sites.x]\nholidays = " + "[" * 3000 + "]" * 3000 + "\n",
        "inline tables": text.replace(
            'fallback = "mail"', "x = " + "{a=" * 2000 + "1" + "}" * 2000
        ),
        "dotted tables": text + "\n[notify." + "a." * 40000 + "b]\n",
    }
    for name, doc in nested.items():
        status, answer = await _put(home.admin, doc, base)
        assert status == 422 and "nested more than" in answer["error"], (name, status, answer)
        status, page, _ = await home.admin.post(
            "/console/settings", {"toml": doc, "base_version": str(base)}
        )
        assert status == 422 and "nested more than" in page, (name, status)
    assert await home.served.rows("SELECT COUNT(*) FROM notify_settings") == [(0,)]
    rows = await home.served.rows(
        "SELECT outcome, detail FROM console_audit WHERE action = 'notify.settings'"
    )
    assert len(rows) == 2 * len(nested) and {r[0] for r in rows} == {"refused"}


@MODULE
async def test_a_kept_smtp_password_does_not_follow_a_new_host(home: Home) -> None:
    text, base = await _editor(home.admin)
    assert 'password_file = "(kept: set)"' in text
    redirected = {
        "host": text.replace('host = "127.0.0.1"', 'host = "198.18.0.66"'),
        "security": text.replace('security = "starttls"', 'security = "none"'),
    }
    for key, doc in redirected.items():
        status, answer = await _put(home.admin, doc, base)
        assert status == 422, (key, status, answer)
        assert f"notify.channels.mail.{key} changed" in answer["error"], answer
        _no_secret(str(answer))
    assert await home.served.rows("SELECT COUNT(*) FROM notify_settings") == [(0,)]
    # Another field of the same channel: the password is kept, as before.
    doc = text.replace('"helpdesk@msp.example"', '"oncall@msp.example"')
    status, answer = await _put(home.admin, doc, base)
    assert status == 200, answer
    (row,) = await home.served.rows("SELECT toml FROM notify_settings")
    saved = tomllib.loads(row[0])["notify"]["channels"]["mail"]
    assert saved["password_file"] == "smtp.password" and saved["to"] == ["oncall@msp.example"]
    # Naming the file again with the new host is the admin's explicit choice: accepted.
    text, base = await _editor(home.admin)
    doc = text.replace('host = "127.0.0.1"', 'host = "localhost"').replace(
        'password_file = "(kept: set)"', 'password_file = "smtp.password"'
    )
    status, answer = await _put(home.admin, doc, base)
    assert status == 200, answer
    rows = await home.served.rows("SELECT detail FROM console_audit")
    _no_secret(*(str(r) for r in rows))


@MODULE
async def test_a_secret_file_named_in_the_console_stays_in_the_config_folder(home: Home) -> None:
    """Home reads a secret file and sends it on: an SMTP password to the channel's host. A file
    outside the configuration's folder (home's CA key, a database password) would reach the
    admin's server with "send test"."""
    outside = home.served.data_dir.parent / "outside.key"
    outside.write_text("not for the console\n")
    (home.served.data_dir / "new.password").write_text("in the folder\n")
    text, base = await _editor(home.admin)
    for name in (str(outside), "../outside.key", "/etc/passwd", "sub/../../outside.key"):
        doc = text.replace('password_file = "(kept: set)"', f'password_file = "{name}"')
        status, answer = await _put(home.admin, doc, base)
        assert status == 422, (name, status, answer)
        assert "notify.channels.mail.password_file" in answer["error"], answer
        assert "configuration's folder" in answer["error"], answer
    doc = text.replace('password_file = "(kept: set)"', 'password_file = "new.password"')
    status, answer = await _put(home.admin, doc, base)
    assert status == 200, answer


@MODULE
async def test_a_refusal_does_not_name_a_stored_secret_file(home: Home) -> None:
    """The kept SMTP password's file became unreadable on this instance: the 422 and its audit
    entry say so without the file's name, which the editor hides."""
    text, base = await _editor(home.admin)
    assert 'password_file = "(kept: set)"' in text
    newest = await home.served.rows("SELECT toml FROM notify_settings ORDER BY version DESC")
    table = tomllib.loads(newest[0][0])["notify"] if newest else tomllib.loads(NOTIFY)["notify"]
    name = table["channels"]["mail"]["password_file"]  # the earlier tests may have renamed it
    password = home.served.data_dir / name
    password.rename(password.with_suffix(".moved"))
    try:
        status, answer = await _put(home.admin, text.replace("port = 9", "port = 25"), base)
    finally:
        password.with_suffix(".moved").rename(password)
    assert status == 422 and "cannot read" in answer["error"], answer
    rows = await home.served.rows("SELECT detail FROM console_audit")
    for shown in (answer["error"], *(str(r) for r in rows)):
        assert name not in shown and str(password) not in shown, shown


def test_firmware_versions_of_any_length_and_digits_compare() -> None:
    huge = "9" * 10_000
    assert firmware.older_than("1.2", huge) and not firmware.older_than(huge, "1.2")
    assert firmware.older_than(huge, "1" + "0" * 10_000)
    assert firmware.same_version("0" * 5000 + "7", "7")
    arabic = "\u0661\u066b\u0665\u0662"  # "1.52" in Arabic-Indic digits and separator
    assert firmware.same_version(arabic, "1.52") and firmware.older_than(arabic, "1.60")
    assert firmware.version_key("") is None and firmware.version_key("abc") is None
    rules = firmware.parse_rules([{"vendor": "[", "model": "*[!", "minimum": "2"}])
    device = DeviceFirmware(1, huge, "[", "HL[!")
    assert firmware.check(device, rules) is None
    assert firmware.check(DeviceFirmware(1, "1.9", "[", "HL[!"), rules) is not None
