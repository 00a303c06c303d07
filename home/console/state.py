"""What the console's handlers share: the database, the clock, home's data directory, the
login limiter and the template environment (one object on the aiohttp app)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from home.console import text
from home.console.ratelimit import LoginLimiter
from home.db import HomeDB

TEMPLATES_DIR = Path(__file__).parent.parent / "templates" / "console"
STATIC_DIR = Path(__file__).parent.parent / "static"


def _templates() -> jinja2.Environment:
    # Autoescape everywhere: site names, device names and alert messages come from boxes and so
    # from devices on customers' networks. No template marks a value |safe.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=True),
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(duration=text.duration, age=text.age, when=text.when)
    return env


@dataclass
class Console:
    """The console of one home process. ``data_dir`` holds the MSP's signing key (claims,
    configurations, commands); None disables those actions with a message saying so."""

    db: HomeDB
    clock: Callable[[], float]
    data_dir: Path | None
    limiter: LoginLimiter
    templates: jinja2.Environment = field(default_factory=_templates)
    streams: int = 0  # live-update streams open now
    extra: dict[str, Any] = field(default_factory=dict)

    async def on_db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(conn, *args)`` on a database thread with that thread's connection."""
        db = self.db
        return await db.call(lambda: fn(db.conn, *args))

    async def in_tx(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(conn, *args)`` in one transaction on a database thread."""
        db = self.db

        def work() -> Any:
            conn = db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return result

        return await db.call(work)


CONSOLE_KEY = web.AppKey("console", Console)
