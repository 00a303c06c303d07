"""The MSP console's security (home/console): anonymous requests, roles, CSRF and Origin, the
login rate limit, hostile text from boxes, secrets in answers, the audit log, the setup link.

Home's real application (home/server.py:create_app) on loopback, its real database (SQLite and
PostgreSQL), a client that logs in through the real login form."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest

from core.wire.claim_codes import code_hash
from home import claims, inventory, remote
from home.console import accounts
from home.console.app import announce_setup
from home.console.guard import OPEN_PATHS, ROLE_ATTR, SIGNED_PATHS, STATIC_PREFIX
from home.console.roles import Role
from tests.console_support import (
    HOSTILE,
    PASSWORD,
    Served,
    client,
    seed_alert,
    seed_site,
    served,
)

pytestmark = pytest.mark.usefixtures("home_backend")


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "op-nothere", path)


def _guarded_routes(s: Served) -> list[tuple[str, str, object]]:
    """(method, path, handler) of every route the console guards: all but the signed
    appliance paths, the open login/setup pages and the static files."""
    out: list[tuple[str, str, object]] = []
    for route in s.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = str(info.get("path") or info.get("formatter") or info.get("prefix") or "")
        if route.method == "HEAD" or path in SIGNED_PATHS or path in OPEN_PATHS:
            continue
        if path.startswith(STATIC_PREFIX.rstrip("/")):
            continue
        out.append((route.method, path, route.handler))
    return out


async def test_every_page_and_api_path_refuses_an_anonymous_request(
    tmp_path: Path, home_database: str
) -> None:
    async with served(tmp_path, home_database) as s:
        routes = _guarded_routes(s)
        # Enumerated from the application: a route added later is in this list too.
        assert len(routes) >= 30, routes
        undeclared = [p for _m, p, h in routes if getattr(h, ROLE_ATTR, None) is None]
        assert not undeclared, f"routes without a declared role: {undeclared}"
        async with client(s.url) as c:
            for method, path, _h in routes:  # no user yet: nothing is served at all
                status, text, _ = await (c.get if method == "GET" else c.post)(_concrete(path))
                assert status == 503 and "create-user" in text, (method, path, status)
        await s.user("ann", Role.ADMIN)
        await seed_site(s, "op-a", "Secret Dental", heartbeat_age_s=5)
        async with client(s.url) as c:
            for method, path, _h in routes:
                status, text, response = await (c.get if method == "GET" else c.post)(
                    _concrete(path)
                )
                assert status in (401, 303), (method, path, status)
                if status == 303:
                    assert response.headers["Location"].startswith("/console/login?next=")
                assert "Secret Dental" not in text and "op-a" not in text, path
            # A forged cookie and a made-up token are nobody.
            c.cookies["outpost_console"] = "forged"
            status, _, _ = await c.get("/api/v1/console/sites")
            assert status == 401
            status, _, _ = await c.get(
                "/api/v1/console/sites", headers={"Authorization": "Bearer opc_madeup"}
            )
            assert status == 401


async def test_a_route_without_a_declared_role_is_refused_even_to_an_admin(
    tmp_path: Path, home_database: str
) -> None:
    from aiohttp import web

    async def forgotten(_request: web.Request) -> web.Response:
        return web.Response(text="should never be served")

    def careless(app: web.Application) -> None:
        app.router.add_get("/console/forgotten", forgotten)  # as a careless change would

    async with served(tmp_path, home_database, careless) as s:
        await s.user("ann", Role.ADMIN)
        async with client(s.url) as c:
            assert await c.login("ann") == 303
            status, text, _ = await c.get("/console/forgotten")
    assert status == 403 and "declares no role" in text


async def test_session_cookie_flags_and_logout(tmp_path: Path, home_database: str) -> None:
    async with served(tmp_path, home_database) as s:
        await s.user("ann", Role.ADMIN)
        async with client(s.url) as c:
            status, page, first = await c.get("/console/login")
            pre = first.headers.getall("Set-Cookie")[0]
            assert "HttpOnly" in pre and "Secure" in pre and "SameSite=Strict" in pre
            csrf = re.search(r'name="csrf" value="([^"]+)"', page)
            assert csrf
            status, _, answer = await c.post(
                "/console/login", {"name": "ann", "password": PASSWORD, "csrf": csrf.group(1)}
            )
            assert status == 303
            cookie = next(
                v for v in answer.headers.getall("Set-Cookie") if v.startswith("outpost_console=")
            )
            for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
                assert flag in cookie
            assert (await c.get("/console"))[0] == 200
            session = c.cookies["outpost_console"]
            # Only the hash of the session is stored: the cookie is not in the database.
            assert not await s.rows(
                "SELECT 1 FROM console_sessions WHERE token_hash = ?", (session,)
            )
            # The login's "next" never leads off home (no open redirect).
            status, page, _ = await c.get("/console/login?next=//evil.example/x")
            assert 'value="/console"' in page and "evil.example" not in page
            await c.get("/console")  # the session's CSRF token again (the login form has its own)
            assert (await c.post("/console/logout"))[0] == 303
            c.cookies["outpost_console"] = session  # the old cookie is dead after logout
            assert (await c.get("/console"))[0] == 303


async def test_read_only_cannot_acknowledge_claim_or_push(
    tmp_path: Path, home_database: str
) -> None:
    async with served(tmp_path, home_database) as s:
        await s.user("rita", Role.READ_ONLY)
        await seed_site(s, "op-a", "Dental", heartbeat_age_s=5)
        await seed_alert(s, "op-a", "icmp.down:7", "major", "printer down")
        token = await s.token("rita", Role.READ_ONLY)
        async with client(s.url) as c:
            assert await c.login("rita") == 303
            assert (await c.get("/console/alerts"))[0] == 200
            attempts = [
                ("/console/alerts/ack", {"appliance": "op-a", "key": "icmp.down:7"}),
                ("/console/alerts/silence", {"appliance": "op-a", "key": "icmp.down:7"}),
                ("/console/boxes/claim", {"code": "ABCD-EFGH", "site": "X"}),
                ("/console/boxes/release", {"appliance": "op-a"}),
                ("/console/sites/op-a/config", {"config": "[site]\nname = 'x'\n"}),
                ("/console/sites/op-a/command", {"action": "rediscover"}),
                ("/console/users", {"op": "create", "name": "eve", "role": "admin"}),
            ]
            for path, form in attempts:
                status, text, _ = await c.post(path, form)
                assert status == 403 and "read-only may not" in text, (path, status)
            for path in ("/api/v1/console/alerts/ack", "/api/v1/console/boxes/claim"):
                status, _, _ = await c.post(
                    path, headers={"Authorization": f"Bearer {token}"}, json_body={}
                )
                assert status == 403
        acked = await s.rows("SELECT acked_by FROM console_alert_state")
        assert not acked or all(not by for (by,) in acked)
        refused = await s.rows(
            "SELECT user_name, action, target, outcome, client FROM console_audit"
            " WHERE outcome = 'refused' ORDER BY id"
        )
        assert len(refused) == len(attempts) + 2
        assert all(u == "rita" and a == "forbidden" and cl == "127.0.0.1" for u, a, _t, _o, cl
                   in refused)  # fmt: skip


async def test_technician_acknowledges_but_cannot_manage_users_or_update(
    tmp_path: Path, home_database: str
) -> None:
    async with served(tmp_path, home_database) as s:
        await s.user("tom", Role.TECHNICIAN)
        await seed_site(s, "op-a", "Dental", heartbeat_age_s=5)
        await seed_alert(s, "op-a", "icmp.down:7", "major", "printer down")
        async with client(s.url) as c:
            assert await c.login("tom") == 303
            status, _, _ = await c.post(
                "/console/users",
                {"op": "create", "name": "eve", "role": "admin", "password": "x" * 20,
                 "confirm": "x" * 20},
            )  # fmt: skip
            assert status == 403
            assert (await c.get("/console/users"))[0] == 403
            assert (await c.get("/api/v1/console/users"))[0] == 403
            assert (await c.get("/console/audit"))[0] == 403
            token = await s.token("tom", Role.TECHNICIAN)
            status, text, _ = await c.post(
                "/api/v1/console/sites/op-a/command",
                headers={"Authorization": f"Bearer {token}"},
                json_body={"action": "update", "args": {}},
            )
            assert status == 403 and "admin" in text
            status, _, _ = await c.post(
                "/console/alerts/ack", {"appliance": "op-a", "key": "icmp.down:7"}
            )
            assert status == 303
        assert await s.rows("SELECT name FROM console_users") == [("tom",)]
        assert await s.rows("SELECT acked_by FROM console_alert_state") == [("tom",)]


async def test_csrf_and_cross_origin_posts_are_refused(tmp_path: Path, home_database: str) -> None:
    async with served(tmp_path, home_database) as s:
        await s.user("ann", Role.ADMIN)
        await seed_site(s, "op-a", "Dental", heartbeat_age_s=5)
        await seed_alert(s, "op-a", "k1", "major", "down")
        form = {"appliance": "op-a", "key": "k1"}
        async with client(s.url) as c:
            assert await c.login("ann") == 303
            status, text, _ = await c.post("/console/alerts/ack", form, csrf=False)
            assert status == 403 and "CSRF" in text
            status, _, _ = await c.post("/console/alerts/ack", {**form, "csrf": "wrong"})
            assert status == 403
            evil = {"Origin": "https://evil.example"}
            status, text, _ = await c.post("/console/alerts/ack", form, headers=evil)
            assert status == 403 and "Origin" in text
            status, _, _ = await c.post(
                "/console/alerts/ack", form, headers={"Sec-Fetch-Site": "cross-site"}
            )
            assert status == 403
            # The JSON API with the session cookie needs the token in X-CSRF-Token as well.
            status, _, _ = await c.post("/api/v1/console/alerts/ack", json_body=form)
            assert status == 403
            # A login form posted from another site is refused too (login CSRF).
            status, _, _ = await c.post(
                "/console/login", {"name": "ann", "password": PASSWORD}, headers=evil
            )
            assert status == 403
            assert not await s.rows("SELECT 1 FROM console_alert_state WHERE acked_by != ''")
            status, _, _ = await c.post(
                "/api/v1/console/alerts/ack", json_body=form, headers={"X-CSRF-Token": c.csrf}
            )
            assert status == 200
        actions = [a for (a,) in await s.rows(
            "SELECT action FROM console_audit WHERE outcome = 'refused' ORDER BY id")]  # fmt: skip
        assert actions == ["csrf", "csrf", "cross-origin", "cross-origin", "csrf", "cross-origin"]


async def test_login_rate_limit(tmp_path: Path, home_database: str) -> None:
    async with served(tmp_path, home_database) as s:
        await s.user("ann", Role.ADMIN)
        async with client(s.url) as c:
            for _ in range(5):
                assert await c.login("ann", "wrong password!") == 401
            started = time.monotonic()
            status = await c.login("ann")  # the right password, but too soon
            assert status == 429
            assert time.monotonic() - started < 1.0  # answered without hashing
            status, page, _ = await c.get("/console/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page)
            assert csrf
            _, _, answer = await c.post(
                "/console/login", {"name": "ann", "password": PASSWORD, "csrf": csrf.group(1)}
            )
            assert answer.status == 429 and int(answer.headers["Retry-After"]) >= 1
        failed = await s.rows(
            "SELECT COUNT(*) FROM console_audit WHERE action = 'login' AND outcome = 'refused'"
        )
        assert failed[0][0] == 7


async def test_hostile_names_and_messages_render_as_text(
    tmp_path: Path, home_database: str
) -> None:
    async with served(tmp_path, home_database) as s:
        await s.user("ann", Role.ADMIN)
        await seed_site(s, "op-a", HOSTILE, heartbeat_age_s=5, version=HOSTILE)
        await seed_alert(s, "op-a", HOSTILE, "critical", HOSTILE)
        device = {"change": "joined", "device_id": 7, "mac": HOSTILE, "ip": "198.18.0.9",
                  "name": HOSTILE, "kind": HOSTILE, "vendor": HOSTILE, "model": HOSTILE,
                  "state": "present"}  # fmt: skip
        await s.call(inventory.track, "op-a", "s1", [{"kind": "device", "ts": time.time(),
                                                      "body": device}], time.time())  # fmt: skip
        async with client(s.url) as c:
            assert await c.login("ann") == 303
            pages = ("/console", "/console/alerts", "/console/sites/op-a",
                     "/console/sites/op-a/devices/7")  # fmt: skip
            for path in pages:
                status, page, _ = await c.get(path)
                assert status == 200, path
                assert "<script>alert(1)" not in page and "<img src=x" not in page, path
                assert html.escape(HOSTILE, quote=False) in page.replace("&#34;", '"'), path
            status, page, _ = await c.get("/console?partial=1")
            assert "<img src=x" not in page and html.escape("<img src=x") in page


async def test_no_password_hash_or_secret_in_any_page_or_api_answer(
    tmp_path: Path, home_database: str
) -> None:
    async with served(tmp_path, home_database) as s:
        await s.user("ann", Role.ADMIN)
        await s.user("tom", Role.TECHNICIAN)
        token = await s.token("ann", Role.ADMIN)
        await seed_site(s, "op-a", "Dental", heartbeat_age_s=5)
        await seed_alert(s, "op-a", "k1", "major", "down")
        (tmp_path / "notify.secret").write_text("ab" * 32 + "\n")  # home/notify's HMAC key
        device = {"change": "joined", "device_id": 7, "ip": "198.18.0.9", "name": "nas"}
        await s.call(inventory.track, "op-a", "s1", [{"kind": "device", "ts": time.time(),
                                                      "body": device}], time.time())  # fmt: skip
        # One record this month, so the site has a monthly report (home/console/reports.py).
        await s.call(lambda conn: conn.execute(
            "INSERT INTO records (appliance, stream, seq, lane, kind, ts, synced, body,"
            " received_at) VALUES ('op-a', 's1', 1, 1, 'measurement', ?, 1, ?, ?)",
            (time.time(), '{"device_id":7,"metric":"device.reachable","value":1}', time.time()),
        ))  # fmt: skip
        month = time.strftime("%Y-%m", time.gmtime())  # the site's zone: UTC without [notify]
        secrets_ = [h for (h,) in await s.rows("SELECT password_hash FROM console_users")]
        secrets_ += [h for (h,) in await s.rows("SELECT token_hash FROM console_tokens")] + [
            h for (h,) in await s.rows("SELECT token_hash FROM console_sessions")
        ]
        second_factor = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
        await s.call(accounts.set_totp, "tom", second_factor)
        secrets_ += ["ab" * 32, "scrypt$", second_factor]
        async with client(s.url) as c:
            assert await c.login("ann") == 303
            pages = [p for m, p, _h in _guarded_routes(s) if m == "GET" and "stream" not in p]
            answers = []
            for path in pages:
                url = path.replace("{appliance}", "op-a").replace("{device_id}", "7")
                url = url.replace("{month}", month)
                if url.endswith(".pdf"):  # bytes: searched for the secrets as latin-1 text
                    cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
                    async with c.http.get(c.url + url, headers={"Cookie": cookie}) as response:
                        body = await response.read()
                    assert response.status == 200 and body.startswith(b"%PDF"), (path, body[:200])
                    answers.append((path, body.decode("latin-1")))
                    continue
                status, text, _ = await c.get(url)
                assert status in (200, 301, 303), (path, status, text[:200])  # / and /fleet
                answers.append((path, text))
            status, text, _ = await c.get(
                "/api/v1/console/users", headers={"Authorization": f"Bearer {token}"}
            )
            answers.append(("users by token", text))
            session = c.cookies["outpost_console"]
        secrets_ += [session, token]
        for path, text in answers:
            for secret in secrets_:
                assert secret not in text, (path, secret[:12])


async def test_audit_log_records_each_action(tmp_path: Path, home_database: str) -> None:
    remote.init_signing(tmp_path)  # the MSP's signing key: claims, configurations, commands
    async with served(tmp_path, home_database) as s:
        await s.user("ann", Role.ADMIN)
        await seed_site(s, "op-a", "Dental", heartbeat_age_s=5)
        await seed_alert(s, "op-a", "k1", "major", "down")
        db = s.db
        doc = {"claim_code_sha256": code_hash("KX7P-3QMA"), "code_expires_at": time.time() + 600}
        await db.call(claims.hello_sync, db, "op-new", "key-op-new", "n1", doc)
        async with client(s.url) as c:
            assert await c.login("ann") == 303
            steps = [
                ("/console/alerts/ack", {"appliance": "op-a", "key": "k1"}, 303),
                ("/console/alerts/note", {"appliance": "op-a", "key": "k1", "note": "on it"}, 303),
                ("/console/alerts/silence", {"appliance": "op-a", "key": "k1", "minutes": "30"},
                 303),
                ("/console/boxes/claim", {"code": "WRONG-CODE", "site": "Law firm"}, 409),
                ("/console/boxes/claim", {"code": "kx7p-3qma", "site": "Law firm"}, 303),
                ("/console/sites/op-new/config", {"config": "[uplink]\nbogus = 1\n"}, 422),
                ("/console/sites/op-new/config", {"config": "[site]\nname = 'Law firm'\n"}, 303),
                ("/console/sites/op-new/command", {"action": "rediscover"}, 303),
                ("/console/users", {"op": "create", "name": "tom", "role": "technician",
                                    "password": "x" * 14, "confirm": "x" * 14}, 303),
                ("/console/boxes/release", {"appliance": "op-new"}, 303),
            ]  # fmt: skip
            for path, form, expected in steps:
                status, text, _ = await c.post(path, form)
                assert status == expected, (path, status, text[:300])
        rows = await s.rows(
            "SELECT user_name, role, action, target, outcome, client, at FROM console_audit"
            " ORDER BY id"
        )
        got = [(a, t, o) for _u, _r, a, t, o, _c, _at in rows]
        assert got == [
            ("login", "ann", "ok"),
            ("alert.ack", "op-a/k1", "ok"),
            ("alert.note", "op-a/k1", "ok"),
            ("alert.silence", "op-a/k1", "ok"),
            ("box.claim", "Law firm", "refused"),
            ("box.claim", "Law firm", "ok"),
            ("box.config", "op-new", "refused"),
            ("box.config", "op-new", "ok"),
            ("box.command.rediscover", "op-new", "ok"),
            ("user.create", "tom", "ok"),
            ("box.release", "op-new", "ok"),
        ]
        assert all(u == "ann" and r == "admin" and c == "127.0.0.1" for u, r, *_x, c, _at in rows)
        assert all(abs(at - time.time()) < 120 for *_x, at in rows)
        assert await s.rows("SELECT state, site FROM claims") == [("released", "Law firm")]
        assert [v for (v,) in await s.rows("SELECT version FROM site_configs")] == [1]
        assert await s.rows("SELECT action FROM commands") == [("rediscover",)]


async def test_setup_link_makes_the_first_admin_once(tmp_path: Path, home_database: str) -> None:
    async with served(tmp_path, home_database) as s:
        token = await announce_setup(s.db, s.url)
        assert token
        async with client(s.url) as c:
            assert (await c.get("/console/setup?token=wrong"))[0] == 403
            status, page, _ = await c.get(f"/console/setup?token={token}")
            assert status == 200
            csrf = re.search(r'name="csrf" value="([^"]+)"', page)
            assert csrf
            form = {"token": token, "name": "ann", "password": PASSWORD, "confirm": PASSWORD,
                    "csrf": csrf.group(1)}  # fmt: skip
            status, _, _ = await c.post("/console/setup", form, csrf=False)
            assert status == 303
            assert await c.login("ann") == 303
            assert (await c.get(f"/console/setup?token={token}"))[0] == 403  # spent
        assert await s.rows("SELECT name, role FROM console_users") == [("ann", "admin")]
        assert await announce_setup(s.db, s.url) == ""  # a user exists: no new link
        users = await s.call(accounts.users)
        assert [u.name for u in users] == ["ann"]
