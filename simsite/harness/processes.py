"""The two programs as processes: ``outpost`` (the appliance) and ``outpost-home``.

Each child gets its own session (process group) so that a stop reaches whatever it forked;
:func:`stop` asks with SIGTERM and ends the group with SIGKILL after ``grace_s``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Final

from simsite.harness.paths import REPO

#: ``outpost`` from this source tree (``python -m firmware``), whatever is installed.
OUTPOST: Final = [sys.executable, "-m", "firmware"]
#: ``outpost-home`` from this source tree.
HOME: Final = [sys.executable, "-m", "home.cli"]
STOP_GRACE_S: Final = 10.0


def start_appliance(
    config: Path, *, output: IO[bytes] | int = subprocess.DEVNULL, cwd: Path = REPO
) -> subprocess.Popen[bytes]:
    """``outpost run --config CONFIG`` in its own session; stdout and stderr to ``output``."""
    return subprocess.Popen(
        [*OUTPOST, "run", "--config", str(config)],
        cwd=cwd,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of ``proc`` (no chance to finish anything) and reap it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(STOP_GRACE_S)


def stop(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the process group of ``proc``; SIGKILL it if it has not exited in ``grace_s``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            kill(proc)
