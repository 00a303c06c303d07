"""Home's side of remote management: signed site configurations, remote commands, diagnostics.

The MSP's signing key (``msp-signing.key`` in home's data directory, made by ``outpost-home
init-signing``) signs every configuration and command when it is created; the server only stores
and hands out the signed envelopes, in answers to the box's ``POST /api/v1/sync``. The box sends
in the same request what happened to earlier ones (configuration reports, command results, the
outcome of an update), which home stores in the same transaction as it marks them taken.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.logs import get_log
from core.wire import signing
from core.wire.keys import public_key_text
from core.wire.signing import ACKS_KIND, COMMAND_ACTIONS, COMMAND_KIND, CONFIG_KIND
from home import claims
from home.db import HomeDB, Refused
from home.notify.acks import acks_for_box
from home.signed import DB_KEY, check_signature, signature_headers, signed_endpoint

ACTIONS = COMMAND_ACTIONS  # the remote commands home may queue (one list, in core.wire)

log = get_log("home")

HELLO_PATH = "/api/v1/hello"
SYNC_PATH = "/api/v1/sync"
DIAGNOSTICS_PATH = "/api/v1/diagnostics"
SIGNING_KEY_FILE = "msp-signing.key"
DEFAULT_COMMAND_TTL_S = 3600.0
MAX_REPORTS = 100

FINAL = ("done", "failed", "refused")


# ---- the MSP's signing key ----


def init_signing(data_dir: Path) -> str:
    """Make the MSP's signing key (once); return its public key text."""
    path = Path(data_dir) / SIGNING_KEY_FILE
    if path.exists():
        raise FileExistsError(f"{path} exists; the MSP keeps one signing key (boxes trust it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return public_key_text(key.public_key())


def load_signing_key(data_dir: Path) -> Ed25519PrivateKey:
    path = Path(data_dir) / SIGNING_KEY_FILE
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise claims.ClaimError(
            f"{path} not found; make the MSP's signing key once with "
            f"'outpost-home init-signing --data-dir {data_dir}'"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise claims.ClaimError(f"{path} is not an Ed25519 key")
    return key


# ---- configurations and commands (CLI side: signed here, stored for the server) ----


def push_config_sync(
    db: HomeDB,
    key: Ed25519PrivateKey,
    appliance: str,
    table: dict[str, Any],
    version: int | None = None,
) -> int:
    """Sign ``table`` as the next configuration version of ``appliance``; return the version."""
    conn = db.conn
    row = conn.execute(
        "SELECT site, state FROM claims WHERE appliance = ?", (appliance,)
    ).fetchone()
    if row is None or row[1] != "claimed":
        raise claims.ClaimError(f"{appliance} is not claimed; claim it before configuring it")
    if version is None:
        (last,) = conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM site_configs WHERE appliance = ?",
            (appliance,),
        ).fetchone()
        version = int(last) + 1
    doc = {
        "kind": CONFIG_KIND,
        "appliance": appliance,
        "site": row[0],
        "version": version,
        "issued_at": db.clock.wall(),
        "config": table,
    }
    envelope = signing.sign(key, doc)
    conn.execute(
        "INSERT INTO site_configs (appliance, version, envelope, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (appliance, version) DO UPDATE SET"
        " envelope = excluded.envelope, created_at = excluded.created_at",
        (appliance, version, json.dumps(envelope), db.clock.wall()),
    )
    return version


def add_command_sync(
    db: HomeDB,
    key: Ed25519PrivateKey,
    appliance: str,
    action: str,
    *,
    args: dict[str, Any] | None = None,
    ttl_s: float = DEFAULT_COMMAND_TTL_S,
    issued_at: float | None = None,
) -> str:
    if action not in ACTIONS:
        raise claims.ClaimError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    conn = db.conn
    now = db.clock.wall()
    issued = now if issued_at is None else issued_at
    cid = "c-" + secrets.token_hex(8)
    doc = {
        "kind": COMMAND_KIND,
        "id": cid,
        "appliance": appliance,
        "action": action,
        "args": args or {},
        "issued_at": issued,
        "expires_at": issued + ttl_s,
    }
    conn.execute(
        "INSERT INTO commands (id, appliance, action, envelope, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (cid, appliance, action, json.dumps(signing.sign(key, doc)), now, issued + ttl_s),
    )
    return cid


def status_sync(db: HomeDB, appliance: str) -> dict[str, Any]:
    conn = db.conn
    reports = [
        {"version": v, "outcome": o, "reason": r, "at": at}
        for v, o, r, at in conn.execute(
            "SELECT version, outcome, reason, at FROM config_reports WHERE appliance = ?"
            " ORDER BY at, received_at, version",  # portable: no rowid on PostgreSQL
            (appliance,),
        )
    ]
    commands = [
        {"id": i, "action": a, "state": s, "result": r, "replays": n}
        for i, a, s, r, n in conn.execute(
            "SELECT id, action, state, result, replays FROM commands WHERE appliance = ?"
            " ORDER BY created_at",
            (appliance,),
        )
    ]
    return {"appliance": appliance, "config_reports": reports, "commands": commands}


# ---- the server side ----


class SigningKeyCache:
    """The MSP's signing key for the server's own signatures (acknowledgements carried to
    boxes), read from the data directory on first use and kept; None while there is none."""

    def __init__(self, data_dir: Path | None) -> None:
        self.data_dir = data_dir
        self._key: Ed25519PrivateKey | None = None
        self._warned = False

    def get(self) -> Ed25519PrivateKey | None:
        if self._key is None and self.data_dir is not None:
            try:
                self._key = load_signing_key(self.data_dir)
            except claims.ClaimError as exc:
                if not self._warned:  # once: every sync would repeat it
                    self._warned = True
                    log.warning("home.acks_unsigned", reason=str(exc))
        return self._key


def acks_envelope(
    conn: Any, key: Ed25519PrivateKey | None, appliance: str, now: float
) -> dict[str, str] | None:
    """The acknowledgements of ``appliance``'s alerts made at home, as one envelope signed by
    the MSP key (kind ``outpost.alert-acks``: ``{kind, appliance, issued_at, acks: [{alert_id,
    key, by, at}]}``); None when there are none or no key to sign with."""
    if key is None:
        return None
    acks = acks_for_box(conn, appliance, now)
    if not acks:
        return None
    doc = {"kind": ACKS_KIND, "appliance": appliance, "issued_at": now, "acks": acks}
    return signing.sign(key, doc)


def sync_sync(
    db: HomeDB,
    appliance: str,
    nonce: str,
    doc: dict[str, Any],
    signer: SigningKeyCache | None = None,
) -> dict[str, Any]:
    conn = db.conn
    reports = doc.get("config_reports", [])
    results = doc.get("command_results", [])
    if not isinstance(reports, list) or not isinstance(results, list):
        raise Refused(400, "config_reports and command_results must be lists")
    reports, results = reports[:MAX_REPORTS], results[:MAX_REPORTS]
    applied = doc.get("config_version", 0)
    if type(applied) is not int:
        raise Refused(400, "config_version must be a whole number")
    now = db.clock.wall()
    conn.execute("BEGIN IMMEDIATE")
    try:
        db.take_nonce(appliance, nonce, now)
        for rep in reports:
            if not isinstance(rep, dict):
                continue
            conn.execute(
                "INSERT INTO config_reports (appliance, version, outcome, reason, at,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    appliance,
                    rep.get("version") if type(rep.get("version")) is int else None,
                    str(rep.get("outcome", ""))[:32],
                    str(rep.get("reason", ""))[:2000],
                    float(rep.get("at", now)),
                    now,
                ),
            )
        for res in results:
            if not isinstance(res, dict):
                continue
            outcome, cid = str(res.get("outcome", "")), str(res.get("id", ""))
            detail = str(res.get("detail", ""))[:2000]
            if outcome == "duplicate":
                # The box refused to run it again; it ran before with the outcome ``first``.
                first = str(res.get("first", ""))
                conn.execute(
                    "UPDATE commands SET replays = replays + 1,"
                    " state = CASE WHEN ? IN ('done', 'failed', 'refused') THEN ? ELSE state END"
                    " WHERE id = ? AND appliance = ?",
                    (first, first, cid, appliance),
                )
            else:
                # A final result is never overwritten by a later "started" or by a replay.
                conn.execute(
                    "UPDATE commands SET state = ?, result = ?, result_at = ? WHERE id = ?"
                    " AND appliance = ? AND state NOT IN ('done', 'failed', 'refused')",
                    (outcome, detail, now, cid, appliance),
                )
        update = doc.get("update")
        if isinstance(update, dict) and update.get("command_id"):
            outcome = str(update.get("outcome", ""))
            conn.execute(
                "UPDATE commands SET result = ?, result_at = ? WHERE id = ? AND appliance = ?",
                (
                    f"update {outcome}: {str(update.get('reason', ''))[:1000]}",
                    now,
                    str(update["command_id"]),
                    appliance,
                ),
            )
        conn.execute("UPDATE appliances SET last_seen = ? WHERE id = ?", (now, appliance))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    config_row = conn.execute(
        # The newest version the box has neither refused nor rolled back: those are never
        # resent (a rolled-back one would cut the box off again, and it would flap).
        "SELECT envelope FROM site_configs c WHERE appliance = ? AND version > ?"
        " AND NOT EXISTS (SELECT 1 FROM config_reports r WHERE r.appliance = c.appliance"
        " AND r.version = c.version AND r.outcome IN ('refused', 'rolled_back'))"
        " ORDER BY version DESC LIMIT 1",
        (appliance, applied),
    ).fetchone()
    pending = conn.execute(
        "SELECT envelope FROM commands WHERE appliance = ? AND state IN ('pending', 'started')"
        " ORDER BY created_at LIMIT 20",
        (appliance,),
    ).fetchall()
    return {
        "ok": True,
        "acked": {},
        "stream": "",
        "now": now,
        "reports_taken": len(reports),
        "results_taken": len(results),
        "config": json.loads(config_row[0]) if config_row else None,
        "commands": [json.loads(e) for (e,) in pending],
        "acks": acks_envelope(conn, signer.get() if signer else None, appliance, now),
    }


