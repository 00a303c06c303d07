"""What the status pages show, ready for their templates (web/templates/, see web.render).

Each ``*_context`` function turns the read model (web.data) into the names one template uses;
the decisions (what the headline says, which readings group under which heading, how a
classification's evidence reads) are made here in Python, the markup is in the templates.
Values stay plain text: the templates escape them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.status import StatusKey
from web.data import RTT_METRIC
from web.render import ago, fmt_value, kind_label, local_short

UPLINK_TEXT = {
    "connected": ("Connected to your IT provider", "ok"),
    # An outage the box rides out is amber; red is for a box that cannot send although home
    # can be reached (refused, certificate, clock): a technician must act.
    "buffering": ("Offline: keeping data until the link to your IT provider is back", "warn"),
    "failing": (
        "Cannot send to your IT provider (refused or certificate not trusted): "
        "a technician is needed",
        "bad",
    ),
    "unconfigured": ("No IT provider connection configured", "muted"),
}
LED_TEXT = {
    "off": "off",
    "on": "on",
    "slow_pulse": "slow pulse",
    "blink": "blinking",
    "fast_blink": "fast blink",
    "flash": "flashing",
}
PANEL_LEDS = ("power", "uplink", "alert")


def site_health(ov: Mapping[str, Any], status: Mapping[str, Any]) -> tuple[str, str]:
    """(level, headline): the five-second answer at the top of the overview."""
    alerts = ov["alerts_open"]
    down = ov["devices"]["by_state"].get("down", 0)
    if status.get(StatusKey.FAULT):
        return "critical", f"Appliance fault: {status['fault']}"
    if alerts.get("critical"):
        n = alerts["critical"]
        return "critical", f"{n} critical alert{'s' if n != 1 else ''} need attention"
    problems = []
    if down:
        problems.append(f"{down} device{'s' if down != 1 else ''} down")
    major_minor = alerts.get("major", 0) + alerts.get("minor", 0)
    if major_minor:
        problems.append(f"{major_minor} open alert{'s' if major_minor != 1 else ''}")
    if problems:
        headline = "Attention: " + ", ".join(problems)
        if major_minor and not ov.get("alerts_unacked", 1):
            headline += " (acknowledged, being handled)"
        return "degraded", headline
    if ov["devices"]["total"] == 0:
        return "ok", "Looking for devices on the network"
    return "ok", "Network healthy: all monitored devices are answering"


def uplink_view(status: Mapping[str, Any], ov: Mapping[str, Any]) -> dict[str, Any]:
    """{state, backlog (records), text, tone}: also the ``uplink`` object of /api/v1/status."""
    state = str(status.get(StatusKey.UPLINK_STATE, "unconfigured"))
    backlog = status.get(StatusKey.UPLINK_BACKLOG)
    if backlog is None:
        backlog = ov["outbox"]["priority"] + ov["outbox"]["bulk"]
    text, tone = UPLINK_TEXT.get(state, (state, "muted"))
    return {"state": state, "backlog": int(backlog), "text": text, "tone": tone}


@dataclass(frozen=True)
class Led:
    name: str  # "power" | "uplink" | "alert" (CSS class led-<name>)
    pattern: str  # the panel's pattern name, e.g. "slow_pulse" (CSS class p-<pattern>)
    label: str  # "Power"
    text: str  # "slow pulse"


@dataclass(frozen=True)
class PanelView:
    leds: tuple[Led, ...]
    state: str  # the panel's state machine, e.g. "running ok"


def panel_view(status: Mapping[str, Any]) -> PanelView | None:
    """The front panel as published in the status key ``panel`` (None: not running)."""
    panel = status.get(StatusKey.PANEL)
    if not isinstance(panel, Mapping):
        return None
    leds = panel.get("leds", {})
    shown = []
    for name in PANEL_LEDS:
        pattern = leds.get(name, "off")
        shown.append(Led(name, pattern, name.capitalize(), LED_TEXT.get(pattern, leds.get(name))))
    return PanelView(tuple(shown), str(panel.get("state", "")).replace("_", " "))


def claim_code(status: Mapping[str, Any]) -> str | None:
    """While unclaimed, the code the MSP types in to claim the box (provisioning shows it here
    and on the label on purpose: it is a one-time pairing code, home only keeps its hash)."""
    if status.get(StatusKey.PROVISIONING_STATE) != "unclaimed":
        return None
    return str(status.get(StatusKey.PROVISIONING_CLAIM_CODE) or "")


def overview_context(
    ov: Mapping[str, Any], status: Mapping[str, Any], now: float
) -> dict[str, Any]:
    """overview.html: ``ov`` is web.data.overview's answer, ``status`` the public status."""
    level, headline = site_health(ov, status)
    return {
        "ov": ov,
        "now": now,
        "level": level,
        "headline": headline,
        "up": uplink_view(status, ov),
        "claim_code": claim_code(status),
        "panel": panel_view(status),
    }


