"""File-system steps that survive a power cut: atomic JSON writes and symlink switches.

Both follow the same recipe: write the new thing under a temporary name in the same directory,
fsync it, ``rename()`` it over the old name (atomic on POSIX: a reader sees the old or the new,
never half), then fsync the directory so the rename itself is on disk before we go on.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    """Make a rename or create inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any, *, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    payload = json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_json(path: Path) -> Any:
    """The JSON at ``path``, or None when it does not exist."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def switch_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (symlink to a temporary name, rename over)."""
    tmp = link.with_name(f".{link.name}.new")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def read_link(link: Path) -> str | None:
    try:
        return os.readlink(link)
    except (FileNotFoundError, OSError):
        return None


def remove_tree(path: Path) -> None:
    """Remove a directory tree if present (symlinks inside are removed, never followed)."""
    import shutil

    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
