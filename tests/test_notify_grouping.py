"""Routing and grouping on what the box's alert records carry (docs/uplink.md): the device kind
(``data.kind``) for rules on ``kinds``, and a dead gateway's suppressed dependants
(``data.suppressed``) named in its one message. Virtual time, real SMTP and HTTP receivers,
home's database through its ingest path (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.notify_support import ALWAYS_ROUTE, FakeClock, at, rig

PRINTERS_QUIET = """
[[notify.routes]]
kinds = ["printer"]
channels = []
"""


def _behind(*names: str) -> list[dict[str, Any]]:
    return [
        {"device_id": 10 + n, "name": name, "ip": f"198.18.0.{60 + n}", "kind": "server"}
        for n, name in enumerate(names)
    ]


async def test_gateway_down_names_the_cause_and_lists_what_the_box_suppressed(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))
    async with rig(tmp_path, clock, home_database, extra=ALWAYS_ROUTE) as r:
        behind = _behind("FS1", "FS2", "DC1")
        data = {"kind": "router", "suppressed": behind, "suppressed_total": 3}
        await r.box.send(
            r.box.body("device.down:1", "open", "critical", "the gateway is down", data=data)
        )
        clock.advance(31)
        await r.notifier.step()
        assert len(r.smtp.messages) == 1
        mail = r.smtp.messages[0]
        assert mail["Subject"].endswith("Dental: the gateway is down")
        text = r.smtp.text(mail)
        assert "Not answering behind it (3 device(s), not alerted separately):" in text
        for n, name in enumerate(("FS1", "FS2", "DC1")):
            assert f"  - {name} (198.18.0.{60 + n}), server" in text
        (page,) = r.hooks.on("psa")  # the webhook carries the kind and the same list
        alert = page.doc["alerts"][0]
        assert alert["device_kind"] == "router"
        assert [d["name"] for d in alert["dependants"]] == ["FS1", "FS2", "DC1"]


async def test_an_outage_reported_late_lists_every_dependant_of_its_resolution(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))
    async with rig(tmp_path, clock, home_database) as r:
        box, box_ts = r.box, at("2026-12-02 09:50")
        # The box could tell home only when the gateway was back: the opening knew of one
        # silent device, the resolution of all three.
        first = {"kind": "router", "suppressed": _behind("FS1"), "suppressed_total": 1}
        every = {"kind": "router", "suppressed": _behind("FS1", "FS2", "DC1")}
        down = box.body("device.down:1", "open", "critical", "the gateway is down",
                        ts=box_ts, data=first)  # fmt: skip
        up = box.body("device.down:1", "resolved", "critical", "gateway answers",
                      ts=box_ts + 600, data=every)  # fmt: skip
        await box.send(down, up)
        clock.advance(31)
        await r.notifier.step()
        clock.advance(3600)
        await r.notifier.step()
        assert len(r.smtp.messages) == 1  # one mail, not one per device nor a second one
        text = r.smtp.text(r.smtp.messages[0])
        assert "(resolved 2026-12-02" in text
        assert "Not answering behind it (3 device(s)" in text
        assert all(f"  - {n} (" in text for n in ("FS1", "FS2", "DC1"))


async def test_rules_on_kinds_match_the_kind_the_record_carries(
    tmp_path: Path, home_database: str
) -> None:
    clock = FakeClock(at("2026-12-02 10:00"))
    async with rig(tmp_path, clock, home_database, extra=PRINTERS_QUIET) as r:
        box = r.box
        await box.send(
            box.body(
                "supply.low:5:black", "open", "minor", "HP toner low", data={"kind": "printer"}
            ),
            box.body("disk.usage:6:/", "open", "minor", "NAS disk 85 %", data={"kind": "nas"}),
        )
        clock.advance(31)
        await r.notifier.step()
        subjects = [m["Subject"] for m in r.smtp.messages]
        assert len(subjects) == 1 and subjects[0].endswith("NAS disk 85 %"), subjects
