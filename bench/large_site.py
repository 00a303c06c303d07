"""The larger office (issue 11): the real appliance polling 250 devices every 60 s.

    python -m bench.large_site [--window-s 120]      # root: network namespaces
    python -m bench large_site                        # as part of make bench

Two namespaces joined by one veth pair on 198.18.64.0/22 (nothing else is touched): the
appliance's, and the office's, which holds 250 addresses on one link (the kernel answers ARP
and ICMP for each, as 250 hosts would). 182 of them are SNMP agents: one snmpsim process in
the office namespace listens on each of those addresses and serves every recording of the
extended corpus (``../shared/snmp-corpus/extended``; the community picks the recording, so
each device has its own ``[[snmp.credentials]]`` entry), the device's kind taken from
LibreNMS's type in the corpus; the other 68 answer ICMP and ARP only (the gateway, PCs,
phones). The appliance is the real ``python -m firmware run`` in its namespace with every
device configured (``[[polling.devices]]``) at the default 60 s interval, its store on disk,
the uplink sending to a real home on loopback in the same namespace; discovery is off (its
sweep and fingerprinting are bench/discovery's, and a site has a few communities, not 182).

After the first poll of every device (the metadata polls, which fetch what rarely changes)
it is measured for ``--window-s`` seconds: CPU of the appliance process (user + system, from
/proc/PID/stat) as a share of one core, its RSS (VmRSS, sampled every 2 s: the largest and
the last), and the bytes it caused to be written to storage (/proc/PID/io write_bytes: the
store, its WAL and checkpoints) scaled to a day. The peer, measured in the same run, is a bare
interpreter that imports aiohttp (what any asyncio HTTP program costs in RSS). Targets: < 25 %
of one core, RSS < 100 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from provisioning.identity import load_or_create
from services.snmp import ber
from services.snmp.message import VERSION_2C, decode_message, encode_request
from simsite import netns
from simsite.harness.home import Home
from simsite.harness.paths import CORPUS, corpus_missing_reason
from simsite.harness.processes import OUTPOST
from simsite.local_agents import SYS_DESCR

EXTENDED: Final = CORPUS / "extended"
DEVICES: Final = 250
SUBNET: Final = ipaddress.ip_network("198.18.64.0/22")
GATEWAY_IP: Final = "198.18.64.1"
APPLIANCE_IP: Final = "198.18.64.2"
FIRST_HOST: Final = 10  # hosts from 198.18.64.10 up
INTERVAL_S: Final = 60.0
SNMP_PORT: Final = 161
WEB_PORT: Final = 8080  # the status page, on loopback in the appliance's namespace
CPU_TARGET_PCT: Final = 25.0
RSS_TARGET_MB: Final = 100.0
RSS_SAMPLE_S: Final = 2.0
SNMPSIM_READY_S: Final = 180.0  # indexing 15 MB of recordings on a busy 2-core machine
#: Our kind for LibreNMS's device type (the profiles polled follow the kind).
KIND_OF_TYPE: Final = {
    "network": "switch",
    "firewall": "router",
    "wireless": "ap",
    "storage": "nas",
    "printer": "printer",
    "power": "ups",
    "server": "server",
    "workstation": "workstation",
    "appliance": "server",
    "video": "camera",
    "collaboration": "media",
}
#: The ICMP-only hosts after the gateway: what an office has besides its SNMP agents.
PLAIN_KINDS: Final = ("workstation", "workstation", "phone", "media", "iot", "unknown")
REPO: Final = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Host:
    ip: str
    name: str
    kind: str
    recording: str = ""  # extended-corpus stem (its community); "" for ICMP-only


def plan(corpus: Path = EXTENDED) -> list[Host]:
    """The 250 devices: every recording of the corpus, then ICMP-only hosts (gateway first)."""
    addresses = [str(SUBNET.network_address + FIRST_HOST + i) for i in range(DEVICES - 1)]
    hosts = [Host(GATEWAY_IP, "gateway", "router")]
    for stem in sorted(p.stem for p in corpus.glob("*.snmprec")):
        expected = corpus / f"{stem}.expected.json"
        kind = "unknown"
        if expected.exists():
            devices = json.loads(expected.read_text()).get("os", {}).get("discovery", {})
            first = (devices.get("devices") or [{}])[0]
            kind = KIND_OF_TYPE.get(str(first.get("type") or ""), "unknown")
        hosts.append(Host(addresses[len(hosts) - 1], stem[:40], kind, stem))
    while len(hosts) < DEVICES:
        i = len(hosts)
        hosts.append(Host(addresses[i - 1], f"host-{i}", PLAIN_KINDS[i % len(PLAIN_KINDS)]))
    return hosts[:DEVICES]


# ---- the two namespaces ----


@contextlib.contextmanager
def office(hosts: list[Host]) -> Iterator[tuple[str, str]]:
    """(appliance namespace, office namespace), deleted on exit whatever happens."""
    tag = f"olb{os.getpid()}"
    app_ns, lan_ns = f"{tag}a", f"{tag}l"
    try:
        netns.add(app_ns)
        netns.add(lan_ns)
        prefix = SUBNET.prefixlen
        netns.batch(app_ns, [
            f"link add eth0 type veth peer name eth0 netns {lan_ns}",
            "link set lo up",
            f"addr add {APPLIANCE_IP}/{prefix} dev eth0",
            "link set eth0 up",
        ])  # fmt: skip
        netns.batch(lan_ns, [
            "link set lo up",
            *(f"addr add {h.ip}/{prefix} dev eth0" for h in hosts),
            "link set eth0 up",
        ])  # fmt: skip
        netns.batch(app_ns, [f"route add default via {GATEWAY_IP}"])
        netns.wait_oper_up([(app_ns, "eth0"), (lan_ns, "eth0")])
        yield app_ns, lan_ns
    finally:
        for ns in (app_ns, lan_ns):
            for pid in netns.pids(ns) if netns.exists(ns) else []:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            netns.delete(ns)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_snmpsim(
    lan_ns: str, app_ns: str, hosts: list[Host], workdir: Path, corpus: Path
) -> subprocess.Popen[bytes]:
    """One snmpsim in the office namespace on every SNMP host's address, answering once an
    SNMP GET from the appliance's namespace gets an answer."""
    data, cache = workdir / "data", workdir / "cache"
    data.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    agents = [h for h in hosts if h.recording]
    for h in agents:
        shutil.copyfile(corpus / f"{h.recording}.snmprec", data / f"{h.recording}.snmprec")
    argv = [
        sys.executable, "-c",
        "import sys; from snmpsim.commands.responder import main; sys.exit(main())",
        f"--data-dir={data}", f"--cache-dir={cache}", "--log-level=error",
        "--process-user=root", "--process-group=root",
        *(f"--agent-udpv4-endpoint={h.ip}:{SNMP_PORT}" for h in agents),
    ]  # fmt: skip
    log = (workdir / "snmpsim.log").open("ab")
    proc = subprocess.Popen(
        netns.exec_argv(lan_ns, argv), stdout=log, stderr=subprocess.STDOUT, cwd=workdir
    )
    probe = [sys.executable, "-m", "bench.large_site", "probe", agents[-1].ip, agents[-1].recording]
    deadline = time.monotonic() + SNMPSIM_READY_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"snmpsim exited: {(workdir / 'snmpsim.log').read_text()[-2000:]}")
        answered = subprocess.run(netns.exec_argv(app_ns, probe), cwd=REPO, capture_output=True)
        if answered.returncode == 0:
            return proc
        if time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"snmpsim did not answer within {SNMPSIM_READY_S:g} s")
        time.sleep(1.0)


