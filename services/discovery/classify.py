"""What kind of device this is, from all the evidence together, with the evidence kept.

Each source (SNMP identity, mDNS services and TXT records, the MAC's vendor, being the
default gateway) votes for a kind with a weight that says how much that source can be
trusted for that conclusion: a device that answers the Printer-MIB *is* a printer (0.9); a
Synology MAC is very likely the NAS (0.6) but could be a Synology router; an Apple MAC says
little (0.2). Votes for the same kind add up (capped at 1.0); the kind with the most weight
wins and every vote is kept so the status page can say why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from core.vocabulary import DEVICE_KINDS, DeviceKind
from services.discovery.mdns import MdnsService
from services.discovery.snmp_identity import SnmpIdentity

Kind = DeviceKind
KINDS: Final[tuple[str, ...]] = DEVICE_KINDS

W_SNMP_RULE: Final = 0.9  # a vendor rule matched sysObjectID / the vendor MIB answered
W_SNMP_DESCR: Final = 0.6  # a word in sysDescr
W_MDNS_STRONG: Final = 0.8  # a service type only that kind announces (_ipp, _axis-video)
W_MDNS_MODEL: Final = 0.7  # Apple _device-info model
W_MDNS_WEAK: Final = 0.3  # a service many kinds announce (_smb, _ssh)
W_GATEWAY: Final = 0.7  # the default route of the appliance points at it
W_OUI: Final = 0.5  # a vendor that makes essentially one kind of device
W_OUI_WEAK: Final = 0.2  # a vendor with several product lines


@dataclass(frozen=True)
class Evidence:
    source: str  # "snmp" | "mdns" | "oui" | "gateway"
    kind: str
    weight: float
    why: str

    def as_attrs(self) -> dict[str, object]:
        return {"source": self.source, "kind": self.kind, "weight": self.weight, "why": self.why}


# mDNS service types -> (kind, weight). Types are compared without ".local.".
_MDNS_TYPES: Final[dict[str, tuple[str, float]]] = {
    "_ipp._tcp": ("printer", W_MDNS_STRONG),
    "_ipps._tcp": ("printer", W_MDNS_STRONG),
    "_printer._tcp": ("printer", W_MDNS_STRONG),
    "_pdl-datastream._tcp": ("printer", W_MDNS_STRONG),
    "_uscan._tcp": ("printer", W_MDNS_WEAK),
    "_scanner._tcp": ("printer", W_MDNS_WEAK),
    "_axis-video._tcp": ("camera", W_MDNS_STRONG),
    "_rtsp._tcp": ("camera", W_MDNS_WEAK),
    "_onvif._tcp": ("camera", W_MDNS_STRONG),
    "_googlecast._tcp": ("media", W_MDNS_STRONG),
    "_airplay._tcp": ("media", W_MDNS_WEAK),
    "_raop._tcp": ("media", W_MDNS_WEAK),
    "_spotify-connect._tcp": ("media", W_MDNS_STRONG),
    "_sonos._tcp": ("media", W_MDNS_STRONG),
    "_roku-rcp._tcp": ("media", W_MDNS_STRONG),
    "_hap._tcp": ("iot", W_MDNS_STRONG),
    "_hap._udp": ("iot", W_MDNS_STRONG),
    "_matter._tcp": ("iot", W_MDNS_STRONG),
    "_matterc._udp": ("iot", W_MDNS_STRONG),
    "_hue._tcp": ("iot", W_MDNS_STRONG),
    "_shelly._tcp": ("iot", W_MDNS_STRONG),
    "_esphomelib._tcp": ("iot", W_MDNS_STRONG),
    "_adisk._tcp": ("nas", W_MDNS_WEAK),
    "_afpovertcp._tcp": ("nas", W_MDNS_WEAK),
    "_smb._tcp": ("nas", W_MDNS_WEAK),
    "_nfs._tcp": ("nas", W_MDNS_WEAK),
    "_workstation._tcp": ("workstation", W_MDNS_WEAK),
    "_rdp._tcp": ("workstation", W_MDNS_WEAK),
    "_companion-link._tcp": ("phone", W_MDNS_WEAK),
    "_apple-mobdev2._tcp": ("phone", W_MDNS_STRONG),
    "_sip._udp": ("phone", W_MDNS_STRONG),
    "_ssh._tcp": ("server", W_MDNS_WEAK),
    "_sftp-ssh._tcp": ("server", W_MDNS_WEAK),
}

# Apple's _device-info "model" TXT value -> kind.
_APPLE_MODELS: Final[tuple[tuple[str, str], ...]] = (
    (r"^(MacBook|iMac|Macmini|MacPro|Mac\d|MacStudio)", "workstation"),
    (r"^(iPhone|iPad|iPod|Watch)", "phone"),
    (r"^(AppleTV|AudioAccessory|HomePod)", "media"),
    (r"^(AirPort|TimeCapsule)", "ap"),
    (r"^(Xserve|RackMac)", "server"),
)

# Words in a TXT "md"/"ty"/"product"/"model" or an instance name -> kind (weak-ish).
_MODEL_WORDS: Final[tuple[tuple[str, str], ...]] = (
    (r"\b(printer|laserjet|officejet|deskjet|mfc-|dcp-|hl-|ecotank|workforce|bizhub)", "printer"),
    (r"\b(chromecast|google tv|shield|bravia|smart tv|roku|fire tv|sonos)", "media"),
    (r"\b(camera|doorbell|nvr)\b", "camera"),
    (r"\b(diskstation|rackstation|qnap|truenas|nas)\b", "nas"),
    (r"\b(nest|hue|tado|ecobee|thermostat|plug|bulb)\b", "iot"),
)

# Vendors (as in the IEEE registry) that make essentially one kind of device.
_OUI_VENDORS: Final[tuple[tuple[str, str, float], ...]] = (
    (r"synology|qnap|buffalo|western digital", "nas", W_OUI),
    (r"american power conversion|cyberpower|eaton|tripp|liebert|vertiv|riello", "ups", W_OUI),
    (
        r"axis communications|axis corporation|hikvision|dahua|hanwha|vivotek|mobotix|reolink",
        "camera",
        W_OUI,
    ),
    (
        r"brother|seiko epson|ricoh|konica|kyocera|lexmark|xerox|canon|sharp|oki data",
        "printer",
        W_OUI,
    ),
    (
        r"netgate|adi engineering|fortinet|sonicwall|watchguard|draytek|routerboard|mikrotik",
        "router",
        W_OUI,
    ),
    (r"polycom|yealink|snom|grandstream|gigaset|mitel|avaya", "phone", W_OUI),
    (r"sonos|roku|amazon technologies|google", "media", W_OUI_WEAK),
    (
        r"espressif|tuya|shelly|allterco|signify|philips lighting|nest labs|ecobee|tp-link smart",
        "iot",
        W_OUI,
    ),
    (r"ubiquiti", "ap", W_OUI_WEAK),
    (r"aruba|ruckus|cambium", "ap", W_OUI_WEAK),
    (r"super micro|supermicro|vmware", "server", W_OUI_WEAK),
    (r"apple", "workstation", W_OUI_WEAK),
    (r"raspberry pi", "iot", W_OUI_WEAK),
)


def _bare(service_type: str) -> str:
    t = service_type.rstrip(".")
    return t[: -len(".local")] if t.endswith(".local") else t


def evidence_from_snmp(identity: SnmpIdentity | None) -> list[Evidence]:
    """Every class hint the SNMP identity carries (vendor row, Printer-MIB, UPS-MIB, bridge
    ports, 802.11 radio, sysDescr words), each with its own weight (identity_sources.py)."""
    if identity is None:
        return []
    if identity.hints:
        return [Evidence("snmp", h.kind, h.weight, h.why) for h in identity.hints]
    if not identity.kind:
        return []
    # An identity stored before hints existed: one vote, as before.
    weight = W_SNMP_RULE if identity.platform else W_SNMP_DESCR
    return [Evidence("snmp", identity.kind, weight, identity.why)]


def evidence_from_mdns(services: Iterable[MdnsService]) -> list[Evidence]:
    out: list[Evidence] = []
    for svc in services:
        bare = _bare(svc.type)
        if bare in _MDNS_TYPES:
            kind, weight = _MDNS_TYPES[bare]
            out.append(Evidence("mdns", kind, weight, f"announces {bare} ({svc.name})"))
        model = svc.txt.get("model", "") if bare == "_device-info._tcp" else ""
        for pattern, kind in _APPLE_MODELS:
            if model and re.search(pattern, model):
                out.append(Evidence("mdns", kind, W_MDNS_MODEL, f"Apple model {model}"))
                break
        for key in ("md", "ty", "product", "usb_mdl"):
            value = svc.txt.get(key, "")
            for pattern, kind in _MODEL_WORDS:
                if value and re.search(pattern, value, re.IGNORECASE):
                    out.append(Evidence("mdns", kind, W_MDNS_WEAK, f"{bare} {key}={value}"))
                    break
    return out


def evidence_from_vendor(vendor: str, local_mac: bool) -> list[Evidence]:
    if local_mac:
        # Phones and laptops randomise their Wi-Fi MAC; virtual machines and containers make
        # theirs up. Recorded so the page can say why there is no vendor; it votes for nothing.
        return [Evidence("oui", "unknown", 0.0, "locally administered MAC (randomised or virtual)")]
    for pattern, kind, weight in _OUI_VENDORS:
        if vendor and re.search(pattern, vendor, re.IGNORECASE):
            return [Evidence("oui", kind, weight, f"MAC vendor {vendor}")]
    return []


def classify(evidence: Sequence[Evidence]) -> tuple[str, float]:
    """The winning kind and its summed weight; ("unknown", 0.0) without evidence."""
    totals: dict[str, float] = {}
    for item in evidence:
        totals[item.kind] = min(1.0, totals.get(item.kind, 0.0) + item.weight)
    if not totals:
        return "unknown", 0.0
    # Ties go to the kind whose strongest single vote is strongest, then to KINDS order.
    best = max(
        totals,
        key=lambda k: (
            totals[k],
            max(e.weight for e in evidence if e.kind == k),
            -KINDS.index(k),
        ),
    )
    return best, round(totals[best], 3)


def gather(
    *,
    snmp: SnmpIdentity | None,
    mdns: Iterable[MdnsService],
    vendor: str,
    local_mac: bool,
    is_gateway: bool,
) -> list[Evidence]:
    evidence = evidence_from_snmp(snmp) + evidence_from_mdns(mdns)
    evidence += evidence_from_vendor(vendor, local_mac)
    if is_gateway:
        evidence.append(Evidence("gateway", "router", W_GATEWAY, "the LAN's default gateway"))
    return evidence


def mdns_types() -> tuple[str, ...]:
    """The mDNS service types (``"_ipp._tcp.local."``) this classifier has a vote for: mDNS
    browses them directly, not only those a device lists in the type enumeration."""
    return tuple(f"{t}.local." for t in _MDNS_TYPES)
