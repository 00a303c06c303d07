"""Remote commands from the MSP: signed, addressed, expiring, executed at most once, answered.

The box never listens on the internet: commands ride in home's answers to the box's own sync
requests. Each is a document ``{"kind": "outpost.command", "id", "appliance", "action", "args",
"issued_at", "expires_at"}`` signed with the MSP's key. The box checks the signature, that it is
addressed to this appliance, and that it has not expired (by its own clock when synchronised,
else by home's clock from the answer), then runs it once: the ids of commands run are kept on
disk until they expire, so a replayed or re-delivered command is answered with its first result
and never run twice. Every command gets a result that is sent home with the next request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core import fsops
from core.clock import Clock, system_clock
from core.wire.signing import COMMAND_ACTIONS, COMMAND_KIND, Refused, open_envelope

KIND = COMMAND_KIND
ACTIONS = COMMAND_ACTIONS
MAX_LIFETIME_S = 7 * 86400.0  # a command valid longer than this is refused as a mistake
RESULTS_KEEP = 50


@dataclass(frozen=True)
class Command:
    id: str
    action: str
    args: dict[str, Any]
    issued_at: float
    expires_at: float


def verify(envelope: Any, public: Ed25519PublicKey, appliance_id: str, now: float) -> Command:
    doc = open_envelope(envelope, public, KIND)
    cid = doc.get("id")
    if not isinstance(cid, str) or not 1 <= len(cid) <= 64:
        raise Refused("command has no valid id")
    if doc.get("appliance") != appliance_id:
        raise Refused(f"command {cid} is for appliance {doc.get('appliance')!r}")
    action = doc.get("action")
    if action not in ACTIONS:
        raise Refused(f"command {cid}: unknown action {action!r}; known: {', '.join(ACTIONS)}")
    args = doc.get("args", {})
    if not isinstance(args, dict):
        raise Refused(f"command {cid}: args must be an object")
    issued, expires = doc.get("issued_at"), doc.get("expires_at")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (issued, expires)):
        raise Refused(f"command {cid}: issued_at and expires_at must be times")
    assert isinstance(issued, int | float) and isinstance(expires, int | float)
    if expires - issued > MAX_LIFETIME_S:
        raise Refused(f"command {cid}: valid for more than {MAX_LIFETIME_S / 86400:g} days")
    if now > expires:
        raise Refused(f"command {cid} expired {now - expires:.0f} s ago")
    return Command(cid, str(action), args, float(issued), float(expires))


Handler = Callable[[Command], Awaitable[str]]


class CommandBook:
    """Which commands ran (until they expire) and the results not yet delivered home."""

    def __init__(self, state_dir: Path, clock: Clock | None = None) -> None:
        self.path = Path(state_dir) / "commands.json"
        self.clock = clock or system_clock()  # stamps each result's "at" (wall time)

    def load(self) -> dict[str, Any]:
        state = fsops.read_json(self.path)
        if not isinstance(state, dict):
            state = {"seen": {}, "results": []}
        return state

    def _save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fsops.write_json_atomic(self.path, state, mode=0o640)

    def record(
        self, cid: str, expires_at: float | None, outcome: str, detail: str, **extra: str
    ) -> None:
        state = self.load()
        result = {"id": cid, "outcome": outcome, "detail": detail, "at": self.clock.wall(), **extra}
        if expires_at is not None:
            state["seen"][cid] = {"expires_at": expires_at, "result": result}
        state["results"] = [*state["results"], result][-RESULTS_KEEP:]
        self._save(state)

    def seen(self, cid: str) -> dict[str, Any] | None:
        entry = self.load()["seen"].get(cid)
        return entry["result"] if entry else None

    def prune(self, now: float) -> None:
        state = self.load()
        keep = {k: v for k, v in state["seen"].items() if v["expires_at"] >= now}
        if len(keep) != len(state["seen"]):
            state["seen"] = keep
            self._save(state)

    def take_results(self) -> list[dict[str, Any]]:
        return list(self.load()["results"])

    def drop_results(self, count: int) -> None:
        state = self.load()
        state["results"] = state["results"][count:]
        self._save(state)


async def run_commands(
    envelopes: list[Any],
    *,
    public: Ed25519PublicKey,
    appliance_id: str,
    now: float,
    book: CommandBook,
    handlers: dict[str, Handler],
    outcomes: list[tuple[str, str]] | None = None,
) -> list[str]:
    """Verify and run each command once; return the ids run now (for logs and tests).
    ``outcomes`` (if given) gets (action, "done" | "failed") for each command run now."""
    ran: list[str] = []
    book.prune(now)
    for envelope in envelopes:
        try:
            command = verify(envelope, public, appliance_id, now)
        except Refused as exc:
            # Reported, but not remembered as run: an unverified document must not be able to
            # block a genuine command that later arrives with the same id.
            book.record(_peek_id(envelope) or "?", None, "refused", exc.reason)
            continue
        first = book.seen(command.id)
        if first is not None:
            # Replayed (or re-delivered): never run twice. Home is told, with the first result,
            # so it can stop handing the command out and count the replay.
            book.record(
                command.id,
                None,
                "duplicate",
                f"already run: {first['outcome']} {first['detail']}",
                first=str(first["outcome"]),
            )
            continue
        handler = handlers.get(command.action)
        if handler is None:
            book.record(command.id, command.expires_at, "refused", "not supported on this box")
            continue
        # Recorded as started before running: a command that reboots the box, or crashes it,
        # must not run again when the box comes back and sees it re-delivered.
        book.record(command.id, command.expires_at, "started", command.action)
        try:
            detail = await handler(command)
        except Exception as exc:  # noqa: BLE001 - any failure is reported to home as "failed"
            book.record(command.id, command.expires_at, "failed", f"{type(exc).__name__}: {exc}")
            outcome = "failed"
        else:
            book.record(command.id, command.expires_at, "done", detail)
            outcome = "done"
        ran.append(command.id)
        if outcomes is not None:
            outcomes.append((command.action, outcome))
    return ran


def _peek_id(envelope: Any) -> str | None:
    import json

    from core.wire.keys import unb64

    try:
        cid = json.loads(unb64(envelope["doc"])).get("id")
    except (KeyError, TypeError, ValueError, AttributeError):  # not an envelope, bad base64/JSON
        return None
    return cid if isinstance(cid, str) and len(cid) <= 64 else None
