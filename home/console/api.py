"""The console's JSON API under /api/v1/console/ (described by /api/v1/console/openapi.json).

Everything the pages show, and the same actions, for the MSP's scripts and dashboards. A script
sends ``Authorization: Bearer opc_...`` (an API token made on the Users page); a browser session
may call it too, with its CSRF token in ``X-CSRF-Token`` on POSTs. Roles as on the pages. Errors
answer ``{"ok": false, "error": "...", "problems": [...]}``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from aiohttp import web

from home import remote
from home.console import accounts, actions, audit, devices, fleet, reports, settings
from home.console.actions import ActionError, Actor
from home.console.guard import client_of, needs, principal
from home.console.roles import ROLE_NAMES, Role
from home.console.state import CONSOLE_KEY, Console

PREFIX = "/api/v1/console"
MAX_BODY_BYTES = 256 * 1024


def _console(request: web.Request) -> Console:
    return request.app[CONSOLE_KEY]


def _actor(request: web.Request) -> Actor:
    return Actor(principal(request), client_of(request))


def _error(exc: ActionError) -> web.Response:
    return web.json_response(
        {"ok": False, "error": str(exc), "problems": list(exc.problems)}, status=exc.status
    )


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise ActionError(413, f"a request body holds at most {MAX_BODY_BYTES} bytes")
    try:
        doc = json.loads(raw or b"{}")
    except ValueError:
        raise ActionError(400, "the body is not JSON") from None
    if not isinstance(doc, dict):
        raise ActionError(400, "the body must be a JSON object")
    return doc


def _str(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key, "")
    if not isinstance(value, str):
        raise ActionError(400, f"{key} must be a string")
    return value


@needs(Role.READ_ONLY)
async def whoami(request: web.Request) -> web.Response:
    who = principal(request)
    return web.json_response({"user": who.user, "role": who.role.value, "via": who.via})


@needs(Role.READ_ONLY)
async def sites(request: web.Request) -> web.Response:
    console = _console(request)
    found = await console.on_db(fleet.sites, console.clock())
    return web.json_response({"sites": [s.as_json() for s in found]})


@needs(Role.READ_ONLY)
async def site(request: web.Request) -> web.Response:
    console = _console(request)
    appliance = request.match_info["appliance"]
    now = console.clock()

    def read(conn: Any) -> dict[str, Any] | None:
        found = fleet.site(conn, now, appliance)
        if found is None:
            return None
        return {
            "site": found.as_json(),
            "box": fleet.box_health(conn, appliance),
            "timeline": fleet.timeline(conn, appliance),
            "notifications": fleet.notifications(conn, appliance),
            "devices": devices.site_devices(conn, appliance, now),
            "remote": remote.status_sync(console.db, appliance),
        }

    doc = await console.on_db(read)
    if doc is None:
        return web.json_response({"ok": False, "error": f"no claimed box {appliance}"}, status=404)
    return web.json_response(doc)


@needs(Role.READ_ONLY)
async def device(request: web.Request) -> web.Response:
    console = _console(request)
    appliance = request.match_info["appliance"]
    try:
        device_id = int(request.match_info["device_id"])
    except ValueError:
        device_id = -1
    doc = await console.on_db(devices.device_detail, appliance, device_id, console.clock())
    if doc is None:
        error = f"no device {device_id} at {appliance}"
        return web.json_response({"ok": False, "error": error}, status=404)
    return web.json_response(doc)


@needs(Role.READ_ONLY)
async def alerts(request: web.Request) -> web.Response:
    console = _console(request)
    found = await console.on_db(fleet.open_alerts, console.clock())
    return web.json_response({"alerts": [dict(vars(a)) for a in found]})


@needs(Role.READ_ONLY)
async def boxes(request: web.Request) -> web.Response:
    console = _console(request)
    return web.json_response({"boxes": await console.on_db(fleet.boxes, console.clock())})


@needs(Role.ADMIN)
async def audit_log(request: web.Request) -> web.Response:
    console = _console(request)
    try:
        limit = max(1, min(5000, int(request.query.get("limit", "200"))))
    except ValueError:
        limit = 200
    entries = await console.on_db(audit.listing, limit, request.query.get("action", ""))
    return web.json_response({"entries": [asdict(e) for e in entries]})


@needs(Role.ADMIN)
async def users(request: web.Request) -> web.Response:
    console = _console(request)
    found = await console.on_db(accounts.users)
    listed = [{"name": u.name, "role": u.role.value, "created_at": u.created_at} for u in found]
    return web.json_response({"users": listed, "tokens": await console.on_db(accounts.tokens)})


@needs(Role.ADMIN)
async def notify_settings(request: web.Request) -> web.Response:
    """The settings in force (``notify``: as shown on the page) and the editable document with
    its version (``document``: secrets as placeholders; PUT it back with ``base_version``)."""
    found = await settings.editor(_console(request), request.app)
    return web.json_response(
        {"notify": settings.shown(request.app), **(found.as_json() if found else {})}
    )


def _post(work: Any) -> Any:
    async def handle(request: web.Request) -> web.Response:
        try:
            doc = await _body(request)
            result = await work(request, doc)
        except ActionError as exc:
            return _error(exc)
        return web.json_response({"ok": True, **result})

    handle.__name__ = getattr(work, "__name__", "handle")
    handle.__doc__ = work.__doc__
    return handle


async def _ack(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    return await actions.acknowledge(_console(request), _actor(request), _str(doc, "appliance"),
                                     _str(doc, "key"))  # fmt: skip


async def _assign(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    return await actions.assign(_console(request), _actor(request), _str(doc, "appliance"),
                                _str(doc, "key"), _str(doc, "to"))  # fmt: skip


async def _note(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    return await actions.note(_console(request), _actor(request), _str(doc, "appliance"),
                              _str(doc, "key"), _str(doc, "note"))  # fmt: skip


async def _silence(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    minutes = doc.get("minutes", 60)
    if not isinstance(minutes, int | float) or isinstance(minutes, bool):
        raise ActionError(400, "minutes must be a number")
    return await actions.silence(_console(request), _actor(request), _str(doc, "appliance"),
                                 _str(doc, "key"), float(minutes))  # fmt: skip


async def _claim(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    return await actions.claim(_console(request), _actor(request), _str(doc, "code"),
                               _str(doc, "site"))  # fmt: skip


async def _update(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    boxes_ = doc.get("appliances", [])
    if boxes_ == "all":
        boxes_ = ["all"]
    if not isinstance(boxes_, list) or not all(isinstance(b, str) for b in boxes_):
        raise ActionError(400, 'appliances: a list of box ids, or "all"')
    return await actions.roll_out(_console(request), _actor(request), boxes_, _str(doc, "url"),
                                  _str(doc, "version"))  # fmt: skip


async def _release(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    return await actions.release(_console(request), _actor(request), _str(doc, "appliance"))


async def _config(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    appliance = request.match_info["appliance"]
    return await actions.push_config(
        _console(request), _actor(request), appliance, _str(doc, "toml")
    )


async def _command(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    args = doc.get("args", {})
    if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
        raise ActionError(400, "args must be an object of strings")
    appliance = request.match_info["appliance"]
    return await actions.command(
        _console(request), _actor(request), appliance, _str(doc, "action"), args
    )


async def _test(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    return await settings.send_test(_console(request), _actor(request), request.app,
                                    _str(doc, "channel"))  # fmt: skip


async def _save_settings(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    base = doc.get("base_version")
    if not isinstance(base, int) or isinstance(base, bool):
        raise ActionError(400, "base_version: the version the document was edited from (GET it)")
    return await settings.save(_console(request), _actor(request), request.app,
                               _str(doc, "toml"), base)  # fmt: skip


async def _user(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    return await actions.create_user(_console(request), _actor(request), _str(doc, "name"),
                                     _str(doc, "role"), _str(doc, "password"))  # fmt: skip


ack = needs(Role.TECHNICIAN)(_post(_ack))
note = needs(Role.TECHNICIAN)(_post(_note))
assign = needs(Role.TECHNICIAN)(_post(_assign))
silence = needs(Role.TECHNICIAN)(_post(_silence))
claim = needs(Role.ADMIN)(_post(_claim))
release = needs(Role.ADMIN)(_post(_release))
update = needs(Role.ADMIN)(_post(_update))
config = needs(Role.ADMIN)(_post(_config))
command = needs(Role.TECHNICIAN)(_post(_command))  # an update needs admin (actions.command)
create_user = needs(Role.ADMIN)(_post(_user))
notify_test = needs(Role.ADMIN)(_post(_test))
notify_save = needs(Role.ADMIN)(_post(_save_settings))

# (method, path, handler, summary, request body fields)
ROUTES: tuple[tuple[str, str, Any, str, tuple[str, ...]], ...] = (
    ("GET", "/whoami", whoami, "the caller's user and role", ()),
    ("GET", "/sites", sites, "every site, worst first, with health and open alerts", ()),
    ("GET", "/sites/{appliance}", site, "one site: box health, timeline, remote state", ()),
    ("GET", "/sites/{appliance}/devices/{device_id}", device,
     "one device: inventory, open alerts, readings of the last 24 h, changes", ()),
    ("GET", "/alerts", alerts, "open alerts across the fleet", ()),
    ("GET", "/boxes", boxes, "boxes that phoned home (pending, claimed, released)", ()),
    ("GET", "/audit", audit_log, "the audit log, newest first (admin)", ()),
    ("GET", "/users", users, "users and API tokens (admin; no hashes)", ()),
    ("POST", "/alerts/ack", ack, "acknowledge (technician)", ("appliance", "key")),
    ("POST", "/alerts/note", note, "note on an alert (technician)", ("appliance", "key", "note")),
    ("POST", "/alerts/assign", assign, "assign to a technician or admin ('' unassigns)",
     ("appliance", "key", "to")),
    ("POST", "/alerts/silence", silence, "silence for minutes (technician)",
     ("appliance", "key", "minutes")),
    ("POST", "/boxes/claim", claim, "claim a pending box by its code (admin)", ("code", "site")),
    ("POST", "/boxes/release", release, "release a claimed box (admin)", ("appliance",)),
    ("POST", "/boxes/update", update, 'roll out a firmware update to boxes or "all" (admin)',
     ("appliances", "url", "version")),
    ("POST", "/sites/{appliance}/config", config, "check, sign and queue a configuration (admin)",
     ("toml",)),
    ("POST", "/sites/{appliance}/command", command, "sign and queue a remote command",
     ("action", "args")),
    ("POST", "/users", create_user, "add a user (admin)", ("name", "role", "password")),
    ("GET", "/settings/notify", notify_settings,
     "notification settings in force and the editable [notify] document with its version"
     " (admin; secrets shown as set or as a placeholder)", ()),
    ("PUT", "/settings/notify", notify_save,
     "save the [notify] document (TOML) edited from base_version; a placeholder keeps the"
     " stored secret of its field; 422 names a wrong key, 409 if saved meanwhile (admin)",
     ("toml", "base_version")),
    ("POST", "/settings/notify/test", notify_test, "send a test message on a channel (admin)",
     ("channel",)),
)  # fmt: skip


_FIELD_TYPES = {"args": "object", "minutes": "number", "appliances": "array",
                "base_version": "integer"}  # fmt: skip


def openapi_doc() -> dict[str, Any]:
    """OpenAPI 3.1 description of ROUTES (the same table the routes are made from)."""
    paths: dict[str, Any] = {}
    for method, path, handler, summary, fields in ROUTES:
        role = getattr(handler, "console_role", Role.ADMIN)
        op: dict[str, Any] = {
            "summary": summary,
            "description": f"Needs the {role.value} role (roles: {', '.join(ROLE_NAMES)}).",
            "responses": {
                "200": {"description": "done", "content": {"application/json": {}}},
                "401": {"description": "no or unknown token"},
                "403": {"description": "role too low, cross-origin, or missing CSRF token"},
            },
        }
        names = [n for n in ("appliance", "device_id", "month") if "{" + n + "}" in path]
        if names:
            op["parameters"] = [{"name": n, "in": "path", "required": True,
                                 "schema": {"type": "integer" if n == "device_id" else "string"}}
                                for n in names]  # fmt: skip
        if fields:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": [f for f in fields if f not in ("args", "version")],
                "properties": {f: {"type": _FIELD_TYPES.get(f, "string")} for f in fields},
            }}}}  # fmt: skip
        paths.setdefault(PREFIX + path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Outpost home: MSP console API", "version": "1"},
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
        "paths": paths,
    }


@needs(Role.READ_ONLY)
async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_doc())


ROUTES += reports.API_ROUTES  # the monthly report's months and model (home/console/reports.py)


def add_routes(app: web.Application) -> None:
    for method, path, handler, _summary, _fields in ROUTES:
        app.router.add_route(method, PREFIX + path, handler)
    app.router.add_get(PREFIX + "/openapi.json", openapi)
