"""The ``[notify]`` table of home's TOML configuration, parsed into frozen dataclasses.

Secrets (SMTP passwords, webhook secrets, Apprise URLs, which carry tokens) are never written in
the configuration itself: the configuration names a file (``password_file``, ``secret_file``,
``url_file``; relative paths are relative to the configuration's folder) and the value is held in
a :class:`core.schema.Secret`, which never prints. Errors name the key and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.schema import Secret
from core.vocabulary import DEVICE_KINDS, Severity

SEVERITIES: tuple[str, ...] = tuple(str(s) for s in Severity)  # info first, as written in rules
CHANNEL_TYPES = ("email", "webhook", "apprise")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class NotifyConfigError(ValueError):
    """The ``[notify]`` configuration is wrong; the message names the key and the fix."""


@dataclass(frozen=True)
class EmailChannel:
    name: str
    host: str
    port: int
    security: str  # "starttls" | "tls" | "none" (loopback test servers only)
    sender: str
    to: tuple[str, ...]
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    ca_file: str = ""  # a private CA to trust for the server's certificate ('' = system CAs)
    timeout_s: float = 30.0
    type: str = "email"


@dataclass(frozen=True)
class WebhookChannel:
    name: str
    url: str
    secret: Secret
    timeout_s: float = 15.0
    type: str = "webhook"


@dataclass(frozen=True)
class AppriseChannel:
    name: str
    url: Secret  # an Apprise URL (it embeds tokens: a secret)
    timeout_s: float = 30.0
    type: str = "apprise"


Channel = EmailChannel | WebhookChannel | AppriseChannel


@dataclass(frozen=True)
class Step:
    """One escalation step: ``after_s`` seconds after the alert opened, notify ``channels``."""

    after_s: float
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    """Match on site, severity, device kind and alert key (fnmatch patterns); empty = any."""

    channels: tuple[str, ...]
    sites: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    after_hours: tuple[str, ...] = ()  # added outside business hours (the on-call channel)
    hold_outside_hours: bool = False  # outside business hours: wait, then one digest per site
    escalation: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Hours:
    """A site's business hours in its own time zone; holidays are whole days off."""

    zone: ZoneInfo
    start: time
    end: time
    days: frozenset[int]  # 0 = Monday
    holidays: frozenset[date]


@dataclass(frozen=True)
class NotifyConfig:
    channels: dict[str, Channel]
    routes: tuple[Route, ...]
    sites: dict[str, Hours]  # site name -> hours; "*" is the default for every other site
    public_url: str = ""  # how technicians reach home, for acknowledgement links
    group_wait_s: float = 30.0
    resolve_wait_s: float = 120.0  # a resolution waits this long: a quick re-open is a flap
    offline_after_s: float = 180.0  # three missed heartbeats of the box's default 60 s
    backlog_warn_s: float = 1800.0  # a box whose oldest unsent record is older: a warning
    max_attempts: int = 5
    backoff_first_s: float = 2.0
    backoff_cap_s: float = 300.0
    ack_valid_s: float = 7 * 86400.0
    fallback: str = ""  # the channel told when another channel keeps failing

    def hours_for(self, site: str) -> Hours:
        return self.sites.get(site) or self.sites.get("*") or DEFAULT_HOURS


DEFAULT_HOURS = Hours(ZoneInfo("UTC"), time(8, 0), time(18, 0), frozenset(range(5)), frozenset())

EMPTY = NotifyConfig(channels={}, routes=(), sites={})


