"""Helpers for the polling tests: a loopback snmpsim serving the whole corpus, one community
per recording (simsite.harness.snmp_corpus, shared with bench/polling.py), and the comparison
of what the poller reads with the LibreNMS oracle."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from services.polling.access import ClientAccess
from services.polling.profiles import PollContext, Reading, profiles_for
from services.polling.rates import RateTracker
from services.snmp import SnmpClient
from simsite.harness.paths import CORPUS
from simsite.harness.ports import free_udp_port
from simsite.harness.snmp_corpus import CORPUS_KINDS, corpus_agent, corpus_target

__all__ = [
    "CORPUS",
    "CORPUS_KINDS",
    "Tally",
    "compare",
    "corpus_agent",
    "corpus_target",
    "free_udp_port",
    "poll_recording",
]


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
    if not path.is_file():
        # A recording without its oracle would quietly shrink what is compared.
        raise FileNotFoundError(f"{path}: the LibreNMS output of recording {name} is missing")
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
