"""MAC vendor from the IEEE OUI registry that ships (offline) with netaddr.

A locally administered MAC (second-least-significant bit of the first octet set) is not in
any registry: phones and laptops randomise their Wi-Fi MAC per network (iOS, Android, Windows
"private addresses"), virtual machines and containers make them up. Those are reported as
such rather than looked up, since a registry hit on them would be a coincidence.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from netaddr import EUI, NotRegisteredError

from services.discovery.sanitize import clean_name

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


@dataclass(frozen=True)
class MacInfo:
    mac: str  # lower-case colon form
    vendor: str  # registered organisation, "" when unknown or locally administered
    local: bool  # locally administered (randomised / virtual)


def normalize_mac(mac: str | bytes) -> str:
    """``b'\\x00\\x11...'`` or ``'00-11-32-AA-BB-CC'`` to ``'00:11:32:aa:bb:cc'``."""
    if isinstance(mac, bytes):
        if len(mac) != 6:
            raise ValueError(f"a MAC is 6 bytes, got {len(mac)}")
        return mac.hex(":")
    text = mac.strip().lower().replace("-", ":").replace(".", "")
    if ":" not in text and len(text) == 12:
        text = ":".join(text[i : i + 2] for i in range(0, 12, 2))
    if not _MAC_RE.match(text):
        raise ValueError(f"{mac!r} is not a MAC address")
    return text


def is_locally_administered(mac: str) -> bool:
    return bool(int(mac[:2], 16) & 0x02)


@functools.lru_cache(maxsize=4096)
def lookup(mac: str) -> MacInfo:
    mac = normalize_mac(mac)
    if is_locally_administered(mac):
        return MacInfo(mac, "", True)
    try:
        org = EUI(mac).oui.registration().org
    except (NotRegisteredError, IndexError, ValueError):
        return MacInfo(mac, "", False)
    return MacInfo(mac, clean_name(str(org)), False)