def _str(table: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise NotifyConfigError(f"{where}.{key}: give a text value")
    return value


def _strs(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise NotifyConfigError(f'{where}.{key}: give a list of texts, e.g. ["a", "b"]')
    return tuple(value)


def _num(table: dict[str, Any], key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise NotifyConfigError(f"{where}.{key}: give a number of seconds >= 0")
    return float(value)


def _path(name: str, base: Path) -> str:
    """A configured file name, relative ones taken from the configuration's folder."""
    if not name:
        return ""
    path = Path(name)
    return str(path if path.is_absolute() else base / path)


def _secret(table: dict[str, Any], key: str, where: str, base: Path, need: bool) -> Secret:
    if key.removesuffix("_file") in table:
        raise NotifyConfigError(
            f"{where}.{key.removesuffix('_file')}: secrets are not written in the configuration;"
            f' put it in a file (mode 600) and name it with {key} = "/path"'
        )
    name = table.get(key)
    if name is None:
        if need:
            raise NotifyConfigError(f"{where}.{key}: name the file that holds the secret")
        return Secret("")
    path = Path(str(name))
    path = path if path.is_absolute() else base / path
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise NotifyConfigError(f"{where}.{key}: cannot read {path}: {exc.strerror}") from None
    if not text:
        raise NotifyConfigError(f"{where}.{key}: {path} is empty; write the secret in it")
    return Secret(text)


def _channel(name: str, table: dict[str, Any], base: Path) -> Channel:
    where = f"notify.channels.{name}"
    if not _NAME.match(name):
        raise NotifyConfigError(f"{where}: channel names are a-z, 0-9, '-' and '_' (max 40)")
    kind = table.get("type")
    known: set[str]
    channel: Channel
    if kind == "email":
        known = {"type", "host", "port", "security", "from", "to", "username", "password_file",
                 "timeout_s", "ca_file"}  # fmt: skip
        security = _str(table, "security", where, "starttls")
        if security not in ("starttls", "tls", "none"):
            raise NotifyConfigError(f"{where}.security: one of starttls, tls, none")
        port = table.get("port", 465 if security == "tls" else 587)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise NotifyConfigError(f"{where}.port: a TCP port number")
        to = _strs(table, "to", where)
        if not to:
            raise NotifyConfigError(f"{where}.to: give at least one address")
        channel = EmailChannel(
            name=name,
            host=_str(table, "host", where),
            port=port,
            security=security,
            sender=_str(table, "from", where),
            to=to,
            username=_str(table, "username", where, ""),
            password=_secret(table, "password_file", where, base, need=False),
            ca_file=_path(_str(table, "ca_file", where, ""), base),
            timeout_s=_num(table, "timeout_s", where, 30.0),
        )
    elif kind == "webhook":
        known = {"type", "url", "secret_file", "timeout_s"}
        url = _str(table, "url", where)
        if not url.startswith(("https://", "http://")):
            raise NotifyConfigError(f"{where}.url: an http(s):// URL")
        channel = WebhookChannel(
            name=name,
            url=url,
            secret=_secret(table, "secret_file", where, base, need=True),
            timeout_s=_num(table, "timeout_s", where, 15.0),
        )
    elif kind == "apprise":
        known = {"type", "url_file", "timeout_s"}
        channel = AppriseChannel(
            name=name,
            url=_secret(table, "url_file", where, base, need=True),
            timeout_s=_num(table, "timeout_s", where, 30.0),
        )
    else:
        raise NotifyConfigError(f"{where}.type: one of {', '.join(CHANNEL_TYPES)}")
    unknown = set(table) - known
    if unknown:
        raise NotifyConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    return channel


def _route(index: int, table: dict[str, Any], channels: dict[str, Channel]) -> Route:
    where = f"notify.routes[{index}]"
    known = {"sites", "severities", "kinds", "keys", "channels", "after_hours",
             "hold_outside_hours", "escalation"}  # fmt: skip
    unknown = set(table) - known
    if unknown:
        raise NotifyConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    severities = _strs(table, "severities", where)
    for sev in severities:
        if sev not in SEVERITIES:
            raise NotifyConfigError(f"{where}.severities: {sev!r} is not one of {SEVERITIES}")
    kinds = _strs(table, "kinds", where)
    for kind in kinds:
        if kind not in DEVICE_KINDS:
            raise NotifyConfigError(f"{where}.kinds: {kind!r} is not one of {DEVICE_KINDS}")
    steps = []
    for n, step in enumerate(table.get("escalation", [])):
        if not isinstance(step, dict):
            raise NotifyConfigError(f"{where}.escalation[{n}]: {{after_s = 900, channels = [..]}}")
        steps.append(
            Step(
                _num(step, "after_s", f"{where}.escalation[{n}]", 0.0),
                _strs(step, "channels", f"{where}.escalation[{n}]"),
            )
        )
    hold = table.get("hold_outside_hours", False)
    if not isinstance(hold, bool):
        raise NotifyConfigError(f"{where}.hold_outside_hours: true or false")
    route = Route(
        channels=_strs(table, "channels", where),
        sites=_strs(table, "sites", where),
        severities=severities,
        kinds=kinds,
        keys=_strs(table, "keys", where),
        after_hours=_strs(table, "after_hours", where),
        hold_outside_hours=hold,
        escalation=tuple(sorted(steps, key=lambda s: s.after_s)),
    )
    for name in (*route.channels, *route.after_hours, *(c for s in steps for c in s.channels)):
        if name not in channels:
            raise NotifyConfigError(
                f"{where}: channel {name!r} is not defined; add [notify.channels.{name}]"
            )
    return route


def _clock(text: Any, where: str) -> time:
    if not isinstance(text, str) or not re.match(r"^\d\d:\d\d$", text):
        raise NotifyConfigError(f'{where}: a time as HH:MM, e.g. "08:00"')
    hour, minute = (int(x) for x in text.split(":"))
    if hour > 23 or minute > 59:
        raise NotifyConfigError(f"{where}: {text!r} is not a time of day")
    return time(hour, minute)


def _hours(site: str, table: dict[str, Any]) -> Hours:
    where = f"notify.sites.{site!r}"
    known = {"timezone", "start", "end", "days", "holidays"}
    unknown = set(table) - known
    if unknown:
        raise NotifyConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    try:
        zone = ZoneInfo(_str(table, "timezone", where, "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        raise NotifyConfigError(
            f'{where}.timezone: not an IANA time zone; write e.g. "Europe/Berlin"'
        ) from None
    days = _strs(table, "days", where) or _DAYS[:5]
    for day in days:
        if day not in _DAYS:
            raise NotifyConfigError(f"{where}.days: {day!r} is not one of {_DAYS}")
    holidays = set()
    for text in _strs(table, "holidays", where):
        try:
            holidays.add(date.fromisoformat(text))
        except ValueError:
            raise NotifyConfigError(f"{where}.holidays: {text!r} is not YYYY-MM-DD") from None
    start = _clock(table.get("start", "08:00"), f"{where}.start")
    end = _clock(table.get("end", "18:00"), f"{where}.end")
    if end <= start:
        raise NotifyConfigError(f"{where}: end {end} is not after start {start}")
    return Hours(zone, start, end, frozenset(_DAYS.index(d) for d in days), frozenset(holidays))


def default_routes(defaults: dict[str, Any], channels: dict[str, Channel]) -> tuple[Route, ...]:
    """The MSP practice when no rule matches: minor/warning to the service queue in business hours
    (else held for the next start, one digest per site); major/critical at once, after hours also
    to on-call, escalating along ``[notify.defaults] escalation``."""
    table = {
        "service": defaults.get("service", []),
        "oncall": defaults.get("oncall", []),
    }
    low = {
        "severities": ["warning", "minor"],
        "channels": table["service"],
        "hold_outside_hours": True,
    }
    high = {
        "severities": ["major", "critical"],
        "channels": table["service"],
        "after_hours": table["oncall"],
        "escalation": defaults.get("escalation", []),
    }
    return (_route(-2, low, channels), _route(-1, high, channels))


def parse(table: dict[str, Any], base: Path) -> NotifyConfig:
    """The ``[notify]`` table (already read from TOML) -> NotifyConfig; ``base``: config folder."""
    known = {"public_url", "group_wait_s", "resolve_wait_s", "offline_after_s", "max_attempts",
             "backoff_first_s", "backoff_cap_s", "ack_valid_s", "fallback", "channels", "routes",
             "backlog_warn_s", "sites", "defaults"}  # fmt: skip
    unknown = set(table) - known
    if unknown:
        raise NotifyConfigError(f"notify: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    raw_channels = table.get("channels", {})
    if not isinstance(raw_channels, dict):
        raise NotifyConfigError("notify.channels: a table of [notify.channels.NAME]")
    channels = {name: _channel(name, t, base) for name, t in raw_channels.items()}
    routes = tuple(_route(i, t, channels) for i, t in enumerate(table.get("routes", [])))
    defaults = table.get("defaults", {})
    if not isinstance(defaults, dict) or set(defaults) - {"service", "oncall", "escalation"}:
        raise NotifyConfigError("notify.defaults: keys service, oncall, escalation")
    routes += default_routes(defaults, channels)
    sites = {site: _hours(site, t) for site, t in table.get("sites", {}).items()}
    fallback = _str(table, "fallback", "notify", "")
    if fallback and fallback not in channels:
        raise NotifyConfigError(f"notify.fallback: channel {fallback!r} is not defined")
    attempts = table.get("max_attempts", 5)
    if not isinstance(attempts, int) or attempts < 1:
        raise NotifyConfigError("notify.max_attempts: a whole number >= 1")
    return NotifyConfig(
        channels=channels,
        routes=routes,
        sites=sites,
        public_url=_str(table, "public_url", "notify", "").rstrip("/"),
        group_wait_s=_num(table, "group_wait_s", "notify", 30.0),
        resolve_wait_s=_num(table, "resolve_wait_s", "notify", 120.0),
        offline_after_s=_num(table, "offline_after_s", "notify", 180.0),
        backlog_warn_s=_num(table, "backlog_warn_s", "notify", 1800.0),
        max_attempts=attempts,
        backoff_first_s=_num(table, "backoff_first_s", "notify", 2.0),
        backoff_cap_s=_num(table, "backoff_cap_s", "notify", 300.0),
        ack_valid_s=_num(table, "ack_valid_s", "notify", 7 * 86400.0),
        fallback=fallback,
    )
