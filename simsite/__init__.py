"""simsite: a simulated office LAN for tests, ``make run`` and benchmarks.

``Site`` builds it from Linux network namespaces (root); ``LoopbackSite`` is the
unprivileged fallback on 127.18.N.x. Catalogs: ``corpus_site`` (the shared SNMP corpus)
and ``demo_site`` (self-contained, for ``make run``). CLI: ``python -m simsite``.
"""

from .errors import SiteError
from .loopback import LoopbackSite
from .model import MdnsService, SimDevice, SiteSpec, SnmpV3User
from .site import Site

__all__ = [
    "LoopbackSite",
    "MdnsService",
    "SimDevice",
    "Site",
    "SiteError",
    "SiteSpec",
    "SnmpV3User",
]
