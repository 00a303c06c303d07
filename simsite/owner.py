"""Who owns which prefix, and the sweep that removes what dead owners left behind.

Each running site keeps an owner record (a small JSON file) naming its prefix, the pid
and kernel start time of the Python process that owns it, its work dir and the children it
started. The record is written *before* any namespace exists and removed *after* the last
one is gone, so at any moment a namespace of our naming scheme either has a live owner or
is stale. Several sites (several test runs, several engineers) coexist: the sweep only
ever removes what belongs to a dead owner.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import netns, procs

#: Every namespace we create is named PREFIX + suffix, PREFIX = "op" + 4 hex digits.
PREFIX_RE = re.compile(r"^op[0-9a-f]{4}$")
NS_RE = re.compile(r"^(?P<prefix>op[0-9a-f]{4})(?:sw|app|gw|msp|-[a-z0-9-]+)$")
_PREFIX_TRIES = 64
#: An unparsable record younger than this may still be being written: leave it alone.
_FRESH_RECORD_S = 10.0


def run_dir() -> Path:
    """Where owner records live: /run/simsite as root, a per-user temp dir otherwise."""
    if os.geteuid() == 0:
        return Path("/run/simsite")
    return Path(tempfile.gettempdir()) / f"simsite-run-{os.geteuid()}"


@dataclass
class OwnerRecord:
    prefix: str
    pid: int
    start_time: int
    workdir: str
    # [pid, start_time] of each child, so leftovers can be found even without namespaces.
    children: list[list[int]] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return run_dir() / f"{self.prefix}.json"

    def owner_alive(self) -> bool:
        return procs.is_alive(self.pid, self.start_time)

    def save(self) -> None:
        """Atomically replace the record (rename), so a reader never sees half a file."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(self.path)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def reserve_prefix() -> OwnerRecord:
    """Pick a fresh prefix and claim it with an exclusively created owner record."""
    directory = run_dir()
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    in_use = {m.group("prefix") for ns in netns.names() if (m := NS_RE.match(ns))}
    me = os.getpid()
    started = procs.start_time(me)
    assert started is not None  # our own /proc entry always exists
    for _ in range(_PREFIX_TRIES):
        prefix = "op" + secrets.token_hex(2)
        if prefix in in_use:
            continue
        record = OwnerRecord(prefix=prefix, pid=me, start_time=started, workdir="")
        try:
            fd = os.open(record.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(asdict(record)))
        return record
    raise RuntimeError(f"no free simsite prefix after {_PREFIX_TRIES} tries")


def load_records() -> tuple[list[OwnerRecord], set[str]]:
    """Parsed owner records, and the prefixes of records being written right now."""
    records = []
    busy: set[str] = set()
    directory = run_dir()
    if not directory.is_dir():
        return [], busy
    for path in directory.glob("op*.json"):
        try:
            data = json.loads(path.read_text())
            records.append(OwnerRecord(**data))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, TypeError):
            # Either being created this instant (treat as live) or left half-written by a
            # process that died in between (drop it; its namespaces are swept as stale).
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime < _FRESH_RECORD_S:
                    busy.add(path.stem)
                else:
                    path.unlink()
    return records, busy


def _remove_workdir(workdir: str) -> None:
    path = Path(workdir)
    # Only ever remove what looks like one of our temp dirs.
    if workdir and path.name.startswith("simsite-") and path.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(path, ignore_errors=True)


def sweep_stale() -> list[str]:
    """Remove namespaces, processes and work dirs whose owner process is dead.

    Returns the namespaces deleted. Namespace removal needs root; unprivileged callers
    only clean up their own loopback leftovers.
    """
    records, busy = load_records()
    live = {r.prefix for r in records if r.owner_alive()} | busy
    for record in records:
        if record.prefix in live:
            continue
        procs.kill_pids(pid for pid, started in record.children if procs.is_alive(pid, started))
    removed: list[str] = []
    if os.geteuid() == 0:
        for ns in netns.names():
            match = NS_RE.match(ns)
            if match is None or match.group("prefix") in live:
                continue
            procs.kill_pids(netns.pids(ns))
            netns.delete(ns)
            removed.append(ns)
    for record in records:
        if record.prefix not in live:
            _remove_workdir(record.workdir)
            record.remove()
    return removed
