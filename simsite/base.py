"""What the namespace site and the loopback fallback share: devices, their processes,
runtime changes, teardown bookkeeping.

Subclasses decide *where* things run (``_wrap``), at which address and ports a device's
services listen, and how a device is plugged into and out of the network.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from . import lifecycle, procs, services
from .errors import SiteError
from .model import SimDevice, SiteSpec
from .owner import OwnerRecord, reserve_prefix, sweep_stale
from .readiness import Check, wait_all

#: Upper bound for every agent of a fresh site to answer (20 devices take ~10 s on 2 cores).
DEFAULT_START_TIMEOUT_S = 90.0
#: Name under which the gateway's own SNMP agent is addressed (snmp_port, set_snmprec...).
GATEWAY = "gateway"
_RESERVED_NAMES = frozenset({GATEWAY, "appliance", "msp", "switch"})
#: Popen arguments a site sets itself and callers may not override.
_OWNED_POPEN_ARGS = ("start_new_session", "preexec_fn", "process_group")


@dataclass
class DeviceRuntime:
    """A device as it currently runs (its address may have changed since the spec)."""

    device: SimDevice
    index: int
    dir: Path
    ns: str | None = None
    snmp: subprocess.Popen[bytes] | None = None
    agent: subprocess.Popen[bytes] | None = None
    down: bool = False


class SiteBase(abc.ABC):
    """Lifecycle and device bookkeeping; see ``Site`` and ``LoopbackSite``.

    Not thread-safe: drive a site from one thread (the one that started it, ideally the
    main thread, where children also get the parent-death signal).
    """

    def __init__(self, spec: SiteSpec, *, start_timeout_s: float = DEFAULT_START_TIMEOUT_S):
        for dev in spec.devices:
            if dev.name in _RESERVED_NAMES:
                raise ValueError(f"device name {dev.name!r} is reserved")
        self.spec = spec
        self.start_timeout_s = start_timeout_s
        self._record: OwnerRecord | None = None
        self._workdir: Path | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._started_at: dict[int, int] = {}  # pid -> kernel start time
        self._devices: dict[str, DeviceRuntime] = {}
        self._gateway: DeviceRuntime | None = None
        self._next_index = 1
        self._stopped = False

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Build the site and return once every SNMP agent answers and every agent is up."""
        if self._record is not None or self._stopped:
            raise SiteError("a site starts once; build a new one to start again")
        sweep_stale()
        self._record = reserve_prefix()
        lifecycle.register(self)
        try:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"simsite-{self.prefix}-"))
            self._record.workdir = str(self._workdir)
            self._record.save()
            services.check_tools(self.spec.devices, self.spec.gateway_snmprec is not None)
            self._build()
            # All plumbing first, then all processes: starting Python agents is CPU-bound
            # and would slow every later ``ip`` call down.
            runtimes = [self._create_device(dev) for dev in self.spec.devices]
            checks = self._start_gateway()
            for rt in runtimes:
                checks += self._start_services(rt)
            self._save_record()
            self._settle()
            wait_all(checks, self.start_timeout_s)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill everything this site started and remove it; safe to call at any point, twice."""
        if self._record is None or self._stopped:
            self._stopped = True
            return
        self._stopped = True
        with lifecycle.signals_held():
            try:
                procs.terminate_all(self._procs)
                self._teardown()
            finally:
                if self._workdir is not None:
                    shutil.rmtree(self._workdir, ignore_errors=True)
                self._record.remove()
                lifecycle.unregister(self)

    @property
    def running(self) -> bool:
        return self._record is not None and not self._stopped

    @property
    def prefix(self) -> str:
        if self._record is None:
            raise SiteError("site not started")
        return self._record.prefix

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise SiteError("site not started")
        return self._workdir

    # ------------------------------------------------------------------ processes

    def popen_in(self, ns: str | None, argv: Sequence[str], **kw: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` in namespace ``ns``; the process (and its group) dies at stop()."""
        self._require_running()
        clash = [k for k in _OWNED_POPEN_ARGS if k in kw]
        if clash:
            raise TypeError(f"popen_in sets {', '.join(clash)} itself")
        proc = self._popen(ns, argv, **kw)
        self._save_record()
        return proc

    def _popen(self, ns: str | None, argv: Sequence[str], **kw: Any) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = subprocess.Popen(
            self._wrap(ns, argv),
            start_new_session=True,
            # Only a prctl() call (see procs.py), which is safe between fork and exec.
            preexec_fn=procs.preexec_for_current_thread(),  # noqa: PLW1509
            **kw,
        )
        # Drop reaped processes so long benchmark runs do not accumulate them.
        self._procs = [p for p in self._procs if p.returncode is None]
        self._procs.append(proc)
        started = procs.start_time(proc.pid)
        if started is not None:
            self._started_at[proc.pid] = started
        return proc

    def run_in(
        self, ns: str | None, argv: Sequence[str], **kw: Any
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` in namespace ``ns`` to completion (``subprocess.run`` keywords)."""
        self._require_running()
        return subprocess.run(self._wrap(ns, argv), **kw)

    def pids(self) -> list[int]:
        """Pids of the processes this site started that still run."""
        return [p.pid for p in self._procs if p.poll() is None]

    def _save_record(self) -> None:
        """Write the children into the owner record, for the sweep after a crash.

        Called once per operation rather than per process: each write costs a rename.
        Children started since the last write are covered by PR_SET_PDEATHSIG meanwhile.
        """
        assert self._record is not None
        self._record.children = [
            [p.pid, self._started_at[p.pid]]
            for p in self._procs
            if p.returncode is None and p.pid in self._started_at
        ]
        self._record.save()

    def _spawn(self, ns: str | None, cmd: services.Command) -> subprocess.Popen[bytes]:
        with cmd.log.open("ab") as log:
            return self._popen(
                ns,
                cmd.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **cmd.env},
            )

    def _require_running(self) -> None:
        if not self.running:
            raise SiteError("site is not running")

    # -------------------------------------------------------------------- devices

    @property
    def devices(self) -> tuple[SimDevice, ...]:
        """The devices as they are now (after add/remove/change_ip)."""
        return tuple(rt.device for rt in self._devices.values())

    def device(self, name: str) -> SimDevice:
        return self._rt(name).device

    def _rt(self, name: str) -> DeviceRuntime:
        """Device ``name``, or the gateway for ``"gateway"``."""
        if name == GATEWAY and self._gateway is not None:
            return self._gateway
        return self._device_rt(name)

    def _device_rt(self, name: str) -> DeviceRuntime:
        """Device ``name`` (the gateway is not a device: it cannot move or leave)."""
        try:
            return self._devices[name]
        except KeyError:
            raise KeyError(f"no device {name!r} on this site") from None

    def _create_device(self, dev: SimDevice) -> DeviceRuntime:
        rt = DeviceRuntime(dev, self._next_index, self.workdir / f"dev-{dev.name}")
        self._next_index += 1
        rt.dir.mkdir(parents=True, exist_ok=True)
        self._devices[dev.name] = rt
        self._plug(rt)
        return rt

    def _gateway_device(self) -> SimDevice:
        spec = self.spec
        return SimDevice(
            name=GATEWAY,
            ip=spec.gateway_ip,
            mac=spec.gateway_mac,
            vendor="Netgate",
            role="router",
            snmprec=spec.gateway_snmprec,
            community=spec.gateway_community,
        )

    def _start_services(self, rt: DeviceRuntime) -> list[Check]:
        checks: list[Check] = []
        check = self._start_snmp(rt)
        if check is not None:
            checks.append(check)
        dev = rt.device
        listeners = tuple((self.tcp_port(dev.name, p), p) for p in dev.tcp_ports)
        cmd = services.agent_command(
            rt.dir, dev, self.ip_of(dev.name), listeners, self._mdns_supported()
        )
        if cmd is not None:
            rt.agent = self._spawn(rt.ns, cmd)
            checks.append(
                Check(
                    label=f"agent of {dev.name}",
                    process=rt.agent,
                    log=cmd.log,
                    ready_file=services.agent_ready_file(rt.dir),
                )
            )
        return checks

    def _start_snmp(self, rt: DeviceRuntime) -> Check | None:
        dev = rt.device
        ip, port = self.ip_of(dev.name), self.snmp_port(dev.name)
        if dev.engine == "snmpsim":
            assert dev.snmprec is not None
            cmd = services.snmpsim_command(rt.dir, dev.snmprec, dev.community, ip, port)
        elif dev.engine == "snmpd":
            cmd = services.snmpd_command(rt.dir, dev, ip, port)
        else:
            return None
        rt.snmp = self._spawn(rt.ns, cmd)
        return Check(
            label=f"{dev.engine} of {dev.name} ({ip}:{port})",
            process=rt.snmp,
            log=cmd.log,
            # Probed from the device's own namespace: the appliance's ARP cache stays cold.
            probe_argv=self._wrap(rt.ns, services.snmp_probe_argv(dev, ip, port)),
            probe_env=services.netsnmp_env(self.workdir),
        )

    def _stop_services(self, rt: DeviceRuntime) -> None:
        mine = [p for p in (rt.snmp, rt.agent) if p is not None]
        procs.terminate_all(mine)
        self._procs = [p for p in self._procs if p not in mine]
        rt.snmp = rt.agent = None

    # ------------------------------------------------------------ runtime changes

    def add_device(self, dev: SimDevice) -> None:
        """A new host joins the LAN (returns once its agents answer)."""
        self._require_running()
        if dev.name in _RESERVED_NAMES:
            raise ValueError(f"device name {dev.name!r} is reserved")
        self.spec.check_devices((*self.devices, dev))
        services.check_tools((dev,), False)
        rt = self._create_device(dev)
        checks = self._start_services(rt)
        self._save_record()
        self._settle()
        wait_all(checks, self.start_timeout_s)

    def remove_device(self, name: str) -> None:
        """The host leaves for good: its processes end and its namespace goes."""
        self._require_running()
        rt = self._device_rt(name)
        del self._devices[name]
        self._stop_services(rt)
        self._unplug(rt)

    def change_ip(self, name: str, new_ip: str) -> None:
        """Re-address a device (DHCP gave it another lease); its agents restart on it."""
        self._require_running()
        rt = self._device_rt(name)
        changed = dataclasses.replace(rt.device, ip=new_ip)
        others = tuple(d for d in self.devices if d.name != name)
        self.spec.check_devices((*others, changed))
        self._stop_services(rt)
        old_ip, rt.device = rt.device.ip, changed
        self._readdress(rt, old_ip)
        checks = self._start_services(rt)
        self._save_record()
        wait_all(checks, self.start_timeout_s)

    def crash_agent(self, name: str) -> None:
        """The device loses power: its agent dies at once, without mDNS goodbyes, so other
        hosts keep its records cached until their TTL runs out (a later ``change_ip`` starts
        it again, as the device's next boot would)."""
        self._require_running()
        rt = self._device_rt(name)
        if rt.agent is not None:
            rt.agent.kill()
            rt.agent.wait(10)

    def set_snmprec(self, name: str, path: Path) -> None:
        """Swap the recording a device (or the gateway) serves and restart its agent."""
        self._require_running()
        rt = self._rt(name)
        if rt.device.engine != "snmpsim":
            raise ValueError(f"{name} does not run snmpsim; only recordings can be swapped")
        rt.device = dataclasses.replace(rt.device, snmprec=Path(path))
        old = rt.snmp
        if old is not None:
            procs.terminate_all([old])
            self._procs = [p for p in self._procs if p is not old]
        check = self._start_snmp(rt)
        assert check is not None
        self._save_record()
        wait_all([check], self.start_timeout_s)

    # ------------------------------------------------------------------- queries

    def describe(self) -> dict[str, Any]:
        """A JSON-able picture of the running site (what ``python -m simsite up`` prints)."""
        devices = [self._describe_device(rt) for rt in self._devices.values()]
        return {
            "kind": type(self).__name__,
            "prefix": self.prefix,
            "workdir": str(self.workdir),
            "lan": self.spec.lan,
            "appliance_ip": self.spec.appliance_ip,
            "msp_ip": self.spec.msp_ip,
            "gateway": self._describe_device(self._gateway) if self._gateway else None,
            "devices": devices,
        }

    def _describe_device(self, rt: DeviceRuntime) -> dict[str, Any]:
        dev = rt.device
        snmp: dict[str, Any] | None = None
        if dev.engine is not None:
            snmp = {
                "engine": dev.engine,
                "port": self.snmp_port(dev.name),
                "community": dev.community,
                "recording": str(dev.snmprec) if dev.snmprec else None,
                "v3_user": dev.v3_user.user if dev.v3_user else None,
            }
        return {
            "name": dev.name,
            "ns": rt.ns,
            "ip": dev.ip,
            "address": self.ip_of(dev.name),
            "mac": dev.mac,
            "vendor": dev.vendor,
            "role": dev.role,
            "down": rt.down,
            "snmp": snmp,
            "tcp_ports": {p: self.tcp_port(dev.name, p) for p in dev.tcp_ports},
            "mdns": [s.full_type for s in dev.mdns] if self._mdns_supported() else [],
        }

    # --------------------------------------------------------- subclass interface

    @abc.abstractmethod
    def _settle(self) -> None:
        """Wait until links created since the last call carry traffic."""

    @abc.abstractmethod
    def _wrap(self, ns: str | None, argv: Sequence[str]) -> list[str]:
        """The argv that runs ``argv`` inside ``ns``."""

    @abc.abstractmethod
    def _build(self) -> None:
        """Create the network skeleton (before any device)."""

    @abc.abstractmethod
    def _start_gateway(self) -> list[Check]:
        """Set up the gateway's services; return what to wait for."""

    @abc.abstractmethod
    def _plug(self, rt: DeviceRuntime) -> None:
        """Connect a new device to the LAN (sets ``rt.ns`` where namespaces exist)."""

    @abc.abstractmethod
    def _unplug(self, rt: DeviceRuntime) -> None:
        """Disconnect and remove a device whose processes are already stopped."""

    @abc.abstractmethod
    def _readdress(self, rt: DeviceRuntime, old_ip: str) -> None:
        """Move a device to ``rt.device.ip`` (its processes are stopped meanwhile)."""

    @abc.abstractmethod
    def _teardown(self) -> None:
        """Remove what ``_build`` and ``_plug`` created (tracked processes already ended)."""

    @abc.abstractmethod
    def _mdns_supported(self) -> bool: ...

    @abc.abstractmethod
    def ns_of(self, name: str) -> str:
        """The network namespace device ``name`` (or ``"gateway"``) lives in."""

    @abc.abstractmethod
    def device_down(self, name: str) -> None:
        """Unplug the device's cable: it stops answering anything, its processes keep running."""

    @abc.abstractmethod
    def device_up(self, name: str) -> None:
        """Plug the cable back in."""

    @abc.abstractmethod
    def cut_internet(self) -> None:
        """Take the gateway's WAN link down: the MSP server becomes unreachable."""

    @abc.abstractmethod
    def restore_internet(self) -> None:
        """Bring the WAN link back."""

    @abc.abstractmethod
    def ip_of(self, name: str) -> str:
        """The address a client uses to reach device ``name`` (or ``"gateway"``)."""

    @abc.abstractmethod
    def snmp_port(self, name: str) -> int:
        """The UDP port device ``name``'s SNMP agent listens on."""

    @abc.abstractmethod
    def tcp_port(self, name: str, port: int) -> int:
        """The port where device ``name``'s TCP service ``port`` really listens."""
