"""Command lines and config files of the processes a device runs.

Pure preparation: this module writes files under the device's work dir and returns argv
lists; starting them (inside a namespace or not) is the site's business.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .agentcfg import AgentConfig, ServiceAd
from .errors import SiteError
from .model import SimDevice, SnmpV3User

#: Well-known SNMP agent port.
SNMP_PORT = 161
#: Per-request timeout and retries of the readiness probe: short, the probe loops anyway.
PROBE_TIMEOUT_S = 0.5
_PROBE_RETRIES = 0
#: Where any recording has something to answer a GETNEXT with.
_PROBE_OID = "1.3.6.1"
SNMPD_BIN = "snmpd"
#: Where Debian installs snmpd; not on an unprivileged user's PATH.
_SNMPD_FALLBACK = Path("/usr/sbin/snmpd")
SNMPGETNEXT_BIN = "snmpgetnext"


@dataclass(frozen=True)
class Command:
    """A process to start: argv, extra environment, and the file its output goes to."""

    argv: list[str]
    env: dict[str, str]
    log: Path


def package_parent() -> Path:
    """The directory to put on PYTHONPATH so ``python -m simsite.agent`` resolves to us."""
    return Path(__file__).resolve().parent.parent


def python_env() -> dict[str, str]:
    path = str(package_parent())
    old = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{path}{os.pathsep}{old}" if old else path}


def netsnmp_env(workdir: Path) -> dict[str, str]:
    """Keep net-snmp tools off the machine's and the user's config and persistent state."""
    conf = workdir / "netsnmp-conf"
    persist = workdir / "netsnmp-persist"
    conf.mkdir(exist_ok=True)
    persist.mkdir(exist_ok=True)
    return {"SNMPCONFPATH": str(conf), "SNMP_PERSISTENT_DIR": str(persist), "MIBS": ""}


def check_tools(devices: Iterable[SimDevice], gateway_snmp: bool) -> None:
    """Fail early, naming the package, if a program the devices need is missing."""
    engines = {d.engine for d in devices}
    if gateway_snmp:
        engines.add("snmpsim")
    if engines - {None} and shutil.which(SNMPGETNEXT_BIN) is None:
        raise SiteError(f"{SNMPGETNEXT_BIN} not found (Debian package snmp)")
    if "snmpd" in engines:
        snmpd_binary()
    if "snmpsim" in engines:
        snmpsim_binary()


def snmpd_binary() -> str:
    found = shutil.which(SNMPD_BIN)
    if found is None and _SNMPD_FALLBACK.exists():
        found = str(_SNMPD_FALLBACK)
    if found is None:
        raise SiteError(f"{SNMPD_BIN} not found (Debian package snmpd)")
    return found


def snmpsim_binary() -> str:
    """snmpsim-command-responder of the running interpreter's environment, else from PATH."""
    beside = Path(sys.executable).parent / "snmpsim-command-responder"
    if beside.exists():
        return str(beside)
    found = shutil.which("snmpsim-command-responder")
    if found is None:
        raise SiteError("snmpsim-command-responder not found (pip install snmpsim)")
    return found


def _identity_args() -> list[str]:
    """snmpsim's privilege flags.

    As root, snmpsim refuses to run unless told which user to become; staying root keeps
    every data file readable. Unprivileged, the flags must be left out: snmpsim 1.2.2 then
    still calls setgroups(), which fails, even when the named user is the current one.
    """
    if os.geteuid() == 0:
        return ["--process-user=root", "--process-group=root"]
    return []


def snmpsim_command(
    dev_dir: Path, snmprec: Path, community: str, bind_ip: str, port: int
) -> Command:
    """snmpsim serving ``snmprec`` to ``community`` (it picks the file by community name)."""
    data = dev_dir / "snmpsim-data"
    cache = dev_dir / "snmpsim-cache"
    # A swapped recording must not be answered from the old index.
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    data.mkdir(parents=True)
    cache.mkdir(parents=True)
    if not snmprec.is_file():
        raise SiteError(f"recording {snmprec} does not exist")
    shutil.copyfile(snmprec, data / f"{community}.snmprec")
    argv = [
        snmpsim_binary(),
        f"--data-dir={data}",
        f"--cache-dir={cache}",
        f"--agent-udpv4-endpoint={bind_ip}:{port}",
        *_identity_args(),
        # "info" logs every request: benchmarks would spend their time writing logs.
        "--log-level=error",
    ]
    if not uses_variations(snmprec):
        # Loading every variation module (redis, sql, ...) is a fifth of snmpsim's start-up
        # CPU, and twenty agents start at once: skip them when the recording needs none.
        empty = dev_dir / "no-variation-modules"
        empty.mkdir(exist_ok=True)
        argv.append(f"--variation-modules-dir={empty}")
    return Command(argv, {}, dev_dir / "snmpsim.log")


