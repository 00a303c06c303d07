"""Notifications on virtual time: real SMTP (aiosmtpd) and HTTP receivers on loopback, home's
database driven through its ingest path; the clock moves only when the test moves it."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections import Counter
from pathlib import Path

from home.db import HomeDB
from home.notify import outbox, silences
from home.notify.worker import Notifier
from simsite.harness.processes import HOME
from tests.notify_support import SECRET_TEXT, FakeClock, at, rig, rows, verify_signature


async def test_major_in_hours_one_mail_then_resolution_threads_onto_it(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))  # a Wednesday, business hours in Berlin
    async with rig(tmp_path, clock, home_database) as r:
        smtp, hooks, db, notifier, box = r.smtp, r.hooks, r.db, r.notifier, r.box
        await box.alert("device.down:7", "open", "major", "server FS1 is down")
        assert await notifier.step() == 0  # the group wait holds it
        clock.advance(29)
        assert await notifier.step() == 0
        clock.advance(2)
        assert await notifier.step() == 1
        assert len(smtp.messages) == 1
        opened = smtp.messages[0]
        assert opened["Subject"] == "[Outpost 4f3a9c2b-101] Dental: server FS1 is down"
        assert opened["To"] == "helpdesk@msp.example"
        assert opened.get_body(("html",)) is not None
        assert "/notify/ack?t=" in smtp.text(opened)
        assert hooks.on("oncall") == []  # business hours: no on-call page
        # The box sends the same batch again (lost answer): nothing new.
        await box.alert("device.down:7", "resolved", "major", "server FS1 answers again")
        clock.advance(119)
        assert await notifier.step() == 0  # resolutions wait: a quick re-open is a flap
        clock.advance(2)
        assert await notifier.step() == 1
        assert len(smtp.messages) == 2
        resolved = smtp.messages[1]
        assert resolved["Subject"] == "Re: " + opened["Subject"]
        assert resolved["In-Reply-To"] == opened["Message-ID"]
        assert resolved["References"] == opened["Message-ID"]
        assert "RESOLVED" in smtp.text(resolved)
        # Every attempt is in the delivery log, with its latency.
        log = await db.call(lambda: outbox.deliveries(db.conn))
        assert [d["result"] for d in log] == ["sent", "sent"]
        assert all(d["latency_ms"] > 0 and d["channel"] == "service" for d in log)
        # The escalation of the resolved alert was cancelled, not sent.
        clock.advance(3600)
        assert await notifier.step() == 0
        assert hooks.on("tech2") == [] and hooks.on("manager") == []


async def test_after_hours_minor_waits_for_the_digest_major_goes_to_oncall_now(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 22:00"))  # Wednesday night
    async with rig(tmp_path, clock, home_database) as r:
        smtp, hooks, notifier, box = r.smtp, r.hooks, r.notifier, r.box
        await box.alert("supply.low:5:black", "open", "minor", "printer HP: black at 8 %")
        await box.alert("device.down:7", "open", "major", "server FS1 is down")
        clock.advance(10)
        await box.alert("volume.full:3:/", "open", "warning", "nas: / is 81 % full")
        clock.advance(25)
        await notifier.step()
        # The major went out at once, to the service queue and to the on-call phone.
        assert [m["Subject"] for m in smtp.messages] == [
            "[Outpost 4f3a9c2b-102] Dental: server FS1 is down"
        ]
        oncall = hooks.on("oncall")
        assert len(oncall) == 1 and verify_signature(SECRET_TEXT, oncall[0])
        payload = oncall[0].doc
        assert payload["event"] == "alert.opened"
        assert payload["alerts"][0]["ref"] == "4f3a9c2b-102"
        assert oncall[0].headers["Idempotency-Key"] == payload["id"]
        # Nobody acknowledges: the escalation chain runs on schedule.
        clock.now_s = at("2026-12-02 22:14")
        await notifier.step()
        assert hooks.on("tech2") == []
        clock.now_s = at("2026-12-02 22:15") + 1
        await notifier.step()
        assert len(hooks.on("tech2")) == 1
        assert hooks.on("tech2")[0].doc["event"] == "alert.escalated"
        clock.now_s = at("2026-12-02 22:45") + 1
        await notifier.step()
        assert len(hooks.on("manager")) == 1
        # The minor and the warning: nothing until 08:00 site time, then one digest.
        clock.now_s = at("2026-12-03 07:59")
        await notifier.step()
        assert len(smtp.messages) == 1
        clock.now_s = at("2026-12-03 08:00")
        await notifier.step()
        assert len(smtp.messages) == 2
        digest = smtp.messages[1]
        assert (
            digest["Subject"] == "[Outpost digest] Dental: 2 alert(s) held outside business hours"
        )
        text = smtp.text(digest)
        assert "printer HP: black at 8 %" in text and "nas: / is 81 % full" in text
        clock.advance(3600)
        await notifier.step()
        assert len(smtp.messages) == 2  # one digest, once


async def test_holiday_and_weekend_hold_until_the_next_business_day(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-24 22:00"))  # Thursday; Friday the 25th is a holiday
    async with rig(tmp_path, clock, home_database) as r:
        smtp, notifier, box = r.smtp, r.notifier, r.box
        await box.alert("supply.low:5:black", "open", "minor", "printer HP: black at 8 %")
        for when in ("2026-12-25 08:00", "2026-12-26 08:00", "2026-12-28 07:59"):
            clock.now_s = at(when)
            await notifier.step()
            assert smtp.messages == [], when
        clock.now_s = at("2026-12-28 08:00")  # Monday
        await notifier.step()
        assert len(smtp.messages) == 1


async def test_gateway_down_with_its_dependants_is_one_message_naming_the_cause(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))
    async with rig(tmp_path, clock, home_database) as r:
        smtp, notifier, box = r.smtp, r.notifier, r.box
        for dev in (11, 12, 13):
            await box.alert(f"device.down:{dev}", "open", "major", f"device {dev} is down")
            clock.advance(3)
        await box.alert(
            "device.down:1", "open", "critical", "the gateway (internet access) is down"
        )
        clock.advance(3)
        await box.alert("device.down:14", "open", "major", "device 14 is down")
        clock.advance(30)
        await notifier.step()
        assert len(smtp.messages) == 1
        mail = smtp.messages[0]
        assert mail["Subject"].endswith("the gateway (internet access) is down (+4 more)")
        text = smtp.text(mail)
        assert "Probable cause: the gateway (internet access) is down" in text
        for dev in (11, 12, 13, 14):
            assert f"device {dev} is down" in text


async def test_flapping_is_one_mail_with_a_count(tmp_path: Path, home_database: str) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))
    async with rig(tmp_path, clock, home_database) as r:
        smtp, db, notifier, box = r.smtp, r.db, r.notifier, r.box
        await box.alert("device.down:7", "open", "major", "server FS1 is down")
        clock.advance(31)
        await notifier.step()
        for _ in range(3):  # up and down again, each within the resolution wait
            await box.alert("device.down:7", "resolved", "major", "FS1 answers again")
            clock.advance(60)
            await notifier.step()
            await box.alert("device.down:7", "open", "major", "server FS1 is down")
            clock.advance(60)
            await notifier.step()
        assert len(smtp.messages) == 1
        assert rows(db, "SELECT flaps, state FROM notify_threads") == [(3, "open")]
        await box.alert("device.down:7", "resolved", "major", "FS1 answers again")
        clock.advance(121)
        await notifier.step()
        assert len(smtp.messages) == 2
        assert "flapped 3 time(s)" in smtp.text(smtp.messages[1])
        assert smtp.messages[1]["In-Reply-To"] == smtp.messages[0]["Message-ID"]


async def test_refusing_smtp_is_retried_then_failed_and_told_through_the_fallback(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))
    async with rig(tmp_path, clock, home_database) as r:
        smtp, hooks, db, notifier, box = r.smtp, r.hooks, r.db, r.notifier, r.box
        smtp.refuse = True
        await box.alert("device.down:7", "open", "major", "server FS1 is down")
        clock.advance(31)
        assert await notifier.step() == 1  # attempt 1: refused
        clock.advance(9)
        assert await notifier.step() == 0  # back-off: 10 s
        clock.advance(1)
        assert await notifier.step() == 1  # attempt 2: refused
        clock.advance(19)
        assert await notifier.step() == 0  # back-off doubles: 20 s
        clock.advance(1)
        assert await notifier.step() == 1  # attempt 3 of 3: failed
        failed = await db.call(lambda: outbox.listing(db.conn, "failed"))
        assert [(f["channel"], f["attempts"]) for f in failed] == [("service", 3)]
        assert "550" in failed[0]["error"]
        log = await db.call(lambda: outbox.deliveries(db.conn))
        assert [d["result"] for d in log] == ["error"] * 3
        # The failing channel is itself an alert, sent through the fallback (Apprise json://).
        assert hooks.on("ops") == []
        clock.advance(31)
        await notifier.step()
        ops = hooks.on("ops")
        assert len(ops) == 1
        assert "notification channel service keeps failing" in ops[0].doc["title"]
        assert "550" in ops[0].doc["message"]
        # The channel heals: its next message goes out and the channel alert resolves.
        smtp.refuse = False
        await box.alert("device.down:8", "open", "major", "server FS2 is down")
        clock.advance(31)
        await notifier.step()
        assert len(smtp.messages) == 1
        clock.advance(121)
        await notifier.step()
        assert len(hooks.on("ops")) == 2
        assert "delivers again" in hooks.on("ops")[1].doc["message"]
        assert smtp.messages[0]["Subject"].endswith("server FS2 is down")


async def test_site_offline_after_missed_heartbeats_and_back(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))
    async with rig(tmp_path, clock, home_database, offline_after_s=180) as r:
        smtp, db, notifier = r.smtp, r.db, r.notifier

        def heartbeat() -> None:
            db.conn.execute("UPDATE appliances SET heartbeat_at = ?", (clock(),))

        for _ in range(4):  # heartbeats every 60 s: all well
            await db.call(heartbeat)
            clock.advance(60)
            await notifier.step()
        clock.advance(130)  # 190 s since the last heartbeat: three missed
        await notifier.step()
        clock.advance(31)
        await notifier.step()
        assert len(smtp.messages) == 1
        assert "site Dental offline" in smtp.messages[0]["Subject"]
        opened = rows(db, "SELECT state, severity FROM alerts WHERE key = 'home.site_offline'")
        assert opened == [("open", "major")]
        clock.advance(600)
        await notifier.step()
        assert len(smtp.messages) == 1  # still offline: no repeat
        await db.call(heartbeat)
        await notifier.step()
        clock.advance(121)
        await notifier.step()
        assert len(smtp.messages) == 2
        back = smtp.messages[1]
        assert back["In-Reply-To"] == smtp.messages[0]["Message-ID"]
        assert "back online after 14 min" in smtp.text(back)


async def test_a_maintenance_window_silences_one_device_until_it_ends(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))
    async with rig(tmp_path, clock, home_database) as r:
        now = clock()
        await r.db.call(
            lambda: silences.add(
                r.db.conn,
                site="Dental",
                device="7",
                key_pattern="*",
                starts_at=now,
                ends_at=now + 3600,
                reason="FS1 disk swap",
                created_by="anna",
            )
        )
        await r.box.alert("device.down:7", "open", "major", "server FS1 is down")
        await r.box.alert("device.down:8", "open", "major", "server FS2 is down")
        clock.advance(31)
        await r.notifier.step()
        assert [m["Subject"].rsplit(": ", 1)[1] for m in r.smtp.messages] == ["server FS2 is down"]
        silenced = rows(r.db, "SELECT alert_key FROM notify_threads WHERE silenced_by != ''")
        assert silenced == [("device.down:7",)]
        await r.box.alert("device.down:7", "resolved", "major", "FS1 answers again")
        clock.advance(121)
        await r.notifier.step()
        assert len(r.smtp.messages) == 1  # no resolution for what was never sent
        clock.now_s = now + 3600  # the window is over: the device notifies again
        await r.box.alert("device.down:7", "open", "major", "server FS1 is down")
        clock.advance(31)
        await r.notifier.step()
        assert r.smtp.messages[-1]["Subject"].endswith("server FS1 is down")
        assert len(r.smtp.messages) == 2


def test_silence_commands(tmp_path: Path) -> None:
    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*HOME, "notify", *argv, "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    added = cli("silence", "--site", "Dental", "--minutes", "30", "--reason", "patching")
    assert added.returncode == 0, added.stderr
    silence_id = json.loads(added.stdout)["silence"]
    listed = [json.loads(line) for line in cli("silences").stdout.splitlines()]
    assert [(s["id"], s["site"], s["reason"]) for s in listed] == [
        (silence_id, "Dental", "patching")
    ]
    assert cli("silence", "--site", "X").returncode == 2  # no end given
    assert "time zone offset" in cli("silence", "--until", "2030-01-01T10:00").stderr
    assert cli("unsilence", silence_id).returncode == 0
    assert cli("silences").stdout == ""
    assert cli("unsilence", silence_id).returncode == 1


async def test_a_box_falling_behind_is_a_warning_until_it_catches_up(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))
    async with rig(tmp_path, clock, home_database, backlog_warn_s=1800) as r:

        def heartbeat(oldest_s: float) -> None:
            doc = {"queue": {"0": 0, "1": 5400}, "oldest_unsent_age_s": oldest_s}
            r.db.conn.execute(
                "UPDATE appliances SET heartbeat_at = ?, heartbeat = ?", (clock(), json.dumps(doc))
            )

        await r.db.call(heartbeat, 1700.0)
        await r.notifier.step()
        clock.advance(60)
        await r.db.call(heartbeat, 1900.0)
        await r.notifier.step()
        clock.advance(31)
        await r.notifier.step()
        assert len(r.smtp.messages) == 1
        assert r.smtp.messages[0]["Subject"].endswith(
            "box of Dental is behind: 5400 records queued, the oldest 32 min old"
        )
        await r.db.call(heartbeat, 1200.0)  # draining, still above half: no flapping
        clock.advance(200)
        await r.notifier.step()
        assert len(r.smtp.messages) == 1
        await r.db.call(heartbeat, 300.0)
        await r.notifier.step()
        clock.advance(121)
        await r.notifier.step()
        assert len(r.smtp.messages) == 2
        assert "has caught up" in r.smtp.text(r.smtp.messages[1])


async def test_an_outage_that_reaches_home_late_is_sent_a_blip_is_not(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))
    async with rig(tmp_path, clock, home_database) as r:
        box, box_ts = r.box, at("2026-12-02 09:50")
        # The gateway was down 09:50-10:00: the box could only tell home once it was back.
        down = box.body("device.down:1", "open", "critical", "the gateway is down", ts=box_ts)
        up = box.body("device.down:1", "resolved", "critical", "gateway answers", ts=box_ts + 600)
        # A printer blinked for 5 s (within the 30 s group wait).
        blip = box.body("device.down:5", "open", "major", "printer is down", ts=box_ts + 700)
        back = box.body("device.down:5", "resolved", "major", "printer back", ts=box_ts + 705)
        await box.send(down, up, blip, back)
        clock.advance(31)
        await r.notifier.step()
        clock.advance(3600)
        await r.notifier.step()
        assert len(r.smtp.messages) == 1
        mail = r.smtp.messages[0]
        assert mail["Subject"].endswith("Dental: the gateway is down")
        assert "(resolved 2026-12-02" in r.smtp.text(mail)
        assert r.hooks.on("tech2") == []  # resolved: no escalation


async def test_a_box_thinning_its_data_is_a_warning_until_it_stops(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 09:00"))
    async with rig(tmp_path, clock, home_database) as r:

        def heartbeat(thinned: int) -> None:
            doc = {"drops": {"thinned": {"measurement": thinned}, "max_age": {"event": 3}}}
            r.db.conn.execute(
                "UPDATE appliances SET heartbeat_at = ?, heartbeat = ?", (clock(), json.dumps(doc))
            )

        await r.db.call(heartbeat, 1200)  # the first look is the baseline: no alert
        await r.notifier.step()
        clock.advance(60)
        await r.notifier.step()
        assert r.smtp.messages == []
        await r.db.call(heartbeat, 1500)
        await r.notifier.step()
        clock.advance(31)
        await r.db.call(heartbeat, 1500)
        await r.notifier.step()
        assert len(r.smtp.messages) == 1
        assert "short of storage: 1500 records thinned" in r.smtp.messages[0]["Subject"]
        clock.advance(5 * 3600)
        await r.db.call(heartbeat, 1500)
        await r.notifier.step()
        clock.advance(121)
        await r.notifier.step()
        assert len(r.smtp.messages) == 1  # 5 h quiet: not yet
        clock.advance(3600)
        await r.db.call(heartbeat, 1500)
        await r.notifier.step()
        clock.advance(121)
        await r.notifier.step()
        assert len(r.smtp.messages) == 2
        assert "no data thinned for 6 h" in r.smtp.text(r.smtp.messages[1])


async def test_two_workers_on_one_database_never_send_a_row_twice(
    tmp_path: Path, home_database: str
) -> None:
    """Two home instances' workers claiming the same due rows at the same moment (PostgreSQL:
    truly concurrent transactions): every message goes out once."""
    clock = FakeClock(at("2026-12-02 10:00"))
    async with rig(tmp_path, clock, home_database, group_wait_s=0) as r:
        for n in range(40):
            await r.box.alert(f"device.down:{n}", "open", "major", f"device {n} is down")
            clock.advance(1)
        other_db = HomeDB(home_database or tmp_path / "home.db")
        await other_db.open()
        try:
            other = Notifier(r.notifier.config, r.notifier.secret, clock)
            other.attach(other_db)
            await other.start()
            counts = await asyncio.gather(r.notifier.step(), other.step())
        finally:
            await other_db.close()
        assert sum(counts) == 40
        ids = Counter(str(m["X-Outpost-Message"]) for m in r.smtp.messages)
        assert len(ids) == 40 and max(ids.values()) == 1
        print(f"\nclaims split between the two workers: {counts}")


async def test_smtp_server_down_is_retried_then_failed_and_told_through_the_fallback(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))
    async with rig(tmp_path, clock, home_database, max_attempts=2) as r:
        await asyncio.to_thread(r.smtp.stop)  # nothing listens on its port any more
        await r.box.alert("device.down:7", "open", "major", "server FS1 is down")
        clock.advance(31)
        await r.notifier.step()
        clock.advance(10)
        await r.notifier.step()
        failed = await r.db.call(lambda: outbox.listing(r.db.conn, "failed"))
        assert len(failed) == 1 and "cannot reach 127.0.0.1" in failed[0]["error"]
        clock.advance(31)
        await r.notifier.step()
        ops = r.hooks.on("ops")
        assert len(ops) == 1 and "cannot reach 127.0.0.1" in ops[0].doc["message"]


async def test_acknowledging_by_appliance_and_key_stops_the_chain(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 22:00"))
    async with rig(tmp_path, clock, home_database) as r:
        await r.box.alert("device.down:7", "open", "major", "server FS1 is down")
        clock.advance(31)
        await r.notifier.step()

        def ack(key: str) -> bool:
            conn = r.db.conn
            conn.execute("BEGIN IMMEDIATE")
            done = r.notifier.planner.acknowledge_alert(conn, r.box.appliance, key, "console:anna")
            conn.execute("COMMIT")
            return done

        assert await r.db.call(ack, "device.down:8") is False  # no such open alert
        assert await r.db.call(ack, "device.down:7") is True
        clock.advance(3600)
        await r.notifier.step()
        assert r.hooks.on("tech2") == [] and r.hooks.on("manager") == []
        assert rows(r.db, "SELECT acked_by FROM notify_threads") == [("console:anna",)]


async def test_a_held_alert_resolved_overnight_is_in_the_digest_as_resolved(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 22:00"))
    async with rig(tmp_path, clock, home_database) as r:
        await r.box.alert("volume.full:3:/", "open", "warning", "nas: / is 81 % full")
        await r.box.alert("supply.low:5:black", "open", "minor", "printer HP: black at 8 %")
        clock.now_s = at("2026-12-02 23:00")
        await r.box.alert("volume.full:3:/", "resolved", "warning", "nas: / is 70 % full")
        await r.notifier.step()
        clock.now_s = at("2026-12-03 08:00")
        await r.notifier.step()
        clock.advance(3600)
        await r.notifier.step()
        assert len(r.smtp.messages) == 1  # the digest, and no resolution mail of its own
        text = r.smtp.text(r.smtp.messages[0])
        assert "nas: / is 81 % full (resolved 2026-12-02 22:00 UTC)" in text
        assert "printer HP: black at 8 % (OPEN)" in text
