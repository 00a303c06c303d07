"""Home's side of claiming: unclaimed boxes say hello, the MSP claims one by its code for a site.

``POST /api/v1/hello`` is the one request home accepts from a box it does not know: it is signed
like every other request, with the public key carried in the body, and the appliance id must be
the one derived from that key, so a hello proves possession of the key. A box that says hello
again (retries, reboots) updates its one row: an appliance id is a key, never a new identity.
``outpost-home claim CODE --site NAME`` finds the pending box whose code hash matches, checks the
code has not expired or been used, registers the box for the site (so its uplink is accepted)
and records the MSP's public key the box will trust from then on.
"""

from __future__ import annotations

import math
from typing import Any

from core.wire.claim_codes import code_hash
from home.db import HomeDB, Refused


class ClaimError(Exception):
    """A claim the MSP asked for cannot be made; the message says why and what to do."""


def hello_sync(
    db: HomeDB, appliance: str, public_key: str, nonce: str, doc: dict[str, Any]
) -> dict[str, Any]:
    """Record (or refresh) an unclaimed box; answer whether and for which site it is claimed."""
    conn = db.conn
    hashed = doc.get("claim_code_sha256")
    expires = doc.get("code_expires_at")
    if not isinstance(hashed, str) or len(hashed) != 64:
        raise Refused(400, "hello lacks claim_code_sha256")
    if (
        not isinstance(expires, int | float)
        or isinstance(expires, bool)
        or not math.isfinite(expires)
    ):
        raise Refused(400, "hello lacks code_expires_at")
    now = db.clock.wall()
    conn.execute("BEGIN IMMEDIATE")
    try:
        db.take_nonce(appliance, nonce, now)
        row = conn.execute(
            "SELECT state, site, msp_key, public_key FROM claims WHERE appliance = ?",
            (appliance,),
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO claims (appliance, public_key, code_hash, code_expires_at, version,"
                " first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (appliance, public_key, hashed, expires, str(doc.get("version", "")), now, now),
            )
            state, site, msp_key = "pending", "", ""
        else:
            state, site, msp_key, known_key = row
            if known_key != public_key:  # impossible unless SHA-256 collides; refuse anyway
                raise Refused(403, "this appliance id belongs to another key")
            if state == "released":
                # The box learns it was released (answer below) and makes a new code; from now
                # on it is pending with that code.
                conn.execute(
                    "UPDATE claims SET state = 'pending', site = '', msp_key = '', code_hash = ?,"
                    " code_expires_at = ?, last_seen = ? WHERE appliance = ?",
                    (hashed, expires, now, appliance),
                )
                state = "pending"
            elif state == "pending":
                conn.execute(
                    "UPDATE claims SET code_hash = ?, code_expires_at = ?, last_seen = ?,"
                    " version = ? WHERE appliance = ?",
                    (hashed, expires, now, str(doc.get("version", "")), appliance),
                )
            else:
                conn.execute(
                    "UPDATE claims SET last_seen = ? WHERE appliance = ?", (now, appliance)
                )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    answer: dict[str, Any] = {"ok": True, "acked": {}, "stream": "", "state": state}
    if state == "claimed":
        answer.update(site=site, msp_key=msp_key)
    return answer


def claim_sync(db: HomeDB, code: str, site: str, msp_key: str, now: float | None = None) -> str:
    """Claim the box showing ``code`` for ``site``; return its appliance id."""
    if not site.strip():
        raise ClaimError("name the site: --site 'Client name'")
    conn = db.conn
    now = db.clock.wall() if now is None else now
    row = conn.execute(
        "SELECT appliance, public_key, state, site, code_expires_at FROM claims"
        " WHERE code_hash = ?",
        (code_hash(code),),
    ).fetchone()
    if row is None:
        raise ClaimError(
            "no box has phoned home with this claim code; check the code on the box's label or "
            "status page, and that the box is plugged in and can reach home"
        )
    appliance, public_key, state, claimed_site, expires = row
    if state == "claimed":
        raise ClaimError(
            f"{appliance} is already claimed for site {claimed_site!r}; release it first "
            f"(outpost-home release {appliance})"
        )
    if state != "pending":
        raise ClaimError(f"this code is spent ({appliance} was released); use the box's new code")
    if expires <= now:
        raise ClaimError("this claim code has expired; the box shows a new one on its status page")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "UPDATE claims SET state = 'claimed', site = ?, msp_key = ?, claimed_at = ?"
            " WHERE appliance = ? AND state = 'pending'",
            (site, msp_key, now, appliance),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    db.register_sync(appliance, public_key, site)
    return str(appliance)


def release_sync(db: HomeDB, appliance: str) -> None:
    conn = db.conn
    row = conn.execute("SELECT state FROM claims WHERE appliance = ?", (appliance,)).fetchone()
    if row is None or row[0] != "claimed":
        raise ClaimError(f"{appliance} is not claimed")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("UPDATE claims SET state = 'released' WHERE appliance = ?", (appliance,))
        conn.execute("UPDATE appliances SET state = 'released' WHERE id = ?", (appliance,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def pending_sync(db: HomeDB) -> list[dict[str, Any]]:
    now = db.clock.wall()
    return [
        {
            "appliance": a,
            "state": s,
            "site": site,
            "last_seen_age_s": round(now - seen, 1),
            "code_expired": exp <= now,
        }
        for a, s, site, seen, exp in db.conn.execute(
            "SELECT appliance, state, site, last_seen, code_expires_at FROM claims"
            " ORDER BY last_seen DESC"
        )
    ]
