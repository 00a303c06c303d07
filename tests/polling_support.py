"""Helpers for the polling tests: a loopback snmpsim serving the whole corpus, one community
per recording, and the comparison of what the poller reads with the LibreNMS oracle."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.schema import Secret
from services.polling.access import ClientAccess
from services.polling.profiles import PollContext, Reading, profiles_for
from services.polling.rates import RateTracker
from services.snmp import SnmpClient, SnmpCredential, Target
from simsite.services import snmpsim_binary

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "snmp-corpus"

# Device class of each recording (from the corpus README).
CORPUS_KINDS = {
    "pfsense": "router",
    "draytek_vigor2962": "router",
    "ciscosb_cbs250-24p-4x-v3": "switch",
    "edgeswitch_10xp": "switch",
    "tplink_sg2008": "switch",
    "procurve_2520": "switch",
    "unifi_nanohd": "ap",
    "aruba-instant": "ap",
    "dsm": "nas",
    "truenas": "nas",
    "brother": "printer",
    "epson": "printer",
    "konica": "printer",
    "ricoh_mpc3002": "printer",
    "apc_smt750x-nmc2": "ups",
    "eaton-mgeups_9px": "ups",
    "cyberpower": "ups",
    "windows_svr_2019_1809": "server",
    "linux": "server",
    "vmware-esxi": "server",
    "hpe-ilo_4": "server",
    "axiscam_p1435-le": "camera",
}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def corpus_agent(workdir: Path, names: list[str] | None = None) -> Iterator[int]:
    """One snmpsim on 127.0.0.1 serving every recording; yields its UDP port."""
    data, cache = workdir / "data", workdir / "cache"
    data.mkdir(parents=True)
    cache.mkdir()
    for rec in sorted(CORPUS.glob("*.snmprec")):
        if names is None or rec.stem in names:
            shutil.copyfile(rec, data / rec.name)
    port = free_udp_port()
    argv = [
        snmpsim_binary(),
        f"--data-dir={data}",
        f"--cache-dir={cache}",
        f"--agent-udpv4-endpoint=127.0.0.1:{port}",
        "--process-user=root" if _root() else f"--process-user={_user()}",
        "--process-group=root" if _root() else f"--process-group={_group()}",
        "--log-level=error",
    ]
    log = open(workdir / "snmpsim.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_answering(port, next(iter(sorted(p.stem for p in data.glob("*.snmprec")))), proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _root() -> bool:
    import os

    return os.geteuid() == 0


def _user() -> str:
    import os
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _group() -> str:
    import grp
    import os

    return grp.getgrgid(os.getegid()).gr_name


def _wait_answering(port: int, community: str, proc: subprocess.Popen[bytes]) -> None:
    # A v2c GET of sysUpTime.0, hand-encoded: the cheapest readiness probe there is.
    from services.snmp import ber  # noqa: F401  (import proves the client package is present)

    deadline = time.monotonic() + 60
    msg = _probe(community)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"snmpsim exited with {proc.returncode}")
            s.sendto(msg, ("127.0.0.1", port))
            with contextlib.suppress(TimeoutError):
                s.recvfrom(4096)
                return
    raise RuntimeError("snmpsim did not answer within 60 s")


def _probe(community: str) -> bytes:
    oid = bytes([0x06, 0x08, 0x2B, 6, 1, 2, 1, 1, 3, 0])
    varbind = bytes([0x30, len(oid) + 2]) + oid + b"\x05\x00"
    vbl = bytes([0x30, len(varbind)]) + varbind
    pdu_body = b"\x02\x01\x01\x02\x01\x00\x02\x01\x00" + vbl
    pdu = bytes([0xA0, len(pdu_body)]) + pdu_body
    comm = bytes([0x04, len(community)]) + community.encode()
    body = b"\x02\x01\x01" + comm + pdu
    return bytes([0x30, len(body)]) + body


def corpus_target(port: int, name: str, timeout_s: float = 3.0) -> Target:
    credential = SnmpCredential(name=name[:32], community=Secret(name))
    return Target("127.0.0.1", port, credential, timeout_s=timeout_s, retries=1)


async def poll_recording(client: SnmpClient, port: int, name: str) -> tuple[list[Reading], int]:
    """Poll one recording the way the poller does (first poll: metadata included)."""
    access = ClientAccess(client, corpus_target(port, name))
    ctx = PollContext(at_s=time.monotonic(), rates=RateTracker())
    readings: list[Reading] = []
    for profile in profiles_for(CORPUS_KINDS[name]):
        readings.extend(await profile.poll(access, ctx))
    return readings, access.varbinds


# ---------------------------------------------------------------- oracle comparison


@dataclass
class Tally:
    agree: int = 0
    total: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, ok: bool, what: str) -> None:
        self.total += 1
        self.agree += int(ok)
        if not ok:
            self.misses.append(what)

    @property
    def pct(self) -> float:
        return 100.0 * self.agree / self.total if self.total else 100.0


def _close(a: float | None, b: float | None, rel: float = 0.01, abs_: float = 0.5) -> bool:
    if a is None or b is None:
        return False
    return abs(a - b) <= max(abs_, rel * abs(b))


def compare(name: str, readings: list[Reading], tallies: dict[str, Tally]) -> None:
    """Add this recording's agreement with its oracle to ``tallies`` (family -> Tally)."""
    path = CORPUS / f"{name}.expected.json"
    if not path.exists():
        return
    oracle = json.loads(path.read_text())
    got: dict[tuple[str, str], float | None] = {(r.metric, r.instance): r.value for r in readings}
    by_metric: dict[str, dict[str, float | None]] = {}
    for r in readings:
        by_metric.setdefault(r.metric, {})[r.instance] = r.value

    def tally(family: str) -> Tally:
        return tallies.setdefault(family, Tally())

    for st in oracle.get("storage", {}).get("discovery", {}).get("storage", []):
        if st["type"] != "hrstorage":
            continue  # vendor dataset tables (FreeNAS) are not read by the poller
        descr = st["storage_descr"]
        size = got.get(("storage.size_bytes", descr))
        used = got.get(("storage.used_bytes", descr))
        tally("storage size").add(_close(size, st["storage_size"]), f"{name} {descr} size")
        tally("storage used").add(_close(used, st["storage_used"]), f"{name} {descr} used")

    supplies = oracle.get("printer-supplies", {}).get("discovery", {}).get("printer_supplies", [])
    for s in supplies:
        tray = ".43.8.2.1." in s["supply_oid"]
        prefix = "tray" if tray else "supply"
        descr = s["supply_descr"]
        cap = got.get((f"{prefix}.capacity", descr))
        level = got.get((f"{prefix}.level_pct", descr))
        raw_cap = s["supply_capacity"]
        fam = "tray" if tray else "supply"
        if (f"{prefix}.level_pct", descr) in got and level is None:
            # The device reports a special level (-1/-2/-3): LibreNMS invents a percentage
            # (50 %, 100 %), we refuse to. Not comparable; counted separately.
            tally(f"{fam} special level (skipped)").add(True, "")
        else:
            ok = _close(level, s["supply_current"], abs_=1.0)
            tally(f"{fam} level").add(ok, f"{name} {descr} level={level}")
        if (f"{prefix}.capacity", descr) in got and cap is None:
            # Capacity -1/-2 (other/unknown): LibreNMS shows 100, we report "unknown".
            tally(f"{fam} special capacity (skipped)").add(True, "")
        else:
            tally(f"{fam} capacity").add(_close(cap, raw_cap), f"{name} {descr} capacity={cap}")

    ports = oracle.get("ports", {}).get("poller", {}).get("ports", [])
    names = set(by_metric.get("if.speed_bps", {}))
    for p in ports:
        if p.get("ifType") == "softwareLoopback" or p.get("deleted"):
            continue
        want = p.get("ifName") or p.get("ifDescr")
        tally("port names").add(want in names, f"{name} {want}")
        if p.get("ifSpeed") is not None and want in names:
            speed = by_metric["if.speed_bps"].get(want)
            tally("port speeds").add(_close(speed, p["ifSpeed"]), f"{name} {want} speed")

    sensors = oracle.get("sensors", {}).get("discovery", {}).get("sensors", [])
    ups_metrics = {"charge": "ups.charge_pct", "load": "ups.load_pct", "runtime": "ups.runtime_s"}
    if CORPUS_KINDS.get(name) == "ups":
        for cls, metric in ups_metrics.items():
            wants = [s for s in sensors if s["sensor_class"] == cls]
            if not wants:
                continue
            value = got.get((metric, ""))
            if metric == "ups.runtime_s" and value is not None:
                value /= 60  # LibreNMS keeps runtime in minutes
            ok = any(_close(value, s["sensor_current"], abs_=1.0) for s in wants)
            tally(f"ups {cls}").add(ok, f"{name} {metric}={value}")
    disk_temps = by_metric.get("disk.temp_c", {})
    for s in sensors:
        if s["sensor_type"] == "dsm" and ".6574.2.1.1.6." in s["sensor_oid"]:
            ok = any(_close(v, s["sensor_current"]) for v in disk_temps.values())
            tally("nas disk temperature").add(ok, f"{name} {s['sensor_descr']}")
