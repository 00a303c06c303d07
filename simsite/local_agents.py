"""Real SNMP agents on the loopback network, for tests and benchmarks of this package.

* :class:`Snmpsim`: snmpsim serving device recordings (``*.snmprec``); community = file stem.
* :class:`NetSnmpd`: net-snmp's snmpd with a generated configuration (SNMPv3 users).

Both bind to 127.0.0.0/8 only (anything else is refused), run in their own session so a stop
reaches whatever they fork, and are stopped by ``stop()`` / the ``with`` block even when the
test fails. Nothing here runs on the appliance.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from services.snmp import ber
from services.snmp.message import VERSION_2C, decode_message, encode_request
from simsite.harness.paths import corpus_dir
from simsite.harness.ports import free_udp_port

__all__ = ["NetSnmpd", "Snmpsim", "V3User", "corpus_dir", "free_udp_port", "probe"]

LOOPBACK: Final = ipaddress.ip_network("127.0.0.0/8")
# snmpsim indexes every recording on its first start: ~1 s per 10k lines on a laptop core.
READY_TIMEOUT_S: Final = 60.0
STOP_GRACE_S: Final = 5.0
_PROBE_INTERVAL_S: Final = 0.2
SYS_DESCR: Final = (1, 3, 6, 1, 2, 1, 1, 1, 0)
# Only for the readiness probe of snmpd; the tests' own requests use SNMPv3 users.
PROBE_COMMUNITY: Final = "outpost-probe"


def _check_loopback(host: str) -> None:
    if ipaddress.ip_address(host) not in LOOPBACK:
        raise ValueError(f"{host} is not a loopback address: local agents bind 127.0.0.0/8 only")


def probe(host: str, port: int, community: str, timeout_s: float = _PROBE_INTERVAL_S) -> bool:
    """True when a v2c GET of sysDescr gets any SNMP answer."""
    payload = encode_request(VERSION_2C, community.encode(), ber.GET_REQUEST, 1, [SYS_DESCR])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.sendto(payload, (host, port))
            data, _ = sock.recvfrom(65535)
            decode_message(data)
        except (OSError, ValueError):
            return False
    return True


class LocalAgent:
    """A child process serving SNMP on a loopback port."""

    def __init__(self, workdir: Path, host: str, port: int | None) -> None:
        _check_loopback(host)
        self.workdir = workdir
        self.host = host
        self.port = port or free_udp_port(host)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{type(self).__name__.lower()}.log"

    def _argv(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def _probe_community(self) -> str:
        raise NotImplementedError

    def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv, env = self._argv()
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
        deadline = time.monotonic() + ready_timeout_s
        try:
            while not probe(self.host, self.port, self._probe_community()):
                if self.process.poll() is not None:
                    raise RuntimeError(f"{argv[0]} exited: see {self.log_path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{argv[0]} did not answer in {ready_timeout_s:g} s")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalAgent:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Snmpsim(LocalAgent):
    """snmpsim serving copies of ``recordings``; each answers to its file stem as community."""

    def __init__(
        self,
        recordings: Iterable[Path],
        workdir: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        super().__init__(workdir, host, port)
        self.recordings = sorted(recordings)
        if not self.recordings:
            raise ValueError("snmpsim needs at least one recording")

    def _probe_community(self) -> str:
        return self.recordings[0].stem

    def _argv(self) -> tuple[list[str], dict[str, str]]:
        data = self.workdir / "data"
        cache = self.workdir / "cache"
        data.mkdir(parents=True, exist_ok=True)
        cache.mkdir(parents=True, exist_ok=True)
        for recording in self.recordings:
            shutil.copyfile(recording, data / recording.name)
        argv = [
            sys.executable,
            "-c",
            "import sys; from snmpsim.commands.responder import main; sys.exit(main())",
            f"--data-dir={data}",
            f"--cache-dir={cache}",
            f"--agent-udpv4-endpoint={self.host}:{self.port}",
            # "info" logs every request: a benchmark would measure snmpsim writing logs.
            "--log-level=error",
        ]
        if os.geteuid() == 0:
            # snmpsim refuses to keep root; root can read the copies and the interpreter.
            argv += ["--process-user=root", "--process-group=root"]
        return argv, {}


@dataclass(frozen=True)
class V3User:
    """A USM user of snmpd: net-snmp protocol names (e.g. ``SHA-256``, ``AES-256``)."""

    name: str
    auth: str = ""  # "" = noAuthNoPriv
    auth_key: str = ""
    priv: str = ""  # "" = authNoPriv
    priv_key: str = ""

    def lines(self) -> list[str]:
        create = f"createUser {self.name}"
        level = "noauth"
        if self.auth:
            create += f' {self.auth} "{self.auth_key}"'
            level = "auth"
            if self.priv:
                create += f' {self.priv} "{self.priv_key}"'
                level = "priv"
        return [create, f"rouser {self.name} {level}"]


class NetSnmpd(LocalAgent):
    """net-snmp snmpd with the given v3 users and nothing of the system's configuration."""

    def __init__(
        self,
        users: Iterable[V3User],
        workdir: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        extra_conf: Iterable[str] = (),
    ) -> None:
        super().__init__(workdir, host, port)
        self.users = tuple(users)
        self.extra_conf = tuple(extra_conf)

    def _probe_community(self) -> str:
        return PROBE_COMMUNITY

    def _argv(self) -> tuple[list[str], dict[str, str]]:
        binary = shutil.which("snmpd") or "/usr/sbin/snmpd"
        persistent = self.workdir / "persist"
        persistent.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "snmpd.conf"
        lines = [f"rocommunity {PROBE_COMMUNITY} {self.host}", *self.extra_conf]
        for user in self.users:
            lines += user.lines()
        conf.write_text("\n".join(lines) + "\n")
        argv = [
            binary,
            "-f",  # foreground: the process we started is the agent
            "-Lo",  # log to stdout (our log file)
            "-C",  # no system configuration files
            "-I",
            "-smux",  # no SMUX listener: it wants TCP port 199, which another snmpd may hold
            "-c",
            str(conf),
            "-p",
            str(self.workdir / "snmpd.pid"),
            f"udp:{self.host}:{self.port}",
        ]
        # A private persistent dir: engine boots and localized keys never touch /var/lib/snmp.
        # No MIB files: snmpd needs none to serve, and loading them fills the log with noise.
        env = {"SNMP_PERSISTENT_DIR": str(persistent), "MIBS": "", "MIBDIRS": str(persistent)}
        return argv, env
