"""The `outpost` command: run the appliance, check a configuration, show the status."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys

from core.config import Config, ConfigError, load_config
from core.logs import setup_logging
from core.schema import to_public_dict
from core.supervisor import FatalStartError
from firmware.version import __version__

EXIT_CONFIG = 2  # the configuration is unusable: fix it, restarting will not help
EXIT_FATAL = 1

DEFAULT_CONFIG = "/etc/outpost/outpost.toml"


def _load_or_report(path: str, *, effective: bool = False) -> Config | None:
    try:
        if effective:
            from provisioning.signed_config import load_effective_config

            return load_effective_config(path)
        return load_config(path)
    except ConfigError as exc:
        print(f"outpost: configuration {path} is not valid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    # The file, with the MSP's applied signed site configuration over it (provisioning).
    config = _load_or_report(args.config, effective=True)
    if config is None:
        return EXIT_CONFIG
    setup_logging(config.log.level)
    from firmware.app import run_until_signalled

    try:
        asyncio.run(run_until_signalled(config))
    except FatalStartError as exc:
        print(f"outpost: cannot start: {exc}", file=sys.stderr)
        return EXIT_FATAL
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load_or_report(args.file)
    if config is None:
        return EXIT_CONFIG
    print(f"{args.file}: OK")
    if args.show:
        print(json.dumps(to_public_dict(config), indent=2))
    return 0


def _store_summary(db_path: str) -> dict[str, object]:
    if not os.path.exists(db_path):
        return {"store": db_path, "state": "no store yet (the appliance has not run)"}
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:

        def one(sql: str) -> int:
            count: int = conn.execute(sql).fetchone()[0]
            return count

        return {
            "store": db_path,
            "devices": one("SELECT COUNT(*) FROM devices"),
            "open_alerts": one("SELECT COUNT(*) FROM alerts WHERE state = 'open'"),
            "outbox_records": one("SELECT COUNT(*) FROM outbox"),
            "measurements": one("SELECT COUNT(*) FROM measurements"),
        }
    finally:
        conn.close()


def cmd_status(args: argparse.Namespace) -> int:
    config = _load_or_report(args.config)
    if config is None:
        return EXIT_CONFIG
    from provisioning.claim import claim_summary

    summary = {
        "version": __version__,
        "site": config.site.name,
        **claim_summary(config.provisioning.state_dir),
        **_store_summary(config.store.path),
    }
    print(json.dumps(summary, indent=2))
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="outpost", description="Outpost monitoring appliance")
    parser.add_argument("--version", action="version", version=f"outpost {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the appliance")
    run.add_argument("--config", default=DEFAULT_CONFIG, help="TOML configuration file")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.add_argument("--show", action="store_true", help="print it, secrets left out")
    check.set_defaults(func=cmd_check_config)
    status = sub.add_parser("status", help="show the appliance's state from its store")
    status.add_argument("--config", default=DEFAULT_CONFIG)
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
