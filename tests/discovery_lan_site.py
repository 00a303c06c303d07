"""Small LANs for the discovery field cases (tests/test_discovery_lan*.py): a namespace site, the
discovery service (or the whole appliance) in its appliance namespace, and the store read from
outside while it runs.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from simsite.site import Site
from tests.conftest import REPO

T = TypeVar("T")
SWEEP_INTERVAL_S = 2.0


@dataclass
class Outpost:
    """A discovery service (or whole appliance) running in a site's appliance namespace."""

    site: Site
    db: Path
    log: Path
    proc: subprocess.Popen[bytes]
    started: float

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        except sqlite3.OperationalError:
            return []  # the store is not created yet
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return []  # its tables are not created yet
        finally:
            conn.close()

    def devices(self) -> dict[str, sqlite3.Row]:
        """Devices with a MAC, by MAC."""
        return {r["mac"]: r for r in self.query("SELECT * FROM devices WHERE mac IS NOT NULL")}

    def attrs(self, mac: str) -> dict[str, Any]:
        row = self.devices().get(mac)
        return json.loads(row["attrs"]) if row is not None else {}

    def events(self, kind: str) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM events WHERE kind = ? ORDER BY id", (kind,))
        return [{**dict(r), "data": json.loads(r["data"] or "{}")} for r in rows]

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, what: str, probe: Callable[[], T | None], timeout_s: float = 60.0) -> T:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"outpost exited: {self.text()[-3000:]}"
            result = probe()
            if result:
                return result
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; log: {self.text()[-4000:]}")


def discovery_config(db: Path, subnets: list[str], *, mdns: bool = True, extra: str = "") -> str:
    return (
        f'[store]\npath = "{db}"\n\n[discovery]\nsubnets = {json.dumps(subnets)}\n'
        f"sweep_interval_s = {SWEEP_INTERVAL_S}\nsnmp = false\n"
        f"mdns = {'true' if mdns else 'false'}\n{extra}"
    )


def appliance_config(db: Path, subnets: list[str], extra: str = "") -> str:
    """The whole appliance (discovery, polling, alerting; no page, no uplink)."""
    return (
        f'[store]\npath = "{db}"\n[web]\nenabled = false\n'
        f"[discovery]\nsubnets = {json.dumps(subnets)}\nsweep_interval_s = {SWEEP_INTERVAL_S}\n"
        "snmp = false\n[polling]\ninterval_s = 3\nsnmp = false\n"
        f"[alerting]\ndown_after_missed = 2\n{extra}"
    )


@contextmanager
def outpost(
    site: Site, tmp: Path, config: Callable[[Path], str], *, whole: bool = False
) -> Iterator[Outpost]:
    """Start discovery alone (``python -m services.discovery run``) or the whole appliance
    (``python -m firmware run``) in the appliance namespace; SIGTERM on the way out."""
    db, log, path = tmp / "outpost.db", tmp / "outpost.log", tmp / "outpost.toml"
    path.write_text(config(db))
    module = ["-m", "firmware", "run"] if whole else ["-m", "services.discovery", "run"]
    with log.open("wb") as out:
        proc = site.popen_in(
            site.app_ns,
            [sys.executable, *module, "--config", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    running = Outpost(site, db, log, proc, time.monotonic())
    try:
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def ns_run(site: Site, ns: str, *commands: str) -> None:
    """``ip`` / ``sysctl`` commands (one string each) in namespace ``ns``; any failure raises."""
    for command in commands:
        site.run_in(ns, command.split(), check=True, capture_output=True)


#: A gratuitous ARP (who-has IP tell IP) from eth0 (or the interface given): what keepalived,
#: a VRRP router or a host taking an address sends so that neighbours update their caches.
GARP = r"""
import socket, struct, sys
ip, ifname = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "eth0"
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
mac = s.getsockname()[4][:6]
body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + socket.inet_aton(ip) + b"\0" * 6 \
    + socket.inet_aton(ip)
s.send((b"\xff" * 6 + mac + struct.pack("!H", 0x0806) + body).ljust(60, b"\0"))
"""


def garp(site: Site, ns: str, ip: str, ifname: str = "eth0") -> None:
    site.run_in(ns, [sys.executable, "-c", GARP, ip, ifname], check=True, capture_output=True)
