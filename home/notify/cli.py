"""``outpost-home notify ...``: check the configuration, send a test, list, acknowledge.

outpost-home notify check --config home.toml            # parse [notify]; print it without secrets
outpost-home notify test CHANNEL --config home.toml     # send a test message on one channel
outpost-home notify list --data-dir D [--state failed]  # the outbox, newest first (JSON lines)
outpost-home notify deliveries --data-dir D             # the delivery log (JSON lines)
outpost-home notify ack REF --by NAME --data-dir D      # acknowledge: stops escalation
outpost-home notify silence --site S [--device N] [--key P] --minutes 60 --data-dir D
outpost-home notify silences --data-dir D               # active and future silences
outpost-home notify unsilence ID --data-dir D           # end one now
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

from core.schema import Secret
from home.db import HomeDB, database_location
from home.notify import outbox, silences
from home.notify.config import EMPTY, NotifyConfig, NotifyConfigError, parse
from home.notify.planner import Planner
from home.notify.trial import send_trial

DATABASE_HELP = "a postgresql:// URL (default: $OUTPOST_HOME_DATABASE, else DATA_DIR/home.db)"
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
            if isinstance(value, Secret):  # never its text: only whether it is set
                shown[key] = "(set, from its file)" if value else "(not set)"
            elif isinstance(value, tuple):
                shown[key] = list(value)
            else:
                shown[key] = value
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


def _db_call(args: argparse.Namespace, fn: Any) -> Any:
    db = HomeDB(database_location(args.data_dir, args.database or ""))
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
    result = asyncio.run(send_trial(config, args.channel))
    if not result.ok:
        print(json.dumps({"channel": args.channel, "ok": False, "error": result.error}))
        return EXIT_FAILED
    latency_ms = round(result.latency_ms, 1)
    print(json.dumps({"channel": args.channel, "ok": True, "latency_ms": latency_ms}))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = _db_call(args, lambda db: outbox.listing(db.conn, args.state, args.limit))
    for row in rows:
        print(json.dumps(row))
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    for row in _db_call(args, lambda db: outbox.deliveries(db.conn, args.limit)):
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

    if not _db_call(args, work):
        print(f"outpost-home: no open alert {args.ref!r} (resolved, or a typo?)", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps({"acknowledged": args.ref, "by": args.by}))
    return 0


def _until(args: argparse.Namespace, now: float) -> float:
    if args.minutes is not None:
        return now + float(args.minutes) * 60.0
    try:
        end = datetime.fromisoformat(args.until)
    except ValueError:
        raise SystemExit(
            f"outpost-home: --until {args.until!r}: write e.g. 2026-12-02T18:00+01:00"
        ) from None
    if end.tzinfo is None:
        raise SystemExit(
            "outpost-home: --until needs its time zone offset, e.g. 2026-12-02T18:00+01:00"
        )
    return end.timestamp()


def cmd_silence(args: argparse.Namespace) -> int:
    now = time.time()  # the CLI runs once: the real time (here and in the listings below)
    if args.minutes is None and not args.until:
        print("outpost-home: give the end: --until ISO-TIME or --minutes N", file=sys.stderr)
        return EXIT_USAGE
    ends_at = _until(args, now)

    def work(db: HomeDB) -> str:
        return silences.add(
            db.conn,
            site=args.site,
            device=args.device,
            key_pattern=args.key,
            starts_at=now,
            ends_at=ends_at,
            reason=args.reason,
            created_by=args.by,
        )

    try:
        silence_id = _db_call(args, work)
    except ValueError as exc:
        print(f"outpost-home: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps({"silence": silence_id, "ends_at": ends_at}))
    return 0


def cmd_silences(args: argparse.Namespace) -> int:
    for row in _db_call(args, lambda db: silences.listing(db.conn, time.time())):
        print(json.dumps(row))
    return 0


def cmd_unsilence(args: argparse.Namespace) -> int:
    if not _db_call(args, lambda db: silences.end(db.conn, args.id, time.time())):
        print(f"outpost-home: no active silence {args.id!r}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps({"ended": args.id}))
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
    listing.add_argument("--database", help=DATABASE_HELP)
    listing.add_argument("--state", default="", help="pending, sending, sent, failed, cancelled")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(func=cmd_list)
    log = nsub.add_parser("deliveries", help="the delivery log, newest first (JSON lines)")
    log.add_argument("--data-dir", default=default_data_dir)
    log.add_argument("--database", help=DATABASE_HELP)
    log.add_argument("--limit", type=int, default=100)
    log.set_defaults(func=cmd_deliveries)
    ack = nsub.add_parser("ack", help="acknowledge an alert by its reference (stops escalation)")
    ack.add_argument("ref")
    ack.add_argument("--by", required=True, help="who acknowledges")
    ack.add_argument("--data-dir", default=default_data_dir)
    ack.add_argument("--database", help=DATABASE_HELP)
    ack.set_defaults(func=cmd_ack)
    silence = nsub.add_parser("silence", help="a maintenance window: no notifications until END")
    silence.add_argument("--site", default="", help="the site (default: every site)")
    silence.add_argument("--device", default="", help="one device id (the N in device.down:N)")
    silence.add_argument("--key", default="*", help="alert keys, shell pattern (default *)")
    silence.add_argument("--until", default="", help="end, ISO 8601 with offset")
    silence.add_argument("--minutes", type=float, help="or: end this many minutes from now")
    silence.add_argument("--reason", default="")
    silence.add_argument("--by", default="", help="who set it")
    silence.add_argument("--data-dir", default=default_data_dir)
    silence.add_argument("--database", help=DATABASE_HELP)
    silence.set_defaults(func=cmd_silence)
    active = nsub.add_parser("silences", help="active and future silences (JSON lines)")
    active.add_argument("--data-dir", default=default_data_dir)
    active.add_argument("--database", help=DATABASE_HELP)
    active.set_defaults(func=cmd_silences)
    unsilence = nsub.add_parser("unsilence", help="end a silence now")
    unsilence.add_argument("id")
    unsilence.add_argument("--data-dir", default=default_data_dir)
    unsilence.add_argument("--database", help=DATABASE_HELP)
    unsilence.set_defaults(func=cmd_unsilence)
