"""MAC vendor from the IEEE registries, by longest prefix: MA-S/IAB, then MA-M, then MA-L.

The IEEE sells three block sizes: MA-L (24-bit prefix, the classic OUI), MA-M (28-bit) and
MA-S (36-bit; its predecessor, the IAB, is 36-bit too). A small block is carved out of an MA-L
registered to "IEEE Registration Authority", so a 24-bit lookup alone names the registrar
instead of the maker (4c:74:a7:e1:... is KYOCERA, 70:b3:d5:98:7... is AXIS). Sources, all
offline:

* MA-L and IAB: netaddr's copies of the IEEE ``oui.txt`` and ``iab.txt``;
* MA-M and MA-S: ``data/ieee_small_blocks.tsv.gz`` shipped with this package (from arp-scan's
  compilation of the IEEE ``mam.csv`` and ``oui36.csv``; netaddr does not ship those two).

A MAC whose only match is the registrar is reported with no vendor rather than as
"IEEE Registration Authority".

A locally administered MAC (second-least-significant bit of the first octet set) is not in
any registry: phones and laptops randomise their Wi-Fi MAC per network (iOS, Android, Windows
"private addresses"), virtual machines and containers make them up. Those are reported as
such rather than looked up, since a registry hit on them would be a coincidence.
"""

from __future__ import annotations

import functools
import gzip
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from netaddr import EUI, NotRegisteredError

from services.discovery.sanitize import clean_name

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
SMALL_BLOCKS: Final = Path(__file__).with_name("data") / "ieee_small_blocks.tsv.gz"
#: The owner of every MA-L that the IEEE splits into MA-M / MA-S / IAB blocks, and the name
#: the registry shows for an owner that paid to stay unlisted: neither names a maker.
NOT_A_VENDOR: Final = frozenset({"ieee registration authority", "private"})
MA_S_HEX_DIGITS: Final = 9  # 36-bit prefix
MA_M_HEX_DIGITS: Final = 7  # 28-bit prefix


@dataclass(frozen=True)
class MacInfo:
    mac: str  # lower-case colon form
    vendor: str  # registered organisation, "" when unknown or locally administered
    local: bool  # locally administered (randomised / virtual)
    block: str = ""  # "MA-S", "IAB", "MA-M", "MA-L" or "" (which registry named the vendor)


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


@functools.cache
def _small_blocks(path: Path = SMALL_BLOCKS) -> dict[str, str]:
    """Upper-case hex prefix (7 or 9 digits) -> organisation; empty if the file is missing."""
    table: dict[str, str] = {}
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                if line.startswith("#"):
                    continue
                prefix, _, org = line.rstrip("\n").partition("\t")
                if len(prefix) in (MA_S_HEX_DIGITS, MA_M_HEX_DIGITS) and org:
                    table[prefix.upper()] = org
    except OSError:
        return {}
    return table


def _registered(mac: str) -> tuple[str, str]:
    """(organisation, block) by longest prefix; ("", "") when no registry has it."""
    digits = mac.replace(":", "").upper()
    small = _small_blocks()
    if org := small.get(digits[:MA_S_HEX_DIGITS]):
        return org, "MA-S"
    eui = EUI(mac)
    try:
        if eui.is_iab():
            return str(eui.iab.registration().org), "IAB"
    except (NotRegisteredError, IndexError, ValueError):
        pass
    if org := small.get(digits[:MA_M_HEX_DIGITS]):
        return org, "MA-M"
    try:
        org = str(eui.oui.registration().org)
    except (NotRegisteredError, IndexError, ValueError):
        return "", ""
    return org, "MA-L"


@functools.lru_cache(maxsize=4096)
def lookup(mac: str) -> MacInfo:
    mac = normalize_mac(mac)
    if is_locally_administered(mac):
        return MacInfo(mac, "", True)
    org, block = _registered(mac)
    if org.strip().lower() in NOT_A_VENDOR:
        # A small block we have no entry for, or a hidden owner: the maker is unknown.
        return MacInfo(mac, "", False)
    return MacInfo(mac, clean_name(org), False, block if org else "")
