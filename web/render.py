"""HTML building blocks: the page layout and small helpers, every value escaped.

There is no template engine: pages are built from small functions, and every value passes
through :func:`h` (``html.escape`` with quotes), because names, descriptions and host names
come from devices on the network and must never become markup. The page carries no inline
script or style (the Content-Security-Policy forbids both); behaviour lives in /static/app.js.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from web.data import KINDS

NAV = (
    ("overview", "/", "Overview"),
    ("devices", "/devices", "Devices"),
    ("alerts", "/alerts", "Alerts & events"),
    ("network", "/network", "Network"),
)
KIND_LABELS = {
    "router": "Router",
    "switch": "Switch",
    "ap": "Access point",
    "nas": "NAS",
    "printer": "Printer",
    "ups": "UPS",
    "server": "Server",
    "workstation": "Workstation",
    "phone": "Phone",
    "camera": "Camera",
    "media": "Media",
    "iot": "IoT",
    "unknown": "Unknown",
}


def h(value: Any) -> str:
    """Escape any value for HTML text and attribute contexts (None shows as empty)."""
    return "" if value is None else html.escape(str(value), quote=True)


def url(path: str, **params: Any) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(clean) if clean else "")


def icon(kind: str) -> str:
    name = kind if kind in KINDS else "unknown"
    return (
        f'<svg class="icon" aria-hidden="true"><use href="/static/icons.svg#k-{name}"></use></svg>'
    )


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.title() if kind else "Unknown")


def badge(text: str, tone: str) -> str:
    return f'<span class="badge b-{h(tone)}">{h(text)}</span>'


def state_badge(state: str) -> str:
    tone = {"up": "ok", "down": "bad", "unknown": "muted"}.get(state, "muted")
    return badge(state.capitalize(), tone)


def severity_badge(severity: str) -> str:
    return badge(severity.capitalize(), severity)


def ago(ts: float | None, now: float) -> str:
    if not ts:
        return "never"
    delta = max(0.0, now - ts)
    if delta < 60:
        return "just now"
    if delta < 3600:
        return f"{int(delta // 60)} min ago"
    if delta < 86400:
        return f"{int(delta // 3600)} h ago"
    return f"{int(delta // 86400)} d ago"


def when(ts: float | None, now: float) -> str:
    """A <time> with the local date and time, and the age as its title."""
    if not ts:
        return '<span class="muted">never</span>'
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts))
    text = time.strftime("%d %b %H:%M", time.localtime(ts))
    return f'<time datetime="{iso}" title="{h(ago(ts, now))}">{h(text)}</time>'


def fmt_duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{int(seconds // 86400)} d {int(seconds % 86400 // 3600)} h"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min"
    return f"{seconds:.0f} s"


def fmt_value(value: float | None, unit: str) -> str:
    """A reading as a person reads it: '2.3 GiB', '940.0 Mb/s', '3 d 4 h', '42 °C'."""
    if value is None:
        return "-"
    if unit in ("bps", "bit/s"):
        for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"{value / scale:.1f} {prefix}b/s"
        return f"{value:.0f} b/s"
    if unit in ("B", "bytes"):
        for scale, prefix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= scale:
                return f"{value / scale:.1f} {prefix}"
        return f"{value:.0f} B"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "%":
        return f"{value:.0f}%"
    if unit == "s":
        return fmt_duration(value)
    if unit == "1/s":
        return f"{value:g}/s"
    if unit == "0/1":
        return "yes" if value else "no"
    number = f"{value:,.0f}" if abs(value) >= 1e5 else f"{value:g}"
    return f"{number} {unit}".strip()


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    """Headers are trusted HTML (written here); cells must already be escaped by the caller."""
    head = "".join(f"<th>{cell}</th>" for cell in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        return '<p class="empty">Nothing to show.</p>'
    return (
        f'<div class="table-wrap"><table class="{h(cls)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def kv_table(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{h(k)}</th><td>{h(v)}</td></tr>" for k, v in items.items())
    return f'<table class="kv">{rows}</table>' if rows else '<p class="empty">Nothing known.</p>'


@dataclass(frozen=True)
class Chrome:
    """What the layout needs besides the page body."""

    site: str
    version: str
    active: str
    admin: bool
    csrf: str  # the CSRF token for the logout form (empty when not logged in)
    live_url: str  # what app.js refetches on change (empty: the page is not live)
    health: str  # "ok" | "degraded" | "critical" (colours the top bar)


def form(
    action: str, csrf: str, button: str, *, hidden: Mapping[str, Any] | None = None, cls: str = ""
) -> str:
    fields = "".join(
        f'<input type="hidden" name="{h(k)}" value="{h(v)}">' for k, v in (hidden or {}).items()
    )
    return (
        f'<form method="post" action="{h(action)}" class="inline {h(cls)}">'
        f'<input type="hidden" name="csrf" value="{h(csrf)}">{fields}'
        f'<button type="submit">{h(button)}</button></form>'
    )


def layout(title: str, body: str, chrome: Chrome) -> str:
    nav = "".join(
        f'<a href="{path}"{" class=active aria-current=page" if key == chrome.active else ""}>'
        f"{label}</a>"
        for key, path, label in NAV
    )
    if chrome.admin:
        account = '<a href="/account">Password</a> ' + form(
            "/logout", chrome.csrf, "Log out", cls="logout"
        )
    else:
        account = '<a class="login" href="/login">Admin login</a>'
    live = f' data-live="{h(chrome.live_url)}"' if chrome.live_url else ""
    site = h(chrome.site or "Unnamed site")
    return (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{h(title)} · {site} · Outpost</title>"
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/static/app.css">'
        '<script src="/static/app.js" defer></script></head>'
        f'<body class="health-{h(chrome.health)}">'
        '<header class="top"><div class="bar">'
        f'<a class="brand" href="/"><span class="dot"></span>Outpost</a>'
        f'<span class="site">{site}</span>'
        f'<span class="account">{account}</span></div>'
        f'<nav class="tabs">{nav}</nav></header>'
        f'<main id="live"{live}>{body}</main>'
        f"<footer><span>Outpost {h(chrome.version)}</span>"
        '<span id="live-state" class="muted" aria-live="polite"></span></footer>'
        "</body></html>"
    )


def sort_link(label: str, key: str, current: str, query: str) -> str:
    target = f"-{key}" if current == key else key
    arrow = " ▲" if current == key else (" ▼" if current == f"-{key}" else "")
    return f'<a href="{h(url("/devices", q=query, sort=target))}">{h(label)}{arrow}</a>'
