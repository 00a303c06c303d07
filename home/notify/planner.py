"""The outbox writer: alert changes -> notification rows, in the caller's transaction.

Every function here runs on home's database thread with the connection inside an open
transaction (the ingest transaction for alerts from boxes; the worker's own for home-side
alerts), so a notification exists if and only if the alert change that caused it committed.

Rows (table ``notifications``, home/migrations.py) carry ``event``:
``open`` (grouped per channel and site by a shared ``due_at``: everything that opens within the
group wait joins the first row's send time; alerts held for business hours share the next
business-hours start, which makes the site's digest), ``escalate`` (one per step and channel,
cancelled by an acknowledgement or the resolution) and ``resolved`` (waits ``resolve_wait_s``: a
re-open before it goes out cancels it and counts a flap instead of sending two more mails).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.vocabulary import Severity
from home.db import AlertChange
from home.notify import silences
from home.notify.config import NotifyConfig
from home.notify.routing import Decision, Subject, decide
from home.sql import Connection

URGENT = Severity.MAJOR  # this and worse escalate (and are sent at once)
SITE_OFFLINE_KEY = "home.site_offline"
BACKLOG_KEY = "home.backlog"
THINNING_KEY = "home.storage_thinning"
THINNING_REASONS = ("thinned", "budget")  # the box's storage budget at work (docs/uplink.md)
THINNING_QUIET_S = 6 * 3600.0  # no new thinning for this long: the warning resolves
CHANNEL_FAILING_KEY = "home.channel_failing:"
HOME_APPLIANCE = "home"  # appliance column of alerts home raises about itself (channels)


@dataclass(frozen=True)
class Thread:
    ref: str
    appliance: str
    alert_key: str
    box_id: str
    site: str
    severity: str
    rule: str
    device_kind: str
    message: str
    state: str
    opened_at: float
    resolved_at: float | None
    acked_by: str
    acked_at: float | None
    flaps: int


THREAD_COLUMNS = ", ".join(Thread.__dataclass_fields__)


def thread(conn: Connection, ref: str) -> Thread | None:
    row = conn.execute(f"SELECT {THREAD_COLUMNS} FROM notify_threads WHERE ref = ?", (ref,))
    found = row.fetchone()
    return Thread(*found) if found else None


def _latest_thread(conn: Connection, appliance: str, key: str) -> Thread | None:
    found = conn.execute(
        f"SELECT {THREAD_COLUMNS} FROM notify_threads WHERE appliance = ? AND alert_key = ?"
        " ORDER BY opened_at DESC, ref DESC LIMIT 1",
        (appliance, key),
    ).fetchone()
    return Thread(*found) if found else None


def device_kind(body: dict[str, Any]) -> str:
    """The device kind an alert carries (``device_kind`` or ``data.kind``), '' when none."""
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    kind = body.get("device_kind") or (data or {}).get("kind") or ""
    return str(kind)[:40]


MAX_DEPENDANTS = 100  # listed in one message; the rest are counted


def dependants(body: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The devices a box suppressed behind a dead parent (``data.suppressed`` of its gateway's
    "down" record, docs/uplink.md): ``([{"device_id", "name", "ip", "kind"}], total)``."""
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    listed = (data or {}).get("suppressed")
    out: list[dict[str, Any]] = []
    for d in listed if isinstance(listed, list) else []:
        if isinstance(d, dict) and type(d.get("device_id")) is int:
            out.append(
                {
                    "device_id": d["device_id"],
                    "name": str(d.get("name", ""))[:120],
                    "ip": str(d.get("ip", ""))[:64],
                    "kind": str(d.get("kind", ""))[:40],
                }
            )
    total = (data or {}).get("suppressed_total")
    return out[:MAX_DEPENDANTS], total if type(total) is int and total >= len(out) else len(out)