def uses_variations(snmprec: Path) -> bool:
    """True if any record's tag names a variation module (``OID|TAG:module|value``)."""
    with snmprec.open(errors="replace") as lines:
        for line in lines:
            parts = line.split("|", 2)
            if len(parts) == 3 and ":" in parts[1]:
                return True
    return False


def snmpd_command(dev_dir: Path, device: SimDevice, bind_ip: str, port: int) -> Command:
    """net-snmp snmpd in the foreground with a generated config and nothing of the system's."""
    dev_dir.mkdir(parents=True, exist_ok=True)
    persist = dev_dir / "snmpd-persist"
    persist.mkdir(exist_ok=True)
    conf = dev_dir / "snmpd.conf"
    lines = [
        f"agentAddress udp:{bind_ip}:{port}",
        f"rocommunity {device.community} default",
        f"sysName {device.name}",
        f"sysDescr Linux {device.name} 6.1.0-21-amd64 #1 SMP PREEMPT_DYNAMIC Debian "
        "6.1.90-1 (2024-05-03) x86_64",
        "sysLocation Server closet",
        f"sysContact it@{device.name}.example",
        "dontLogTCPWrappersConnects yes",
    ]
    if device.v3_user is not None:
        lines += _usm_lines(device.v3_user)
    conf.write_text("\n".join(lines) + "\n")
    argv = [
        snmpd_binary(),
        "-f",  # foreground: we own its lifetime
        "-C",  # read no config but ours
        "-c",
        str(conf),
        "-p",
        str(dev_dir / "snmpd.pid"),
        "-Lf",
        str(dev_dir / "snmpd.log"),
        "-I",
        "-smux",  # no SMUX listener (TCP 199): nobody plugs into a simulated agent
    ]
    env = {"SNMP_PERSISTENT_DIR": str(persist), "MIBS": ""}
    return Command(argv, env, dev_dir / "snmpd.out")


def _usm_lines(user: SnmpV3User) -> list[str]:
    return [
        f'createUser {user.user} {user.auth_proto} "{user.auth_key}" '
        f'{user.priv_proto} "{user.priv_key}"',
        f"rouser {user.user} priv",
    ]


def agent_command(
    dev_dir: Path,
    device: SimDevice,
    bind_ip: str,
    listeners: tuple[tuple[int, int], ...],
    with_mdns: bool,
) -> Command | None:
    """The device's python agent, or None if it has neither TCP ports nor (usable) mDNS."""
    services = tuple(ServiceAd.from_model(s, device.name) for s in device.mdns) if with_mdns else ()
    if not listeners and not services:
        return None
    dev_dir.mkdir(parents=True, exist_ok=True)
    ready = dev_dir / "agent.ready"
    ready.unlink(missing_ok=True)
    cfg_path = dev_dir / "agent.json"
    AgentConfig(bind_ip, listeners, services, str(ready), device.vendor).dump(cfg_path)
    argv = [sys.executable, "-m", "simsite.agent", str(cfg_path)]
    return Command(argv, python_env(), dev_dir / "agent.log")


def agent_ready_file(dev_dir: Path) -> Path:
    return dev_dir / "agent.ready"


def snmp_probe_argv(device: SimDevice, ip: str, port: int) -> list[str]:
    """One SNMP GETNEXT with numeric output (``-On``): ready once it prints a varbind."""
    argv = [SNMPGETNEXT_BIN, "-t", str(PROBE_TIMEOUT_S), "-r", str(_PROBE_RETRIES), "-On"]
    user = device.v3_user
    if user is not None:
        argv += [
            "-v3",
            "-l",
            "authPriv",
            "-u",
            user.user,
            "-a",
            user.auth_proto,
            "-A",
            user.auth_key,
            "-x",
            user.priv_proto,
            "-X",
            user.priv_key,
        ]
    else:
        argv += ["-v2c", "-c", device.community]
    return [*argv, f"udp:{ip}:{port}", _PROBE_OID]
