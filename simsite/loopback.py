"""The fallback site for unprivileged users: every device is a 127.18.N.x address.

No namespaces, so no ARP, no mDNS, no link changes, no gateway routing: just SNMP agents
and TCP listeners, one loopback address per device (all of 127.0.0.0/8 answers on Linux
without any configuration). The host part of the device's LAN address is kept, so
198.18.0.20 plays at 127.18.N.20.

N (the third octet) is the first block not held by another running LoopbackSite, claimed
with an flock that the kernel releases when its process dies; normally it is 0.
Without root, ports below 1024 cannot be bound: they are moved up by PRIVILEGED_PORT_SHIFT
(SNMP 161 -> 20161, IPP 631 -> 20631); ``snmp_port()`` and ``tcp_port()`` tell the truth.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import services
from .base import DEFAULT_START_TIMEOUT_S, DeviceRuntime, SiteBase
from .errors import SiteError
from .model import SiteSpec
from .readiness import Check

LOOPBACK_BASE = "127.18"
#: Added to privileged ports (< 1024) when not root.
PRIVILEGED_PORT_SHIFT = 20000
_PRIVILEGED_BELOW = 1024
_BLOCKS = 256


def _open_lock(path: Path) -> int:
    """A read-only fd on a lock file shared by every user (flock needs no write access).

    Opened without O_CREAT when it exists: in sticky /tmp, O_CREAT on another user's file
    is refused (fs.protected_regular).
    """
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        return fd


def _unsupported(what: str) -> NotImplementedError:
    return NotImplementedError(
        f"LoopbackSite cannot {what}: that needs network namespaces; run as root and use Site"
    )


class LoopbackSite(SiteBase):
    """Same API as ``Site`` where it makes sense; the rest raises NotImplementedError."""

    app_ns: None = None
    gw_ns: None = None
    msp_ns: None = None
    sw_ns: None = None

    def __init__(self, spec: SiteSpec, *, start_timeout_s: float = DEFAULT_START_TIMEOUT_S):
        if ipaddress.IPv4Network(spec.lan).prefixlen < 24:
            raise ValueError("LoopbackSite maps host numbers into a /24: use a LAN of /24 or less")
        super().__init__(spec, start_timeout_s=start_timeout_s)
        self._block: int | None = None
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        for block in range(_BLOCKS):
            fd = _open_lock(Path(tempfile.gettempdir()) / f"simsite-lo-{block}.lock")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self._block, self._lock_fd = block, fd
            return
        raise SiteError(f"all {_BLOCKS} loopback blocks {LOOPBACK_BASE}.N.0/24 are in use")

    def _start_gateway(self) -> list[Check]:
        self._gateway = DeviceRuntime(self._gateway_device(), 0, self.workdir / "gateway")
        self._gateway.dir.mkdir()
        check = self._start_snmp(self._gateway)
        return [check] if check is not None else []

    def _plug(self, rt: DeviceRuntime) -> None:
        """Nothing to plug: the address exists already."""

    def _unplug(self, rt: DeviceRuntime) -> None:
        """Nothing to unplug."""

    def _settle(self) -> None:
        """No links: loopback addresses carry traffic from the start."""

    def _readdress(self, rt: DeviceRuntime, old_ip: str) -> None:
        """The services restart on the new address; nothing else holds the old one."""

    def _teardown(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # ------------------------------------------------------------------ wiring

    def _wrap(self, ns: str | None, argv: Sequence[str]) -> list[str]:
        if ns is not None:
            raise ValueError("LoopbackSite has no namespaces: pass ns=None")
        return list(argv)

    def _mdns_supported(self) -> bool:
        return False

    def ip_of(self, name: str) -> str:
        if self._block is None:
            raise SiteError("site not started")
        host = int(ipaddress.IPv4Address(self._rt(name).device.ip)) - int(
            ipaddress.IPv4Network(self.spec.lan).network_address
        )
        return f"{LOOPBACK_BASE}.{self._block}.{host}"

    @staticmethod
    def _shift(port: int) -> int:
        if os.geteuid() != 0 and port < _PRIVILEGED_BELOW:
            return port + PRIVILEGED_PORT_SHIFT
        return port

    def snmp_port(self, name: str) -> int:
        self._rt(name)
        return self._shift(services.SNMP_PORT)

    def tcp_port(self, name: str, port: int) -> int:
        self._rt(name)
        return self._shift(port)

    # ------------------------------------------------------- what cannot be done

    def ns_of(self, name: str) -> str:
        raise _unsupported("give a device a namespace")

    def device_down(self, name: str) -> None:
        raise _unsupported("take a device off the network")

    def device_up(self, name: str) -> None:
        raise _unsupported("bring a device back onto the network")

    def cut_internet(self) -> None:
        raise _unsupported("cut the internet link")

    def restore_internet(self) -> None:
        raise _unsupported("restore the internet link")
