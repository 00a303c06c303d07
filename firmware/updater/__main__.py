"""`python -m firmware.updater`: the updater (run as root by systemd) and the release tools.

resume      take a request from the mailbox, drive the update in progress, check the trial
            (what outpost-updater.service runs at boot, on a new request and every minute)
install URL request an update from a bundle URL or file and drive it (technician, tests)
check       commit a healthy trial or roll back an expired one
rollback    roll a release on trial back now
confirm     report the running release healthy (normally the appliance does it by itself)
status      print the journal
selftest    (run inside a new release before the switch) import everything, check the version
keygen      make a release signing key pair          build   make a signed release bundle
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from core.config import ConfigError, load_config
from core.logs import setup_logging
from core.settings.updates import UpdateSettings

DEFAULT_CONFIG = "/etc/outpost/outpost.toml"
EXIT_REFUSED = 3


def _settings(args: argparse.Namespace) -> UpdateSettings:
    try:
        return load_config(args.config).updates
    except ConfigError as exc:
        print(f"outpost-updater: {args.config}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _updater(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from firmware.updater.installer import Updater

    return Updater(_settings(args))


def _print(state: dict[str, object]) -> None:
    print(json.dumps(state, indent=2, sort_keys=True))


def _result_code(state: dict[str, object]) -> int:
    last = state.get("last_result")
    if state.get("phase") == "idle" and isinstance(last, dict):
        return 0 if last.get("outcome") == "committed" else EXIT_REFUSED
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from core import mailbox
    from firmware.updater.installer import UpdateError

    updater = _updater(args)
    request = mailbox.take_request(updater.mailbox)
    if request is not None:
        try:
            updater.request(
                request["url"], version=request.get("version"), command_id=request.get("command_id")
            )
        except UpdateError as exc:
            print(f"outpost-updater: request ignored: {exc}", file=sys.stderr)
        mailbox.clear_request(updater.mailbox)
    _print(asyncio.run(updater.run()))
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    updater = _updater(args)
    updater.request(args.url, version=args.version)
    state = asyncio.run(updater.run())
    _print(state)
    return _result_code(state)


def cmd_check(args: argparse.Namespace) -> int:
    _print(_updater(args).check())
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    state = _updater(args).rollback(args.reason)
    _print(state)
    return 0


def cmd_confirm(args: argparse.Namespace) -> int:
    from core import mailbox
    from core.clock import BootInfo
    from firmware.version import __version__

    settings = _settings(args)
    mailbox.write_health(Path(settings.mailbox_dir), __version__, BootInfo.read().boot_id, "manual")
    print(f"reported {__version__} healthy")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    _print(_updater(args).state())
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    import importlib.metadata

    import firmware
    import firmware.app  # imports every service and its libraries

    version = importlib.metadata.version("outpost")
    if version != args.expect_version:
        print(f"selftest: installed version {version}, expected {args.expect_version}")
        return 1
    where = Path(firmware.__file__).resolve()
    if not where.is_relative_to(Path(args.expect_root).resolve()):
        print(f"selftest: code imported from {where}, not from {args.expect_root}")
        return 1
    print(f"selftest: outpost {version} OK")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    import os

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    from core.wire.keys import public_key_text

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    print(public_key_text(key.public_key()))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from firmware.updater.build import build_bundle, load_private_key

    build_bundle(
        Path(args.out),
        version=args.version,
        wheels=[Path(w) for w in args.wheels],
        key=load_private_key(Path(args.key)),
        downgrade_from=tuple(args.downgrade_from),
        notes=args.notes,
    )
    print(args.out)
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m firmware.updater",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("resume").set_defaults(func=cmd_resume)
    install = sub.add_parser("install")
    install.add_argument("url")
    install.add_argument("--version", default=None, help="refuse a bundle of another version")
    install.set_defaults(func=cmd_install)
    sub.add_parser("check").set_defaults(func=cmd_check)
    rollback = sub.add_parser("rollback")
    rollback.add_argument("--reason", default="rolled back by a technician")
    rollback.set_defaults(func=cmd_rollback)
    sub.add_parser("confirm").set_defaults(func=cmd_confirm)
    sub.add_parser("status").set_defaults(func=cmd_status)
    selftest = sub.add_parser("selftest")
    selftest.add_argument("--expect-version", required=True)
    selftest.add_argument("--expect-root", required=True)
    selftest.set_defaults(func=cmd_selftest)
    keygen = sub.add_parser("keygen")
    keygen.add_argument("out", help="private key file to create (PEM, mode 0600)")
    keygen.set_defaults(func=cmd_keygen)
    build = sub.add_parser("build")
    build.add_argument("--version", required=True)
    build.add_argument("--key", required=True, help="private key file (PEM) from keygen")
    build.add_argument("--out", required=True)
    build.add_argument(
        "--downgrade-from",
        action="append",
        default=[],
        help="sign as an explicit rollback from this running version",
    )
    build.add_argument("--notes", default="")
    build.add_argument("wheels", nargs="+", help="the release's complete, locked set of wheels")
    build.set_defaults(func=cmd_build)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    setup_logging("info")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
