"""Real IEEE OUIs of the vendors simsite devices play, and deterministic MACs under them.

Every OUI below was checked against the IEEE registry as shipped by ``netaddr`` (the
comment gives the registered organisation), so MAC-vendor lookups in the appliance see the
vendor a real device of that kind would show (tests/test_simsite.py re-checks them).
"""

from __future__ import annotations

import hashlib

#: vendor key -> OUI (first three octets, lower-case).
VENDOR_OUIS: dict[str, str] = {
    "apc": "00:c0:b7",  # AMERICAN POWER CONVERSION CORP
    "apple": "70:3e:ac",  # Apple, Inc.
    "aruba": "00:0b:86",  # Aruba, a Hewlett Packard Enterprise Company
    "axis": "ac:cc:8e",  # Axis Communications AB
    "brother": "30:05:5c",  # Brother industries, LTD.
    "cisco": "00:26:0b",  # Cisco Systems, Inc
    "cyberpower": "00:0c:15",  # CyberPower Systems, Inc.
    "dell": "f8:bc:12",  # Dell Inc.
    "draytek": "00:1d:aa",  # DrayTek Corp.
    "eaton": "00:20:85",  # Eaton Corporation
    "epson": "64:eb:8c",  # Seiko Epson Corporation
    "hp": "a0:d3:c1",  # Hewlett Packard
    "hpe": "94:18:82",  # Hewlett Packard Enterprise
    "konica": "00:20:6b",  # KONICA MINOLTA HOLDINGS, INC.
    "netgate": "00:08:a2",  # ADI Engineering, Inc. (Netgate's former name; pfSense boxes)
    "netgear": "a0:40:a0",  # NETGEAR
    "ricoh": "00:26:73",  # RICOH COMPANY,LTD.
    "supermicro": "0c:c4:7a",  # Super Micro Computer, Inc.
    "synology": "00:11:32",  # Synology Incorporated
    "tplink": "50:c7:bf",  # TP-LINK TECHNOLOGIES CO.,LTD.
    "ubiquiti": "24:5a:4c",  # Ubiquiti Inc
    "vmware": "00:50:56",  # VMware, Inc.
}

#: Prefix for devices of unknown vendor: locally administered, unicast (bit 1 set, bit 0 clear).
LOCAL_OUI = "02:5e:00"


def mac_for(vendor_key: str, seed: str) -> str:
    """A stable MAC under the vendor's OUI; the NIC-specific half is derived from ``seed``.

    Deterministic so that recordings, fixtures and expectations can name the same MAC on
    every run.
    """
    oui = VENDOR_OUIS.get(vendor_key, LOCAL_OUI)
    tail = hashlib.sha256(seed.encode()).hexdigest()[:6]
    return f"{oui}:{tail[0:2]}:{tail[2:4]}:{tail[4:6]}"