def device_list_context(
    rows: list[dict[str, Any]], query: str, sort: str, now: float
) -> dict[str, Any]:
    """devices.html and device_table.html (rows from web.data.devices)."""
    return {"rows": rows, "query": query, "sort": sort, "now": now}


_GROUPS = (
    ("if.", "Interfaces"),
    ("storage.", "Storage"),
    ("disk.", "Disks"),
    ("raid.", "RAID"),
    ("supply.", "Supplies"),
    ("tray.", "Paper trays"),
    ("printer.", "Printer status"),
    ("ups.", "UPS"),
    ("tcp.", "TCP services"),
    ("", "System"),
)
_GROUP_ORDER = [title for _, title in _GROUPS]


# Unit suffixes of metric names; values are shown with their unit, so titles drop them
# (a percentage keeps a mark, so "Used" and "Used %" stay apart).
_UNIT_SUFFIXES = {"_bps": "", "_pct": " %", "_ms": "", "_s": "", "_bytes": "", "_c": "",
                  "_ps": " /s", "_v": ""}  # fmt: skip


def column_title(suffix: str) -> str:
    """'in_bps' -> 'In', 'used_pct' -> 'Used %', 'in_errors_ps' -> 'In errors /s'."""
    mark = ""
    for unit, replacement in _UNIT_SUFFIXES.items():
        if suffix.endswith(unit) and len(suffix) > len(unit):
            suffix, mark = suffix[: -len(unit)], replacement
            break
    text = suffix.replace("_", " ").replace(".", " ").strip() + mark
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class ReadingTable:
    """One heading of a device's latest readings: a row per instance, a column per metric."""

    title: str  # "Interfaces"
    columns: list[str]  # column titles, "In", "Used %"
    rows: list[tuple[str, list[str]]]  # (instance, formatted values; "" where none)


