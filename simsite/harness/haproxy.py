"""HAProxy in front of several home instances, as an MSP would run it (tests and benchmarks).

TLS passes through (``mode tcp``): each home instance terminates TLS with the certificate the
boxes pin, so the load balancer holds no key. HAProxy checks each instance's ``/healthz`` over
TLS every :data:`CHECK_INTER_MS` and takes it out after :data:`CHECK_FALL` failures; a request
that finds no healthy instance is retried on another (``retries``, ``option redispatch``).
Loopback only; Debian's ``haproxy`` package.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from simsite import procs
from simsite.harness.ports import free_tcp_port

CHECK_INTER_MS = 300
CHECK_FALL = 2
START_TIMEOUT_S = 10.0


class HaproxyUnavailable(RuntimeError):
    """HAProxy is not installed; the message says how to get it."""


def binary() -> str:
    path = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if path is None:
        raise HaproxyUnavailable(
            "HAProxy is not installed: run `make test` as root, or `apt-get install haproxy`"
        )
    return path


def config_text(port: int, backends: Sequence[int], host: str = "127.0.0.1") -> str:
    servers = "\n".join(
        f"    server home{i} {host}:{p} check check-ssl verify none "
        f"inter {CHECK_INTER_MS} fall {CHECK_FALL} rise 1"
        for i, p in enumerate(backends, 1)
    )
    return f"""global
    maxconn 4096

defaults
    mode tcp
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch

frontend appliances
    bind {host}:{port}
    default_backend homes

backend homes
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
{servers}
"""


@dataclass
class Haproxy:
    port: int
    proc: subprocess.Popen[bytes]
    root: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def start(backends: Sequence[int]) -> Haproxy:
    """Start HAProxy on a free loopback port in front of ``backends`` (home instances' ports)."""
    exe = binary()
    root = Path(tempfile.mkdtemp(prefix="outpost-haproxy-"))
    port = free_tcp_port()
    cfg = root / "haproxy.cfg"
    cfg.write_text(config_text(port, backends))
    check = subprocess.run([exe, "-c", "-f", str(cfg)], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise RuntimeError(f"haproxy refused its configuration: {check.stdout}{check.stderr}")
    log = (root / "haproxy.log").open("ab")
    proc = subprocess.Popen(
        [exe, "-db", "-f", str(cfg)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=procs.preexec_for_current_thread(),  # noqa: PLW1509 - dies with the test
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return Haproxy(port, proc, root)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"haproxy did not start: {(root / 'haproxy.log').read_text()[-2000:]}")


def stop(haproxy: Haproxy) -> None:
    haproxy.proc.terminate()
    try:
        haproxy.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        haproxy.proc.kill()
        haproxy.proc.wait(timeout=5)
    shutil.rmtree(haproxy.root, ignore_errors=True)


@contextlib.contextmanager
def running(backends: Sequence[int]) -> Iterator[Haproxy]:
    haproxy = start(backends)
    try:
        yield haproxy
    finally:
        stop(haproxy)
