"""Mounting the console on home's aiohttp application (home/server.py:create_app)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from core.logs import get_log
from home.console import accounts, api, guard, pages, reports
from home.console.ratelimit import LoginLimiter
from home.console.state import CONSOLE_KEY, STATIC_DIR, Console
from home.db import HomeDB

log = get_log("home.console")


def middleware() -> Any:
    """The guard; home/server.py puts it in the application's middlewares."""
    return guard.middleware()


def mount(
    app: web.Application,
    db: HomeDB,
    data_dir: Path | None,
    clock: Callable[[], float] = time.time,
) -> Console:
    """Add the console's pages, API and static files to ``app`` (whose middlewares must include
    :func:`middleware`)."""
    console = Console(db=db, clock=clock, data_dir=data_dir, limiter=LoginLimiter(clock))
    app[CONSOLE_KEY] = console
    pages.add_routes(app)
    api.add_routes(app)
    reports.add_routes(app)  # the monthly report's pages and downloads
    app.router.add_static(guard.STATIC_PREFIX.rstrip("/"), STATIC_DIR)
    return console


async def announce_setup(
    db: HomeDB, public_url: str, clock: Callable[[], float] = time.time
) -> str:
    """At start: when no user exists, make a one-time setup token and print its link on stderr
    (stdout's first line is home's "listening" line). Returns the token ('' when users exist).
    Call with the database open, before serving."""
    token = ""

    def make() -> None:
        nonlocal token
        conn = db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            token = accounts.new_setup_token(conn, clock()) or ""
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    await db.call(make)
    if token:
        link = f"{public_url}{guard.SETUP_PATH}?token={token}"
        print(
            "outpost-home: the MSP console has no user yet and serves nothing until it has one.\n"
            f"  Make the first admin with this one-time link: {link}\n"
            "  or run: outpost-home create-user NAME --role admin",
            file=sys.stderr,
            flush=True,
        )
        log.warning("console.no_user", setup="link printed on stderr")
    return token
