"""``python -m simsite``: bring a simulated site up, or clean up after crashed ones.

    python -m simsite up --demo              # the built-in demo office
    python -m simsite up --corpus DIR        # one device per recording in DIR
    python -m simsite up --demo --loopback   # no namespaces (what non-root gets anyway)
    python -m simsite cleanup                # remove leftovers of dead sites

``up`` prints one JSON object describing the running site (namespaces, addresses, ports)
on stdout, then blocks until Ctrl-C or SIGTERM and tears everything down.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from .base import DEFAULT_START_TIMEOUT_S, SiteBase
from .corpus import corpus_site
from .demo import demo_site
from .errors import SiteError
from .lifecycle import SIGTERM_EXIT_STATUS
from .loopback import LoopbackSite
from .owner import sweep_stale
from .site import Site


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simsite",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build a site, print it as JSON, run until Ctrl-C/SIGTERM")
    which = up.add_mutually_exclusive_group(required=True)
    which.add_argument("--demo", action="store_true", help="the built-in demo office")
    which.add_argument("--corpus", type=Path, metavar="DIR", help="a directory of *.snmprec")
    up.add_argument(
        "--loopback",
        action="store_true",
        help="127.18.N.x instead of namespaces (the default when not root)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_START_TIMEOUT_S,
        help="seconds to wait for every agent to answer (default %(default)s)",
    )
    sub.add_parser("cleanup", help="remove namespaces and processes of dead sites")
    return parser


#: Exit statuses of the signals ``up`` treats as "please stop" (128 + signal number).
_STOP_STATUSES = {SIGTERM_EXIT_STATUS, 128 + signal.SIGHUP}


def _on_hangup(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _up(args: argparse.Namespace) -> int:
    # Started as a background job, a process inherits SIGINT ignored; Ctrl-C (or kill -INT)
    # must still stop the site. A closed terminal (SIGHUP) stops it too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, _on_hangup)
    spec = demo_site() if args.demo else corpus_site(args.corpus)
    loopback = args.loopback or os.geteuid() != 0
    if loopback and not args.loopback:
        print("not root: using LoopbackSite (no namespaces, ARP or mDNS)", file=sys.stderr)
    site: SiteBase = (LoopbackSite if loopback else Site)(spec, start_timeout_s=args.timeout)
    with site:
        print(json.dumps(site.describe(), indent=1), flush=True)
        print("site is up; Ctrl-C or SIGTERM tears it down", file=sys.stderr, flush=True)
        while True:
            signal.pause()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "cleanup":
        removed = sweep_stale()
        print(json.dumps({"removed_namespaces": removed}))
        return 0
    try:
        return _up(args)
    except KeyboardInterrupt:
        return 0
    except SystemExit as exc:
        # SIGTERM/SIGHUP arrive as SystemExit once the site has been torn down: a clean stop.
        if exc.code in _STOP_STATUSES:
            return 0
        raise
    except SiteError as exc:
        print(f"simsite: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
