"""Resumable bundle download over HTTP(S): a ``.part`` file grows until it is complete.

A cut connection or a reboot leaves the ``.part`` file where it was; the next attempt asks for
the rest with ``Range: bytes=N-`` and appends. The server's ETag is kept beside the part and sent
as ``If-Range``, so a bundle that changed on the server restarts from zero instead of splicing
two files together. Nothing downloaded is trusted: the bundle is verified after completion.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from core.logs import get_log

log = get_log("updater")

CHUNK_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 60.0  # per read: a stalled link fails and resumes later, it does not hang
MAX_BUNDLE_BYTES = 512 * 1024 * 1024


class DownloadError(Exception):
    pass


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    size: int
    resumed_from: int  # bytes already on disk when this attempt started (0: fresh download)


def _etag_path(part: Path) -> Path:
    return part.with_name(part.name + ".etag")


async def download(
    url: str,
    dest: Path,
    *,
    ssl_context: ssl.SSLContext | None = None,
    headers: dict[str, str] | None = None,
) -> DownloadResult:
    """Download ``url`` to ``dest`` (via ``dest.part``), resuming a previous partial attempt."""
    part = dest.with_name(dest.name + ".part")
    etag_file = _etag_path(part)
    have = part.stat().st_size if part.exists() else 0
    etag = etag_file.read_text().strip() if etag_file.exists() and have else ""
    request_headers = dict(headers or {})
    if have:
        request_headers["Range"] = f"bytes={have}-"
        if etag:
            request_headers["If-Range"] = etag
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S
    )
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, headers=request_headers, ssl=ssl_context or True) as resp,
        ):
            if resp.status == 416 and have:
                # Our part is already as long as the file (or longer): start over, cleanly.
                part.unlink()
                etag_file.unlink(missing_ok=True)
                raise DownloadError("server refused the resume range; restarting next attempt")
            if resp.status == 206 and have:
                start = _content_range_start(resp.headers.get("Content-Range", ""))
                if start != have:
                    raise DownloadError(f"server resumed at byte {start}, we asked for {have}")
                mode = "ab"
            elif resp.status == 200:
                have, mode = 0, "wb"
            else:
                raise DownloadError(f"GET {url}: HTTP {resp.status} {resp.reason}")
            resumed_from = have
            if resp.headers.get("ETag"):
                etag_file.write_text(resp.headers["ETag"])
            with part.open(mode) as out:
                async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
                    out.write(chunk)
                    have += len(chunk)
                    if have > MAX_BUNDLE_BYTES:
                        raise DownloadError(f"bundle larger than {MAX_BUNDLE_BYTES} bytes")
                out.flush()
                os.fsync(out.fileno())
            expected = _expected_total(resp, resumed_from)
            if expected is not None and have != expected:
                raise DownloadError(f"connection ended at byte {have} of {expected}; will resume")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise DownloadError(f"GET {url}: {type(exc).__name__}: {exc}; will resume") from None
    os.replace(part, dest)
    with contextlib.suppress(FileNotFoundError):
        etag_file.unlink()
    log.info("download.complete", url=url, bytes=have, resumed_from=resumed_from)
    return DownloadResult(dest, have, resumed_from)


def _content_range_start(value: str) -> int:
    # "bytes 1000-1999/2000"
    try:
        unit, rest = value.split(" ", 1)
        return int(rest.split("-", 1)[0]) if unit == "bytes" else -1
    except ValueError:
        return -1


def _expected_total(resp: aiohttp.ClientResponse, resumed_from: int) -> int | None:
    if resp.status == 206:
        total = resp.headers.get("Content-Range", "").rsplit("/", 1)[-1]
        return int(total) if total.isdigit() else None
    length = resp.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None
