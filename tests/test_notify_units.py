"""Business hours across DST and holidays, route matching, back-off, and the migration of a
database made before home had migrations."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

from home.db import AlertChange, HomeDB
from home.migrations import BASE_SCHEMA, MIGRATIONS
from home.notify.config import parse
from home.notify.hours import in_hours, next_start
from home.notify.outbox import backoff_s
from home.notify.routing import Subject, decide
from home.sql import Connection
from tests.notify_support import BERLIN, at

CONFIG = """
[notify.channels.mail]
type = "email"
host = "127.0.0.1"
from = "o@msp.example"
to = ["h@msp.example"]
[notify.channels.pager]
type = "email"
host = "127.0.0.1"
from = "o@msp.example"
to = ["p@msp.example"]
[[notify.routes]]
sites = ["Bakery"]
kinds = ["printer"]
channels = []
[[notify.routes]]
keys = ["ups.*"]
channels = ["pager"]
[notify.defaults]
service = ["mail"]
oncall = ["pager"]
[notify.sites."*"]
timezone = "Europe/Berlin"
holidays = ["2026-04-03"]
"""


def test_business_hours_follow_the_site_clock_across_dst_and_holidays(tmp_path: Path) -> None:
    hours = parse(tomllib.loads(CONFIG)["notify"], tmp_path).hours_for("any site")
    assert hours.zone == BERLIN
    # Saturday before the spring DST change: Monday 08:00 CEST, which is 06:00 UTC.
    start = next_start(hours, at("2026-03-28 22:00"))
    assert start == at("2026-03-30 08:00")
    assert start - at("2026-03-28 22:00") == (34 * 3600) - 3600  # one hour lost to DST
    assert in_hours(hours, at("2026-03-30 08:00"))
    assert not in_hours(hours, at("2026-03-30 07:59"))
    assert not in_hours(hours, at("2026-03-30 18:00"))
    # Good Friday (a configured holiday) and the weekend: Monday 6 April.
    assert next_start(hours, at("2026-04-02 18:30")) == at("2026-04-06 08:00")
    assert not in_hours(hours, at("2026-04-03 10:00"))


def test_routes_first_match_wins_and_info_never_notifies(tmp_path: Path) -> None:
    config = parse(tomllib.loads(CONFIG)["notify"], tmp_path)
    day, night = at("2026-12-02 10:00"), at("2026-12-02 23:00")
    # A rule with no channels silences what it matches (the bakery's printers).
    assert (
        decide(config, Subject("Bakery", "major", "printer", "supply.empty:4:black"), day).channels
        == ()
    )
    assert decide(
        config, Subject("Dental", "major", "printer", "supply.empty:4:black"), day
    ).channels == ("mail",)
    assert decide(
        config, Subject("Dental", "warning", "ups", "ups.on_battery:2"), night
    ).channels == ("pager",)
    assert decide(config, Subject("Dental", "info", "", "device.new:9"), day).channels == ()
    held = decide(config, Subject("Dental", "minor", "nas", "volume.full:3:/"), night)
    assert held.held and held.due_at == at("2026-12-03 08:00")
    urgent = decide(config, Subject("Dental", "critical", "router", "device.down:1"), night)
    assert urgent.channels == ("mail", "pager") and not urgent.held
    assert decide(
        config, Subject("Dental", "critical", "router", "device.down:1"), day
    ).channels == ("mail",)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n, 2.0, 30.0) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_database_from_before_migrations_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "home.db"
    old = sqlite3.connect(path)
    for statement in BASE_SCHEMA:
        old.execute(statement)
    old.execute(
        "INSERT INTO appliances (id, site, public_key, registered_at) VALUES ('op-1', 'A', 'k', 1)"
    )
    old.commit()
    old.close()
    db = HomeDB(path)
    db.open_sync()
    try:
        version = db.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        assert version == MIGRATIONS[-1][0]
        assert db.conn.execute("SELECT id, site FROM appliances").fetchall() == [("op-1", "A")]
        assert db.conn.execute("SELECT COUNT(*) FROM notifications").fetchone()[0] == 0
    finally:
        db.close_sync()
    again = HomeDB(path)  # opening again applies nothing twice
    again.open_sync()
    try:
        count = again.conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0]
        assert count == len(MIGRATIONS)
    finally:
        again.close_sync()


def test_the_documented_example_configuration_is_valid(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "notifications.md").read_text()
    start = text.index("# /etc/outpost-home/home.toml")
    example = text[start : text.index("```", start)]
    (tmp_path / "smtp.password").write_text("x\n")
    (tmp_path / "pagerduty.url").write_text("pagerduty://key@token\n")
    config = parse(tomllib.loads(example)["notify"], tmp_path)
    assert set(config.channels) == {"helpdesk", "anna", "ben", "oncall-phone", "manager"}
    night = at("2026-12-01 22:00")  # a Tuesday
    down = decide(config, Subject("Dental Practice", "major", "server", "device.down:7"), night)
    assert down.channels == ("helpdesk", "oncall-phone")
    assert [s.channels for s in down.escalation] == [("anna",), ("ben",), ("manager",)]
    bakery = Subject("Bakery Miller", "major", "printer", "supply.empty:3:black")
    assert decide(config, bakery, night).channels == ()


def test_a_failing_alert_hook_never_stops_ingest(tmp_path: Path, home_database: str) -> None:
    db = HomeDB(home_database)
    db.open_sync()
    try:

        def broken(conn: Connection, change: AlertChange) -> None:
            conn.execute(
                "INSERT INTO notify_threads (ref, appliance, alert_key, severity, state,"
                " opened_at) VALUES ('x', ?, ?, 'major', 'open', 0)",
                (change.appliance, change.key),
            )
            raise RuntimeError("a bug in notifications")

        db.alert_hooks.append(broken)
        db.register_sync("op-1", "k", "Dental")
        body = {"key": "device.down:7", "id": 1, "state": "open", "severity": "major"}
        doc = {"stream": "s", "records": [
            {"seq": 1, "lane": 0, "kind": "alert", "ts": 1.8e9, "body": body}]}  # fmt: skip
        answer = db.ingest_sync("op-1", "n1", doc)
        assert answer["accepted"] == 1
        assert db.conn.execute("SELECT state FROM alerts").fetchall() == [("open",)]
        # The hook's own writes were undone with it.
        assert db.conn.execute("SELECT COUNT(*) FROM notify_threads").fetchone()[0] == 0
    finally:
        db.close_sync()
