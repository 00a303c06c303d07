"""Waiting until every started service really answers.

A real SNMP request (snmpgetnext, run where a client would run it) is the only proof that
an agent is bound, has indexed its recording and accepts our community or USM user; a
started process proves nothing. All pending probes run in parallel each round, so a site
of twenty devices waits about as long as its slowest device.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SiteError

#: Pause between probe rounds.
ROUND_PAUSE_S = 0.1
#: A probe process that outlives this is killed (its own SNMP timeout is far shorter).
PROBE_WAIT_S = 5.0
#: How net-snmp tools print SNMP exception values instead of data.
_SNMP_EXCEPTIONS = (b"No more variables", b"No Such Object", b"No Such Instance")
#: Lines of a failed service's log quoted in the error.
LOG_TAIL_LINES = 15


@dataclass(eq=False)
class Check:
    """One thing to wait for: a probe command that must exit 0, or a file that must appear."""

    label: str
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    probe_argv: list[str] | None = None
    probe_env: dict[str, str] = field(default_factory=dict)
    ready_file: Path | None = None


def log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    tail = "\n".join(text.strip().splitlines()[-lines:])
    return f"\n--- last lines of {path} ---\n{tail}" if tail else f" ({path} is empty)"


def _check_alive(check: Check) -> None:
    if check.process is not None and check.process.poll() is not None:
        raise SiteError(
            f"{check.label} exited with status {check.process.returncode} before it was ready"
            + log_tail(check.log)
        )


def _run_probes(checks: Sequence[Check]) -> set[Check]:
    started = []
    for check in checks:
        if check.probe_argv is None:
            continue
        proc = subprocess.Popen(
            check.probe_argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **check.probe_env},
        )
        started.append((check, proc))
    answered = set()
    for check, proc in started:
        try:
            out, _ = proc.communicate(timeout=PROBE_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=PROBE_WAIT_S)
            continue
        # A varbind, not merely any reply: an agent with an empty or unreadable recording
        # answers "No more variables left in this MIB View", and that site is broken.
        if (
            proc.returncode == 0
            and out.lstrip().startswith(b".1.")
            and not any(marker in out for marker in _SNMP_EXCEPTIONS)
        ):
            answered.add(check)
    return answered


def wait_all(checks: Sequence[Check], timeout_s: float) -> None:
    """Return once every check passed; raise SiteError naming the laggards otherwise."""
    pending = list(checks)
    deadline = time.monotonic() + timeout_s
    while pending:
        for check in pending:
            _check_alive(check)
        done = {c for c in pending if c.ready_file is not None and c.ready_file.exists()}
        done |= _run_probes([c for c in pending if c not in done])
        pending = [c for c in pending if c not in done]
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(c.label for c in pending)
            raise SiteError(
                f"not ready after {timeout_s:.0f} s: {names}" + log_tail(pending[0].log)
            )
        time.sleep(ROUND_PAUSE_S)
