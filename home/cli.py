"""The ``outpost-home`` command: run the MSP's home server, manage its CA and appliances.

outpost-home init-ca --data-dir D              # once: the MSP's CA (ca.pem goes to boxes)
outpost-home issue-cert --data-dir D --name home.msp.example --name 198.19.0.2
outpost-home register --data-dir D --appliance-id op-... --public-key ... --site "Dentist"
outpost-home run --data-dir D --listen 0.0.0.0:8443
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tomllib
from pathlib import Path
from typing import Any

from core.logs import setup_logging
from core.wire.keys import IdentityError, appliance_id_for, public_key_from_text, unb64
from home.ca import init_ca, issue_cert
from home.console.cli import add_commands as add_console_commands
from home.db import HomeDB, database_location
from home.migrations import MIGRATIONS, current_version, migrate
from home.notify.cli import add_commands as add_notify_commands
from home.notify.cli import load as load_notify
from home.notify.config import Hours, NotifyConfigError
from home.notify.stored import Source
from home.notify.worker import Notifier
from home.remote_cli import add_commands as add_remote_commands
from home.report.cli import add_commands as add_report_commands
from home.report.monthly import ReportConfigError, parse_report_config, run_mailer
from home.retention import RetentionPolicy
from home.server import Faults, serve
from home.sql import DatabaseUnavailable, Target, connect

DEFAULT_DATA_DIR = "/var/lib/outpost-home"
DEFAULT_LISTEN = "0.0.0.0:8443"
EXIT_USAGE = 2
DATABASE_HELP = (
    "SQLite file or postgresql://user@host:port/db URL "
    "(default: $OUTPOST_HOME_DATABASE, else DATA_DIR/home.db)"
)


def _config(path: str | None) -> dict[str, Any]:
    """Optional TOML file with the same keys as the run options (data_dir, listen, cert, key)."""
    if not path:
        return {}
    with open(path, "rb") as handle:
        table = tomllib.load(handle)
    known = {
        "data_dir",
        "database",
        "listen",
        "cert",
        "key",
        "fleet_password_file",
        "notify",
        "rollup_after_days",
        "retention_days",
        "report",
    }
    unknown = set(table) - known
    if unknown:
        raise SystemExit(f"outpost-home: {path}: unknown keys {sorted(unknown)}; known: {known}")
    return table


def _split_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(
            f"outpost-home: --listen {text!r}: write it as HOST:PORT, e.g. 0.0.0.0:8443"
        )
    return host.strip("[]"), int(port)


def cmd_run(args: argparse.Namespace) -> int:
    conf = _config(args.config)
    data_dir = Path(args.data_dir or conf.get("data_dir") or DEFAULT_DATA_DIR)
    host, port = _split_listen(args.listen or conf.get("listen") or DEFAULT_LISTEN)
    cert = args.cert or conf.get("cert") or str(data_dir / "server.pem")
    key = args.key or conf.get("key") or str(data_dir / "server.key")
    for path in (cert, key):
        if not Path(path).exists():
            print(
                f"outpost-home: {path} not found; make one with 'outpost-home issue-cert "
                f"--data-dir {data_dir} --name HOSTNAME'",
                file=sys.stderr,
            )
            return EXIT_USAGE
    faults = Faults.parse(args.faults) if args.faults else None
    if args.fleet_password_file or conf.get("fleet_password_file"):
        print(
            "outpost-home: the fleet password is replaced by console users: make one with "
            "'outpost-home create-user NAME --role admin' and drop fleet_password_file",
            file=sys.stderr,
        )
        return EXIT_USAGE
    notifier = None
    if args.config and "notify" in conf:  # [notify]: home/notify, docs/notifications.md
        try:
            notify_config, _ = load_notify(args.config)
        except NotifyConfigError as exc:
            print(f"outpost-home: {args.config}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        # The file's table is version 0; versions saved in the console win (home/notify/stored.py).
        source = Source(conf["notify"], Path(args.config).resolve().parent)
        notifier = Notifier.from_data_dir(notify_config, data_dir, source=source)
    report_config = None
    if "report" in conf:  # [report]: the monthly report email, home/report/monthly.py
        try:
            report_config = parse_report_config(
                conf["report"], notify_config if notifier is not None else None
            )
        except ReportConfigError as exc:
            print(f"outpost-home: {args.config}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    setup_logging("info")

    try:
        retention = RetentionPolicy(
            rollup_after_days=float(
                conf.get("rollup_after_days", RetentionPolicy.rollup_after_days)
            ),
            retention_days=float(conf.get("retention_days", RetentionPolicy.retention_days)),
        )
    except (TypeError, ValueError) as exc:
        print(f"outpost-home: {args.config}: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def main() -> None:
        task = asyncio.create_task(
            serve(
                database_location(data_dir, args.database or conf.get("database") or ""),
                host=host,
                port=port,
                cert=cert,
                key=key,
                faults=faults,
                notifier=notifier,
                data_dir=data_dir,
                retention=retention,
                report_config=report_config,
            )
        )

        def hours_in_force(site: str) -> Hours:
            # Read at each use, not bound once: a version saved in the console wins over the
            # file's, and the Notifier swaps its config when it applies one.
            config = notifier.config if notifier is not None else notify_config
            return config.hours_for(site)

        mailer = None
        if report_config is not None:
            mailer = asyncio.create_task(
                run_mailer(
                    database_location(data_dir, args.database or conf.get("database") or ""),
                    report_config,
                    hours_in_force,
                )
            )
            task.add_done_callback(lambda _: mailer.cancel())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if mailer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await mailer

    asyncio.run(main())
    return 0


def cmd_init_ca(args: argparse.Namespace) -> int:
    try:
        cert, _key = init_ca(args.data_dir)
    except FileExistsError as exc:
        print(f"outpost-home: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"CA certificate: {cert} (install it on appliances as uplink.ca_file)")
    return 0


def cmd_issue_cert(args: argparse.Namespace) -> int:
    cert, key = issue_cert(args.data_dir, args.out_dir or args.data_dir, args.name)
    print(f"server certificate: {cert}\nserver key: {key}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the database's schema to this release's version (home's start does it too; run it
    alone before starting several instances of a new release)."""
    location = database_location(args.data_dir, args.database)
    try:
        conn = connect(Target.parse(location))
    except DatabaseUnavailable as exc:
        print(f"outpost-home: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        before = current_version(conn)
        after = migrate(conn)
    finally:
        conn.close()
    applied = [number for number, _ in MIGRATIONS if before < number <= after]
    print(json.dumps({"database": conn.dialect, "schema": after, "applied": applied}))
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    try:
        public_key_from_text(args.public_key)
    except IdentityError as exc:
        print(f"outpost-home: {exc}", file=sys.stderr)
        return EXIT_USAGE
    expected = appliance_id_for(unb64(args.public_key.strip()))
    if args.appliance_id != expected:
        print(
            f"outpost-home: appliance id {args.appliance_id} does not belong to that public key "
            f"(it belongs to {expected}); copy both lines from the same appliance",
            file=sys.stderr,
        )
        return EXIT_USAGE
    db = HomeDB(database_location(args.data_dir, args.database))
    db.open_sync()
    try:
        db.register_sync(args.appliance_id, args.public_key.strip(), args.site)
    finally:
        db.close_sync()
    print(json.dumps({"registered": args.appliance_id, "site": args.site}))
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="outpost-home", description="Outpost MSP home server")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the home server")
    run.add_argument("--config", help="TOML file with data_dir, listen, cert, key")
    run.add_argument("--data-dir", help=f"database and certificates (default {DEFAULT_DATA_DIR})")
    run.add_argument("--database", help=DATABASE_HELP)
    run.add_argument("--listen", help=f"HOST:PORT (default {DEFAULT_LISTEN})")
    run.add_argument("--cert", help="server certificate PEM (default DATA_DIR/server.pem)")
    run.add_argument("--key", help="server key PEM (default DATA_DIR/server.key)")
    run.add_argument(
        "--fleet-password-file",
        help=argparse.SUPPRESS,  # replaced by console users (create-user); refused with a hint
    )
    run.add_argument("--faults", help=argparse.SUPPRESS)  # fault injection, tests only
    run.set_defaults(func=cmd_run)
    ca = sub.add_parser("init-ca", help="make the MSP's CA in DATA_DIR")
    ca.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    ca.set_defaults(func=cmd_init_ca)
    cert = sub.add_parser("issue-cert", help="issue home's server certificate from the CA")
    cert.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    cert.add_argument("--out-dir", help="where server.pem/server.key go (default DATA_DIR)")
    cert.add_argument("--name", action="append", required=True, help="DNS name or IP (repeat)")
    cert.set_defaults(func=cmd_issue_cert)
    mig = sub.add_parser("migrate", help="apply the database migrations of this release")
    mig.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    mig.add_argument("--database", help=DATABASE_HELP)
    mig.set_defaults(func=cmd_migrate)

    reg = sub.add_parser("register", help="register an appliance's public key for a site")
    reg.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    reg.add_argument("--database", help=DATABASE_HELP)
    reg.add_argument("--appliance-id", required=True)
    reg.add_argument("--public-key", required=True)
    reg.add_argument("--site", required=True)
    reg.set_defaults(func=cmd_register)
    add_remote_commands(sub)  # claim, release, push-config, command: home/remote_cli.py
    add_notify_commands(sub, DEFAULT_DATA_DIR)  # notify check/test/list/ack: home/notify/cli.py
    add_report_commands(sub, DEFAULT_DATA_DIR)  # report pdf/html/sends: home/report/cli.py
    add_console_commands(sub, DEFAULT_DATA_DIR)  # create-user, users, create-token (console)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