def _grouped_latest(latest: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """{group: {instance: {metric_suffix: row}}} for the tables of the detail page."""
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for row in latest:
        if row["metric"] == RTT_METRIC:
            continue  # shown in the heading and the latency chart
        prefix, title = next((p, t) for p, t in _GROUPS if row["metric"].startswith(p))
        inst = row["instance"] or "Device"
        suffix = row["metric"][len(prefix) :]
        groups.setdefault(title, {}).setdefault(inst, {})[suffix] = row
    return groups


def _reading_tables(latest: list[dict[str, Any]]) -> list[ReadingTable]:
    groups = _grouped_latest(latest)
    tables = []
    for title in _GROUP_ORDER:
        if title not in groups:
            continue
        instances = groups[title]
        columns = sorted({m for values in instances.values() for m in values})
        rows = [
            (
                inst,
                [
                    fmt_value(vals[c]["value"], vals[c]["unit"]) if c in vals else ""
                    for c in columns
                ],
            )
            for inst, vals in instances.items()
        ]
        tables.append(ReadingTable(title, [column_title(c) for c in columns], rows))
    return tables


def _evidence(attrs: Mapping[str, Any]) -> tuple[list[tuple[str, str, str, str]], str]:
    """Discovery's classification evidence ({source, kind, weight, why} per item) as rows of
    (source, evidence, suggests, weight), and the confidence ('' when not recorded)."""
    evidence = attrs.get("evidence")
    if not evidence:
        return [], ""
    rows = []
    items = evidence.items() if isinstance(evidence, Mapping) else enumerate(evidence)
    for key, item in items:
        if isinstance(item, Mapping):
            source = item.get("source", key if isinstance(key, str) else "")
            fact = item.get("why") or item.get("fact") or item.get("value") or ""
            weight = item.get("weight")
            rows.append(
                (_text(source), _text(fact), kind_label(str(item.get("kind") or "")),
                 f"{weight:g}" if isinstance(weight, int | float) else _text(weight or ""))
            )  # fmt: skip
        else:
            rows.append((key if isinstance(key, str) else "", _text(item), "", ""))
    confidence = attrs.get("confidence")
    return rows, f"{confidence:.0%}" if isinstance(confidence, int | float) else ""


def _text(value: Any) -> str:
    return "" if value is None else str(value)


_SNMP_LABELS = (
    ("sysName", "Name"), ("sysDescr", "Description"), ("sysObjectID", "Object ID"),
    ("vendor", "Vendor"), ("platform", "Platform"), ("model", "Model"), ("serial", "Serial"),
    ("version", "Version"), ("location", "Location"), ("contact", "Contact"),
    ("uptime_s", "Uptime"), ("sys_descr", "Description"), ("sys_object_id", "Object ID"),
)  # fmt: skip


def _snmp_facts(attrs: Mapping[str, Any], table_row: Mapping[str, Any]) -> dict[str, Any]:
    raw = attrs.get("snmp")
    snmp: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    merged = {**table_row, **snmp}
    out: dict[str, Any] = {}
    for key, label in _SNMP_LABELS:
        value = merged.get(key)
        if value in (None, "") or label in out:
            continue
        if key == "uptime_s" and isinstance(value, int | float):
            value = f"{int(value // 86400)} d {int(value % 86400 // 3600)} h"
        out[label] = value
    # Which source gave each identity field (vendor MIB object, ENTITY-MIB chassis, Printer-
    # or UPS-MIB, sysDescr pattern): discovery's snmp_identity records it as evidence.
    sources = snmp.get("sources")
    if isinstance(sources, Mapping):
        for key, label in (("model", "Model"), ("serial", "Serial"), ("version", "Version")):
            if label in out and isinstance(sources.get(key), str) and sources[key]:
                out[f"{label} from"] = sources[key]
    return out


@dataclass(frozen=True)
class ServiceRow:
    service: str  # mDNS service type or the check's name
    name: str
    port: str
    ok: bool | None  # a check's result; None for an announced service
    note: str  # "announced (mDNS)", a failing check's error, or ""


def _services(attrs: Mapping[str, Any], checks: list[dict[str, Any]]) -> list[ServiceRow]:
    services = attrs.get("mdns") or attrs.get("services") or []
    rows = []
    for svc in services if isinstance(services, list) else []:
        if isinstance(svc, Mapping):
            rows.append(
                ServiceRow(_text(svc.get("type") or svc.get("service") or ""),
                           _text(svc.get("name") or ""), _text(svc.get("port") or ""),
                           None, "announced (mDNS)")
            )  # fmt: skip
        else:
            rows.append(ServiceRow(_text(svc), "", "", None, ""))
    for check in checks:
        error = _text(check["error"]) if check.get("error") else ""
        if not check["ok"] and check.get("answered"):
            error = f"{error} (the host answered: it is there)".strip()
        rows.append(ServiceRow(_text(check["check_name"]), "", "", bool(check["ok"]), error))
    return rows


_METHOD_LABELS = {"arp": "ARP", "icmp": "ICMP", "tcp": "TCP", "snmp": "SNMP", "mdns": "mDNS"}


def _methods(methods: Any) -> str:
    names = [_METHOD_LABELS.get(str(m), str(m)) for m in methods or []]
    return ", ".join(names)


def _liveness_rows(dev: Mapping[str, Any], now: float) -> dict[str, Any]:
    """ "Answers by", "No answer by", "Down alerts" rows for the identity table."""
    out: dict[str, Any] = {}
    live = dev.get("liveness") or {}
    if live.get("answered_by"):
        out["Answers by"] = _methods(live["answered_by"])
    elif live:
        since = live.get("last_answer_ts")
        out["No answer by"] = _methods(live.get("silent")) + (
            f" since {local_short(since)} ({ago(since, now)})" if since else " (never answered)"
        )
    if "watched" in dev:
        configured = bool(dev.get("watch_configured"))
        if dev["watched"]:
            out["Down alerts"] = "yes: an alert when it stops answering" + (
                " (configured)" if configured else ""
            )
        elif configured:
            out["Down alerts"] = "no: not watched (configured); left / returned events"
        else:
            out["Down alerts"] = "no: comes and goes (left / returned events)"
    return out


def _identity(dev: Mapping[str, Any], attrs: Mapping[str, Any], now: float) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "Type": kind_label(dev["kind"]),
        "IP address": dev["ip"] or "",
        "MAC address": dev["mac"] or "",
        "Vendor": dev["vendor"] or "",
        "Found by": dev["source"] or "",
        "First seen": ago(dev["first_seen"], now),
        "Last seen": ago(dev["last_seen"], now),
    }
    for key in ("model", "serial", "os", "firmware", "hostname", "description", "location"):
        if attrs.get(key):
            identity[key.capitalize()] = attrs[key]
    names = attrs.get("names")
    if isinstance(names, Mapping) and names:
        identity["Names seen"] = ", ".join(
            f"{', '.join(map(str, v)) if isinstance(v, list) else v} ({k.replace('_', ' ')})"
            for k, v in names.items()
            if v
        )
    ips = attrs.get("ips")
    if isinstance(ips, list) and len(ips) > 1:
        identity["Other addresses"] = ", ".join(str(ip) for ip in ips if ip != dev["ip"])
    return identity


