"""The configuration handed to one device agent (``python -m simsite.agent CONFIG``).

Passed as a JSON file rather than argv so that hostile strings (control characters,
markup, bytes that are not UTF-8 in TXT values) reach the agent intact: every TXT value
travels base64-encoded.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from .model import MdnsService


@dataclass(frozen=True)
class ServiceAd:
    """One mDNS service as the agent announces it (names fully qualified)."""

    type_: str
    instance: str
    port: int
    txt: tuple[bytes, ...]
    host: str

    @staticmethod
    def from_model(svc: MdnsService, device_name: str) -> ServiceAd:
        host = svc.host or device_name
        host = host if host.endswith(".") else (host.removesuffix(".local") + ".local.")
        return ServiceAd(svc.full_type, svc.name, svc.port, tuple(svc.txt_entries()), host)


@dataclass(frozen=True)
class AgentConfig:
    ip: str
    #: (port to listen on, port the device plays): they differ on the loopback fallback.
    listeners: tuple[tuple[int, int], ...]
    services: tuple[ServiceAd, ...]
    ready_file: str
    #: Shown in HTTP Server headers and banners.
    vendor: str = ""

    def dump(self, path: Path) -> None:
        data = {
            "ip": self.ip,
            "listeners": [list(pair) for pair in self.listeners],
            "ready_file": self.ready_file,
            "vendor": self.vendor,
            "services": [
                {
                    "type": s.type_,
                    "instance": s.instance,
                    "port": s.port,
                    "host": s.host,
                    "txt_b64": [base64.b64encode(e).decode() for e in s.txt],
                }
                for s in self.services
            ],
        }
        path.write_text(json.dumps(data, indent=1))

    @staticmethod
    def load(path: Path) -> AgentConfig:
        data = json.loads(path.read_text())
        services = tuple(
            ServiceAd(
                type_=s["type"],
                instance=s["instance"],
                port=int(s["port"]),
                txt=tuple(base64.b64decode(e) for e in s["txt_b64"]),
                host=s["host"],
            )
            for s in data["services"]
        )
        listeners = tuple((int(a), int(b)) for a, b in data["listeners"])
        return AgentConfig(data["ip"], listeners, services, data["ready_file"], data["vendor"])