def _merge_dependants(
    before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    seen = {d["device_id"]: d for d in before}
    for d in after:
        seen.setdefault(d["device_id"], d)
    return list(seen.values())[:MAX_DEPENDANTS]


def _box_ts(body: dict[str, Any]) -> float | None:
    """When the box stored the alert change (its body's ``ts``, epoch seconds), if given."""
    ts = body.get("ts")
    return float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else None


def _lasted(opened: Any, closed: float | None, at_least_s: float) -> bool:
    return isinstance(opened, int | float) and closed is not None and closed - opened >= at_least_s


class Planner:
    """Turns alert changes into outbox rows. ``clock`` gives epoch seconds (virtual in tests);
    ``wake`` is called after rows were added (the worker looks sooner)."""

    def __init__(self, config: NotifyConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.wake: Callable[[], None] = lambda: None
        # appliance -> (records thinned or dropped for the budget so far, when that last grew).
        # In memory: after a restart the first heartbeat is the new baseline.
        self._thinning: dict[str, tuple[int, float]] = {}

    # ---- alert changes (the db.AlertHook) ----

    def on_alert(self, conn: Connection, change: AlertChange) -> None:
        now = self.clock()
        if change.state == "open":
            self._opened(conn, change, now)
        elif change.state == "resolved":
            self._resolved(conn, change, now)
        self.wake()

    def _opened(self, conn: Connection, change: AlertChange, now: float) -> None:
        body = change.body
        box_id = str(body.get("id", ""))
        last = _latest_thread(conn, change.appliance, change.key)
        if last is not None and last.state == "open":
            if last.box_id == box_id:
                return  # the same opening again (a resend the stream dedup did not see)
            self._close_thread(conn, last.ref, now)  # the box forgot it (restart): a new one
        elif last is not None and self._cancel_pending_resolution(conn, last.ref):
            # Down, up, down again before the resolution went out: one thread, a flap counted.
            conn.execute(
                "UPDATE notify_threads SET state = 'open', resolved_at = NULL, box_id = ?,"
                " flaps = flaps + 1 WHERE ref = ?",
                (box_id, last.ref),
            )
            return
        ref = self._new_ref(conn, change.appliance, box_id, change.key, now)
        kind = device_kind(body)
        conn.execute(
            f"INSERT INTO notify_threads ({THREAD_COLUMNS}) VALUES"
            " (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, NULL, '', NULL, 0)",
            (
                ref,
                change.appliance,
                change.key,
                box_id,
                change.site,
                change.severity,
                str(body.get("rule", "")),
                kind,
                str(body.get("message", ""))[:500],
                now,
            ),
        )
        if change.appliance == HOME_APPLIANCE and change.key.startswith(CHANNEL_FAILING_KEY):
            # A failing channel is told through the fallback channel only, at once.
            if self.config.fallback:
                decision = Decision((self.config.fallback,), now, False, ())
                self._add_opens(
                    conn,
                    ref=ref,
                    site=change.site,
                    severity=change.severity,
                    decision=decision,
                    now=now,
                )
            return
        silence = silences.covering(conn, change.site, change.key, now)
        if silence is not None:  # a maintenance window: recorded, nobody told
            conn.execute(
                "UPDATE notify_threads SET silenced_by = ? WHERE ref = ?", (silence.id, ref)
            )
            return
        decision = decide(self.config, Subject(change.site, change.severity, kind, change.key), now)
        behind, total = dependants(body)
        self._add_opens(
            conn,
            ref=ref,
            site=change.site,
            severity=change.severity,
            decision=decision,
            now=now,
            box_ts=_box_ts(change.body),
            extra={"dependants": behind, "dependants_total": total} if behind else None,
        )
        self._add_escalation(
            conn, ref, site=change.site, severity=change.severity, decision=decision, now=now
        )

    def _add_escalation(
        self,
        conn: Connection,
        ref: str,
        *,
        site: str,
        severity: str,
        decision: Decision,
        now: float,
    ) -> None:
        if Severity.parse(severity, Severity.INFO) < URGENT:
            return
        for step_no, step in enumerate(decision.escalation, start=1):
            for channel in step.channels:
                self._insert(
                    conn,
                    f"{ref}.escalate{step_no}.{channel}",
                    ref=ref,
                    site=site,
                    channel=channel,
                    event="escalate",
                    severity=severity,
                    held=False,
                    due_at=now + step.after_s,
                    now=now,
                    body={"step": step_no, "after_s": step.after_s},
                )

    def release_silenced(self, conn: Connection) -> int:
        """Alerts still open when the maintenance window that silenced them ended (or was
        ended early) are notified now, as if they opened now: routing, business hours, group
        wait and escalation from this moment. One covered by another active window moves to
        it instead. Call inside a transaction; returns how many were released."""
        now = self.clock()
        released = 0
        for ref, key, site, severity, kind in conn.execute(
            "SELECT t.ref, t.alert_key, t.site, t.severity, t.device_kind FROM notify_threads t"
            " JOIN notify_silences s ON s.id = t.silenced_by"
            " WHERE t.state = 'open' AND t.silenced_by <> '' AND s.ends_at <= ?"
            " ORDER BY t.opened_at, t.ref",
            (now,),
        ).fetchall():
            still = silences.covering(conn, site, key, now)
            conn.execute(
                "UPDATE notify_threads SET silenced_by = ? WHERE ref = ?",
                (still.id if still else "", ref),
            )
            if still is not None:
                continue
            decision = decide(self.config, Subject(site, severity, kind, key), now)
            self._add_opens(
                conn, ref=ref, site=site, severity=severity, decision=decision, now=now,
                extra={"after_silence": True},
            )  # fmt: skip
            self._add_escalation(
                conn, ref, site=site, severity=severity, decision=decision, now=now
            )
            released += 1
        if released:
            self.wake()
        return released

    def _add_opens(
        self,
        conn: Connection,
        *,
        ref: str,
        site: str,
        severity: str,
        decision: Decision,
        now: float,
        box_ts: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        body: dict[str, Any] = {} if box_ts is None else {"box_ts": box_ts}
        body.update(extra or {})
        for channel in decision.channels:
            wait_s = 0.0 if decision.held else self.config.group_wait_s
            wanted = decision.due_at + wait_s
            # Join the group that is already waiting on this channel for this site, if any.
            joined = conn.execute(
                "SELECT MIN(due_at) FROM notifications WHERE channel = ? AND site = ?"
                " AND event = 'open' AND state = 'pending' AND held = ? AND message_id = ''"
                " AND due_at > ? AND due_at <= ?",
                (channel, site, int(decision.held), now, wanted),
            ).fetchone()[0]
            due = float(joined) if joined is not None else wanted
            self._insert(
                conn,
                f"{ref}.open.{channel}",
                ref=ref,
                site=site,
                channel=channel,
                event="open",
                severity=severity,
                held=decision.held,
                due_at=due,
                now=now,
                body=body,
            )

    def _resolved(self, conn: Connection, change: AlertChange, now: float) -> None:
        last = _latest_thread(conn, change.appliance, change.key)
        if last is None or last.state != "open":
            return
        message = str(change.body.get("message", ""))[:500]
        self._close_thread(conn, last.ref, now)
        told: list[str] = []
        closed_ts = _box_ts(change.body)
        behind, total = dependants(change.body)
        for row_id, channel, state, held, row_body in conn.execute(
            "SELECT id, channel, state, held, body FROM notifications WHERE ref = ?"
            " AND event IN ('open', 'escalate') ORDER BY created_at, id",
            (last.ref,),
        ).fetchall():
            if state == "pending" and held:
                continue  # still waiting for the digest: it will say "resolved since"
            opened_ts = json.loads(row_body or "{}").get("box_ts")
            if state == "pending" and behind:
                # The resolution lists every dependant silent during the outage: a message
                # not yet sent names them all.
                self._add_dependants(conn, row_id, row_body, behind, total)
            if state == "pending" and _lasted(opened_ts, closed_ts, self.config.group_wait_s):
                # It lasted (by the box's clock) but reached home late, e.g. a gateway outage
                # that cut the box off: it still goes out, saying it is resolved.
                continue
            if state == "pending":
                # Opened and resolved within the group wait: nobody needs to hear of it.
                conn.execute(
                    "UPDATE notifications SET state = 'cancelled',"
                    " last_error = 'resolved before it was sent' WHERE id = ?",
                    (row_id,),
                )
            elif state in ("sent", "sending") and channel not in told:
                told.append(channel)
        for channel in told:
            self._insert(
                conn,
                f"{last.ref}.resolved{last.flaps}.{channel}",
                ref=last.ref,
                site=last.site,
                channel=channel,
                event="resolved",
                severity=last.severity,
                held=False,
                due_at=now + self.config.resolve_wait_s,
                now=now,
                body={
                    "message": message,
                    **({"dependants": behind} if behind else {}),
                    **({"dependants_total": total} if behind else {}),
                },
            )

    @staticmethod
    def _add_dependants(
        conn: Connection, row_id: str, row_body: str, behind: list[dict[str, Any]], total: int
    ) -> None:
        doc = json.loads(row_body or "{}")
        merged = _merge_dependants(doc.get("dependants") or [], behind)
        doc["dependants"] = merged
        doc["dependants_total"] = max(total, int(doc.get("dependants_total") or 0), len(merged))
        conn.execute(
            "UPDATE notifications SET body = ? WHERE id = ? AND state = 'pending'",
            (json.dumps(doc, sort_keys=True), row_id),
        )

    # ---- acknowledgement ----

    def acknowledge(self, conn: Connection, ref: str, by: str) -> bool:
        """Mark ``ref`` acknowledged by ``by`` and cancel its pending escalations.
        False when there is no such open alert (already resolved, or unknown)."""
        now = self.clock()
        found = thread(conn, ref)
        if found is None or found.state != "open":
            return False
        if not found.acked_by:
            conn.execute(
                "UPDATE notify_threads SET acked_by = ?, acked_at = ? WHERE ref = ?",
                (by[:120], now, ref),
            )
        conn.execute(
            "UPDATE notifications SET state = 'cancelled', last_error = 'acknowledged'"
            " WHERE ref = ? AND event = 'escalate' AND state = 'pending'",
            (ref,),
        )
        return True

    def acknowledge_alert(self, conn: Connection, appliance: str, key: str, by: str) -> bool:
        """Acknowledge the open alert ``key`` of ``appliance`` (how the console names alerts);
        False when it has no open thread."""
        last = _latest_thread(conn, appliance, key)
        return last is not None and self.acknowledge(conn, last.ref, by)

    # ---- home-side alerts ----

    def set_home_alert(
        self,
        conn: Connection,
        *,
        appliance: str,
        site: str,
        key: str,
        state: str,
        severity: str,
        message: str,
    ) -> bool:
        """Open or resolve an alert home raises itself (in ``alerts``, like a box's); True when
        the state changed. Runs the same planning as a box's alert."""
        now = self.clock()
        row = conn.execute(
            "SELECT state FROM alerts WHERE appliance = ? AND key = ?", (appliance, key)
        ).fetchone()
        previous = str(row[0]) if row else ""
        if previous == state or (state == "resolved" and previous != "open"):
            return False
        conn.execute(
            "INSERT INTO alerts (appliance, key, state, severity, message, ts)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (appliance, key) DO UPDATE SET"
            " state = excluded.state, severity = excluded.severity,"
            " message = excluded.message, ts = excluded.ts",
            (appliance, key, state, severity, message[:500], now),
        )
        body = {
            "key": key,
            "id": f"h{now:.0f}",
            "state": state,
            "severity": severity,
            "message": message,
            "rule": key.split(":", maxsplit=1)[0],
        }
        self.on_alert(conn, AlertChange(appliance, site, key, state, previous, severity, body))
        return True

    def check_sites(self, conn: Connection) -> None:
        """Home-side alerts from what boxes report, or fail to. Call inside a transaction.

        * a registered box silent for ``offline_after_s`` -> major "site offline"; back ->
          resolved, with how long it was gone;
        * a box whose oldest unsent record (heartbeat ``oldest_unsent_age_s``) is older than
          ``backlog_warn_s`` -> warning "backlog"; resolved below half of it.
        """
        now = self.clock()
        limit = self.config.offline_after_s
        for appliance, site, seen, heartbeat in conn.execute(
            "SELECT id, site, COALESCE(heartbeat_at, last_seen), heartbeat FROM appliances"
            " WHERE state = 'registered' AND COALESCE(heartbeat_at, last_seen) IS NOT NULL"
        ).fetchall():
            silent_s = now - float(seen)
            name = site or appliance
            offline = limit > 0 and silent_s > limit
            if offline:
                self.set_home_alert(
                    conn,
                    appliance=appliance,
                    site=site,
                    key=SITE_OFFLINE_KEY,
                    state="open",
                    severity="major",
                    message=f"site {name} offline: no heartbeat for {silent_s / 60:.0f} min",
                )
            elif limit > 0:
                last = _latest_thread(conn, appliance, SITE_OFFLINE_KEY)
                gone_s = now - (last.opened_at - limit) if last else 0.0
                self.set_home_alert(
                    conn,
                    appliance=appliance,
                    site=site,
                    key=SITE_OFFLINE_KEY,
                    state="resolved",
                    severity="major",
                    message=f"site {name} back online after {gone_s / 60:.0f} min silent",
                )
            if self.config.backlog_warn_s > 0 and not offline:
                self._check_backlog(conn, appliance, site, heartbeat)
            if not offline:
                self._check_thinning(conn, appliance, site, heartbeat, now)

    def _check_thinning(
        self, conn: Connection, appliance: str, site: str, heartbeat: str, now: float
    ) -> None:
        """A box thinning or dropping bulk data to stay in its storage budget: a warning while
        its cumulative counts (heartbeat ``drops``) keep growing."""
        try:
            doc = json.loads(heartbeat or "{}")
        except ValueError:
            return
        drops = doc.get("drops") if isinstance(doc, dict) else None
        if not isinstance(drops, dict):
            return
        total = sum(
            n
            for reason in THINNING_REASONS
            if isinstance(drops.get(reason), dict)
            for n in drops[reason].values()
            if isinstance(n, int)
        )
        seen = self._thinning.get(appliance)
        if seen is None:
            self._thinning[appliance] = (total, float("-inf"))
            return
        before, grew_at = seen
        if total > before:
            self._thinning[appliance] = (total, now)
            self.set_home_alert(
                conn,
                appliance=appliance,
                site=site,
                key=THINNING_KEY,
                state="open",
                severity="warning",
                message=f"box of {site or appliance} is short of storage: {total} records"
                " thinned or dropped so far (its uplink cannot keep up, or the budget is small)",
            )
        elif now - grew_at > THINNING_QUIET_S:
            self.set_home_alert(
                conn,
                appliance=appliance,
                site=site,
                key=THINNING_KEY,
                state="resolved",
                severity="warning",
                message=f"box of {site or appliance}: no data thinned for"
                f" {THINNING_QUIET_S / 3600:.0f} h",
            )

    def _check_backlog(self, conn: Connection, appliance: str, site: str, heartbeat: str) -> None:
        try:
            doc = json.loads(heartbeat or "{}")
        except ValueError:
            return
        age = doc.get("oldest_unsent_age_s") if isinstance(doc, dict) else None
        if not isinstance(age, int | float) or isinstance(age, bool):
            age = 0.0
        warn_s = self.config.backlog_warn_s
        queue = doc.get("queue") if isinstance(doc.get("queue"), dict) else {}
        waiting = sum(v for v in queue.values() if isinstance(v, int))
        if age > warn_s:
            self.set_home_alert(
                conn,
                appliance=appliance,
                site=site,
                key=BACKLOG_KEY,
                state="open",
                severity="warning",
                message=f"box of {site or appliance} is behind: {waiting} records queued,"
                f" the oldest {age / 60:.0f} min old",
            )
        elif age < warn_s / 2:  # hysteresis: a backlog around the threshold does not flap
            self.set_home_alert(
                conn,
                appliance=appliance,
                site=site,
                key=BACKLOG_KEY,
                state="resolved",
                severity="warning",
                message=f"box of {site or appliance} has caught up",
            )

    # ---- helpers ----

    def _insert(
        self,
        conn: Connection,
        row_id: str,
        *,
        ref: str,
        site: str,
        channel: str,
        event: str,
        severity: str,
        held: bool,
        due_at: float,
        now: float,
        body: dict[str, Any],
    ) -> None:
        if channel not in self.config.channels:
            return  # removed from the configuration since: nothing can send it
        conn.execute(
            "INSERT INTO notifications (id, ref, site, channel, event, severity, held,"
            " created_at, due_at, next_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            (
                row_id,
                ref,
                site,
                channel,
                event,
                severity,
                int(held),
                now,
                due_at,
                due_at,
                json.dumps(body, sort_keys=True),
            ),
        )

    def _close_thread(self, conn: Connection, ref: str, now: float) -> None:
        conn.execute(
            "UPDATE notify_threads SET state = 'resolved', resolved_at = ? WHERE ref = ?",
            (now, ref),
        )
        conn.execute(
            "UPDATE notifications SET state = 'cancelled', last_error = 'resolved'"
            " WHERE ref = ? AND event = 'escalate' AND state = 'pending'",
            (ref,),
        )

    def _cancel_pending_resolution(self, conn: Connection, ref: str) -> bool:
        pending = conn.execute(
            "SELECT COUNT(*) FROM notifications WHERE ref = ? AND event = 'resolved'"
            " AND state = 'pending'",
            (ref,),
        ).fetchone()[0]
        if not pending:
            return False
        conn.execute(
            "UPDATE notifications SET state = 'cancelled', last_error = 'flapped: re-opened'"
            " WHERE ref = ? AND event = 'resolved' AND state = 'pending'",
            (ref,),
        )
        return True

    @staticmethod
    def _new_ref(conn: Connection, appliance: str, box_id: str, key: str, now: float) -> str:
        # The alert's id in every subject: short appliance id + the box's alert id.
        short = appliance.removeprefix("op-")[:8] or "home"
        base = f"{short}-{box_id}" if box_id else f"{short}-{abs(hash((key, now))) % 10**8}"
        ref, n = base, 1
        while conn.execute("SELECT 1 FROM notify_threads WHERE ref = ?", (ref,)).fetchone():
            n += 1
            ref = f"{base}.{n}"  # a box that lost its database reuses alert ids
        return ref