def diagnostics_sync(db: HomeDB, appliance: str, nonce: str, doc: dict[str, Any]) -> dict[str, Any]:
    conn = db.conn
    now = db.clock.wall()
    conn.execute("BEGIN IMMEDIATE")
    try:
        db.take_nonce(appliance, nonce, now)
        conn.execute(
            "INSERT INTO diagnostics (appliance, command_id, body, received_at)"
            " VALUES (?, ?, ?, ?)",
            (appliance, str(doc.get("command_id", "")), json.dumps(doc), now),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return {"ok": True, "acked": {}, "stream": ""}


async def _hello(request: web.Request) -> web.Response:
    from core.wire.protocol import ProtocolError, decode

    db = request.app[DB_KEY]
    try:
        body = await request.read()
        doc = decode(body, request.headers.get("Content-Encoding", ""))
        appliance, public_key, nonce = verify_hello(request, body, doc)
        answer = await db.call(hello_sync_for, db, appliance, public_key, nonce, doc)
    except Refused as exc:
        log.warning("home.hello_refused", status=exc.status, reason=str(exc))
        return web.json_response(exc.doc, status=exc.status)
    except ProtocolError as exc:
        return web.json_response({"ok": False, "error": str(exc)}, status=400)
    return web.json_response(answer)


def verify_hello(request: web.Request, body: bytes, doc: dict[str, Any]) -> tuple[str, str, str]:
    """A hello is signed like any request, by the key it carries: (appliance, key, nonce)."""
    from core.wire.keys import IdentityError, appliance_id_for, public_key_from_text, unb64

    headers = signature_headers(request, "hello")
    key_text = doc.get("public_key")
    if not isinstance(key_text, str):
        raise Refused(400, "hello lacks public_key")
    try:
        public = public_key_from_text(key_text)
    except IdentityError:
        raise Refused(400, "hello's public_key is not an Ed25519 key") from None
    if appliance_id_for(unb64(key_text.strip())) != headers.appliance_id:
        raise Refused(401, "appliance id does not belong to the public key in the hello")
    check_signature(request, headers, body, public)
    return headers.appliance_id, key_text.strip(), headers.nonce


def hello_sync_for(
    db: HomeDB, appliance: str, public_key: str, nonce: str, doc: dict[str, Any]
) -> dict[str, Any]:
    return claims.hello_sync(db, appliance, public_key, nonce, doc)


def add_routes(app: web.Application, data_dir: Path | None = None) -> None:
    """Registered by home/server.py:create_app. ``data_dir`` holds the MSP's signing key, with
    which sync answers sign the acknowledgements they carry."""
    signer = SigningKeyCache(data_dir)

    def sync(db: HomeDB, appliance: str, nonce: str, doc: dict[str, Any]) -> dict[str, Any]:
        return sync_sync(db, appliance, nonce, doc, signer)

    app.router.add_post(HELLO_PATH, _hello)
    app.router.add_post(SYNC_PATH, signed_endpoint(sync, slow_down=False))
    app.router.add_post(DIAGNOSTICS_PATH, signed_endpoint(diagnostics_sync, slow_down=False))