def device_context(dev: Mapping[str, Any], now: float) -> dict[str, Any]:
    """device.html (``dev`` from web.data.device)."""
    attrs = dev["attrs"] if isinstance(dev["attrs"], Mapping) else {}
    evidence, confidence = _evidence(attrs)
    return {
        "dev": dev,
        "now": now,
        "identity": {**_identity(dev, attrs, now), **_liveness_rows(dev, now)},
        "snmp": _snmp_facts(attrs, dev.get("snmp") or {}),
        "evidence": evidence,
        "confidence": confidence,
        "services": _services(attrs, dev.get("checks", [])),
        "groups": _reading_tables(dev["latest"]),
    }


def alerts_context(
    open_alerts: list[dict[str, Any]],
    resolved: list[dict[str, Any]],
    events: list[dict[str, Any]],
    now: float,
    csrf: str,
) -> dict[str, Any]:
    """alerts.html; ``csrf`` is the admin session's token ('' shows 'log in to acknowledge')."""
    return {
        "open_alerts": open_alerts,
        "resolved": resolved,
        "events": events,
        "now": now,
        "csrf": csrf,
    }


def network_context(
    net: Mapping[str, Any], appliance: Mapping[str, Any], status: Mapping[str, Any], csrf: str
) -> dict[str, Any]:
    """network.html; the actions show only with an admin session's ``csrf``. ``notes``: what
    polling cannot do here and how to fix it (status keys polling.icmp, polling.arp)."""
    keys = (StatusKey.POLLING_ICMP, StatusKey.POLLING_ARP)
    notes = [str(status[k]) for k in keys if status.get(k)]
    return {
        "net": net,
        "appliance": appliance,
        "panel": panel_view(status),
        "csrf": csrf,
        "notes": notes,
    }


def message_context(heading: str, text: str) -> dict[str, Any]:
    """message.html: a heading and one sentence (not found, too many attempts ...)."""
    return {"heading": heading, "text": text}
