"""The simulated office LAN built from Linux network namespaces (needs root).

Layout, for prefix ``P`` (``op`` + 4 hex digits, unique per running site)::

    Psw   bridge br0; one veth end per host enslaved to it (app, gw, d1, d2, ...)
    Papp  eth0 = appliance_ip, default route via the gateway
    Pgw   lan0 = gateway_ip on the bridge; wan0 = gateway_wan_ip, veth to Pmsp; forwarding on
    Pmsp  eth0 = msp_ip, route back to the LAN via the gateway
    P-<device>  eth0 = the device's IP and vendor MAC, default route via the gateway

Nothing is ever created in the root namespace: veth pairs are created from inside the
switch namespace with their peer placed straight into the host's namespace. The bridge
holds no address, so the root namespace cannot reach the site and vice versa.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from . import netns, procs, services
from .base import DEFAULT_START_TIMEOUT_S, DeviceRuntime, SiteBase
from .errors import SiteError
from .model import SiteSpec
from .readiness import Check

#: IPv6 off everywhere: no link-local chatter, DAD delays or router solicitations; the
#: appliance is IPv4-only and deterministic behaviour matters more here.
_IPV6_OFF = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
BRIDGE = "br0"
HOST_IF = "eth0"
GW_LAN_IF = "lan0"
GW_WAN_IF = "wan0"
#: Switch-side port names (<= 15 chars, unique within the switch namespace only).
APP_PORT = "app"
GW_PORT = "gw"


#: The MSP server's NIC (locally administered: it is nobody's product).
MSP_MAC = "02:00:c6:13:00:02"


def wan_mac(lan_mac: str) -> str:
    """The gateway's second NIC: same vendor block, last octet differs in its lowest bit
    (00:08:a2:0c:12:01 -> ...:12:00), as on multi-port appliances."""
    head, last = lan_mac.rsplit(":", 1)
    return f"{head}:{int(last, 16) ^ 1:02x}"


def _port_of(rt: DeviceRuntime) -> str:
    return f"d{rt.index}"


class Site(SiteBase):
    """A whole office LAN in network namespaces; see the module doc for the layout."""

    def __init__(self, spec: SiteSpec, *, start_timeout_s: float = DEFAULT_START_TIMEOUT_S):
        if os.geteuid() != 0:
            raise SiteError("Site needs root for network namespaces (LoopbackSite does not)")
        super().__init__(spec, start_timeout_s=start_timeout_s)
        self._namespaces: list[str] = []
        # (namespace, interface) created but not yet seen operationally up.
        self._new_links: list[tuple[str, str]] = []

    # ------------------------------------------------------------ namespace names

    @property
    def sw_ns(self) -> str:
        return f"{self.prefix}sw"

    @property
    def app_ns(self) -> str:
        return f"{self.prefix}app"

    @property
    def gw_ns(self) -> str:
        return f"{self.prefix}gw"

    @property
    def msp_ns(self) -> str:
        return f"{self.prefix}msp"

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(self._namespaces)

    def ns_of(self, name: str) -> str:
        rt = self._rt(name)
        assert rt.ns is not None
        return rt.ns

    # ------------------------------------------------------------------ building

    def _new_ns(self, ns: str, extra_sysctls: dict[str, str] | None = None) -> None:
        netns.add(ns)
        self._namespaces.append(ns)
        netns.sysctl(ns, {**_IPV6_OFF, **(extra_sysctls or {})})

    def _build(self) -> None:
        spec = self.spec
        sw, app, gw, msp = self.sw_ns, self.app_ns, self.gw_ns, self.msp_ns
        self._new_ns(sw)
        self._new_ns(app)
        self._new_ns(gw, {"net.ipv4.ip_forward": "1"})
        self._new_ns(msp)
        netns.batch(
            sw,
            [
                "link set lo up",
                # No STP (the default), so ports forward at once; no multicast snooping, so
                # mDNS floods like on a cheap unmanaged office switch.
                f"link add {BRIDGE} type bridge mcast_snooping 0",
                f"link set {BRIDGE} up",
                f"link add {APP_PORT} type veth peer name {HOST_IF} netns {app}",
                f"link add {GW_PORT} type veth peer name {GW_LAN_IF} netns {gw}",
                f"link set {APP_PORT} master {BRIDGE} up",
                f"link set {GW_PORT} master {BRIDGE} up",
            ],
        )
        netns.batch(
            gw,
            [
                "link set lo up",
                f"link set {GW_LAN_IF} address {spec.gateway_mac}",
                f"addr add {spec.gateway_ip}/{spec.lan_prefixlen} dev {GW_LAN_IF}",
                f"link set {GW_LAN_IF} up",
                f"link add {GW_WAN_IF} type veth peer name {HOST_IF} netns {msp}",
                f"link set {GW_WAN_IF} address {wan_mac(spec.gateway_mac)}",
                f"addr add {spec.gateway_wan_ip}/{spec.wan_prefixlen} dev {GW_WAN_IF}",
                f"link set {GW_WAN_IF} up",
            ],
        )
        netns.batch(
            msp,
            [
                "link set lo up",
                f"link set {HOST_IF} address {MSP_MAC}",
                f"addr add {spec.msp_ip}/{spec.wan_prefixlen} dev {HOST_IF}",
                f"link set {HOST_IF} up",
                f"route add {spec.lan} via {spec.gateway_wan_ip}",
            ],
        )
        netns.batch(app, self._host_commands(spec.appliance_ip, spec.appliance_mac))
        self._new_links += [
            (sw, APP_PORT),
            (sw, GW_PORT),
            (app, HOST_IF),
            (gw, GW_LAN_IF),
            (gw, GW_WAN_IF),
            (msp, HOST_IF),
        ]

    def _host_commands(self, ip: str, mac: str) -> list[str]:
        return [
            "link set lo up",
            f"link set {HOST_IF} address {mac}",
            f"addr add {ip}/{self.spec.lan_prefixlen} dev {HOST_IF}",
            f"link set {HOST_IF} up",
            f"route add default via {self.spec.gateway_ip}",
        ]

    def _start_gateway(self) -> list[Check]:
        self._gateway = DeviceRuntime(
            self._gateway_device(), 0, self.workdir / "gateway", ns=self.gw_ns
        )
        self._gateway.dir.mkdir()
        check = self._start_snmp(self._gateway)
        return [check] if check is not None else []

    def _plug(self, rt: DeviceRuntime) -> None:
        ns = f"{self.prefix}-{rt.device.name}"
        self._new_ns(ns, {"net.ipv4.icmp_echo_ignore_all": "1"} if rt.device.ignore_ping else None)
        rt.ns = ns
        port = _port_of(rt)
        netns.batch(
            self.sw_ns,
            [
                f"link add {port} type veth peer name {HOST_IF} netns {ns}",
                f"link set {port} master {BRIDGE} up",
            ],
        )
        netns.batch(ns, self._host_commands(rt.device.ip, rt.device.mac))
        self._new_links += [(self.sw_ns, port), (ns, HOST_IF)]

    def _settle(self) -> None:
        # Checked once for all new links, after the processes were started: by then the
        # kernel has mostly caught up and one pass usually suffices.
        links, self._new_links = self._new_links, []
        netns.wait_oper_up(links)

    def _unplug(self, rt: DeviceRuntime) -> None:
        assert rt.ns is not None
        # Cut the cable first: deleting a veth end removes the pair at once, whereas a
        # deleted namespace is dismantled by the kernel in the background, and until then
        # the host would still answer.
        netns.batch(self.sw_ns, [f"link del {_port_of(rt)}"])
        procs.kill_pids(netns.pids(rt.ns))
        netns.delete(rt.ns)
        self._namespaces.remove(rt.ns)

    def _readdress(self, rt: DeviceRuntime, old_ip: str) -> None:
        assert rt.ns is not None
        netns.batch(
            rt.ns,
            [
                f"addr del {old_ip}/{self.spec.lan_prefixlen} dev {HOST_IF}",
                f"addr add {rt.device.ip}/{self.spec.lan_prefixlen} dev {HOST_IF}",
                # Deleting the old address took the default route with it.
                f"route replace default via {self.spec.gateway_ip} dev {HOST_IF} onlink",
            ],
        )

    def _teardown(self) -> None:
        # Whatever still runs in our namespaces (things started by hand with ip netns exec,
        # grandchildren that left their process group) is killed before the namespace goes.
        leftovers = netns.pids_in(self._namespaces)
        procs.kill_pids(pid for pids in leftovers.values() for pid in pids)
        errors = []
        for ns in reversed(self._namespaces):
            try:
                netns.delete(ns)
            except SiteError as exc:
                errors.append(str(exc))
        self._namespaces.clear()
        if errors:
            raise SiteError("; ".join(errors))

    # ----------------------------------------------------------- runtime changes

    def device_down(self, name: str) -> None:
        self._set_port(name, "down")

    def devices_down(self, *names: str) -> None:
        """Take several devices off the LAN in one ``ip -batch`` (a power cut of a rack: one
        at a time, the last went a second or more after the first on a loaded machine, and a
        poll round could see the gateway dead and a server still answering)."""
        self._require_running()
        ports = []
        for name in names:
            rt = self._rt(name)
            ports.append(GW_PORT if rt is self._gateway else _port_of(rt))
        netns.batch(self.sw_ns, [f"link set {port} down" for port in ports])
        for name in names:
            self._rt(name).down = True

    def device_up(self, name: str) -> None:
        self._set_port(name, "up")

    def _set_port(self, name: str, state: str) -> None:
        # The switch side goes down, so the device sees no carrier but keeps its address
        # and routes (taking its own eth0 down would flush its default route).
        # "gateway" works too: the LAN loses its router.
        self._require_running()
        rt = self._rt(name)
        port = GW_PORT if rt is self._gateway else _port_of(rt)
        netns.batch(self.sw_ns, [f"link set {port} {state}"])
        rt.down = state == "down"
        if state == "up":
            assert rt.ns is not None
            peer = GW_LAN_IF if rt is self._gateway else HOST_IF
            netns.wait_oper_up([(self.sw_ns, port), (rt.ns, peer)])

    def cut_internet(self) -> None:
        self._require_running()
        netns.batch(self.gw_ns, [f"link set {GW_WAN_IF} down"])

    def restore_internet(self) -> None:
        self._require_running()
        spec = self.spec
        netns.batch(self.gw_ns, [f"link set {GW_WAN_IF} up"])
        netns.wait_oper_up([(self.gw_ns, GW_WAN_IF), (self.msp_ns, HOST_IF)])
        netns.batch(self.msp_ns, [f"route replace {spec.lan} via {spec.gateway_wan_ip}"])

    # ------------------------------------------------------------------- wiring

    def _wrap(self, ns: str | None, argv: Sequence[str]) -> list[str]:
        if ns is None or ns not in self._namespaces:
            raise ValueError(
                f"{ns!r} is not a namespace of this site (one of {', '.join(self._namespaces)})"
            )
        return netns.exec_argv(ns, argv)

    def _mdns_supported(self) -> bool:
        return True

    def ip_of(self, name: str) -> str:
        return self._rt(name).device.ip

    def snmp_port(self, name: str) -> int:
        self._rt(name)
        return services.SNMP_PORT

    def tcp_port(self, name: str, port: int) -> int:
        return port

    def describe(self) -> dict[str, object]:
        out = super().describe()
        out["namespaces"] = {
            "switch": self.sw_ns,
            "appliance": self.app_ns,
            "gateway": self.gw_ns,
            "msp": self.msp_ns,
        }
        return out
