"""The console's JSON API with API tokens: OpenAPI covers every route, what the pages show, and
the actions (acknowledging through home/notify so escalation stops, silencing through a notify
maintenance window, refusals with the problem named)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from home import remote
from home.console.api import PREFIX
from home.console.roles import Role
from home.notify import silences
from home.notify.planner import THREAD_COLUMNS
from tests.console_support import client, seed_alert, seed_site, served

pytestmark = pytest.mark.usefixtures("home_backend")


async def test_openapi_describes_every_api_route(tmp_path: Path, home_database: str) -> None:
    async with served(tmp_path, home_database) as s:
        await s.user("ann", Role.ADMIN)
        token = await s.token("ann", Role.READ_ONLY)
        async with client(s.url) as c:
            status, _, answer = await c.get(
                PREFIX + "/openapi.json", headers={"Authorization": f"Bearer {token}"}
            )
            doc = await answer.json()
        assert status == 200 and doc["openapi"].startswith("3.")
        served_routes = {
            (r.method.lower(), r.resource.canonical)
            for r in s.app.router.routes()
            if r.resource is not None and r.resource.canonical.startswith(PREFIX)
            and not r.resource.canonical.endswith("openapi.json") and r.method != "HEAD"
        }  # fmt: skip
        described = {(m, p) for p, ops in doc["paths"].items() for m in ops}
        assert served_routes == described
        for ops in doc["paths"].values():
            for op in ops.values():
                assert "role" in op["description"]


async def test_token_reads_the_fleet_and_technician_acknowledges_through_notify(
    tmp_path: Path, home_database: str
) -> None:
    async with served(tmp_path, home_database) as s:
        await s.user("tom", Role.TECHNICIAN)
        read = {"Authorization": f"Bearer {await s.token('tom', Role.READ_ONLY)}"}
        tech = {"Authorization": f"Bearer {await s.token('tom', Role.TECHNICIAN)}"}
        await seed_site(s, "op-ok", "Fine Co", heartbeat_age_s=5)
        await seed_site(s, "op-a", "Dental", heartbeat_age_s=5)
        await seed_alert(s, "op-a", "ups.on_battery:3", "major", "UPS on battery")
        now = time.time()
        # home/notify's thread of the alert, with an escalation step still to come.
        thread = {"ref": "ref1", "appliance": "op-a", "alert_key": "ups.on_battery:3",
                  "box_id": "9", "site": "Dental", "severity": "major", "rule": "ups",
                  "device_kind": "ups", "message": "UPS on battery", "state": "open",
                  "opened_at": now, "resolved_at": None, "acked_by": "", "acked_at": None,
                  "flaps": 0}  # fmt: skip
        columns = THREAD_COLUMNS.split(", ")
        await s.call(lambda conn: conn.execute(
            f"INSERT INTO notify_threads ({THREAD_COLUMNS}) VALUES"
            f" ({', '.join('?' for _ in columns)})", [thread[c] for c in columns]))  # fmt: skip
        await s.call(lambda conn: conn.execute(
            "INSERT INTO notifications (id, ref, site, channel, event, severity, held, created_at,"
            " due_at, next_at) VALUES ('ref1.escalate1.boss', 'ref1', 'Dental', 'boss',"
            " 'escalate', 'major', 0, ?, ?, ?)", (now, now + 900, now + 900)))  # fmt: skip
        async with client(s.url) as c:
            status, _, answer = await c.get(PREFIX + "/sites", headers=read)
            sites = (await answer.json())["sites"]
            assert [x["appliance"] for x in sites] == ["op-a", "op-ok"]  # worst first
            assert sites[0]["health"] == "red" and sites[0]["alerts"]["major"] == 1
            assert sites[0]["oldest_unacked_major"] == "UPS on battery"
            body = {"appliance": "op-a", "key": "ups.on_battery:3"}
            status, _, _ = await c.post(PREFIX + "/alerts/ack", headers=read, json_body=body)
            assert status == 403
            status, _, answer = await c.post(PREFIX + "/alerts/ack", headers=tech, json_body=body)
            done = await answer.json()
            assert status == 200 and done["escalation_stopped"] and done["notify_ref"] == "ref1"
            status, _, answer = await c.post(
                PREFIX + "/alerts/silence", headers=tech, json_body={**body, "minutes": 120}
            )
            assert status == 200
            status, _, answer = await c.get(PREFIX + "/alerts", headers=read)
            [alert] = (await answer.json())["alerts"]
            assert alert["acked_by"] == "tom" and alert["silenced"]
            status, _, answer = await c.get(PREFIX + "/sites/op-a", headers=read)
            doc = await answer.json()
            site = doc["site"]
            assert site["health"] == "green" and site["silenced"] == 1  # silenced: not counted
            # The alert's notification history, with the escalation the acknowledgement stopped.
            assert [(n["event"], n["state"], n["error"]) for n in doc["notifications"]] == [
                ("escalate", "cancelled", "acknowledged")
            ]
        assert await s.rows("SELECT acked_by FROM notify_threads WHERE ref = 'ref1'") == [
            ("tom (console)",)
        ]
        assert await s.rows("SELECT state FROM notifications") == [("cancelled",)]
        covering = await s.call(silences.covering, "Dental", "ups.on_battery:3", time.time() + 60)
        assert covering is not None and covering.created_by == "tom"
        assert await s.call(silences.covering, "Dental", "ups.on_battery:33", time.time()) is None


async def test_an_acknowledgement_does_not_carry_over_to_a_new_opening(
    tmp_path: Path, home_database: str
) -> None:
    async with served(tmp_path, home_database) as s:
        await s.user("tom", Role.TECHNICIAN)
        tech = {"Authorization": f"Bearer {await s.token('tom', Role.TECHNICIAN)}"}
        await seed_site(s, "op-a", "Dental", heartbeat_age_s=5)
        await seed_alert(s, "op-a", "icmp.down:7", "critical", "printer down")
        async with client(s.url) as c:
            body = {"appliance": "op-a", "key": "icmp.down:7"}
            assert (await c.post(PREFIX + "/alerts/ack", headers=tech, json_body=body))[0] == 200
            # Resolved and opened again by the box: a new opening, not acknowledged.
            await s.call(lambda conn: conn.execute(
                "UPDATE alerts SET ts = ? WHERE key = 'icmp.down:7'", (time.time(),)))  # fmt: skip
            _, _, answer = await c.get(PREFIX + "/alerts", headers=tech)
            [alert] = (await answer.json())["alerts"]
            assert alert["acked_by"] == ""
            status, _, answer = await c.post(
                PREFIX + "/alerts/ack", headers=tech,
                json_body={"appliance": "op-a", "key": "no.such:1"},
            )  # fmt: skip
            assert status == 404 and "no open alert" in (await answer.json())["error"]


async def test_admin_api_refusals_name_the_problem(tmp_path: Path, home_database: str) -> None:
    remote.init_signing(tmp_path)
    async with served(tmp_path, home_database) as s:
        await s.user("ann", Role.ADMIN)
        admin = {"Authorization": f"Bearer {await s.token('ann', Role.ADMIN)}"}
        async with client(s.url) as c:
            status, _, answer = await c.post(
                PREFIX + "/boxes/claim", headers=admin,
                json_body={"code": "NOPE-NOPE", "site": "X"},
            )  # fmt: skip
            assert status == 409 and "no box has phoned home" in (await answer.json())["error"]
            status, _, answer = await c.post(
                PREFIX + "/sites/op-x/config", headers=admin,
                json_body={"toml": "[polling]\ninterval_s = -5\nnope = 1\n"},
            )  # fmt: skip
            doc = await answer.json()
            assert status == 422 and len(doc["problems"]) >= 1
            assert any("nope" in p for p in doc["problems"]), doc
            status, _, answer = await c.post(
                PREFIX + "/sites/op-x/command", headers=admin, json_body={"action": "format-c"}
            )
            assert status == 400 and "unknown command" in (await answer.json())["error"]
            status, _, answer = await c.post(PREFIX + "/users", headers=admin, json_body={
                "name": "weak", "role": "read-only", "password": "short"})  # fmt: skip
            assert status == 400 and "at least 12" in (await answer.json())["error"]
            _, _, answer = await c.get(PREFIX + "/audit", headers=admin)
            outcomes = [(e["action"], e["outcome"]) for e in (await answer.json())["entries"]]
        assert ("box.claim", "refused") in outcomes and ("box.config", "refused") in outcomes
        assert ("user.create", "refused") in outcomes


async def test_assign_an_alert_to_a_technician(tmp_path: Path, home_database: str) -> None:
    async with served(tmp_path, home_database) as s:
        await s.user("tom", Role.TECHNICIAN)
        await s.user("rita", Role.READ_ONLY)
        tech = {"Authorization": f"Bearer {await s.token('tom', Role.TECHNICIAN)}"}
        await seed_site(s, "op-a", "Dental", heartbeat_age_s=5)
        await seed_alert(s, "op-a", "icmp.down:7", "critical", "printer down")
        await seed_alert(s, "op-a", "icmp.down:8", "major", "switch down")
        body = {"appliance": "op-a", "key": "icmp.down:7"}
        async with client(s.url) as c:
            status, _, answer = await c.post(
                PREFIX + "/alerts/assign", headers=tech, json_body={**body, "to": "rita"}
            )
            assert status == 400 and "not a technician" in (await answer.json())["error"]
            status, _, _ = await c.post(
                PREFIX + "/alerts/assign", headers=tech, json_body={**body, "to": "tom"}
            )
            assert status == 200
            _, _, answer = await c.get(PREFIX + "/alerts", headers=tech)
            assigned = {a["key"]: a["assigned_to"] for a in (await answer.json())["alerts"]}
            assert assigned == {"icmp.down:7": "tom", "icmp.down:8": ""}
            assert await c.login("tom") == 303
            _, page, _ = await c.get("/console/alerts?mine=1")
            assert "printer down" in page and "switch down" not in page
        rows = await s.rows("SELECT action, detail, outcome FROM console_audit WHERE action ="
                            " 'alert.assign' ORDER BY id")  # fmt: skip
        assert [(d.split(";")[0], o) for _a, d, o in rows] == [("to rita", "refused"),
                                                               ("to tom", "ok")]  # fmt: skip


async def test_roll_out_an_update_to_one_box_then_all(tmp_path: Path, home_database: str) -> None:
    remote.init_signing(tmp_path)
    async with served(tmp_path, home_database) as s:
        await s.user("ann", Role.ADMIN)
        await s.user("tom", Role.TECHNICIAN)
        admin = {"Authorization": f"Bearer {await s.token('ann', Role.ADMIN)}"}
        tech = {"Authorization": f"Bearer {await s.token('tom', Role.TECHNICIAN)}"}
        for n in range(3):
            await seed_site(s, f"op-{n}", f"Site {n}", heartbeat_age_s=5)
        update = {"url": "https://updates.msp.example/outpost-1.5.0.tar", "version": "1.5.0"}
        async with client(s.url) as c:
            status, _, _ = await c.post(
                PREFIX + "/boxes/update", headers=tech, json_body={**update, "appliances": ["op-0"]}
            )
            assert status == 403
            status, _, answer = await c.post(
                PREFIX + "/boxes/update",
                headers=admin,
                json_body={**update, "appliances": ["op-0"]},
            )
            assert status == 200 and len((await answer.json())["commands"]) == 1
            status, _, answer = await c.post(
                PREFIX + "/boxes/update", headers=admin, json_body={**update, "appliances": "all"}
            )
            assert status == 200 and (await answer.json())["boxes"] == ["op-0", "op-1", "op-2"]
            status, _, answer = await c.post(
                PREFIX + "/boxes/update", headers=admin,
                json_body={"url": "ftp://x", "appliances": "all"},
            )  # fmt: skip
            assert status == 400
        rows = await s.rows("SELECT appliance, action FROM commands ORDER BY created_at")
        assert [a for a, _ in rows] == ["op-0", "op-0", "op-1", "op-2"]
        assert {act for _, act in rows} == {"update"}
        audited = await s.rows(
            "SELECT COUNT(*) FROM console_audit WHERE action = 'box.command.update'"
            " AND outcome = 'ok'"
        )
        assert audited == [(4,)]
