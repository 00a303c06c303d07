"""The status page's HTTP server as a supervised service."""

from __future__ import annotations

import asyncio
import contextlib
import os

from aiohttp import web

from core.logs import get_log
from services.context import AppContext
from web.app import create_app

log = get_log("web")


class WebService:
    name = "web"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._runner: web.AppRunner | None = None

    async def setup(self) -> None:
        settings = self.ctx.config.web
        runner = web.AppRunner(
            create_app(self.ctx), access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.listen, settings.port).start()
            if settings.unix_socket:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(settings.unix_socket)
                await web.UnixSite(runner, settings.unix_socket).start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(
                f"cannot serve the status page on {settings.listen}:{settings.port}: "
                f"{exc.strerror}; free the port or set web.port"
            ) from exc
        self._runner = runner
        log.info("web.listening", address=f"{settings.listen}:{settings.port}")

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def teardown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
