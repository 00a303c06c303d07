"""``outpost-home notify ...``: check the configuration, send a test, list, acknowledge.

outpost-home notify check --config home.toml            # parse [notify]; print it without secrets
outpost-home notify test CHANNEL --config home.toml     # send a test message on one channel
outpost-home notify list --data-dir D [--state failed]  # the outbox, newest first (JSON lines)
outpost-home notify deliveries --data-dir D             # the delivery log (JSON lines)
outpost-home notify ack REF --by NAME --data-dir D      # acknowledge: stops escalation
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from home.db import HomeDB, database_location
from home.notify import outbox
from home.notify.channels import SendError, send
from home.notify.config import EMPTY, NotifyConfig, NotifyConfigError, parse
from home.notify.messages import trial_message
from home.notify.planner import Planner

EXIT_USAGE = 2
EXIT_FAILED = 1


def load(config_path: str) -> tuple[NotifyConfig, dict[str, Any]]:
    """The ``[notify]`` table of home's TOML configuration (EMPTY when there is none) and the
    whole table. Raises NotifyConfigError naming the problem."""
    try:
        with open(config_path, "rb") as handle:
            table = tomllib.load(handle)
    except OSError as exc:
        raise NotifyConfigError(f"cannot read {config_path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise NotifyConfigError(f"{config_path} is not valid TOML: {exc}") from None
    section = table.get("notify")
    if section is None:
        return EMPTY, table
    if not isinstance(section, dict):
        raise NotifyConfigError("notify: a table, written [notify]")
    return parse(section, Path(config_path).resolve().parent), table


def describe(config: NotifyConfig) -> dict[str, Any]:
    """The configuration as shown back: secrets appear only as whether they are set."""
    channels: dict[str, Any] = {}
    for name, channel in config.channels.items():
        shown: dict[str, Any] = {"type": channel.type}
        for key, value in vars(channel).items():
            if key in ("name", "type"):
                continue
            shown[key] = (
                "(set, from its file)" if key in ("password", "secret", "url") and value else value
            )
            if isinstance(value, tuple):
                shown[key] = list(value)
        channels[name] = shown
    return {
        "channels": channels,
        "routes": [
            {k: list(v) if isinstance(v, tuple) else v for k, v in vars(r).items() if v}
            for r in config.routes
        ],
        "sites": {
            site: {"timezone": str(h.zone), "start": str(h.start), "end": str(h.end)}
            for site, h in config.sites.items()
        },
        "fallback": config.fallback,
        "public_url": config.public_url,
    }


def _db_call(data_dir: str, fn: Any) -> Any:
    db = HomeDB(database_location(data_dir))
    db.open_sync()
    try:
        return fn(db)
    finally:
        db.close_sync()


def cmd_check(args: argparse.Namespace) -> int:
    try:
        config, _ = load(args.config)
    except NotifyConfigError as exc:
        print(f"outpost-home: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(describe(config), indent=2, default=str))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    try:
        config, _ = load(args.config)
    except NotifyConfigError as exc:
        print(f"outpost-home: {exc}", file=sys.stderr)
        return EXIT_USAGE
    channel = config.channels.get(args.channel)
    if channel is None:
        known = ", ".join(sorted(config.channels)) or "none"
        print(f"outpost-home: no channel {args.channel!r}; configured: {known}", file=sys.stderr)
        return EXIT_USAGE
    now = time.time()
    rendered = trial_message(args.channel, now)
    started = time.perf_counter()
    try:
        asyncio.run(send(channel, rendered, str(rendered.payload["id"]), ""))
    except SendError as exc:
        print(json.dumps({"channel": args.channel, "ok": False, "error": str(exc)}))
        return EXIT_FAILED
    latency_ms = round((time.perf_counter() - started) * 1000.0, 1)
    print(json.dumps({"channel": args.channel, "ok": True, "latency_ms": latency_ms}))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = _db_call(args.data_dir, lambda db: outbox.listing(db.conn, args.state, args.limit))
    for row in rows:
        print(json.dumps(row))
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    for row in _db_call(args.data_dir, lambda db: outbox.deliveries(db.conn, args.limit)):
        print(json.dumps(row))
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    planner = Planner(EMPTY, time.time)

    def work(db: HomeDB) -> bool:
        conn = db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = planner.acknowledge(conn, args.ref, args.by)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return done

    if not _db_call(args.data_dir, work):
        print(f"outpost-home: no open alert {args.ref!r} (resolved, or a typo?)", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps({"acknowledged": args.ref, "by": args.by}))
    return 0


def add_commands(sub: Any, default_data_dir: str) -> None:
    notify = sub.add_parser("notify", help="notifications: check, test, list, acknowledge")
    nsub = notify.add_subparsers(dest="notify_command", required=True)
    check = nsub.add_parser("check", help="check the [notify] configuration; secrets not shown")
    check.add_argument("--config", required=True)
    check.set_defaults(func=cmd_check)
    test = nsub.add_parser("test", help="send a test message on CHANNEL")
    test.add_argument("channel")
    test.add_argument("--config", required=True)
    test.set_defaults(func=cmd_test)
    listing = nsub.add_parser("list", help="notifications, newest first (JSON lines)")
    listing.add_argument("--data-dir", default=default_data_dir)
    listing.add_argument("--state", default="", help="pending, sending, sent, failed, cancelled")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(func=cmd_list)
    log = nsub.add_parser("deliveries", help="the delivery log, newest first (JSON lines)")
    log.add_argument("--data-dir", default=default_data_dir)
    log.add_argument("--limit", type=int, default=100)
    log.set_defaults(func=cmd_deliveries)
    ack = nsub.add_parser("ack", help="acknowledge an alert by its reference (stops escalation)")
    ack.add_argument("ref")
    ack.add_argument("--by", required=True, help="who acknowledges")
    ack.add_argument("--data-dir", default=default_data_dir)
    ack.set_defaults(func=cmd_ack)
