"""Alerts in the client's words: no protocol names, no table names, no identifiers."""

from __future__ import annotations

# rule -> sentence about the device; {device} and {thing} (the volume, supply ...) filled in.
_TITLES = {
    "device.down": "{device} stopped answering",
    "volume.full": "{device}: the disk {thing} was filling up",
    "supply.low": "{device}: {thing} was running low",
    "supply.empty": "{device}: {thing} ran out",
    "printer.jammed": "{device}: paper jam",
    "printer.door_open": "{device}: a door was left open",
    "ups.on_battery": "{device} ran on battery (a power cut)",
    "ups.battery_replace": "{device}: the battery needs replacing",
    "ups.selftest": "{device}: the battery failed its self-test",
    "disk.failed": "{device}: a disk failed",
    "raid.degraded": "{device}: the disks lost their safety copy",
    "tcp.down": "{device}: a service stopped answering",
    "if.down": "{device}: a network connection went down",
    "if.errors": "{device}: a network connection had transmission errors",
    "icmp.loss": "{device} answered unreliably",
    "icmp.latency": "{device} was slow to answer",
    "device.rebooted": "{device} restarted",
    "ip.conflict": "two devices tried to use the same network address",
    "device.new": "a new device joined the network",
}

KIND_WORDS = {
    "router": "internet gateway",
    "switch": "network switch",
    "ap": "Wi-Fi access point",
    "server": "server",
    "nas": "file storage (NAS)",
    "printer": "printer",
    "ups": "battery backup (UPS)",
    "camera": "camera",
    "workstation": "computer",
    "phone": "phone",
    "media": "media device",
    "iot": "smart device",
    "unknown": "unidentified device",
}

# Words a business owner should never have to read outside the technical appendix.
ENGINEERING_WORDS = (
    "SNMP", "ICMP", "OID", "ifIndex", "lane", "MIB", "sysUpTime", "hrStorage", "TCP",
    "ARP", "mDNS", "RTT", "jitter", "poll", "rule", "severity", "device_id", "MAC",
    "outbox", "seq",
)  # fmt: skip


def thing_of(rule: str, key: str) -> str:
    """The volume, supply, port ... an alert is about, from its key (rule:device:thing)."""
    parts = key.split(":", 2)
    if len(parts) < 3 or not parts[2]:
        return "a volume" if rule == "volume.full" else "a supply"
    thing = parts[2]
    if rule == "volume.full":
        return f'"{thing}"'
    return thing.replace("_", " ")


def title(rule: str, key: str, device: str) -> str:
    template = _TITLES.get(rule, "{device}: " + rule.replace(".", " ").replace("_", " "))
    text = template.format(device=device, thing=thing_of(rule, key))
    return text[0].upper() + text[1:]


def kind_word(kind: str) -> str:
    return KIND_WORDS.get(kind, "device")


def duration(seconds: float) -> str:
    """ "2 h 5 min", "20 min", "3 days 4 h"."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


def pct(value: float | None) -> str:
    """Availability as people read it: 99.87 % (two decimals only when it is that close)."""
    if value is None:
        return "unknown"
    if value >= 99.0 and value < 100.0:
        return f"{value:.2f} %"
    return f"{value:.1f} %"
