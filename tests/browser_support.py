"""Headless Chromium (the Debian package) driven by Playwright, for the status-page tests."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from simsite.harness.paths import REPO

CHROMIUM = "/usr/bin/chromium"
# No phoning home from the test browser: the machine has no network but loopback and simsite.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"


def require_browser() -> None:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip("Debian package 'chromium' is not installed (make deps installs it)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip(
            "Python package playwright is not installed (.venv/bin/pip install playwright==1.65.2)"
        )


@dataclass
class PageWatch:
    """Console errors and CSP violations seen by a page: a clean page has none."""

    errors: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[object]:
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


def watch(page: object) -> PageWatch:
    seen = PageWatch()
    page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: seen.errors.append(str(e)))  # type: ignore[attr-defined]
    return seen


async def screenshot(page: object, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


async def wait_js(page: object, expression: str, within_s: float = 10.0) -> None:
    """Poll ``expression`` until truthy. Playwright's wait_for_function polls with eval(),
    which the page's CSP (rightly) forbids; page.evaluate goes through DevTools instead."""
    import asyncio
    import time

    deadline = time.monotonic() + within_s
    while not await page.evaluate(expression):  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        await asyncio.sleep(0.05)
