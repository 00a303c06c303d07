"""Signed remote commands on the box: run once, expired and replayed ones refused, results kept."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.wire import signing
from provisioning.commands import KIND, Command, CommandBook, run_commands

ME = "op-aaaaaaaaaaaaaaaaaaaa"
MSP = Ed25519PrivateKey.generate()


def _cmd(cid: str, action: str = "identify", ttl_s: float = 300.0, **extra: Any) -> dict[str, Any]:
    now = time.time()
    doc = {
        "kind": KIND,
        "id": cid,
        "appliance": ME,
        "action": action,
        "args": {},
        "issued_at": now,
        "expires_at": now + ttl_s,
        **extra,
    }
    return signing.sign(MSP, doc)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, command: Command) -> str:
        self.calls.append(command.id)
        if command.args.get("boom"):
            raise RuntimeError("device unreachable")
        return f"{command.action} ok"


async def _run(
    book: CommandBook, envelopes: list[Any], rec: Recorder, now: float | None = None
) -> list[str]:
    handlers: dict[str, Callable[[Command], Awaitable[str]]] = {
        a: rec for a in ("identify", "rediscover", "poll", "reboot")
    }
    return await run_commands(
        envelopes,
        public=MSP.public_key(),
        appliance_id=ME,
        now=now or time.time(),
        book=book,
        handlers=handlers,
    )


async def test_command_runs_once_even_when_redelivered_or_replayed(tmp_path: Path) -> None:
    book, rec = CommandBook(tmp_path), Recorder()
    envelope = _cmd("c1")
    assert await _run(book, [envelope], rec) == ["c1"]
    assert await _run(book, [envelope, envelope], rec) == []  # re-delivered, replayed
    # Even a new process (after a reboot) remembers it.
    assert await _run(CommandBook(tmp_path), [envelope], rec) == []
    assert rec.calls == ["c1"]
    results = book.take_results()
    assert [(r["id"], r["outcome"]) for r in results] == [
        ("c1", "started"),
        ("c1", "done"),
        ("c1", "duplicate"),
        ("c1", "duplicate"),
        ("c1", "duplicate"),
    ]
    assert results[1]["detail"] == "identify ok"
    assert results[-1]["detail"] == "already run: done identify ok"


async def test_expired_command_is_refused_not_run(tmp_path: Path) -> None:
    book, rec = CommandBook(tmp_path), Recorder()
    envelope = _cmd("c2", ttl_s=60.0)
    assert await _run(book, [envelope], rec, now=time.time() + 120.0) == []
    assert rec.calls == []
    result = book.take_results()[-1]
    assert result["id"] == "c2" and result["outcome"] == "refused"
    assert result["detail"].startswith("command c2 expired")


async def test_forged_wrong_target_and_unknown_commands_are_refused(tmp_path: Path) -> None:
    book, rec = CommandBook(tmp_path), Recorder()
    other_key_env = signing.sign(
        Ed25519PrivateKey.generate(),
        {
            "kind": KIND,
            "id": "c3",
            "appliance": ME,
            "action": "reboot",
            "args": {},
            "issued_at": time.time(),
            "expires_at": time.time() + 60,
        },
    )
    elsewhere = _cmd("c4", appliance="op-somebody-else")
    unknown = _cmd("c5", action="format-disk")
    assert await _run(book, [other_key_env, elsewhere, unknown], rec) == []
    reasons = {r["id"]: r["detail"] for r in book.take_results()}
    assert "bad signature" in reasons["c3"]
    assert reasons["c4"] == "command c4 is for appliance 'op-somebody-else'"
    assert reasons["c5"].startswith("command c5: unknown action 'format-disk'")
    # The forged c3 did not burn the id: the genuine c3 still runs.
    assert await _run(book, [_cmd("c3", action="reboot")], rec) == ["c3"]


async def test_failing_command_reports_why_and_is_not_retried(tmp_path: Path) -> None:
    book, rec = CommandBook(tmp_path), Recorder()
    envelope = _cmd("c6", action="poll", args={"boom": True})
    assert await _run(book, [envelope], rec) == ["c6"]
    assert book.take_results()[-1]["outcome"] == "failed"
    assert book.take_results()[-1]["detail"] == "RuntimeError: device unreachable"
    assert await _run(book, [envelope], rec) == []
    book.drop_results(3)
    assert book.take_results() == []


async def test_seen_ids_are_forgotten_only_after_they_expire(tmp_path: Path) -> None:
    book, rec = CommandBook(tmp_path), Recorder()
    await _run(book, [_cmd("c7", ttl_s=10.0)], rec)
    book.prune(time.time() + 5.0)
    assert book.seen("c7") is not None
    book.prune(time.time() + 20.0)
    assert book.seen("c7") is None
