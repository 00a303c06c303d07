"""Starting and ending child processes so that none outlives its site.

Three layers, because each one alone has holes:

* every child gets its own session (process group), so a stop can signal the child *and*
  whatever it forked, and a Ctrl-C in the terminal does not hit the children before the
  site had a chance to stop them in order;
* children started from the main thread get ``PR_SET_PDEATHSIG=SIGKILL``: if the Python
  process dies hard (SIGKILL, segfault) the kernel ends them. Not from other threads: the
  kernel fires it when the creating *thread* exits, which would kill agents early;
* what still survives is found again by the stale sweep (see ``owner.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

#: How long a stopped process may take to exit on SIGTERM before it gets SIGKILL.
TERM_GRACE_S = 3.0
_POLL_S = 0.02
_PR_SET_PDEATHSIG = 1


# Resolved once in the parent: between fork and exec the child must not dlopen (another
# thread may have held the loader lock at fork time); calling a resolved function is safe.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def preexec_for_current_thread() -> Callable[[], None] | None:
    """The ``preexec_fn`` a child should get when spawned from the calling thread."""
    if threading.current_thread() is threading.main_thread():
        return _die_with_parent
    return None


def start_time(pid: int) -> int | None:
    """Kernel start time of ``pid`` in clock ticks (field 22 of /proc/PID/stat), or None.

    Together with the pid it identifies a process across pid reuse.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def is_alive(pid: int, started: int | None = None) -> bool:
    """True if ``pid`` runs (and, when given, is the process that started at ``started``)."""
    now = start_time(pid)
    if now is None:
        return False
    if _is_zombie(pid):
        return False
    return started is None or now == started


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    # The child is a session leader, so its pid is also its process group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def terminate_all(procs: Sequence[subprocess.Popen[bytes]], grace_s: float = TERM_GRACE_S) -> None:
    """SIGTERM every process group, wait up to ``grace_s`` in total, SIGKILL the rest, reap."""
    # Only processes not yet reaped: a pid reaped earlier may belong to someone else by now.
    ours = [p for p in procs if p.returncode is None]
    for proc in ours:
        _signal_group(proc, signal.SIGTERM)
    running = ours
    deadline = time.monotonic() + grace_s
    while running and time.monotonic() < deadline:
        running = [p for p in running if p.poll() is None]
        if running:
            time.sleep(_POLL_S)
    for proc in running:
        _signal_group(proc, signal.SIGKILL)
    for proc in ours:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
        # A group member (something the child forked) may outlive its leader. While any
        # member lives, the kernel keeps the group id from being reused, so this reaches
        # only our leftovers (the leader was reaped a moment ago).
        _signal_group(proc, signal.SIGKILL)


def kill_pids(pids: Iterable[int]) -> None:
    """SIGKILL raw pids (processes we hold no Popen for, e.g. leftovers of a crash)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
