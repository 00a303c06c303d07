"""The bodies of the status pages (the layout is in web.render)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from web.data import KINDS, RTT_METRIC, SEVERITIES
from web.render import (
    ago,
    badge,
    fmt_value,
    form,
    h,
    icon,
    kind_label,
    kv_table,
    severity_badge,
    sort_link,
    state_badge,
    table,
    url,
    when,
)

UPLINK_TEXT = {
    "connected": ("Connected to your IT provider", "ok"),
    "buffering": ("Not connected: keeping data until the link is back", "warn"),
    "failing": ("Connection to your IT provider is failing", "bad"),
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


def site_health(ov: Mapping[str, Any], status: Mapping[str, Any]) -> tuple[str, str]:
    """(level, headline): the five-second answer at the top of the overview."""
    alerts = ov["alerts_open"]
    down = ov["devices"]["by_state"].get("down", 0)
    if status.get("fault"):
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
    state = str(status.get("uplink.state", "unconfigured"))
    backlog = status.get("uplink.backlog")
    if backlog is None:
        backlog = ov["outbox"]["priority"] + ov["outbox"]["bulk"]
    text, tone = UPLINK_TEXT.get(state, (state, "muted"))
    return {"state": state, "backlog": int(backlog), "text": text, "tone": tone}


def panel_html(status: Mapping[str, Any]) -> str:
    panel = status.get("panel")
    if not isinstance(panel, Mapping):
        return '<p class="muted">Front panel not running.</p>'
    leds = panel.get("leds", {})
    items = "".join(
        f'<li><span class="led led-{h(name)} p-{h(leds.get(name, "off"))}" aria-hidden="true">'
        f"</span>{h(name.capitalize())}: {h(LED_TEXT.get(leds.get(name, 'off'), leds.get(name)))}"
        "</li>"
        for name in ("power", "uplink", "alert")
    )
    return (
        f'<ul class="leds" id="panel-leds">{items}</ul>'
        f'<p class="muted">Panel state: <strong id="panel-state">'
        f"{h(str(panel.get('state', '')).replace('_', ' '))}</strong></p>"
    )


def _claim_notice(status: Mapping[str, Any]) -> str:
    """While unclaimed, the code the MSP types in to claim the box (provisioning shows it here
    and on the label on purpose: it is a one-time pairing code, home only keeps its hash)."""
    if status.get("provisioning.state") != "unclaimed":
        return ""
    code = status.get("provisioning.claim_code") or ""
    return (
        '<section class="notice" id="claim">Not yet set up by your IT provider. '
        f'Give them this claim code: <strong class="mono">{h(code)}</strong></section>'
    )


def overview(ov: Mapping[str, Any], status: Mapping[str, Any], now: float) -> str:
    level, headline = site_health(ov, status)
    up = uplink_view(status, ov)
    devs = ov["devices"]
    alerts = ov["alerts_open"]
    alert_items = "".join(
        f'<li><a href="/alerts">{severity_badge(s)}</a> <strong>{alerts.get(s, 0)}</strong></li>'
        for s in SEVERITIES[:4]
    )
    kinds = "".join(
        f'<li><a href="{h(url("/devices", q=k))}">{icon(k)}<span>{h(kind_label(k))}</span>'
        f"<strong>{devs['by_kind'][k]}</strong></a></li>"
        for k in KINDS
        if devs["by_kind"].get(k)
    )
    down_rows = [
        [
            f'{icon(d["kind"])} <a href="/devices/{int(d["id"])}">{h(d["name"] or d["ip"])}</a>',
            h(d["ip"]),
        ]
        for d in ov["down"]
    ]
    events = [
        [
            when(e["ts"], now),
            severity_badge(e["severity"]),
            h(e["device_name"] or e["device_ip"] or ""),
            h(e["message"] or e["kind"]),
        ]
        for e in ov["recent_events"]
    ]
    return (
        f'<section class="hero hero-{h(level)}" id="health" data-level="{h(level)}">'
        f"<h1>{h(headline)}</h1>"
        f'<p class="uplink tone-{h(up["tone"])}" id="uplink-state" data-state="{h(up["state"])}">'
        f"{h(up['text'])}"
        + (f" · {up['backlog']} records waiting to send" if up["backlog"] else "")
        + "</p></section>"
        + _claim_notice(status)
        + '<section class="cards">'
        f'<a class="card" href="/devices"><h2>Devices</h2><p class="big" id="devices-total">'
        f"{devs['total']}</p><p>{badge(str(devs['by_state'].get('up', 0)) + ' up', 'ok')} "
        f"{badge(str(devs['by_state'].get('down', 0)) + ' down', 'bad')} "
        f"{badge(str(devs['by_state'].get('unknown', 0)) + ' not yet checked', 'muted')}</p></a>"
        f'<div class="card"><h2>Open alerts</h2><ul class="sev" id="alert-counts">{alert_items}'
        "</ul></div>"
        f'<div class="card"><h2>MSP uplink</h2><p class="big tone-{h(up["tone"])}">'
        f'{h(up["state"].capitalize())}</p><p>Backlog: <strong id="backlog">{up["backlog"]}'
        "</strong> records</p></div>"
        f'<div class="card"><h2>Front panel</h2>{panel_html(status)}</div>'
        "</section>"
        f'<section><h2>Devices by type</h2><ul class="kinds">{kinds or "<li>None yet</li>"}'
        "</ul></section>"
        + (
            f"<section><h2>Down now</h2>{table(['Device', 'Address'], down_rows)}</section>"
            if down_rows
            else ""
        )
        + f"<section><h2>Latest events</h2>{table(['When', 'Severity', 'Device', 'What'], events)}"
        '<p><a href="/alerts">All alerts and events →</a></p></section>'
    )


def device_list(rows: list[dict[str, Any]], query: str, sort: str, now: float) -> str:
    headers = [
        sort_link("Type", "kind", sort, query),
        sort_link("Name", "name", sort, query),
        sort_link("Address", "ip", sort, query),
        '<span class="hide-sm">MAC</span>',
        '<span class="hide-sm">Vendor</span>',
        sort_link("State", "state", sort, query),
        sort_link("Latency", "rtt", sort, query),
        "Alerts",
        sort_link("Last seen", "last_seen", sort, query),
    ]
    body = []
    for d in rows:
        body.append(
            [
                f'{icon(d["kind"])}<span class="hide-sm"> {h(kind_label(d["kind"]))}</span>',
                f'<a href="/devices/{int(d["id"])}" class="dev-name">'
                f"{h(d['name'] or _unnamed(d))}</a>",
                h(d["ip"]),
                f'<span class="hide-sm mono">{h(d["mac"])}</span>',
                f'<span class="hide-sm">{h(d["vendor"])}</span>',
                f'<span class="state" data-state="{h(d["state"])}">{state_badge(d["state"])}'
                "</span>",
                h(fmt_value(d["rtt"], "ms")) if d["rtt"] is not None else "-",
                (severity_badge(SEVERITIES[d["worst_alert"]]) + f" {d['open_alerts']}")
                if d["open_alerts"]
                else "",
                h(ago(d["last_seen"], now)),
            ]
        )
    plural = "s" if len(rows) != 1 else ""
    summary = f'<p class="muted" id="device-count">{len(rows)} device{plural}'
    summary += (f" matching “{h(query)}”" if query else "") + "</p>"
    return summary + table(headers, body, cls="devices")


def _unnamed(d: Mapping[str, Any]) -> str:
    """What to call a device that announced no name: its vendor, else its address."""
    return f"({d['vendor']} device)" if d.get("vendor") else f"({d.get('ip') or 'no name'})"


def device_search(query: str, sort: str) -> str:
    return (
        '<form class="search" method="get" action="/devices" role="search">'
        f'<input type="search" name="q" value="{h(query)}" placeholder="Search name, address, '
        'MAC, vendor, type" aria-label="Search devices">'
        f'<input type="hidden" name="sort" value="{h(sort)}"><button type="submit">Search</button>'
        "</form>"
    )


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


def _grouped_latest(latest: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """{group: {instance: {metric_suffix: (value, unit)}}} for the tables of the detail page."""
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for row in latest:
        if row["metric"] == RTT_METRIC:
            continue  # shown in the heading and the latency chart
        prefix, title = next((p, t) for p, t in _GROUPS if row["metric"].startswith(p))
        inst = row["instance"] or "Device"
        suffix = row["metric"][len(prefix) :]
        groups.setdefault(title, {}).setdefault(inst, {})[suffix] = row
    return groups


def _evidence(attrs: Mapping[str, Any]) -> str:
    """Discovery's classification evidence: {source, kind, weight, why} per item."""
    evidence = attrs.get("evidence")
    if not evidence:
        return '<p class="muted">No classification evidence recorded.</p>'
    rows = []
    items = evidence.items() if isinstance(evidence, Mapping) else enumerate(evidence)
    for key, item in items:
        if isinstance(item, Mapping):
            source = item.get("source", key if isinstance(key, str) else "")
            fact = item.get("why") or item.get("fact") or item.get("value") or ""
            weight = item.get("weight")
            rows.append(
                [h(source), h(fact), h(kind_label(str(item.get("kind") or ""))),
                 h(f"{weight:g}" if isinstance(weight, int | float) else (weight or ""))]
            )  # fmt: skip
        else:
            rows.append([h(key if isinstance(key, str) else ""), h(item), "", ""])
    confidence = attrs.get("confidence")
    note = ""
    if isinstance(confidence, int | float):
        note = f'<p class="muted">Confidence {confidence:.0%}</p>'
    return table(["Source", "Evidence", "Suggests", "Weight"], rows, cls="evidence") + note


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
    return out


