"""Alerts still open when their maintenance window ends are notified then (docs/notifications.md
"Maintenance windows"): as if they opened at that moment (group wait, routing, escalation from
then); one resolved inside the window never is; a window ended early releases at once; an
overlapping window that still covers the alert keeps it quiet until it ends too. Virtual time,
real SMTP and HTTP receivers, SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from home.notify import silences
from tests.notify_support import FakeClock, Rig, at, rig, rows


async def _silence(r: Rig, device: str, starts_at: float, ends_at: float) -> str:
    return str(
        await r.db.call(
            lambda: silences.add(
                r.db.conn, site="Dental", device=device, key_pattern="*", starts_at=starts_at,
                ends_at=ends_at, reason="disk swap", created_by="anna",
            )
        )
    )  # fmt: skip


def _subjects(r: Rig) -> list[str]:
    return [str(m["Subject"]).rsplit(": ", 1)[1] for m in r.smtp.messages]


async def test_open_at_the_window_end_is_notified_then_resolved_inside_is_not(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))  # a Wednesday, business hours in Berlin
    async with rig(tmp_path, clock, home_database) as r:
        start = clock()
        await _silence(r, "7", start, start + 3600)
        await _silence(r, "8", start, start + 3600)
        await r.box.alert("device.down:7", "open", "major", "server FS1 is down")
        await r.box.alert("device.down:8", "open", "major", "server FS2 is down")
        clock.advance(600)
        await r.box.alert("device.down:8", "resolved", "major", "FS2 answers again")
        clock.now_s = start + 3599
        assert await r.notifier.step() == 0
        assert r.smtp.messages == []
        clock.now_s = start + 3600  # the window ends: FS1 is still down
        assert await r.notifier.step() == 0  # the group wait runs from now
        clock.advance(31)
        assert await r.notifier.step() == 1
        assert _subjects(r) == ["server FS1 is down"]
        assert "Still open when its maintenance window ended" in r.smtp.text(r.smtp.messages[0])
        # Escalation runs from the window's end, not from the opening: tech2 after 15 min.
        clock.now_s = start + 3600 + 899
        await r.notifier.step()
        assert r.hooks.on("tech2") == []
        clock.now_s = start + 3600 + 901
        await r.notifier.step()
        assert len(r.hooks.on("tech2")) == 1
        # Released once: later rounds send nothing more; its resolution threads onto it.
        clock.advance(60)
        await r.notifier.step()
        assert len(r.smtp.messages) == 1
        await r.box.alert("device.down:7", "resolved", "major", "FS1 answers again")
        clock.advance(121)
        await r.notifier.step()
        assert len(r.smtp.messages) == 2
        assert r.smtp.messages[1]["In-Reply-To"] == r.smtp.messages[0]["Message-ID"]


async def test_ended_early_releases_at_once_an_overlapping_window_keeps_it_quiet(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))
    async with rig(tmp_path, clock, home_database) as r:
        start = clock()
        first = await _silence(r, "7", start, start + 3600)
        await _silence(r, "7", start + 600, start + 1800)  # a second window, overlapping
        await r.box.alert("device.down:7", "open", "major", "server FS1 is down")
        clock.advance(900)
        assert await r.db.call(lambda: silences.end(r.db.conn, first, clock()))
        clock.advance(31)
        await r.notifier.step()
        assert r.smtp.messages == []  # the second window still covers it
        moved = rows(r.db, "SELECT silenced_by FROM notify_threads")
        assert moved[0][0] not in ("", first)
        clock.now_s = start + 1800  # the second ends
        await r.notifier.step()
        clock.advance(31)
        await r.notifier.step()
        assert _subjects(r) == ["server FS1 is down"]
