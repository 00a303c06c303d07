"""Thin wrappers over iproute2 for network namespaces.

Every command that changes something names its namespace (``ip -n NS`` or ``ip netns
exec NS``); no helper here ever touches the root namespace's interfaces, addresses or
routes. Commands are batched (``ip -batch``) per namespace because each ``ip`` start costs
a few milliseconds and a site issues hundreds of them.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import SiteError

#: Where ``ip netns add`` pins namespaces; listing it is cheaper than ``ip netns list``.
NETNS_DIR = Path("/run/netns")
#: A hung ``ip`` would hang the whole test run: bound every call.
IP_TIMEOUT_S = 20.0
#: Carrier changes take effect within about a second (linkwatch); allow for a busy machine.
LINK_UP_TIMEOUT_S = 10.0
LINK_POLL_S = 0.05


def _run(argv: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=IP_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise SiteError(f"{' '.join(argv)}: no answer after {IP_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        what = f" (batch: {stdin.strip()!r})" if stdin else ""
        raise SiteError(f"{' '.join(argv)} failed: {detail}{what}")
    return proc


def exec_argv(ns: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside namespace ``ns`` (``ip netns exec`` execs, so the pid is argv's)."""
    return ["ip", "netns", "exec", ns, *argv]


def add(ns: str) -> None:
    _run(["ip", "netns", "add", ns])


def delete(ns: str) -> None:
    """Delete ``ns``; a namespace already gone is not an error."""
    if exists(ns):
        proc = subprocess.run(
            ["ip", "netns", "del", ns], capture_output=True, text=True, timeout=IP_TIMEOUT_S
        )
        if proc.returncode != 0 and exists(ns):
            raise SiteError(f"ip netns del {ns} failed: {proc.stderr.strip()}")


def exists(ns: str) -> bool:
    return (NETNS_DIR / ns).exists()


def names() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def pids(ns: str) -> list[int]:
    """Every process whose network namespace is ``ns`` (any owner, not only ours)."""
    return pids_in([ns]).get(ns, [])


def pids_in(namespaces: Sequence[str]) -> dict[str, list[int]]:
    """Processes per namespace, from one pass over /proc (what ``ip netns pids`` does per ns).

    A namespace is identified by the inode of its pinned file, which is the inode the
    kernel shows in /proc/PID/ns/net.
    """
    by_inode: dict[int, str] = {}
    for ns in namespaces:
        try:
            by_inode[os.stat(NETNS_DIR / ns).st_ino] = ns
        except OSError:
            continue
    found: dict[str, list[int]] = {ns: [] for ns in by_inode.values()}
    if not by_inode:
        return found
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            link = os.readlink(f"/proc/{entry.name}/ns/net")  # "net:[4026532285]"
        except OSError:
            continue  # exited meanwhile, or a kernel thread
        ns_name = by_inode.get(int(link[5:-1]))
        if ns_name is not None:
            found[ns_name].append(int(entry.name))
    return found


def batch(ns: str, commands: Sequence[str]) -> None:
    """Run ``ip`` sub-commands (one a line, without the leading ``ip``) inside ``ns``."""
    _run(["ip", "-n", ns, "-batch", "-"], stdin="\n".join(commands) + "\n")


def sysctl(ns: str, settings: dict[str, str]) -> None:
    """Set per-namespace sysctls; net.* sysctls are per network namespace."""
    args = [f"{key}={value}" for key, value in settings.items()]
    _run(exec_argv(ns, ["sysctl", "-q", "-w", *args]))


def wait_oper_up(links: Sequence[tuple[str, str]], timeout_s: float = LINK_UP_TIMEOUT_S) -> None:
    """Wait until every (namespace, interface) is operationally up.

    The kernel applies carrier changes asynchronously (linkwatch, rate-limited to about
    one run a second) and drops packets until it has: "link set up" returning is not
    enough for the next ping to pass.
    """
    deadline = time.monotonic() + timeout_s
    pending = list(links)
    while pending:
        up = {ns: _up_links(ns) for ns in {ns for ns, _dev in pending}}
        pending = [(ns, dev) for ns, dev in pending if dev not in up[ns]]
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(f"{dev} in {ns}" for ns, dev in pending)
            raise SiteError(f"link not up after {timeout_s} s: {names}")
        time.sleep(LINK_POLL_S)


def _up_links(ns: str) -> set[str]:
    """Interfaces of ``ns`` whose operational state is UP (one ``ip`` call per namespace)."""
    up = set()
    for line in _run(["ip", "-n", ns, "-o", "link", "show"]).stdout.splitlines():
        # "7: eth0@if8: <BROADCAST,...,LOWER_UP> mtu 1500 ... state UP mode DEFAULT ..."
        fields = line.split()
        if len(fields) > 1 and " state UP " in line:
            up.add(fields[1].rstrip(":").split("@")[0])
    return up


def run_in(ns: str, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return _run(exec_argv(ns, argv))