class _InNamespace:
    """What simsite.harness.home.Home needs of a site: start a process in a namespace."""

    def popen_in(self, ns: str, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        # Its own process group: Home.stop() signals the group.
        return subprocess.Popen(netns.exec_argv(ns, argv), start_new_session=True, **kw)


def config_text(hosts: list[Host], tmp: Path, home: Home) -> str:
    lines = [
        "[site]", 'name = "Larger office (bench)"',
        "[store]", f'path = "{tmp / "outpost.db"}"',
        "[provisioning]", f'identity_dir = "{tmp / "identity"}"',
        "[uplink]", f'url = "{home.url}"', f'ca_file = "{home.ca_file}"',
        "[discovery]", "enabled = false",
        "[web]", "listen = \"127.0.0.1\"", f"port = {WEB_PORT}",
        "[polling]", f"interval_s = {INTERVAL_S}",
    ]  # fmt: skip
    for i, h in enumerate(hosts):
        if h.recording:
            lines += ["[[snmp.credentials]]", f'name = "c{i}"', 'version = "2c"',
                      f'community = "{h.recording}"']  # fmt: skip
    for i, h in enumerate(hosts):
        lines += ["[[polling.devices]]", f'name = "{h.name}"', f'ip = "{h.ip}"',
                  f'kind = "{h.kind}"']  # fmt: skip
        if h.recording:
            lines.append(f'snmp_credential = "c{i}"')
    return "\n".join(lines) + "\n"


# ---- measuring a process ----


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _written(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def _commits(app_ns: str) -> float | None:
    """The appliance's ``outpost_store_commits_total`` from its /metrics (web on loopback in
    its namespace), or None when it cannot be read."""
    code = (
        "import urllib.request; print(urllib.request.urlopen("
        f"'http://127.0.0.1:{WEB_PORT}/metrics', timeout=5).read().decode())"
    )
    got = subprocess.run(
        netns.exec_argv(app_ns, [sys.executable, "-c", code]), capture_output=True, text=True
    )
    for line in got.stdout.splitlines():
        if line.startswith("outpost_store_commits_total "):
            return float(line.split()[1])
    return None


def _peer_rss_mb() -> float:
    """RSS of a bare interpreter that imports aiohttp (the peer)."""
    code = (
        "import aiohttp, pathlib; print([l for l in pathlib.Path('/proc/self/status')"
        ".read_text().splitlines() if l.startswith('VmRSS:')][0].split()[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


@dataclass(frozen=True)
class Figures:
    window_s: float
    cpu_pct: float  # of one core
    rss_max_mb: float
    rss_end_mb: float
    written_per_day_mb: float
    polled: int  # devices with a poll verdict
    up: int
    snmp_ok: int
    snmp_devices: int
    polls_in_window: int
    measurements_in_window: int
    peer_rss_mb: float
    commits_per_min: float | None  # store transactions committed (group commit)


def _store_counts(db: Path, since: float) -> tuple[int, int, int, int, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        polled, up = conn.execute("SELECT COUNT(*), SUM(reachable = 1) FROM poll_state").fetchone()
        snmp_ok = conn.execute(
            "SELECT COUNT(*) FROM poll_checks WHERE check_name = 'snmp' AND ok = 1"
        ).fetchone()[0]
        polls = conn.execute(
            "SELECT COUNT(*) FROM poll_state WHERE last_poll_ts >= ?", (since,)
        ).fetchone()[0]
        measured = conn.execute(
            "SELECT COUNT(*) FROM measurements WHERE ts >= ?", (since,)
        ).fetchone()[0]
    finally:
        conn.close()
    return int(polled or 0), int(up or 0), int(snmp_ok or 0), int(polls), int(measured)


def measure(window_s: float, corpus: Path = EXTENDED) -> Figures:
    """One run of the whole office (namespaces, snmpsim, home, the appliance). Raises
    FileNotFoundError without the corpus, PermissionError when not root."""
    missing = corpus_missing_reason(corpus)
    if missing:
        raise FileNotFoundError(missing)
    if os.geteuid() != 0:
        raise PermissionError("the larger-office bench needs root (network namespaces)")
    hosts = plan(corpus)
    with tempfile.TemporaryDirectory(prefix="outpost-large-") as tmp_name:
        tmp = Path(tmp_name)
        with office(hosts) as (app_ns, lan_ns):
            snmpsim = start_snmpsim(lan_ns, app_ns, hosts, tmp / "snmpsim", corpus)
            home = Home(tmp / "home", tmp / "ca", netns=app_ns, site=_InNamespace())
            appliance: subprocess.Popen[bytes] | None = None
            try:
                home.prepare()
                home.start()
                config = tmp / "outpost.toml"
                config.write_text(config_text(hosts, tmp, home))
                home.register(load_or_create(tmp / "identity"))
                log = (tmp / "outpost.log").open("ab")
                appliance = subprocess.Popen(
                    netns.exec_argv(app_ns, [*OUTPOST, "run", "--config", str(config)]),
                    stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                )  # fmt: skip
                figures = _watch(appliance, tmp / "outpost.db", window_s, hosts, app_ns)
            finally:
                _stop(appliance)
                home.stop()
                _stop(snmpsim)
    return figures


def _watch(
    appliance: subprocess.Popen[bytes], db: Path, window_s: float, hosts: list[Host], app_ns: str
) -> Figures:
    pid = appliance.pid
    # Wait for the first poll of every device (first polls spread over 10 % of the interval;
    # the metadata polls are the heavy ones), then one more interval's start.
    deadline = time.monotonic() + 3 * INTERVAL_S
    while True:
        if appliance.poll() is not None:
            raise RuntimeError("the appliance exited; see its log in the bench's temp dir")
        with contextlib.suppress(sqlite3.Error, OSError):
            if db.exists() and _store_counts(db, 0.0)[0] >= len(hosts):
                break
        if time.monotonic() > deadline:
            raise RuntimeError("not every device was polled within three intervals")
        time.sleep(1.0)
    time.sleep(INTERVAL_S * 0.25)
    since = time.time()
    commits0 = _commits(app_ns)
    cpu0, written0, began = _cpu_s(pid), _written(pid), time.monotonic()
    rss: list[float] = []
    while time.monotonic() - began < window_s:
        if appliance.poll() is not None:
            raise RuntimeError("the appliance exited during the window")
        rss.append(_rss_mb(pid))
        time.sleep(RSS_SAMPLE_S)
    elapsed = time.monotonic() - began
    cpu, written = _cpu_s(pid) - cpu0, _written(pid) - written0
    commits1 = _commits(app_ns)
    commits = None if commits0 is None or commits1 is None else commits1 - commits0
    polled, up, snmp_ok, polls, measured = _store_counts(db, since)
    return Figures(
        window_s=elapsed,
        cpu_pct=100.0 * cpu / elapsed,
        rss_max_mb=max(rss),
        rss_end_mb=rss[-1],
        written_per_day_mb=written * 86400.0 / elapsed / 1e6,
        polled=polled,
        up=up,
        snmp_ok=snmp_ok,
        snmp_devices=sum(1 for h in hosts if h.recording),
        polls_in_window=polls,
        measurements_in_window=measured,
        peer_rss_mb=_peer_rss_mb(),
        commits_per_min=None if commits is None else commits * 60.0 / elapsed,
    )


def report(f: Figures) -> list[str]:
    cpu_verdict = "meets" if f.cpu_pct < CPU_TARGET_PCT else "MISSES"
    rss_verdict = "meets" if f.rss_max_mb < RSS_TARGET_MB else "MISSES"
    per_min = f.measurements_in_window * 60.0 / f.window_s
    return [
        f"{DEVICES} devices ({f.snmp_devices} SNMP agents of the extended corpus, "
        f"{DEVICES - f.snmp_devices} ICMP-only) polled every {INTERVAL_S:g} s: {f.up} up, "
        f"SNMP answered for {f.snmp_ok}/{f.snmp_devices}; {f.polls_in_window} devices polled "
        f"and {per_min:.0f} measurements/min stored in the {f.window_s:.0f} s window",
        f"CPU: {f.cpu_pct:.1f} % of one core ({cpu_verdict} the < {CPU_TARGET_PCT:g} % target)",
        f"RSS: {f.rss_max_mb:.1f} MB max, {f.rss_end_mb:.1f} MB at the end ({rss_verdict} the "
        f"< {RSS_TARGET_MB:g} MB target); {f.rss_max_mb / f.peer_rss_mb:.2f}x a bare "
        f"interpreter with aiohttp ({f.peer_rss_mb:.1f} MB)",
        f"written to storage: {f.written_per_day_mb:.0f} MB per day "
        f"({f.written_per_day_mb * 1e6 / max(1.0, per_min * 1440):.0f} B per measurement"
        + (
            f"; {f.commits_per_min:.0f} store commits/min, "
            f"{f.written_per_day_mb * 1e6 / 1440 / f.commits_per_min / 1024:.1f} KiB per commit)"
            if f.commits_per_min
            else ")"
        ),
    ]


def run() -> list[str]:
    """For ``python -m bench`` (make bench)."""
    try:
        return report(measure(120.0))
    except (FileNotFoundError, PermissionError) as exc:
        return [f"larger office: skipped ({exc})"]


def _probe(ip: str, community: str) -> int:
    """0 when a v2c GET of sysDescr to ``ip`` gets an SNMP answer (run in the appliance's
    namespace while snmpsim indexes its recordings)."""
    payload = encode_request(VERSION_2C, community.encode(), ber.GET_REQUEST, 1, [SYS_DESCR])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.sendto(payload, (ip, SNMP_PORT))
            decode_message(sock.recvfrom(65535)[0])
        except (OSError, ValueError):
            return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "probe":
        return _probe(argv[1], argv[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-s", type=float, default=120.0)
    args = parser.parse_args(argv)
    for line in report(measure(args.window_s)):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
