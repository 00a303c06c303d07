"""The template environment of the status page, and the small formatters its templates use.

Pages are Jinja2 templates (``web/templates/``) rendered on the server through aiohttp-jinja2.
Autoescape is on for every ``.html`` and ``.svg`` template, so every value is escaped unless a
template says otherwise; names, descriptions and host names come from devices on the network
and must never become markup. No template marks a value ``|safe``: markup is written in the
templates and macros only. Undefined names raise (``StrictUndefined``) instead of rendering as
nothing, so a typo in a template is an error in the tests, not a blank cell on a customer's page.

The page carries no inline script or style (the Content-Security-Policy forbids both);
behaviour lives in /static/app.js.

Whitespace: templates are written one element per line for reading, and :class:`JoinLines`
removes each line break with the indentation after it when a template is loaded. The page keeps
the exact markup the hand-built pages had (inline elements are sensitive to stray spaces); a
space that matters is written inside a line.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from jinja2.ext import Extension

from web.data import KINDS, SEVERITIES

TEMPLATES_DIR = Path(__file__).parent / "templates"

NAV = (
    ("overview", "/", "Overview"),
    ("devices", "/devices", "Devices"),
    ("alerts", "/alerts", "Alerts & events"),
    ("network", "/network", "Network"),
    ("map", "/map", "Map"),
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
_LINE_BREAK = re.compile(r"\n[ \t]*")


class JoinLines(Extension):
    """Drop every line break and the indentation after it from a template's source."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return _LINE_BREAK.sub("", source)


def url(path: str, **params: Any) -> str:
    """``path?query`` with the empty parameters left out (escaped by the template)."""
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(clean) if clean else "")


def icon_name(kind: str) -> str:
    """The icon of a device kind in /static/icons.svg (``unknown`` for kinds it has none of)."""
    return kind if kind in KINDS else "unknown"


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.title() if kind else "Unknown")


def unnamed(device: Mapping[str, Any]) -> str:
    """What to call a device that announced no name: its vendor, else its address."""
    if device.get("vendor"):
        return f"({device['vendor']} device)"
    return f"({device.get('ip') or 'no name'})"


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


def local_iso(ts: float) -> str:
    """Local date and time for a ``<time datetime>`` (the appliance's time zone)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts))


def local_short(ts: float) -> str:
    """Local date and time as shown in tables: '30 Nov 06:43'."""
    return time.strftime("%d %b %H:%M", time.localtime(ts))


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


def _blank_none(value: Any) -> Any:
    """What ``{{ x }}`` prints for None: nothing (as the hand-built pages did), not 'None'."""
    return "" if value is None else value


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


def environment() -> jinja2.Environment:
    """The Jinja2 environment of the status page (templates from web/templates/).

    web.app stores it under aiohttp-jinja2's typed key ``aiohttp_jinja2.APP_KEY`` itself rather
    than through ``aiohttp_jinja2.setup``, which would add the application object and its own
    ``url``/``static`` helpers as template globals.

    Raises jinja2.TemplateNotFound at render time when the package was installed without its
    templates (pyproject's package-data must list ``*.html`` and ``*.svg``).
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "svg"), default=True),
        undefined=jinja2.StrictUndefined,
        finalize=_blank_none,
        extensions=[JoinLines],
        auto_reload=False,
    )
    env.globals.update(nav=NAV, url=url, severities=SEVERITIES, kinds=KINDS)
    env.filters.update(
        ago=ago,
        fmt_value=fmt_value,
        fmt_duration=fmt_duration,
        kind_label=kind_label,
        unnamed=unnamed,
        icon_name=icon_name,
        local_iso=local_iso,
        local_short=local_short,
    )
    return env
