"""``outpost-home`` subcommands of the console's accounts (registered in home/cli.py).

outpost-home create-user NAME --role admin [--password-file F]   # password asked for otherwise
outpost-home set-password NAME [--password-file F]
outpost-home users                                               # names and roles (no hashes)
outpost-home create-token NAME --label L --role read-only        # prints the token once

A password is never an argument (it would stay in the shell history and in ``ps``): it is read
from a prompt (twice) or from the first line of a file.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from home.console import accounts, audit, totp
from home.console.roles import ROLE_NAMES, Role
from home.db import HomeDB, database_location
from home.sql import Connection

EXIT_USAGE = 2


class _Refused(Exception):
    pass


def _password(args: argparse.Namespace) -> str:
    if args.password_file:
        try:
            text = Path(args.password_file).read_text()
        except OSError as exc:
            raise _Refused(f"cannot read {args.password_file}: {exc.strerror}") from None
        return text.splitlines()[0] if text else ""
    if not sys.stdin.isatty():
        raise _Refused("no terminal to ask the password on; give --password-file FILE")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("password again: "):
        raise _Refused("the two passwords differ")
    return first


def _in_tx(args: argparse.Namespace, work: Callable[[Connection], Any]) -> Any:
    db = HomeDB(database_location(args.data_dir, args.database))
    db.open_sync()
    try:
        conn = db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result
    finally:
        db.close_sync()


def _entry(action: str, target: str, detail: str = "") -> audit.Entry:
    return audit.Entry(time.time(), "cli", "", action, target, detail, "localhost", "ok")


def cmd_create_user(args: argparse.Namespace) -> int:
    role = accounts.parse_role_or_error(args.role)
    accounts.check_name(args.name)
    password = _password(args)

    def work(conn: Connection) -> None:
        accounts.create_user(conn, args.name, role, password, time.time())
        audit.record(conn, _entry("user.create", args.name, f"role {role.value}"))

    _in_tx(args, work)
    print(json.dumps({"user": args.name, "role": role.value}))
    return 0


def cmd_set_password(args: argparse.Namespace) -> int:
    password = _password(args)

    def work(conn: Connection) -> None:
        accounts.set_password(conn, args.name, password)
        audit.record(conn, _entry("user.password", args.name))

    _in_tx(args, work)
    print(json.dumps({"user": args.name, "password": "changed; sessions ended"}))
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    for user in _in_tx(args, accounts.users):
        print(json.dumps({"user": user.name, "role": user.role.value}))
    return 0


def cmd_create_token(args: argparse.Namespace) -> int:
    role = accounts.parse_role_or_error(args.role)

    def work(conn: Connection) -> tuple[str, str]:
        made = accounts.create_token(conn, args.name, args.label, role, time.time())
        audit.record(conn, _entry("token.create", args.label, f"for {args.name}, {role.value}"))
        return made

    token_id, secret = _in_tx(args, work)
    print(json.dumps({"id": token_id, "token": secret, "user": args.name, "role": role.value}))
    return 0


def cmd_totp(args: argparse.Namespace) -> int:
    """Turn the TOTP second factor on (prints the secret and otpauth URI once) or off."""
    secret = "" if args.off else totp.new_secret()

    def work(conn: Connection) -> None:
        accounts.set_totp(conn, args.name, secret)
        audit.record(conn, _entry("user.totp", args.name, "off" if args.off else "on"))

    _in_tx(args, work)
    if args.off:
        print(json.dumps({"user": args.name, "totp": "off"}))
    else:
        print(json.dumps({"user": args.name, "totp": "on", "secret": secret,
                          "uri": totp.uri(secret, args.name)}))  # fmt: skip
    return 0


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (accounts.AccountError, _Refused) as exc:
            print(f"outpost-home: {exc}", file=sys.stderr)
            return EXIT_USAGE

    return run


def add_commands(sub: Any, default_data_dir: str) -> None:
    """Add the subcommands to ``outpost-home``'s parser (one line in home/cli.py)."""

    def parser(name: str, help_text: str, fn: Callable[[argparse.Namespace], int]) -> Any:
        # No abbreviations: "--password SECRET" must not pass as --password-file.
        p = sub.add_parser(name, help=help_text, allow_abbrev=False)
        p.add_argument("--data-dir", default=default_data_dir)
        p.add_argument("--database", default="", help="SQLite file or postgresql:// URL")
        p.set_defaults(func=_guard(fn))
        return p

    create = parser("create-user", "add a console user (password asked for)", cmd_create_user)
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=ROLE_NAMES)
    create.add_argument("--password-file", help="read the password from this file's first line")
    change = parser("set-password", "change a console user's password", cmd_set_password)
    change.add_argument("name")
    change.add_argument("--password-file", help="read the password from this file's first line")
    parser("users", "list console users and their roles", cmd_users)
    second = parser("totp", "turn a user's TOTP second factor on (prints the secret) or off",
                    cmd_totp)  # fmt: skip
    second.add_argument("name")
    second.add_argument("--off", action="store_true", help="turn it off")
    token = parser("create-token", "make an API token for a user's scripts", cmd_create_token)
    token.add_argument("name", help="the user the token acts as")
    token.add_argument("--label", required=True)
    token.add_argument("--role", default=Role.READ_ONLY.value, choices=ROLE_NAMES)
