"""Helpers for the updater tests: real wheels of this repo at chosen versions, signed bundles,
an HTTP server on loopback, and an install root with a committed first release."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.wire.keys import public_key_text
from simsite.harness.paths import REPO

# The top-level packages the wheel ships: read from pyproject.toml, so a new package is never
# silently left out of the test release.
PACKAGES = tuple(
    name.rstrip("*")
    for name in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
)


def build_wheel(version: str, out_dir: Path, work: Path) -> Path:
    """A real wheel of this source tree, stamped with ``version`` (pip wheel, no network)."""
    src = work / f"src-{version}"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in PACKAGES:
        if (REPO / pkg).is_dir():
            shutil.copytree(REPO / pkg, src / pkg, ignore=ignore)
    text = (REPO / "pyproject.toml").read_text()
    text = text.replace('version = "0.1.0"', f'version = "{version}"', 1)
    (src / "pyproject.toml").write_text(text)
    (src / "README.md").write_text("outpost test build\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--disable-pip-version-check",
            "-w",
            str(out_dir),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(src)
    return next(out_dir.glob(f"outpost-{version}-*.whl"))


def pip_wheel() -> Path:
    """The pip wheel the interpreter ships for ensurepip (a bundle carries its own pip)."""
    import ensurepip

    return next((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))


@dataclass
class FileServer:
    """aiohttp on 127.0.0.1 in its own thread: static bundles (with Range/ETag support), a
    handler that cuts the connection half way once, and a log of the Range headers seen."""

    directory: Path
    port: int = 0
    ranges: list[str | None] = field(default_factory=list)
    cut_once: set[str] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.ranges.append(request.headers.get("Range"))
        path = self.directory / name
        if not path.is_file():
            raise web.HTTPNotFound()
        if name in self.cut_once and "Range" not in request.headers:
            self.cut_once.discard(name)
            data = path.read_bytes()
            resp = web.StreamResponse(headers={"Content-Length": str(len(data))})
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            assert request.transport is not None
            request.transport.close()  # the link drops half way
            return resp
        return web.FileResponse(path)

    def start(self) -> None:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_get("/{name}", self._handle)
            runner = web.AppRunner(app)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        assert ready.wait(10), "test HTTP server did not start"

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


@contextmanager
def file_server(directory: Path) -> Iterator[FileServer]:
    server = FileServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def updater_config(root: Path, key: Ed25519PrivateKey, *, window_s: float = 600.0) -> str:
    site = sysconfig.get_paths()["purelib"]
    return (
        "[updates]\n"
        f'root = "{root}"\n'
        f'mailbox_dir = "{root / "mailbox"}"\n'
        f'release_keys = ["{public_key_text(key.public_key())}"]\n'
        f'python = "{sys.executable}"\n'
        # Test releases carry only the outpost wheel; their libraries come from the test venv.
        f'extra_site_dirs = ["{site}"]\n'
        "restart_command = []\n"
        f"trial_window_s = {window_s}\n"
    )


def run_updater(
    config: Path, *args: str, env: dict[str, str] | None = None, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "firmware.updater", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
        cwd="/",  # never import the repo's tree from the cwd
    )
