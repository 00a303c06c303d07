"""``outpost-home`` subcommands of claiming and remote management (registered in cli.py).

outpost-home init-signing --data-dir D           # once: the MSP's signing key
outpost-home claim CODE --site "Dentist"         # claim the box showing CODE
outpost-home release op-...                      # let the box be claimed again
outpost-home pending                             # boxes that phoned home, claimed or not
outpost-home push-config op-... site.toml        # sign and queue the next configuration
outpost-home command op-... identify|rediscover|poll|diagnostics|reboot|update [--arg k=v]
outpost-home remote-status op-...                # configuration reports and command results
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.wire.keys import public_key_text
from home import claims, remote
from home.db import HomeDB, database_location

DEFAULT_DATA_DIR = "/var/lib/outpost-home"


@contextmanager
def _db(data_dir: str, database: str = "") -> Iterator[HomeDB]:
    db = HomeDB(database_location(data_dir, database))
    db.open_sync()
    try:
        yield db
    finally:
        db.close_sync()


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (claims.ClaimError, FileExistsError, tomllib.TOMLDecodeError, OSError) as exc:
            print(f"outpost-home: {exc}", file=sys.stderr)
            return 2

    return run


def cmd_init_signing(args: argparse.Namespace) -> int:
    print(f"MSP signing public key: {remote.init_signing(Path(args.data_dir))}")
    return 0


def cmd_claim(args: argparse.Namespace) -> int:
    key = remote.load_signing_key(Path(args.data_dir))
    with _db(args.data_dir, args.database) as db:
        appliance = claims.claim_sync(db, args.code, args.site, public_key_text(key.public_key()))
    print(json.dumps({"claimed": appliance, "site": args.site}))
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    with _db(args.data_dir, args.database) as db:
        claims.release_sync(db, args.appliance)
    print(json.dumps({"released": args.appliance}))
    return 0


def cmd_pending(args: argparse.Namespace) -> int:
    with _db(args.data_dir, args.database) as db:
        print(json.dumps(claims.pending_sync(db), indent=2))
    return 0


def cmd_push_config(args: argparse.Namespace) -> int:
    table = tomllib.loads(Path(args.file).read_text())
    key = remote.load_signing_key(Path(args.data_dir))
    with _db(args.data_dir, args.database) as db:
        version = remote.push_config_sync(db, key, args.appliance, table, args.version)
    print(json.dumps({"appliance": args.appliance, "config_version": version}))
    return 0


def _args(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise claims.ClaimError(f"--arg {pair!r}: write it as NAME=VALUE")
        out[name] = value
    return out


def cmd_command(args: argparse.Namespace) -> int:
    key = remote.load_signing_key(Path(args.data_dir))
    with _db(args.data_dir, args.database) as db:
        cid = remote.add_command_sync(
            db, key, args.appliance, args.action, args=_args(args.arg), ttl_s=args.ttl
        )
    print(json.dumps({"command": cid, "action": args.action, "expires_in_s": args.ttl}))
    return 0


def cmd_remote_status(args: argparse.Namespace) -> int:
    with _db(args.data_dir, args.database) as db:
        print(json.dumps(remote.status_sync(db, args.appliance), indent=2))
    return 0


def add_commands(sub: Any) -> None:
    """Add the subcommands to ``outpost-home``'s parser (one line in cli.py)."""

    def parser(name: str, help_text: str, fn: Callable[[argparse.Namespace], int]) -> Any:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
        p.add_argument("--database", default="", help="SQLite file or postgresql:// URL")
        p.set_defaults(func=_guard(fn))
        return p

    parser("init-signing", "make the MSP's configuration/command signing key", cmd_init_signing)
    claim = parser("claim", "claim a box by the code on its label or status page", cmd_claim)
    claim.add_argument("code")
    claim.add_argument("--site", required=True)
    release = parser("release", "release a claimed box so it can be claimed again", cmd_release)
    release.add_argument("appliance")
    parser("pending", "list boxes that phoned home and their claim state", cmd_pending)
    push = parser("push-config", "sign and queue a site configuration (TOML)", cmd_push_config)
    push.add_argument("appliance")
    push.add_argument("file")
    push.add_argument("--version", type=int, default=None, help="(default: the next one)")
    command = parser("command", "queue a signed remote command", cmd_command)
    command.add_argument("appliance")
    command.add_argument("action", choices=remote.ACTIONS)
    command.add_argument("--arg", action="append", default=[], help="NAME=VALUE (repeat)")
    command.add_argument("--ttl", type=float, default=remote.DEFAULT_COMMAND_TTL_S)
    status = parser("remote-status", "configuration reports and command results", cmd_remote_status)
    status.add_argument("appliance")