def _services(attrs: Mapping[str, Any], checks: list[dict[str, Any]]) -> str:
    services = attrs.get("mdns") or attrs.get("services") or []
    rows = []
    for svc in services if isinstance(services, list) else []:
        if isinstance(svc, Mapping):
            rows.append(
                [h(svc.get("type") or svc.get("service") or ""), h(svc.get("name") or ""),
                 h(svc.get("port") or ""), "announced (mDNS)"]
            )  # fmt: skip
        else:
            rows.append([h(svc), "", "", ""])
    for check in checks:
        ok = badge("OK", "ok") if check["ok"] else badge("Failing", "bad")
        detail = f" {h(check['error'])}" if check.get("error") else ""
        rows.append([h(check["check_name"]), "", "", ok + detail])
    return table(["Service", "Name", "Port", "State"], rows)


def device_detail(dev: Mapping[str, Any], now: float, admin_csrf: str) -> str:
    attrs = dev["attrs"] if isinstance(dev["attrs"], Mapping) else {}
    identity = {
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
    snmp = _snmp_facts(attrs, dev.get("snmp") or {})
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
    groups = _grouped_latest(dev["latest"])
    sections = []
    for title in _GROUP_ORDER:
        if title not in groups:
            continue
        instances = groups[title]
        columns = sorted({m for values in instances.values() for m in values})
        rows = [
            [h(inst)]
            + [
                h(fmt_value(vals[c]["value"], vals[c]["unit"])) if c in vals else ""
                for c in columns
            ]
            for inst, vals in instances.items()
        ]
        sections.append(
            f"<section><h2>{h(title)}</h2>"
            f"{table(['', *(h(column_title(c)) for c in columns)], rows)}</section>"
        )
    alert_rows = [
        [
            severity_badge(a["severity"]),
            h(a["message"] or a["rule"]),
            "open" if a["state"] == "open" else "resolved",
            when(a["opened_ts"], now),
        ]
        for a in dev["alerts"]
    ]
    event_rows = [
        [when(e["ts"], now), severity_badge(e["severity"]), h(e["message"] or e["kind"])]
        for e in dev["events"]
    ]
    did = int(dev["id"])
    charts = "".join(
        f'<figure><figcaption>{label}, {rng}</figcaption><img alt="{label} '
        f'over {rng}" src="/devices/{did}/chart/{metric}.svg?range={rng}" width="720" '
        'height="220"></figure>'
        for metric, label in (("latency", "Latency"), ("traffic", "Traffic"))
        for rng in ("24h", "7d")
    )
    return (
        f'<section class="dev-head">{icon(dev["kind"])}<h1 id="device-name">'
        f"{h(dev['name'] or dev['ip'] or '(no name)')}</h1>"
        f'<span class="state" data-state="{h(dev["state"])}">{state_badge(dev["state"])}</span>'
        + (
            f' <span class="muted">{h(fmt_value(dev["rtt"], "ms"))}</span>'
            if dev["rtt"] is not None
            else ""
        )
        + "</section>"
        '<section class="cols">'
        f"<div><h2>Identity</h2>{kv_table(identity)}</div>"
        f"<div><h2>Why we think it is a {h(kind_label(dev['kind']).lower())}</h2>"
        f"{_evidence(attrs)}</div></section>"
        + (f"<section><h2>SNMP</h2>{kv_table(snmp)}</section>" if snmp else "")
        + f"<section><h2>Services</h2>{_services(attrs, dev.get('checks', []))}</section>"
        + "".join(sections)
        + f'<section><h2>History</h2><div class="charts">{charts}</div></section>'
        f"<section><h2>Alerts</h2>{table(['Severity', 'What', 'State', 'Opened'], alert_rows)}"
        "</section>"
        f"<section><h2>Events</h2>{table(['When', 'Severity', 'What'], event_rows)}</section>"
    )


def alerts_page(
    open_alerts: list[dict[str, Any]],
    resolved: list[dict[str, Any]],
    events: list[dict[str, Any]],
    now: float,
    csrf: str,
) -> str:
    def device_cell(a: Mapping[str, Any]) -> str:
        if a["device_id"] is None:
            return '<span class="muted">appliance</span>'
        return (
            f'<a href="/devices/{int(a["device_id"])}">'
            f"{h(a['device_name'] or a['device_ip'] or 'device')}</a>"
        )

    def ack_cell(a: Mapping[str, Any]) -> str:
        if a["acked"]:
            return badge("Acknowledged", "muted")
        if csrf:
            return form(f"/alerts/{int(a['id'])}/ack", csrf, "Acknowledge")
        return '<a href="/login?next=/alerts" class="muted">log in to acknowledge</a>'

    open_rows = [
        [
            severity_badge(a["severity"]),
            device_cell(a),
            h(a["message"] or a["rule"]),
            when(a["opened_ts"], now),
            ack_cell(a),
        ]
        for a in open_alerts
    ]
    resolved_rows = [
        [
            severity_badge(a["severity"]),
            device_cell(a),
            h(a["message"] or a["rule"]),
            when(a["opened_ts"], now),
            when(a["resolved_ts"], now),
        ]
        for a in resolved
    ]
    event_rows = [
        [
            when(e["ts"], now),
            severity_badge(e["severity"]),
            device_cell(e),
            f'<span class="mono">{h(e["kind"])}</span>',
            h(e["message"]),
        ]
        for e in events
    ]
    return (
        f'<section><h1>Open alerts <span class="count" id="open-count">{len(open_alerts)}</span>'
        f"</h1>{table(['Severity', 'Device', 'What', 'Since', ''], open_rows, cls='alerts')}"
        "</section>"
        f"<section><h2>Recently resolved</h2>"
        f"{table(['Severity', 'Device', 'What', 'Opened', 'Resolved'], resolved_rows)}</section>"
        f"<section><h2>Timeline</h2>"
        f"{table(['When', 'Severity', 'Device', 'Event', 'Details'], event_rows, cls='events')}"
        "</section>"
    )


def network_page(
    net: Mapping[str, Any], appliance: Mapping[str, Any], status: Mapping[str, Any], csrf: str
) -> str:
    addr_rows = [[h(a["ifname"]), h(a["address"]), h(a.get("mac", ""))] for a in net["addresses"]]
    subnet_rows = [[h(s["subnet"]), h(s["devices"])] for s in net["subnets"]]
    actions = ""
    if csrf:
        actions = (
            '<section><h2>Actions</h2><div class="actions">'
            + form("/actions/rediscover", csrf, "Rediscover now")
            + form("/actions/identify", csrf, "Identify this box (blink LEDs)")
            + "</div></section>"
        )
    return (
        '<section class="cols">'
        f"<div><h2>This appliance</h2>{kv_table(appliance)}</div>"
        f"<div><h2>Front panel</h2>{panel_html(status)}</div></section>"
        '<section class="cols">'
        f"<div><h2>Addresses</h2>{table(['Interface', 'Address', 'MAC'], addr_rows)}</div>"
        "<div><h2>Gateway and DNS</h2>"
        + kv_table(
            {
                "Default gateway": net["gateway"] or "none",
                "DNS servers": ", ".join(net["dns"]) or "none",
                "Search domain": net["search"] or "",
            }
        )
        + "</div></section>"
        f"<section><h2>Monitored subnets</h2>{table(['Subnet', 'Devices'], subnet_rows)}"
        "</section>" + actions
    )


def message_page(title: str, text: str) -> str:
    return f'<section class="narrow"><h1>{h(title)}</h1><p>{h(text)}</p></section>'


def login_page(csrf: str, error: str, next_url: str) -> str:
    err = f'<p class="error" role="alert">{h(error)}</p>' if error else ""
    return (
        '<section class="narrow"><h1>Admin login</h1>'
        "<p>Acknowledging alerts and other changes need the admin password.</p>"
        f'{err}<form method="post" action="/login" class="stack">'
        f'<input type="hidden" name="csrf" value="{h(csrf)}">'
        f'<input type="hidden" name="next" value="{h(next_url)}">'
        '<label>Password <input type="password" name="password" autocomplete="current-password"'
        " required autofocus></label>"
        '<button type="submit">Log in</button></form></section>'
    )


def setup_page(csrf: str, error: str) -> str:
    err = f'<p class="error" role="alert">{h(error)}</p>' if error else ""
    return (
        '<section class="narrow"><h1>Set the admin password</h1>'
        "<p>This appliance has no admin password yet. Choose one now (at least 10 "
        "characters); it is needed to acknowledge alerts and change settings.</p>"
        f'{err}<form method="post" action="/setup" class="stack">'
        f'<input type="hidden" name="csrf" value="{h(csrf)}">'
        '<label>New password <input type="password" name="password" autocomplete="new-password"'
        " required minlength=10></label>"
        '<label>Repeat it <input type="password" name="confirm" autocomplete="new-password"'
        " required minlength=10></label>"
        '<button type="submit">Set password</button></form></section>'
    )


def account_page(csrf: str, error: str, done: bool, provisioned: bool) -> str:
    if provisioned:
        return message_page(
            "Admin password",
            "This password is set by your IT provider's provisioning; ask them to change it.",
        )
    err = f'<p class="error" role="alert">{h(error)}</p>' if error else ""
    ok = '<p class="ok" role="status">Password changed.</p>' if done else ""
    return (
        '<section class="narrow"><h1>Change the admin password</h1>'
        "<p>Other admin sessions are logged out when the password changes.</p>"
        f'{err}{ok}<form method="post" action="/account" class="stack">'
        f'<input type="hidden" name="csrf" value="{h(csrf)}">'
        '<label>Current password <input type="password" name="current" '
        'autocomplete="current-password" required></label>'
        '<label>New password <input type="password" name="password" autocomplete="new-password"'
        " required minlength=10></label>"
        '<label>Repeat it <input type="password" name="confirm" autocomplete="new-password"'
        " required minlength=10></label>"
        '<button type="submit">Change password</button></form></section>'
    )
